# System peers the tests use, installed from Debian only when missing.
# Sourced by scripts/test; each entry is "command-to-probe debian-package".

# Add a line here when a test starts needing another peer.
SYSTEM_DEPS=(
  "sipp sip-tester"
  "chromium chromium"
  "chromedriver chromium-driver"
  "baresip baresip-core"
  "linphonec linphone-cli"
  "kamailio kamailio"
  "dnsmasq dnsmasq-base"
)

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    echo "== apt-get update"
    apt-get update -qq
    apt_updated=1
  fi
  echo "== apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# The store tests need PostgreSQL on 127.0.0.1:5432 (trust auth, user postgres).
# Use a running server; else start an installed cluster; else install Debian's.
ensure_postgresql() {
  if command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1; then
    return
  fi
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    apt_install postgresql
  fi
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  # Loopback clients connect as postgres without a password, as in CI.
  local hba="/etc/postgresql/$version/main/pg_hba.conf"
  if ! grep -q "outdial-tests" "$hba"; then
    sed -i '1i host all all 127.0.0.1/32 trust # outdial-tests' "$hba"
  fi
  echo "== starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  local tries=0
  until pg_isready -q -h 127.0.0.1; do
    tries=$((tries + 1))
    if [ "$tries" -gt 30 ]; then
      echo "error: PostgreSQL did not start on 127.0.0.1:5432" >&2
      exit 1
    fi
    sleep 1
  done
}

ensure_system_deps() {
  ensure_postgresql
  local entry probe package
  for entry in "${SYSTEM_DEPS[@]}"; do
    probe=${entry%% *}
    package=${entry##* }
    if ! command -v "$probe" >/dev/null 2>&1; then
      apt_install "$package"
      command -v "$probe" >/dev/null 2>&1 || { echo "error: $package did not provide $probe" >&2; exit 1; }
      if [ "$package" = kamailio ]; then
        # The tests start their own Kamailio on free ports; Debian's service
        # (where systemd starts it) would hold 5060, the dialer's own port.
        systemctl disable --now kamailio >/dev/null 2>&1 || true
      fi
    fi
  done
}
