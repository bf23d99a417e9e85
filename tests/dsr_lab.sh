#!/usr/bin/env bash
# tests/dsr_lab.sh: hawker behind a direct-server-return load balancer, in network namespaces.
#
#   bash tests/dsr_lab.sh [--hawker PATH] [--no-ipip]
#
# Topology (docs/deploy.md, /work/shared/docs/dsr-lab.md): a bridge in namespace <p>-sw; namespaces
# <p>-client, <p>-lb, <p>-rs1, <p>-rs2 each joined to it by a veth pair with a fixed MAC, addresses
# in 10.199.77.0/24 (only inside these namespaces). The VIP 10.199.77.100 is on the LB's eth0 (so the
# LB answers ARP for it) and on lo of each real server (tuning/vip add --mode l2|ipip).
#   L2 DSR:  an nftables netdev ingress rule in the LB rewrites the destination MAC to a real
#            server chosen by jhash(saddr . sport) and forwards the frame out of eth0 again.
#   IPIP DSR: tc-BPF (tests/dsr/ipip_lb.c) encapsulates on the LB and decapsulates on the real
#            servers (this kernel has no ipip module); the real servers run with
#            --tcp-max-segment 1440.
# Each real server runs `hawker serve` on VIP ports with its own data dir holding the same imported
# random files. The client fetches pieces over HTTP (curl) and Vortex (tests/dsr/dsrclient.py)
# through the VIP, runs a bounded concurrent load, and the script asserts: bytes and digests right;
# both real servers served; the LB never saw a packet with source VIP; the real servers answered
# the client's MAC directly; SIGTERM to a real server turns its /healthz to 503 while the clients'
# in-flight pieces complete and the process exits 0.
#
# Needs root, iproute2, nftables, curl, python3 (and clang + libbpf-dev for IPIP); missing Debian
# packages are installed with apt-get. Without root or namespaces it prints "SKIPPED: <reason>" and
# exits 0. A trap removes every namespace, process and file it made, even on failure. Every wait
# is bounded in count and time. Last line: "N passed, N failed, N skipped".
set -Eeuo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
client_py="$here/dsr/dsrclient.py"

hawker=""
run_ipip=1
while (($#)); do
    case $1 in
    --hawker)
        hawker=${2:?--hawker needs a path}
        shift 2
        ;;
    --no-ipip)
        run_ipip=0
        shift
        ;;
    -h | --help)
        sed -n '2,26p' "$0"
        exit 0
        ;;
    *)
        echo "unknown argument: $1" >&2
        exit 2
        ;;
    esac
done

# --- numbers ----------------------------------------------------------------------------------
net=10.199.77
vip=$net.100
lb_ip=$net.2
client_ip=$net.10
rs_ip=("" "$net.11" "$net.12")
lb_mac=02:68:6b:00:00:02
client_mac=02:68:6b:00:00:0a
rs_mac=("" 02:68:6b:00:00:0b 02:68:6b:00:00:0c)
http_port=8080
vortex_port=4005
drain_timeout_ms=20000
tunnel_mss_bytes=1440           # 1500 - 20 outer IP - 20 IP - 20 TCP
start_timeout_s=20              # a server must answer /healthz 200 within this
load_connections=32
load_requests=240
load_deadline_s=120
slow_rate_bps=$((1024 * 1024))  # drain test: each slow client reads ~4 s for a 4 MiB piece
slow_rcvbuf_bytes=65536
slow_batch=8
drain_sndbuf_max_bytes=262144 # drain phase: real servers' tcp_wmem max
slow_batches_max=3

prefix="hkdsr$$"
ns_sw=$prefix-sw
ns_client=$prefix-client
ns_lb=$prefix-lb
ns_rs=("" "$prefix-rs1" "$prefix-rs2")

passed=0
failed=0
skipped=0
made_ns=()
pids=()
work=""
t_start=$(date +%s)

log() { printf '[dsr-lab %3ss] %s\n' "$(($(date +%s) - t_start))" "$*"; }
pass() {
    passed=$((passed + 1))
    echo "PASS: $*"
}
fail() {
    failed=$((failed + 1))
    echo "FAIL: $*"
}
skip() {
    skipped=$((skipped + 1))
    echo "SKIP: $*"
}
summarized=0
summary() {
    summarized=1
    echo "$passed passed, $failed failed, $skipped skipped"
}

skip_all() {
    echo "SKIPPED: $*"
    echo "*** tests/dsr_lab.sh did NOT run: $* ***" >&2
    skipped=$((skipped + 1))
    summary
    exit 0
}

# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
    local rc=$? pid ns
    set +e
    trap - ERR
    if ((!summarized)); then
        fail "the lab aborted (exit status $rc) before finishing; see the error above"
        summary
        ((rc != 0)) || rc=1
    fi
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${pids[@]}"; do
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -KILL "$pid" 2>/dev/null
    done
    for ns in "${made_ns[@]}"; do
        # Anything still running in the namespace (started by this script) goes too.
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -KILL "$pid" 2>/dev/null
        done
        ip netns del "$ns" 2>/dev/null
    done
    [[ -n $work && -d $work ]] && rm -rf "$work"
    return "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'echo "dsr_lab: command failed at line $LINENO: $BASH_COMMAND" >&2' ERR

