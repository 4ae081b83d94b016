#!/usr/bin/env bash
# Store load figures for the README: 1 M-row import time and peak RSS, and
# hopper throughput, on SQLite and PostgreSQL (127.0.0.1:5432, trust auth).
# Usage: scripts/load/store.sh [ROWS] [HOPPER_RECORDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
rows=${1:-1000000}
hopper_records=${2:-20000}
work=$(mktemp -d)
trap 'rm -rf "$work"; psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS outdial_load_$$" >/dev/null 2>&1 || true' EXIT

cargo build --release --quiet --bin outdial --example store_load
bin=${CARGO_TARGET_DIR:-target}/release
"$bin/examples/store_load" gen "$rows" "$work/list.csv"
echo "list: $rows rows, $(du -h "$work/list.csv" | cut -f1)"

psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE outdial_load_$$"
for url in "sqlite://$work/load.db" "postgres://postgres@127.0.0.1/outdial_load_$$"; do
  sed "s#^url = .*#url = \"$url\"#" config/outdial.toml > "$work/outdial.toml"
  echo "== import $rows rows into ${url%%://*}"
  /usr/bin/time -v "$bin/outdial" --config "$work/outdial.toml" import --campaign demo \
    --file "$work/list.csv" --json > "$work/import.json" 2> "$work/time.txt" || [ $? -eq 3 ]
  python3 -c "import json,sys; d=json.load(open('$work/import.json')); print('imported', d['imported'], 'updated', d['updated'], 'rejected', len(d['rejected']))"
  grep -E "Elapsed|Maximum resident" "$work/time.txt"
  echo "== re-import (idempotent: all updates)"
  /usr/bin/time -v "$bin/outdial" --config "$work/outdial.toml" import --campaign demo \
    --file "$work/list.csv" --json > "$work/import.json" 2> "$work/time.txt" || [ $? -eq 3 ]
  python3 -c "import json,sys; d=json.load(open('$work/import.json')); print('imported', d['imported'], 'updated', d['updated'], 'rejected', len(d['rejected']))"
  grep -E "Elapsed|Maximum resident" "$work/time.txt"
  echo "== hopper on ${url%%://*}"
  for batch in 1 50; do
    "$bin/examples/store_load" hopper "$url" "$hopper_records" "$batch"
  done
done
