#!/usr/bin/env bash
# tests/dfget_interop.sh: the real Dragonfly client (dfdaemon + dfget 1.5.10) downloading through
# hawker. hawker serve is the scheduler AND the seed; a local range-capable origin
# (tests/dfget/origin.py) records every request; two (DFGET_CHILDREN, up to 3) dfdaemons with
# their own ports and folders fetch a 64 MiB and a 1 GiB file with
#   dfget -e SOCKET --scheduling-policy always -O out URL
# Checks: sha256 equal to the origin's; hawker's metrics show the pieces it seeded and served; the
# origin sent the content once (plus each one-byte length probe); a later dfdaemon also gets
# pieces from an earlier one (its upload traffic).
#
# usage: tests/dfget_interop.sh [--hawker PATH]
# env:   DFGET_BIN (folder with dfget+dfdaemon; default: the install-dfget.sh cache, never built
#        here), DFGET_CHILDREN (2), DFGET_BIG_MIB (1024; 0 skips the big file), KEEP=1 keeps the
#        work folder, DFGET_TIMEOUT_S (600 per dfget)
# Prints PASS/FAIL lines and "N passed, N failed"; exits 0 with SKIPPED when the client is not
# installed; exits 1 when a check failed. Everything it starts is killed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
hawker=target/debug/hawker
while [[ $# -gt 0 ]]; do
  case $1 in
    --hawker) hawker=$2; shift 2 ;;
    *) echo "usage: $0 [--hawker PATH]" >&2; exit 2 ;;
  esac
done
children=${DFGET_CHILDREN:-2}
big_mib=${DFGET_BIG_MIB:-1024}
dfget_timeout_s=${DFGET_TIMEOUT_S:-600}
start_timeout_s=60

# --- the client: only if already installed (building it takes 20-40 minutes) ----------------
cache=${DFGET_CACHE:-$HOME/.cache/dragonfly-client}/1.5.10
bin=${DFGET_BIN:-}
if [[ -z $bin && -x $cache/bin/dfget && -x $cache/bin/dfdaemon ]]; then
  bin=$(bash "$repo/../shared/tools/install-dfget.sh" 1.5.10)
fi
if [[ -z $bin || ! -x $bin/dfget || ! -x $bin/dfdaemon ]]; then
  echo "SKIPPED: dfget/dfdaemon 1.5.10 not installed (apt-get install libclang-dev, then run ../shared/tools/install-dfget.sh: rocksdb's bindgen needs libclang)"
  exit 0
fi
[[ -x $hawker ]] || { echo "FAIL: $hawker is not built (cargo build -p hawker)"; exit 1; }
[[ $children -ge 2 && $children -le 3 ]] || { echo "DFGET_CHILDREN must be 2 or 3" >&2; exit 2; }