nsx() {
    local ns=$1
    shift
    ip netns exec "$ns" "$@"
}

# --- preflight --------------------------------------------------------------------------------
[[ $EUID -eq 0 ]] || skip_all "needs root to create network namespaces (run: sudo bash tests/dsr_lab.sh)"
command -v ip >/dev/null 2>&1 || skip_all "iproute2 ('ip') is not installed"

apt_install() {
    local pkgs=("$@")
    command -v apt-get >/dev/null 2>&1 || return 1
    log "installing ${pkgs[*]} with apt-get"
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y --no-install-recommends "${pkgs[@]}" >/dev/null 2>&1 && return 0
    DEBIAN_FRONTEND=noninteractive timeout 300 apt-get update >/dev/null 2>&1 || return 1
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y --no-install-recommends "${pkgs[@]}" >/dev/null 2>&1
}
need=()
command -v nft >/dev/null 2>&1 || need+=(nftables)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if ((${#need[@]})); then
    apt_install "${need[@]}" || skip_all "could not install ${need[*]} (apt-get failed)"
fi
if ((run_ipip)) && { ! command -v clang >/dev/null 2>&1 || [[ ! -e /usr/include/bpf/bpf_helpers.h ]]; }; then
    apt_install clang llvm libbpf-dev || {
        log "clang/libbpf-dev not installable: the IPIP variant will be skipped"
        run_ipip=0
        ipip_skip_reason="clang/libbpf-dev could not be installed"
    }
fi

probe_ns="$prefix-probe"
if ! ip netns add "$probe_ns" 2>/dev/null; then
    skip_all "cannot create network namespaces here (ip netns add failed; container without CAP_SYS_ADMIN?)"
fi
ip netns del "$probe_ns"

if [[ -z $hawker ]]; then
    log "building hawker (cargo build -p hawker)"
    if ! (cd "$repo" && timeout 1800 cargo build -q -p hawker); then
        echo "FAIL: cargo build -p hawker failed"
        failed=$((failed + 1))
        summary
        exit 1
    fi
    hawker="$repo/target/debug/hawker"
fi
if [[ ! -x $hawker ]]; then
    echo "FAIL: hawker binary '$hawker' does not exist or is not executable"
    failed=$((failed + 1))
    summary
    exit 1
fi
hawker=$(cd "$(dirname "$hawker")" && pwd)/$(basename "$hawker")
if ! "$hawker" serve --help >/dev/null 2>&1; then
    skip_all "'$hawker' has no 'serve' subcommand yet (try --hawker tests/dsr/standin_hawker.py to check the lab itself)"
fi

work=$(mktemp -d /tmp/hkdsr.XXXXXX)
log "hawker: $hawker; work dir: $work; namespaces: $prefix-*"

# --- topology ---------------------------------------------------------------------------------
add_ns() {
    ip netns add "$1"
    made_ns+=("$1")
    nsx "$1" ip link set lo up
}
# join NS PORTNAME MAC IP: a veth pair from the bridge namespace into NS (named eth0 there).
join() {
    local ns=$1 port=$2 mac=$3 addr=$4
    ip -n "$ns_sw" link add "$port" type veth peer name eth0 netns "$ns"
    ip -n "$ns_sw" link set "$port" master br0 up
    ip -n "$ns" link set eth0 address "$mac"
    ip -n "$ns" addr add "$addr/24" dev eth0
    ip -n "$ns" link set eth0 up
}

setup_topology() {
    local i
    add_ns "$ns_sw"
    add_ns "$ns_client"
    add_ns "$ns_lb"
    add_ns "${ns_rs[1]}"
    add_ns "${ns_rs[2]}"
    ip -n "$ns_sw" link add br0 type bridge
    ip -n "$ns_sw" link set br0 up
    join "$ns_client" client "$client_mac" "$client_ip"
    join "$ns_lb" lb "$lb_mac" "$lb_ip"
    for i in 1 2; do
        join "${ns_rs[i]}" "rs$i" "${rs_mac[i]}" "${rs_ip[i]}"
    done
    # The LB owns the VIP on the wire: it answers ARP for it.
    ip -n "$ns_lb" addr add "$vip/32" dev eth0
}

# Counters that observe, in every mode: what the LB saw, what each real server got and sent.
setup_counters() {
    local i
    nsx "$ns_lb" nft -f - <<EOF
table netdev hkdsr_obs {
    counter vip_src_in {}
    counter vip_src_out {}
    chain in {
        type filter hook ingress device "eth0" priority -10; policy accept;
        ip saddr $vip counter name vip_src_in
    }
    chain out {
        type filter hook egress device "eth0" priority 0; policy accept;
        ip saddr $vip counter name vip_src_out
    }
}
EOF
    # The wire (the bridge): what really travelled towards the LB and the client.
    nsx "$ns_sw" nft -f - <<EOF
table bridge hkdsr_wire {
    counter vip_src_to_lb {}
    counter vip_src_to_client {}
    counter ipip {}
    chain wire {
        type filter hook forward priority 0; policy accept;
        ether daddr $lb_mac ip saddr $vip counter name vip_src_to_lb
        ether daddr $client_mac ip saddr $vip counter name vip_src_to_client
        ip protocol 4 counter name ipip
    }
}
EOF
    for i in 1 2; do
        nsx "${ns_rs[i]}" nft -f - <<EOF
table netdev hkdsr_rs {
    counter syn_in {}
    counter vip_to_client {}
    chain in {
        type filter hook ingress device "eth0" priority 0; policy accept;
        ip daddr $vip tcp flags & (syn | ack) == syn counter name syn_in
    }
    chain out {
        type filter hook egress device "eth0" priority 0; policy accept;
        ether daddr $client_mac ip saddr $vip counter name vip_to_client
    }
}
EOF
    done
}

# The L2 DSR forwarder: MAC rewrite by jhash(saddr . sport), out of the same port.
setup_l2_lb() {
    nsx "$ns_lb" nft -f - <<EOF
table netdev hkdsr_fwd {
    map backends {
        typeof numgen inc mod 2 : ether daddr
        elements = { 0 : ${rs_mac[1]}, 1 : ${rs_mac[2]} }
    }
    counter to_vip {}
    counter to_rs1 {}
    counter to_rs2 {}
    chain in {
        type filter hook ingress device "eth0" priority 0; policy accept;
        ip daddr $vip tcp dport { $http_port, $vortex_port } counter name to_vip ether saddr set $lb_mac ether daddr set jhash ip saddr . tcp sport mod 2 map @backends goto dispatch
    }
    # Weight 0 ("drained" backends) with connection affinity, as an SLB does it: established flows
    # stay on their server; a new flow (SYN) hashed to a drained server goes to the other one and
    # is remembered in @moved so that its later packets follow it.
    set drained { type ether_addr; }
    set moved {
        type ipv4_addr . inet_service
        flags dynamic, timeout
        timeout 10m
        size 65536
    }
    chain dispatch {
        ether daddr @drained ip saddr . tcp sport @moved goto to_other
        ether daddr @drained tcp flags & (syn | ack) == syn add @moved { ip saddr . tcp sport } goto to_other
        ether daddr ${rs_mac[1]} counter name to_rs1 fwd to "eth0"
        ether daddr ${rs_mac[2]} counter name to_rs2 fwd to "eth0"
        drop
    }
    chain to_other {
        ether daddr ${rs_mac[1]} ether daddr set ${rs_mac[2]} counter name to_rs2 fwd to "eth0"
        ether daddr ${rs_mac[2]} ether daddr set ${rs_mac[1]} counter name to_rs1 fwd to "eth0"
        drop
    }
}
EOF
}

# counter NS TABLE NAME -> packets (table hkdsr_wire is in the bridge family, the others netdev)
counter() {
    local family=netdev
    [[ $2 == hkdsr_wire ]] && family=bridge
    nsx "$1" nft list counter "$family" "$2" "$3" | awk '$1 == "packets" { print $2; exit }'
}

# --- data and servers -------------------------------------------------------------------------
declare -A task_file=()
task_ids=()
prepare_data() {
    local f id id2 i
    mkdir -p "$work/src" "$work/rs1" "$work/rs2"
    head -c $((10 * 1024 * 1024 + 12345)) /dev/urandom >"$work/src/a.bin" # 3 pieces of 4 MiB
    head -c $((4 * 1024 * 1024)) /dev/urandom >"$work/src/b.bin"          # exactly 1 piece
    head -c $((1024 * 1024 + 7)) /dev/urandom >"$work/src/c.bin"          # 1 short piece
    for f in a b c; do
        id=$("$hawker" import --data-dir "$work/rs1" --url "http://origin.hkdsr.test/$f.bin" "$work/src/$f.bin" | tail -n 1)
        id2=$("$hawker" import --data-dir "$work/rs2" --url "http://origin.hkdsr.test/$f.bin" "$work/src/$f.bin" | tail -n 1)
        if [[ ! $id =~ ^[0-9a-f]{64}$ || $id != "$id2" ]]; then
            fail "hawker import of $f.bin: task ids '$id' and '$id2' (want the same 64 hex digits)"
            return 1
        fi
        task_file[$id]="$work/src/$f.bin"
        task_ids+=("$id")
    done
    pass "hawker import: 3 files imported into both data dirs with equal task ids"
}

declare -a rs_pid=("" "" "")
# start_rs I [EXTRA ARGS...]: start hawker serve in rs I on the VIP ports (background).
start_rs() {
    local i=$1
    shift
    # `ip netns exec` execs hawker, so $! is hawker's own pid (a function would add a subshell).
    ip netns exec "${ns_rs[i]}" "$hawker" serve --data-dir "$work/rs$i" \
        --vortex-listen "$vip:$vortex_port" --http-listen "$vip:$http_port" \
        --cores "$((i - 1))" --advertise-addr "${rs_ip[i]}" \
        --drain-timeout-ms "$drain_timeout_ms" "$@" >>"$work/rs$i.log" 2>&1 &
    rs_pid[i]=$!
    pids+=("$!")
}

healthz() { # healthz I -> "CODE BODY" as seen from inside rs I (its own VIP); "000" = no answer
    rm -f "$work/healthz$1"
    nsx "${ns_rs[$1]}" curl -s -m 2 -o "$work/healthz$1" -w '%{http_code}' "http://$vip:$http_port/healthz" 2>/dev/null || true
    printf ' %s' "$(head -c 64 "$work/healthz$1" 2>/dev/null || true)"
}

wait_healthy() {
    local i=$1 n out
    for ((n = 0; n < start_timeout_s * 10; n++)); do
        out=$(healthz "$i")
        [[ $out == "200 serving"* ]] && return 0
        kill -0 "${rs_pid[i]}" 2>/dev/null || break
        sleep 0.1
    done
    echo "rs$i /healthz: '$out'; log tail:" >&2
    tail -n 20 "$work/rs$i.log" >&2 || true
    return 1
}

stop_rs() {
    local i=$1 n
    [[ -n ${rs_pid[i]} ]] || return 0
    kill -TERM "${rs_pid[i]}" 2>/dev/null || true
    for ((n = 0; n < (drain_timeout_ms / 100) + 50; n++)); do
        kill -0 "${rs_pid[i]}" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "${rs_pid[i]}" 2>/dev/null || true
    wait "${rs_pid[i]}" 2>/dev/null || true
    rs_pid[i]=""
}

# --- the checks -------------------------------------------------------------------------------
# fetch_all_http LABEL: every piece of every task with curl through the VIP, byte- and digest-checked.
fetch_all_http() {
    local label=$1 id f count n hdr got ok=0 bad=0
    for id in "${task_ids[@]}"; do
        f=${task_file[$id]}
        count=$(python3 "$client_py" pieces --file "$f" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')
        for ((n = 0; n < count; n++)); do
            rm -f "$work/body" "$work/hdr"
            if ! nsx "$ns_client" curl -sS -m 30 -D "$work/hdr" -o "$work/body" \
                "http://$vip:$http_port/tasks/$id/pieces/$n"; then
                bad=$((bad + 1))
                continue
            fi
            hdr=$(grep -i '^x-hawker-piece-digest:' "$work/hdr" | head -n 1 | sed 's/^[^:]*: *//' | tr -d '\r' || true)
            if got=$(python3 "$client_py" verify --file "$f" --piece "$n" --body "$work/body" --digest "$hdr"); then
                ok=$((ok + 1))
            else
                echo "  $got"
                bad=$((bad + 1))
            fi
        done
    done
    if ((bad == 0 && ok > 0)); then
        pass "$label: $ok pieces over HTTP (curl) through the VIP, bytes and X-Hawker-Piece-Digest right"
    else
        fail "$label: HTTP pieces: $ok right, $bad wrong"
    fi
}

fetch_range_http() {
    local label=$1 id=${task_ids[0]} f first=1000 last=5000000
    f=${task_file[$id]}
    rm -f "$work/body"
    if nsx "$ns_client" curl -sS -m 30 -o "$work/body" -r "$first-$last" \
        "http://$vip:$http_port/tasks/$id" &&
        cmp -s "$work/body" <(tail -c +$((first + 1)) "$f" | head -c $((last - first + 1))); then
        pass "$label: GET /tasks/{id} with Range bytes=$first-$last returned exactly those bytes"
    else
        fail "$label: GET /tasks/{id} with Range bytes=$first-$last: wrong bytes ($(stat -c %s "$work/body" 2>/dev/null || echo 0) received)"
    fi
}

fetch_all_vortex() {
    local label=$1 id f count n out ok=0 bad=0
    for id in "${task_ids[@]}"; do
        f=${task_file[$id]}
        count=$(python3 "$client_py" pieces --file "$f" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')
        for ((n = 0; n < count; n++)); do
            if out=$(nsx "$ns_client" python3 "$client_py" piece --proto vortex --host "$vip" \
                --port "$vortex_port" --task "$id" --file "$f" --piece "$n" --timeout-s 30); then
                ok=$((ok + 1))
            else
                echo "  $out"
                bad=$((bad + 1))
            fi
        done
    done
    if ((bad == 0 && ok > 0)); then
        pass "$label: $ok pieces over Vortex through the VIP, bytes and metadata digest right"
    else
        fail "$label: Vortex pieces: $ok right, $bad wrong"
    fi
}

# run_load LABEL: a bounded load with many connections through the VIP, every piece verified.
# dp-bench (target/*/dp-bench) when it is built, over Vortex then HTTP; else the python load.
run_load() {
    local label=$1 out bench="" args=() id proto target rc
    bench=$(find "$repo"/target/*/dp-bench -maxdepth 0 -type f -executable 2>/dev/null | head -n 1 || true)
    if [[ -n $bench ]]; then
        : >"$work/tasks.list"
        for id in "${task_ids[@]}"; do
            python3 "$client_py" pieces --file "${task_file[$id]}" | python3 -c '
import json, os, sys
d = json.load(sys.stdin)
print(sys.argv[1], os.path.getsize(sys.argv[2]), d["piece_length"], ",".join(d["digests"]))' "$id" "${task_file[$id]}" >>"$work/tasks.list"
        done
        for proto in vortex http; do
            target="$vip:$vortex_port"
            [[ $proto == http ]] && target="http://$vip:$http_port"
            rc=0
            out=$(ip netns exec "$ns_client" timeout $((load_deadline_s + 30)) "$bench" --"$proto" "$target" \
                --tasks-file "$work/tasks.list" -c "$load_connections" -n "$load_requests" \
                -d "${load_deadline_s}s" -q --json "$work/bench-$proto.json" 2>&1) || rc=$?
            if ((rc == 0)); then
                pass "$label: dp-bench --$proto, $load_connections connections, $load_requests requests, all verified: $(echo "$out" | head -n 3 | tr '\n' ' ')"
            else
                fail "$label: dp-bench --$proto exited $rc: $(echo "$out" | head -n 5 | tr '\n' ' ')"
            fi
        done
        return 0
    fi
    for id in "${task_ids[@]}"; do
        args+=(--task "$id=${task_file[$id]}")
    done
    if out=$(nsx "$ns_client" timeout $((load_deadline_s + 30)) python3 "$client_py" load --host "$vip" \
        --http-port "$http_port" --vortex-port "$vortex_port" "${args[@]}" \
        --connections "$load_connections" --requests "$load_requests" --deadline-s "$load_deadline_s"); then
        pass "$label: python load, $load_connections connections, $load_requests requests, all verified: $out"
    else
        fail "$label: python load: $out"
    fi
}

check_arp() {
    local label=$1 mac
    mac=$(ip -n "$ns_client" neigh show "$vip" dev eth0 | awk '{ for (i = 1; i < NF; i++) if ($i == "lladdr") print $(i + 1) }')
    if [[ $mac == "$lb_mac" ]]; then
        pass "$label: the client resolved the VIP to the LB's MAC (real servers do not answer ARP for it)"
    else
        fail "$label: the client resolved the VIP to '$mac', want the LB's $lb_mac"
    fi
}

# check_dsr LABEL MODE: the counters that make it DSR.
check_dsr() {
    local label=$1 mode=$2 a b in out wl wc s1 s2 d1 d2 e
    in=$(($(counter "$ns_lb" hkdsr_obs vip_src_in) - base_lb[0]))
    out=$(($(counter "$ns_lb" hkdsr_obs vip_src_out) - base_lb[1]))
    wl=$(($(counter "$ns_sw" hkdsr_wire vip_src_to_lb) - base_lb[2]))
    wc=$(($(counter "$ns_sw" hkdsr_wire vip_src_to_client) - base_lb[3]))
    s1=$(counter "${ns_rs[1]}" hkdsr_rs syn_in)
    s2=$(counter "${ns_rs[2]}" hkdsr_rs syn_in)
    d1=$(counter "${ns_rs[1]}" hkdsr_rs vip_to_client)
    d2=$(counter "${ns_rs[2]}" hkdsr_rs vip_to_client)
    if [[ $mode == l2 ]]; then
        a=$(counter "$ns_lb" hkdsr_fwd to_rs1)
        b=$(counter "$ns_lb" hkdsr_fwd to_rs2)
        if ((a > 0 && b > 0)); then
            pass "$label: the LB forwarded to both real servers ($a packets to rs1, $b to rs2)"
        else
            fail "$label: the LB forwarded $a packets to rs1 and $b to rs2 (want both > 0)"
        fi
    else
        e=$(($(counter "$ns_sw" hkdsr_wire ipip) - base_lb[4]))
        if ((e > 0)); then
            pass "$label: $e IPIP-encapsulated packets crossed the bridge (LB -> real servers)"
        else
            fail "$label: no IPIP packet crossed the bridge"
        fi
    fi
    if ((s1 > base_syn[1] && s2 > base_syn[2])); then
        pass "$label: both real servers accepted connections to the VIP ($((s1 - base_syn[1])) and $((s2 - base_syn[2])) SYNs)"
    else
        fail "$label: SYNs to the VIP: rs1 $((s1 - base_syn[1])), rs2 $((s2 - base_syn[2])) (want both > 0)"
    fi
    # --send-mode auto over veth: the VIP is not loopback, so sockets start with zero copy; veth
    # always copies, the kernel says so in the notification, and auto moves those sockets to
    # sendfile. The real server's metrics show both.
    metrics=$(nsx "${ns_rs[1]}" curl -s -m 2 "http://$vip:$http_port/metrics" 2>/dev/null || true)
    if grep -q '^hawker_send_bytes_total' <<<"$metrics"; then
        sum_metric() { grep -E "^$1" <<<"$metrics" | awk '{s += $NF} END {printf "%d", s}'; }
        zc_copied=$(sum_metric 'hawker_zerocopy_copied_total')
        sf_bytes=$(sum_metric 'hawker_send_bytes_total\{[^}]*strategy="sendfile"')
        zc_bytes=$(sum_metric 'hawker_send_bytes_total\{[^}]*strategy="zerocopy"')
        if ((zc_copied > 0 && sf_bytes > 0 && zc_bytes > 0)); then
            pass "$label: auto send mode on rs1: $zc_bytes bytes by zero copy, $zc_copied sends reported copied by veth, then $sf_bytes bytes by sendfile"
        else
            fail "$label: auto send mode on rs1: zerocopy bytes $zc_bytes, copied reports $zc_copied, sendfile bytes $sf_bytes (want all > 0)"
        fi
    fi
    if ((in == 0 && out == 0 && wl == 0 && wc > 0)); then
        pass "$label: the LB saw no packet with source VIP (its ingress $in, egress $out, bridge->LB $wl; bridge->client $wc): replies bypassed it"
    else
        fail "$label: packets with source VIP: LB ingress $in, LB egress $out, bridge->LB $wl (want 0), bridge->client $wc (want > 0)"
    fi
    if ((d1 > base_direct[1] && d2 > base_direct[2])); then
        pass "$label: both real servers sent VIP-sourced packets straight to the client's MAC ($((d1 - base_direct[1])), $((d2 - base_direct[2])))"
    else
        fail "$label: direct replies VIP->client MAC: rs1 $((d1 - base_direct[1])), rs2 $((d2 - base_direct[2]))"
    fi
}
declare -a base_syn=(0 0 0) base_direct=(0 0 0) base_lb=(0 0 0 0 0)
# Counters are compared with their value at the start of a phase.
snapshot_counters() {
    local i
    base_lb=("$(counter "$ns_lb" hkdsr_obs vip_src_in)" "$(counter "$ns_lb" hkdsr_obs vip_src_out)"
        "$(counter "$ns_sw" hkdsr_wire vip_src_to_lb)" "$(counter "$ns_sw" hkdsr_wire vip_src_to_client)"
        "$(counter "$ns_sw" hkdsr_wire ipip)")
    for i in 1 2; do
        base_syn[i]=$(counter "${ns_rs[i]}" hkdsr_rs syn_in)
        base_direct[i]=$(counter "${ns_rs[i]}" hkdsr_rs vip_to_client)
    done
}

established_on() { # established_on I -> established connections to the VIP ports in rs I
    nsx "${ns_rs[$1]}" ss -Htn state established "( sport = :$http_port or sport = :$vortex_port )" | wc -l
}
connected_on() { # connected_on I -> connections in any state but LISTEN/CLOSED (data may still flow)
    nsx "${ns_rs[$1]}" ss -Htn state established state fin-wait-1 state fin-wait-2 state close-wait \
        state last-ack state closing "( sport = :$http_port or sport = :$vortex_port )" | wc -l
}

# The drain: slow clients in flight on rs1, SIGTERM rs1, /healthz 503, LB weight 0, clients finish.
declare -a wmem_saved=("" "" "")
check_drain() {
    local label=$1 i id=${task_ids[0]} f batch k proto on1=0 n out code sp ok=0 bad=0 rc
    f=${task_file[$id]}
    local -a slow=()
    # A server's piece is "in flight" until the kernel took all of it; with the default send
    # buffer autotuning (4 MiB) a whole piece fits in the socket at once and the drain ends at
    # once. Smaller send buffers in the real servers' namespaces (per-netns sysctl, for this
    # phase only) keep a slow client's piece in flight for seconds, as on a real long path.
    for i in 1 2; do
        wmem_saved[i]=$(nsx "${ns_rs[i]}" sysctl -n net.ipv4.tcp_wmem)
        nsx "${ns_rs[i]}" sysctl -qw net.ipv4.tcp_wmem="4096 65536 $drain_sndbuf_max_bytes"
    done
    for ((batch = 0; batch < slow_batches_max && on1 == 0; batch++)); do
        for ((k = 0; k < slow_batch; k++)); do
            proto=http
            ((k % 2)) && proto=vortex
            local port=$http_port
            [[ $proto == vortex ]] && port=$vortex_port
            ip netns exec "$ns_client" timeout 90 python3 "$client_py" piece --proto "$proto" --host "$vip" \
                --port "$port" --task "$id" --file "$f" --piece 0 --rate-bps "$slow_rate_bps" \
                --rcvbuf-bytes "$slow_rcvbuf_bytes" --timeout-s 60 >"$work/slow.$batch.$k" 2>&1 &
            slow+=("$!")
            pids+=("$!")
        done
        # Bounded: up to 3 s for every slow client of the batches so far to be connected.
        for ((n = 0; n < 30; n++)); do
            on1=$(established_on 1)
            ((on1 + $(established_on 2) >= ${#slow[@]})) && break
            sleep 0.1
        done
    done
    if ((on1 == 0)); then
        fail "$label: no slow client landed on rs1 after $slow_batches_max batches"
        return 0
    fi
    log "$on1 slow clients in flight on rs1, $(established_on 2) on rs2; SIGTERM rs1"
    kill -TERM "${rs_pid[1]}"
    sleep 0.2
    n=$(connected_on 1)
    if ((n > 0)); then
        pass "$label: rs1 still has $n client connections 0.2 s after SIGTERM"
    else
        fail "$label: rs1 has no client connection left 0.2 s after SIGTERM"
    fi
    code=""
    for ((n = 0; n < 30; n++)); do
        code=$(healthz 1)
        [[ $code == 503* ]] && break
        sleep 0.1
    done
    if [[ $code == "503 draining"* ]]; then
        pass "$label: after SIGTERM rs1's /healthz answers 503 draining"
    elif [[ $code == 000* ]]; then
        fail "$label: after SIGTERM rs1's /healthz did not answer at all (listener closed?); an HTTP health check needs 503 draining until the drain ends"
    else
        fail "$label: after SIGTERM rs1's /healthz answered '$code' (want 503 draining)"
    fi
    # What an SLB does when the health check fails: weight 0 for rs1; its flows stay, new ones go to rs2.
    nsx "$ns_lb" nft add element netdev hkdsr_fwd drained "{ ${rs_mac[1]} }"
    if out=$(nsx "$ns_client" python3 "$client_py" piece --proto http --host "$vip" --port "$http_port" \
        --task "$id" --file "$f" --piece 1 --timeout-s 20); then
        pass "$label: a new fetch during the drain was served (by rs2)"
    else
        fail "$label: a new fetch during the drain failed: $out"
    fi
    for sp in "${slow[@]}"; do
        rc=0
        wait "$sp" || rc=$?
        ((rc == 0)) && ok=$((ok + 1)) || bad=$((bad + 1))
    done
    if ((bad == 0)); then
        pass "$label: all $ok in-flight slow pieces (4 MiB at 1 MiB/s, HTTP and Vortex) completed with right bytes"
    else
        fail "$label: $bad of $((ok + bad)) in-flight pieces failed: $(cat "$work"/slow.* | grep -v '"errors": \[\]' | head -n 3)"
    fi
    rc=0
    for ((n = 0; n < drain_timeout_ms / 100 + 50; n++)); do
        kill -0 "${rs_pid[1]}" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "${rs_pid[1]}" 2>/dev/null; then
        fail "$label: rs1 still running $((drain_timeout_ms / 1000 + 5)) s after SIGTERM"
    else
        wait "${rs_pid[1]}" || rc=$?
        if ((rc == 0)); then
            pass "$label: rs1 exited 0 after draining"
        else
            fail "$label: rs1 exited with status $rc after SIGTERM"
        fi
    fi
    rs_pid[1]=""
    for i in 1 2; do
        nsx "${ns_rs[i]}" sysctl -qw net.ipv4.tcp_wmem="${wmem_saved[i]}"
    done
    # Weight back for rs1 (it is restarted for the next phase).
    nsx "$ns_lb" nft delete element netdev hkdsr_fwd drained "{ ${rs_mac[1]} }"
    nsx "$ns_lb" nft flush set netdev hkdsr_fwd moved
}

check_mss() {
    local label=$1 id=${task_ids[0]} f mss pid n
    f=${task_file[$id]}
    ip netns exec "$ns_client" timeout 60 python3 "$client_py" piece --proto http --host "$vip" --port "$http_port" \
        --task "$id" --file "$f" --piece 0 --rate-bps "$slow_rate_bps" --rcvbuf-bytes "$slow_rcvbuf_bytes" \
        >/dev/null 2>&1 &
    pid=$!
    pids+=("$pid")
    mss=""
    for ((n = 0; n < 30; n++)); do
        [[ -z $mss ]] || break
        sleep 0.1
        mss=$(nsx "$ns_client" ss -Htni state established "( dport = :$http_port )" | grep -o ' mss:[0-9]*' | head -n 1 | cut -d: -f2 || true)
    done
    wait "$pid" || true
    # ss shows the MSS net of TCP options (timestamps take 12 bytes): 1428 for an advertised 1440.
    if [[ -n $mss ]] && ((mss <= tunnel_mss_bytes && mss >= tunnel_mss_bytes - 40)); then
        pass "$label: the client's send MSS towards the VIP is $mss (<= --tcp-max-segment $tunnel_mss_bytes)"
    else
        fail "$label: the client's send MSS towards the VIP is '$mss', want <= $tunnel_mss_bytes (the real servers' --tcp-max-segment)"
    fi
}

hex_ip() { # 10.1.2.3 -> 0x0a010203
    local IFS=.
    # shellcheck disable=SC2086 # split on dots on purpose
    printf '0x%02x%02x%02x%02x' $1
}
c_mac() { echo "0x${1//:/,0x}"; } # 02:68:.. -> 0x02,0x68,..
build_ipip() {
    clang -O2 -g -target bpf -I"/usr/include/$(uname -m)-linux-gnu" \
        -DVIP="$(hex_ip "$vip")" -DLB_IP="$(hex_ip "$lb_ip")" -DRS1_IP="$(hex_ip "${rs_ip[1]}")" \
        -DRS2_IP="$(hex_ip "${rs_ip[2]}")" -DLB_MAC="$(c_mac "$lb_mac")" -DRS1_MAC="$(c_mac "${rs_mac[1]}")" \
        -DRS2_MAC="$(c_mac "${rs_mac[2]}")" -DPORT_HTTP="$http_port" -DPORT_VORTEX="$vortex_port" \
        -c "$here/dsr/ipip_lb.c" -o "$work/ipip_lb.o"
}

# --- run ---------------------------------------------------------------------------------------
log "setting up namespaces"
setup_topology
setup_counters
prepare_data || {
    summary
    exit 1
}

# rs1: VIP first, then hawker. rs2: hawker first, then VIP (its listeners need IP_FREEBIND).
nsx "${ns_rs[1]}" "$repo/tuning/vip" add --mode l2 --vip "$vip" >/dev/null
start_rs 1
start_rs 2
sleep 0.5
if kill -0 "${rs_pid[2]}" 2>/dev/null; then
    pass "rs2: hawker started before its VIP existed (IP_FREEBIND listeners)"
else
    fail "rs2: hawker exited when started before the VIP existed (listeners without IP_FREEBIND?): $(tail -n 3 "$work/rs2.log")"
    start_rs 2
fi
nsx "${ns_rs[2]}" "$repo/tuning/vip" add --mode l2 --vip "$vip" >/dev/null
# Adding twice is a no-op.
nsx "${ns_rs[2]}" "$repo/tuning/vip" add --mode l2 --vip "$vip" >/dev/null 2>&1
if [[ $(ip -n "${ns_rs[2]}" -4 -o addr show dev lo | grep -c "$vip/32") == 1 ]] &&
    [[ $(nsx "${ns_rs[2]}" sysctl -n net.ipv4.conf.eth0.arp_ignore) == 1 ]] &&
    [[ $(nsx "${ns_rs[2]}" sysctl -n net.ipv4.conf.all.arp_announce) == 2 ]]; then
    pass "tuning/vip add --mode l2: VIP /32 on lo once (idempotent), arp_ignore=1, arp_announce=2"
else
    fail "tuning/vip add --mode l2 left: $(ip -n "${ns_rs[2]}" -4 -o addr show dev lo | tr '\n' ' ')"
fi
healthy=1
for i in 1 2; do
    if wait_healthy "$i"; then
        pass "rs$i: hawker serve answers /healthz 200 serving on $vip:$http_port"
    else
        fail "rs$i: hawker serve did not become healthy within ${start_timeout_s}s"
        healthy=0
    fi
done
if ((!healthy)); then
    summary
    exit 1
fi

log "phase L2 DSR (nftables MAC rewrite)"
setup_l2_lb
snapshot_counters
fetch_all_http "L2"
check_arp "L2"
fetch_range_http "L2"
fetch_all_vortex "L2"
run_load "L2"
check_dsr "L2" l2
log "phase drain (SIGTERM rs1 under L2 DSR)"
check_drain "drain"

if ((run_ipip)); then
    log "phase IPIP DSR (tc-BPF encap/decap, MSS $tunnel_mss_bytes)"
    if ! build_ipip >"$work/clang.log" 2>&1; then
        fail "IPIP: compiling tests/dsr/ipip_lb.c failed: $(tail -n 5 "$work/clang.log")"
    else
        stop_rs 2
        # tc ingress runs before the nftables netdev ingress hook: attaching the encap first takes
        # the VIP's traffic over at once, so no late packet of the L2 phase reaches the LB's stack.
        nsx "$ns_lb" tc qdisc add dev eth0 clsact
        nsx "$ns_lb" tc filter add dev eth0 ingress bpf direct-action obj "$work/ipip_lb.o" sec tc/encap
        nsx "$ns_lb" nft delete table netdev hkdsr_fwd
        for i in 1 2; do
            nsx "${ns_rs[i]}" "$repo/tuning/vip" add --mode ipip --vip "$vip" >>"$work/vip-ipip.log" 2>&1
            nsx "${ns_rs[i]}" tc qdisc add dev eth0 clsact
            nsx "${ns_rs[i]}" tc filter add dev eth0 ingress bpf direct-action obj "$work/ipip_lb.o" sec tc/decap
            start_rs "$i" --tcp-max-segment "$tunnel_mss_bytes"
        done
        if grep -q "no ipip" "$work/vip-ipip.log" && [[ $(nsx "${ns_rs[1]}" sysctl -n net.ipv4.conf.eth0.rp_filter) == 2 ]]; then
            pass "tuning/vip add --mode ipip: detected the missing ipip module, told the operator, loosened rp_filter"
        else
            fail "tuning/vip add --mode ipip: $(head -n 3 "$work/vip-ipip.log")"
        fi
        ipip_ok=1
        for i in 1 2; do
            wait_healthy "$i" || ipip_ok=0
        done
        if ((ipip_ok)); then
            snapshot_counters
            fetch_all_http "IPIP"
            fetch_all_vortex "IPIP"
            run_load "IPIP"
            check_mss "IPIP"
            check_dsr "IPIP" ipip
        else
            fail "IPIP: hawker serve --tcp-max-segment $tunnel_mss_bytes did not become healthy"
        fi
    fi
else
    skip "IPIP variant: ${ipip_skip_reason:-disabled by --no-ipip}"
fi

stop_rs 1
stop_rs 2
log "done in $(($(date +%s) - t_start)) s"
summary
exit $((failed > 0 ? 1 : 0))
