#!/usr/bin/env bash
# Trunk capacity test on this machine: `outdial call --count --rate` against a
# SIPp UAS (tests/sipp/uas_answer.xml: INVITE/100/180/200/ACK, then our BYE/200)
# at rising rates. Reports, per rate, the outcomes, the achieved rate, the
# setup-latency percentiles and outdial's CPU (user+sys ÷ wall time), then the
# highest rate sustained with zero failures.
#
#   scripts/load/sip_calls.sh [SECONDS_PER_STEP] [RATES...]
#   e.g. scripts/load/sip_calls.sh 10 200 500 750 1000
#
# Loopback only; every step is bounded (SIPp has -timeout, outdial call ends
# when its calls end). Needs sipp (Debian sip-tester).
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${1:-10}
shift || true
rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(100 250 500 750 1000)

cargo build --release --quiet
bin=${CARGO_TARGET_DIR:-target}/release/outdial
work=$(mktemp -d)
sipp_pid=
cleanup() {
  [ -n "$sipp_pid" ] && kill "$sipp_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed -e 's/listen = "127.0.0.1:5060"/listen = "127.0.0.1:0"/' \
    -e 's/listen = "127.0.0.1:8080"/listen = "127.0.0.1:0"/' \
    -e "s#uri = \"sip:127.0.0.1:5070\"#uri = \"sip:127.0.0.1:$port\"#" \
    -e 's/max_concurrent_calls = 60 /max_concurrent_calls = 900/' \
    -e 's/max_calls_per_second = 10 /max_calls_per_second = 5000/' \
    -e "s#url = \"sqlite://outdial.db\"#url = \"sqlite://$work/outdial.db\"#" \
    config/outdial.toml > "$work/outdial.toml"

# One SIPp UAS for every step; -timeout bounds it even if this script dies.
sipp -sf tests/sipp/uas_answer.xml -i 127.0.0.1 -p "$port" -nostdin \
  -timeout 1800s -max_recv_loops 10000 -max_sched_loops 10000 \
  >/dev/null 2>"$work/sipp.err" &
sipp_pid=$!
sleep 0.5

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
echo "rate  calls  answered  failed  achieved/s  outdial-cpu  answer-p50/p99 ms"
best=0
for rate in "${rates[@]}"; do
  count=$((rate * seconds))
  /usr/bin/time -f "%U %S %e" -o "$work/time" \
    "$bin" call 5551234 --config "$work/outdial.toml" --count "$count" --rate "$rate" \
    --hold 0 --ring-timeout 20 >"$work/out" 2>"$work/err" || true
  read -r user sys wall <"$work/time"
  answered=$(awk '/^  answered:/ {print $2}' "$work/out"); answered=${answered:-0}
  achieved=$(awk '/achieved rate/ {for (i=1;i<=NF;i++) if ($i=="rate") print $(i+1)}' "$work/out")
  latency=$(awk '/answer \(INVITE/ {print $7 "/" $11}' "$work/out")
  cpu=$(awk -v u="$user" -v s="$sys" -v w="$wall" 'BEGIN {if (w > 0) printf "%.0f%%", 100*(u+s)/w; else print "?"}')
  failed=$((count - answered))
  printf "%4d  %5d  %8d  %6d  %10s  %11s  %s\n" "$rate" "$count" "$answered" "$failed" "$achieved" "$cpu" "$latency"
  if [ "$failed" -eq 0 ]; then best=$rate; else grep -E '^  [a-z_]+:' "$work/out" | sed 's/^/      /'; fi
done
echo "highest rate with zero failures: $best calls/s"
