#!/usr/bin/env bash
# tuning/knobs.sh: THE table of host knobs for a hawker host, and the helpers that read and judge
# them. Sourced by tuning/apply and tuning/check (never run on its own); both read only this table,
# so a knob changes in one place. docs/deploy.md explains every row.
#
# Row: kind|key|seed|cache|cmp|why
#   kind   sysctl (a /proc/sys key) or rlimit (memlock|nofile: set through systemd Limit* or
#          /etc/security/limits.d, judged on the current process)
#   seed, cache   the wanted value per profile ("unlimited" for an rlimit without bound)
#   cmp    min   found >= wanted is OK, else LOW   (apply only raises; a higher value stays)
#          max   found <= wanted is OK, else HIGH
#          eq    found == wanted is OK, else LOW/HIGH
#          vec   per field (tcp_rmem "min default max"): every field >= wanted, else LOW
#          range two fields "lo hi": OK when lo <= wanted lo and hi >= wanted hi
#   why    one line for `check`
# shellcheck disable=SC2034 # used by the scripts that source this file
HAWKER_KNOBS=(
    "sysctl|net.core.somaxconn|8192|8192|min|accept queue per listener: bursts of peers connecting at once (one SO_REUSEPORT listener per core)"
    "sysctl|net.ipv4.tcp_max_syn_backlog|8192|8192|min|half-open connections kept while a SYN burst is accepted"
    "sysctl|net.core.netdev_max_backlog|16384|16384|min|packets queued per CPU between the NIC and TCP at 10-100 Gbit/s before drops"
    "sysctl|net.core.rmem_max|16777216|67108864|min|ceiling of SO_RCVBUF; a cache host downloads from origins over long fat paths"
    "sysctl|net.core.wmem_max|67108864|67108864|min|ceiling of SO_SNDBUF; a seed host mostly sends 4 MiB pieces"
    "sysctl|net.ipv4.tcp_rmem|4096 131072 16777216|4096 131072 67108864|vec|TCP receive autotuning min/default/max"
    "sysctl|net.ipv4.tcp_wmem|4096 262144 67108864|4096 262144 67108864|vec|TCP send autotuning: a whole piece can be in flight on a high-BDP path"
    "sysctl|net.ipv4.ip_local_port_range|10240 65535|10240 65535|range|outgoing ports (a cache host fetching from many origins/parents); starts above the listening ports 4000-8080"
    "sysctl|net.ipv4.tcp_tw_reuse|1|1|eq|reuse TIME_WAIT ports for outgoing connections (safe with timestamps)"
    "sysctl|net.ipv4.tcp_slow_start_after_idle|0|0|eq|pooled Vortex connections (30 s idle) keep their window instead of restarting slow"
    "sysctl|fs.file-max|2097152|2097152|min|system-wide open files: sockets + mapped piece files"
    "sysctl|fs.nr_open|2097152|2097152|min|ceiling of RLIMIT_NOFILE per process"
    "sysctl|kernel.io_uring_disabled|0|0|eq|the data plane is io_uring: 1 or 2 disable it for unprivileged or all processes"
    "rlimit|memlock|unlimited|unlimited|min|io_uring rings and SEND_ZC in-flight bytes are charged to RLIMIT_MEMLOCK (or CAP_IPC_LOCK)"
    "rlimit|nofile|1048576|1048576|min|one descriptor per connection and per open piece file"
)

# Optional: hugepages (vm.nr_hugepages) only for fixed io buffers; the mmapped store cannot use them.
HAWKER_HUGEPAGES_KEY=vm.nr_hugepages

# knob_field ROW N: field N (1-based) of a table row.
knob_field() {
    local IFS='|' f
    read -r -a f <<<"$1"
    printf '%s\n' "${f[$(($2 - 1))]}"
}

sysctl_path() { printf '/proc/sys/%s\n' "${1//.//}"; }

# sysctl_read KEY: prints the value with runs of blanks squeezed to one space; fails if absent.
sysctl_read() {
    local p
    p=$(sysctl_path "$1")
    [[ -r $p ]] || return 1
    tr -s ' \t' '  ' <"$p"
}

