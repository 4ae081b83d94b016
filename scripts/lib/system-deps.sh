# System peers the tests use, installed from Debian only when missing.
# Sourced by scripts/test; each entry is "command-to-probe debian-package".

# Add a line here when a test starts needing another peer.
SYSTEM_DEPS=(
  "sipp sip-tester"
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

ensure_system_deps() {
  local entry probe package
  for entry in "${SYSTEM_DEPS[@]}"; do
    probe=${entry%% *}
    package=${entry##* }
    if ! command -v "$probe" >/dev/null 2>&1; then
      apt_install "$package"
      command -v "$probe" >/dev/null 2>&1 || { echo "error: $package did not provide $probe" >&2; exit 1; }
    fi
  done
}