passed=0
failed=0
pass() { echo "PASS: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }

work=$(mktemp -d /tmp/hawker-dfget.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  sleep 0.5
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ ${KEEP:-0} == 1 ]]; then echo "work folder kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# N free loopback ports (bound then released by the kernel's choice).
free_ports() {
  python3 -c '
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}
wait_tcp() { # wait_tcp PORT WHAT
  local deadline=$((SECONDS + start_timeout_s))
  until python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$1" 2>/dev/null; do
    [[ $SECONDS -lt $deadline ]] || { fail "$2 did not listen on port $1 within ${start_timeout_s}s"; return 1; }
    sleep 0.2
  done
}
http_get() { python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' "$1"; }
# metric_sum TEXT NAME: the sum of every sample of NAME (any labels).
metric_sum() { awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $NF } END { printf "%d\n", s }' <<<"$1"; }

# --- origin ------------------------------------------------------------------------------------
mkdir -p "$work/www"
read -r origin_port v_port h_port s_port u_port a_port <<<"$(free_ports 6)"
head -c $((64 << 20)) /dev/urandom >"$work/www/f64"
sizes=(64)
if [[ $big_mib -gt 0 ]]; then
  need=$(( (big_mib << 20) * (children + 3) ))
  avail=$(df --output=avail -B1 "$work" | tail -1)
  if [[ $avail -gt $need ]]; then
    head -c $((big_mib << 20)) /dev/urandom >"$work/www/f$big_mib"
    sizes+=("$big_mib")
  else
    echo "SKIP: the ${big_mib} MiB file: $((avail >> 30)) GiB free, $((need >> 30)) GiB needed"
  fi
fi
python3 tests/dfget/origin.py "$work/www" "$origin_port" "$work/origin.log" &
pids+=($!)
wait_tcp "$origin_port" origin || exit 1

# --- hawker serve: scheduler + seed ------------------------------------------------------------
"$hawker" serve --data-dir "$work/hawker" --cores 0 --advertise-addr 127.0.0.1 \
  --vortex-listen "127.0.0.1:$v_port" --http-listen "127.0.0.1:$h_port" \
  --scheduler-listen "127.0.0.1:$s_port" --upload-listen "127.0.0.1:$u_port" \
  --admin-listen "127.0.0.1:$a_port" 2>"$work/hawker.log" &
pids+=($!)
if ! wait_tcp "$a_port" "hawker admin" || ! wait_tcp "$s_port" "hawker scheduler"; then
  tail -20 "$work/hawker.log"
  exit 1
fi
pass "hawker serve is up (scheduler 127.0.0.1:$s_port, upload $u_port, vortex $v_port)"

# --- dfdaemons ---------------------------------------------------------------------------------
declare -a sock metrics_port
for i in $(seq 1 "$children"); do
  d=$work/child-$i
  mkdir -p "$d/log"
  read -r up px mx hx sx tcp quic <<<"$(free_ports 7)"
  cat >"$d/dynconfig.yaml" <<EOF
scheduler:
  addrs: ['127.0.0.1:$s_port']
EOF
  cat >"$d/dfdaemon.yaml" <<EOF
host:
  ip: 127.0.0.1
  hostname: child-$i
server:
  pluginDir: $d/plugins
  cacheDir: $d/cache
download:
  protocol: tcp
  server:
    socketPath: $d/dfdaemon.sock
upload:
  server:
    port: $up
proxy:
  server:
    port: $px
metrics:
  server:
    port: $mx
health:
  server:
    port: $hx
stats:
  server:
    port: $sx
storage:
  dir: $d/storage
  server:
    tcpPort: $tcp
    quicPort: $quic
EOF
  "$bin/dfdaemon" --config "$d/dfdaemon.yaml" --dynconfig "$d/dynconfig.yaml" --log-dir "$d/log" \
    >"$d/stdout.log" 2>&1 &
  pids+=($!)
  sock[i]=$d/dfdaemon.sock
  metrics_port[i]=$mx
  deadline=$((SECONDS + start_timeout_s))
  until [[ -S ${sock[i]} ]]; do
    [[ $SECONDS -lt $deadline ]] || break
    sleep 0.2
  done
  if [[ -S ${sock[i]} ]] && wait_tcp "$up" "dfdaemon child-$i upload"; then
    pass "dfdaemon child-$i is up (socket ${sock[i]}, upload $up, tcp $tcp)"
  else
    fail "dfdaemon child-$i did not start; its log:"
    tail -20 "$d/stdout.log" "$d"/log/* 2>/dev/null | tail -40
    exit 1
  fi
done

# --- downloads ---------------------------------------------------------------------------------
for size in "${sizes[@]}"; do
  name=f$size
  want=$(sha256sum "$work/www/$name" | cut -d' ' -f1)
  bytes=$(stat -c %s "$work/www/$name")
  for i in $(seq 1 "$children"); do
    out=$work/child-$i/$name.out
    t0=$SECONDS
    if timeout "$dfget_timeout_s" "$bin/dfget" -e "${sock[i]}" --scheduling-policy always \
      -O "$out" "http://127.0.0.1:$origin_port/$name" >"$work/child-$i/dfget-$name.log" 2>&1; then
      got=$(sha256sum "$out" | cut -d' ' -f1)
      if [[ $got == "$want" ]]; then
        pass "child-$i: dfget $size MiB in $((SECONDS - t0)) s, sha256 matches the origin's"
      else
        fail "child-$i: dfget $size MiB: sha256 $got, origin has $want"
      fi
    else
      fail "child-$i: dfget $size MiB failed (exit $?); last lines:"
      tail -5 "$work/child-$i/dfget-$name.log"
    fi
  done
  # The origin: the content once, plus one-byte probes (hawker's and each child's).
  read -r sent probes <<<"$(awk -v p="/$name" '$1 == p { s += $3; if ($2 == "bytes=0-0") n++ } END { printf "%d %d\n", s, n }' "$work/origin.log")"
  if [[ $sent -eq $((bytes + probes)) && $probes -le $((children + 1)) ]]; then
    pass "origin sent $name once: $sent bytes = $bytes + $probes one-byte probes"
  else
    fail "origin sent $sent bytes for $name ($bytes content, $probes probes): not once"
  fi
done

# --- hawker's metrics --------------------------------------------------------------------------
admin=$(http_get "http://127.0.0.1:$a_port/metrics")
dp=$(http_get "http://127.0.0.1:$h_port/metrics")
seeded=$(metric_sum "$admin" hawker_seeding_pieces_total)
served=$(metric_sum "$dp" hawker_pieces_served_total)
normal=$(awk '/^hawker_scheduler_schedules_total\{kind="normal"\}/ { print $NF }' <<<"$admin")
b2s=$(metric_sum "$admin" hawker_scheduler_back_to_source_total)
expected_pieces=0
for size in "${sizes[@]}"; do expected_pieces=$((expected_pieces + size / 4)); done
echo "hawker: seeded $seeded pieces, served $served pieces over Vortex, $normal normal and $b2s back-to-source answers"
if [[ $seeded -eq $expected_pieces ]]; then
  pass "hawker seeded every piece once from origin ($seeded pieces)"
else
  fail "hawker seeded $seeded pieces, expected $expected_pieces"
fi
if [[ $served -ge $expected_pieces ]]; then
  pass "hawker's data plane served $served pieces over Vortex"
else
  fail "hawker's data plane served only $served pieces (expected at least $expected_pieces)"
fi
if [[ ${b2s:-0} -eq 0 ]]; then
  pass "no child was sent back to source"
else
  fail "$b2s children were sent back to source"
fi

# --- children serve each other -------------------------------------------------------------------
uploaded=0
for i in $(seq 1 "$children"); do
  m=$(http_get "http://127.0.0.1:${metrics_port[i]}/metrics" 2>/dev/null || true)
  u=$(metric_sum "$m" dragonfly_client_upload_traffic)
  echo "child-$i uploaded $u bytes to other children"
  uploaded=$((uploaded + u))
done
if [[ $uploaded -gt 0 ]]; then
  pass "children also got pieces from each other ($uploaded bytes)"
else
  fail "no child uploaded to another: every piece came from hawker"
fi

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