# rlimit_read memlock|nofile: the current process's soft limit ("unlimited" or a number; memlock
# in bytes).
rlimit_read() {
    local v
    case $1 in
    memlock)
        v=$(ulimit -S -l)
        [[ $v == unlimited ]] || v=$((v * 1024))
        ;;
    nofile) v=$(ulimit -S -n) ;;
    *) return 1 ;;
    esac
    printf '%s\n' "$v"
}

# judge CMP FOUND WANTED: prints OK, LOW or HIGH.
judge() {
    local cmp=$1 found=$2 want=$3 i
    local -a f w
    [[ $found == unlimited ]] && found=-1
    [[ $want == unlimited ]] && want=-1
    case $cmp in
    min)
        if ((want == -1)); then
            ((found == -1)) && echo OK || echo LOW
        elif ((found == -1 || found >= want)); then echo OK; else echo LOW; fi
        ;;
    max)
        if ((found != -1 && found <= want)); then echo OK; else echo HIGH; fi
        ;;
    eq)
        if ((found == want)); then echo OK; elif ((found < want)); then echo LOW; else echo HIGH; fi
        ;;
    vec)
        read -r -a f <<<"$found"
        read -r -a w <<<"$want"
        for i in "${!w[@]}"; do
            if ((${f[i]:-0} < w[i])); then
                echo LOW
                return 0
            fi
        done
        echo OK
        ;;
    range)
        read -r -a f <<<"$found"
        read -r -a w <<<"$want"
        if ((${f[0]:-0} <= w[0] && ${f[1]:-0} >= w[1])); then echo OK; else echo LOW; fi
        ;;
    *) echo "?" ;;
    esac
}

# profile_column seed|cache -> the table column of that profile.
profile_column() {
    case $1 in
    seed) echo 3 ;;
    cache) echo 4 ;;
    *) return 1 ;;
    esac
}

# cpu_advice: which cores take the NIC interrupts, which should run hawker (--cores).
cpu_advice() {
    local ncpu
    ncpu=$(nproc --all 2>/dev/null || getconf _NPROCESSORS_ONLN)
    echo "CPU placement (nproc: $ncpu):"
    if [[ ! -r /proc/interrupts ]]; then
        echo "  /proc/interrupts is not readable here; cannot see where NIC interrupts land"
        return 0
    fi
    # Sum, per CPU, the interrupts of lines that look like NIC queues.
    awk -v ncpu="$ncpu" '
        NR == 1 { for (i = 1; i <= NF; i++) cpus++; next }
        {
            name = ""
            for (i = cpus + 2; i <= NF; i++) name = name " " $i
            if (name !~ /(eth|ens|enp|eno|mlx|ixgbe|i40e|ice|bnxt|virtio[0-9]+-(input|output)|TxRx|-rx-|-tx-)/) next
            nic++
            for (c = 0; c < cpus; c++) { n[c] += $(c + 2) }
        }
        END {
            if (!nic) {
                print "  no NIC queue interrupts found in /proc/interrupts (a container or a VM without MSI-X names)"
                printf "  give hawker every core: hawker serve --cores 0-%d\n", ncpu - 1
                exit
            }
            total = 0
            for (c = 0; c < cpus; c++) total += n[c]
            irq = ""; rest = ""
            for (c = 0; c < cpus; c++) {
                if (total > 0 && n[c] * 10 >= total / cpus) irq = irq (irq ? "," : "") c
                else rest = rest (rest ? "," : "") c
            }
            printf "  %d NIC queue interrupt lines; CPUs taking them: %s\n", nic, (irq ? irq : "none yet")
            if (cpus <= 2) {
                print "  2 CPUs or fewer: share them; pin nothing, or give hawker the CPU with fewer interrupts"
            } else if (rest == "") {
                print "  NIC interrupts land on every CPU: steer them to a few (e.g. set /proc/irq/N/smp_affinity_list,"
                print "  stop irqbalance) and give hawker the rest with --cores; or use one queue per hawker core"
            } else {
                printf "  suggestion: keep IRQs on CPUs %s, run hawker serve --cores %s\n", irq, rest
                print "  (or, with as many NIC queues as hawker cores, pin queue i to core i and use all cores)"
            }
        }' /proc/interrupts
}
