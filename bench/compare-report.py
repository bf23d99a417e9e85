#!/usr/bin/env python3
"""bench/compare-report.py RESULTS_DIR DOC: docs/benchmarks.md from one bench/compare run.

Reads RESULTS_DIR/env.json (machine, load, skips), index.jsonl (one line per run), each run's
dp-bench --json, its RSS sampler file and iperf3's -J output. Every figure in the document comes
from those files; nothing is typed in by hand. With --repeat N, each cell shows the run of median
throughput (its latencies, CPU and RSS) and the throughput range over the N runs; errors are summed.
Standard library only.
"""
import json
import os
import re
import sys

MIB = 1 << 20
TARGETS = {
    "throughput_over_best_peer_min": 1.1,
    "p99_over_ideal_max": 1.5,
    "server_cpu_per_gb_over_nginx_max": 0.5,
    "peak_rss_bytes_max": 64 * MIB,
}


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def fmt(x, nd=2, unit=""):
    if x is None:
        return "–"
    return f"{x:.{nd}f}{unit}"


def ms(us):
    return None if us is None else us / 1000.0


def hawker_memlock_line(path):
    """hawker's start-up line about RLIMIT_MEMLOCK and its zero-copy budget (first in the log)."""
    try:
        with open(path, errors="replace") as f:
            for line in f:
                line = re.sub(r"\x1b\[[0-9;]*m", "", line).strip()
                if "memlock:" in line:
                    return line[line.index("memlock:"):]
    except OSError:
        pass
    return None


def label(run):
    """A row's name. Variants say what differs: `host cc` (hawker's sockets on the host's own
    congestion control, named) and `host cubic` (nginx with the host's default set to cubic)."""
    variant = run.get("variant") or ""
    if variant == "host cc":
        variant = f"host cc ({run.get('host_cc', '?')})"
    suffix = f" · {variant}" if variant else ""
    if run["server"] == "hawker":
        return f"hawker {run['mode']} · {run['proto']}{suffix}"
    if run["server"] == "nginx":
        return f"nginx · http range{suffix}"
    return f"{run['server']} · {run['proto']}{suffix}"


def figures(res_dir, run):
    """One run's figures, or None when dp-bench left no JSON."""
    j = load_json(os.path.join(res_dir, run["json"]))
    if j is None:
        return None
    rss = load_json(os.path.join(res_dir, run.get("rss", ""))) or {}
    gb = j["bytes"] / 1e9
    server = j.get("server") or {}
    lat = j.get("latency") or {}
    fair = j.get("fair_share") or {}
    return {
        "ok": j.get("ok"),
        "rc": run.get("rc"),
        "gbps": j["throughput"]["gb_per_s"],
        "p50_ms": ms(lat.get("p50_us")),
        "p99_ms": ms(lat.get("p99_us")),
        "max_ms": ms(lat.get("max_us")),
        "p99_over_ideal": fair.get("p99_over_ideal"),
        "errors": j["errors"]["total"],
        "errors_by_kind": {k: v for k, v in j["errors"]["by_kind"].items() if v},
        "error_samples": j["errors"].get("samples") or {},
        "problems": j.get("problems") or [],
        "pieces": j["pieces"],
        "connects": j["connects"],
        "server_cpu_per_gb": server.get("cpu_s") / gb if server.get("cpu_s") is not None and gb > 0 else None,
        "server_cores": server.get("cores"),
        "client_cpu_per_gb": j["client"]["cpu_s"] / gb if gb > 0 else None,
        "client_cores": j["client"]["cores"],
        "vmhwm_bytes": server.get("peak_rss_bytes"),
        "rss_anon_bytes": rss["rss_anon_max_kib"] * 1024 if "rss_anon_max_kib" in rss else None,
        "rss_file_bytes": rss["rss_file_max_kib"] * 1024 if "rss_file_max_kib" in rss else None,
        "load": run.get("loadavg_before", ""),
        "folios": run.get("large_folio_share"),
        "host_cc": run.get("host_cc", "?"),
        "name": run["name"],
    }


def main():
    res_dir, doc = sys.argv[1], sys.argv[2]
    env = load_json(os.path.join(res_dir, "env.json")) or {}
    runs = []
    with open(os.path.join(res_dir, "index.jsonl")) as f:
        for line in f:
            if line.strip():
                runs.append(json.loads(line))

    # cells[(c, label)] = [figures of each repetition]
    cells, order, iperf = {}, [], []
    for run in runs:
        if run["server"] == "iperf3":
            j = load_json(os.path.join(res_dir, run["json"]))
            if j and "end" in j and "sum_received" in j["end"]:
                cpu = j["end"].get("cpu_utilization_percent", {})
                iperf.append((j["end"]["sum_received"]["bits_per_second"], cpu))
            continue
        fig = figures(res_dir, run)
        key = (run["concurrency"], label(run))
        if fig is None:
            fig = {"missing": True, "name": run["name"], "rc": run.get("rc")}
        cells.setdefault(key, []).append((run, fig))
        if key[1] not in order:
            order.append(key[1])
    concurrencies = sorted({c for c, _ in cells})

    def pick(key):
        """The median-throughput repetition of a cell, the throughput range, and error total."""
        reps = [f for _, f in cells.get(key, []) if not f.get("missing")]
        if not reps:
            return None, None, None
        reps.sort(key=lambda f: f["gbps"])
        med = reps[(len(reps) - 1) // 2]
        rng = (reps[0]["gbps"], reps[-1]["gbps"]) if len(reps) > 1 else None
        return med, rng, sum(f["errors"] for f in reps)

    L = []
    w = L.append
    load_b = env.get("uptime_before", "?").split("load average:")[-1].strip()
    load_a = env.get("uptime_after", "?").split("load average:")[-1].strip()
    try:
        busy = float(load_b.split(",")[0]) > 0.5
    except ValueError:
        busy = True
    kind = "Smoke test (`--quick`)" if env.get("quick") else "Comparison"
    w("# hawker against nginx, dfdaemon and iperf3: measured")
    w("")
    w("<!-- generated by bench/compare-report.py from bench/results/%s; do not edit by hand -->" % env.get("stamp", "?"))
    w("")
    own = ("The runs themselves keep both cores busy (server and client threads), so the load "
           "average after the run and the per-row `load before` column are mostly the benchmark's own.")
    if busy:
        w(f"> **{kind}: the machine was not idle when it started**: 1/5/15-minute load average "
          f"**{load_b}** before the first run (2 cores = 2.0 means fully busy) and {load_a} after. "
          f"{own} Something else was running before it; re-run on a quiet machine to be sure "
          "(command at the end).")
    else:
        w(f"> **{kind}.** Load average {load_b} before the first run and {load_a} after. {own}")
    w("")
    w(f"Run `{env.get('stamp', '?')}`: `{env.get('argv', '?')}`. Each run {env.get('duration_s')} s, "
      f"{env.get('repeat')} repetition(s), {env.get('client_threads')} client threads, concurrency "
      f"{', '.join(env.get('concurrency', []))}.")
    w("")
    w("## Machine")
    w("")
    mem = env.get("mem_total_kib")
    w(f"- {env.get('nproc')} CPUs ({env.get('cpu')}), {fmt(mem / MIB if mem else None, 1)} GiB memory, Linux {env.get('kernel')}")
    w(f"- hawker {env.get('git')} (release binary built {env.get('hawker_bin')}; "
      f"{env.get('git_dirty_sources', '?')} uncommitted source files at run time), dp-bench built {env.get('dpbench_bin')}")
    if env.get("dfdaemon"):
        w(f"- {env.get('dfdaemon')} (Dragonfly's client, unmodified release build)")
    w(f"- {env.get('nginx')}; {env.get('iperf3')}; RLIMIT_MEMLOCK {env.get('memlock')} KiB soft / {env.get('memlock_hard', '?')} KiB hard (hawker asks for more for zerocopy and lives within what it gets); {env.get('nofile')} fds")
    w("")
    w("## What was measured")
    w("")
    tb = env.get("task_bytes", 0)
    w(f"- **Content**: {env.get('tasks')} task(s) of {tb // MIB} MiB = {tb // (4 * MIB)} pieces of 4 MiB each "
      "(Dragonfly's piece length below 2 GB), deterministic pseudo-random bytes, imported with "
      "`hawker import --url` (so the task id is the one dfget would compute for that URL). nginx serves "
      "hard links of hawker's own content files, named by task id: the same inode, hence the same "
      "page-cache pages. Before every run each content file's pages are dropped (`POSIX_FADV_DONTNEED`) "
      "and read again with `cat`, so every server starts from the page cache a file read from disk "
      "has; the **large folios** column is the share of the content's resident pages held in large "
      "folios at the start of the run (`bench/pagecache.py`): sendfile walks the page cache folio by "
      "folio, so 4 KiB pages cost every sendfile server several times the CPU of large folios "
      "(`docs/decisions/0003`).")
    w("- **Client**: the same `dp-bench` release build for every server, the same task list "
      "(`tasks.txt`, with the store's piece digests), so every piece from every server is verified "
      "(length and crc32); uniform piece choice, seed 1, closed loop, one request in flight per connection.")
    w("- **hawker**: `hawker serve --send-mode M --quick-verify` on 127.0.0.1, restarted for every run "
      "(so its VmHWM is that run's peak), over Vortex and over its HTTP piece URLs. `--quick-verify`: "
      "by default the store reads every piece through the mapping at start to check its crc32. "
      "That would fault the whole content into hawker's mapping (VmHWM = content size, before any "
      "request) and spend CPU outside the measured window at each of the restarts; the content was "
      "checksummed by `hawker import` moments before, so the benchmark checks lengths and metadata only.")
    w("- **nginx**: master + 2 workers (`bench/nginx.conf.tmpl`: sendfile, tcp_nopush, keep-alive with "
      "no request limit, open_file_cache, reuseport), `GET /{id}` with `Range: bytes=a-b` (206); every "
      "nginx pid is given to dp-bench (`--server-pid`), their CPU and VmHWM are summed.")
    w("- **dfdaemon**: Dragonfly's own peer, 1.5.10, serving the same task over its storage TCP port "
      "(Vortex, the protocol hawker's Vortex rows speak; dfdaemon answers each `DownloadPiece` with "
      "sendfile from its piece store), with the same `dp-bench --vortex` command and task list. "
      "To hold the task under the same task id it is seeded once per run of the script the way "
      "Dragonfly seeds a peer: a range origin (`tests/dfget/origin.py`) serves the same bytes at the "
      "URL the ids were computed from, a separate `hawker serve` (own empty store, control plane, "
      "`--advertise-addr 127.0.0.1`) is dfdaemon's scheduler and seed, and `dfget --scheduling-policy "
      "always` makes dfdaemon download and store every piece; the script checks the sha256 of "
      "dfget's output and of dfdaemon's content file under that task id against hawker's store. "
      "Then that hawker and the origin are stopped: the dfdaemon rows measure dfdaemon alone. "
      "Its config (`bench/dfdaemon.yaml.tmpl`) raises `upload.bandwidthLimit` from 50 GB/s to "
      "1000 GB/s (the only limiter on the TCP piece path: a leaky bucket holding a tenth of the limit, "
      "taken per piece), and keeps its GC from dropping the task's page cache "
      "(`pageCacheIdleTimeout` 40 min → 24 h) or the task (`taskTTL` 6 h → 24 h, disk thresholds "
      "80/60 % → 99/98 %); the gRPC request limits (`upload.server.requestRateLimit` 400/s, "
      "`server.adaptiveRateLimit`) are not on the TCP path and stay at their defaults. Its content "
      "files are dropped and re-read before every run like hawker's. dfdaemon keeps its storage only "
      "while it runs (`storage.keep: false`) and cannot start without a scheduler, so it is **not "
      "restarted** between runs: its VmHWM is the peak since start, seeding included; RssAnon/RssFile "
      "are sampled per run.")
    w("- **Congestion control**: hawker sets its sockets' (`--tcp-congestion`, default cubic where the "
      "kernel has it; `docs/decisions/0003`); nginx and dfdaemon use the host's default (the **host cc** "
      "column). Two rows keep that honest: **hawker auto · vortex · host cc (…)** runs hawker with "
      "`--tcp-congestion host`, on the host's default like its peers, and **nginx · http range · host "
      "cubic** runs nginx with the host's default set to cubic for that run (root only; restored after). "
      "Both count: the cubic nginx row is a peer for \"× best peer\".")
    w("- **Server CPU s/GB** and **client CPU s/GB**: user+sys seconds over the run per 10^9 content bytes "
      "(from `/proc/PID/stat` and `getrusage`). On loopback the client and the server share the two "
      "cores, so throughput partly measures who leaves more CPU to the other side: compare CPU per GB.")
    w("- **VmHWM** is the peak resident set over the process's life (dp-bench). **RssAnon** / **RssFile** "
      "are the maxima of 5 samples a second taken by the script during the run (dp-bench reports VmHWM "
      "only). File pages of a mapping count in VmHWM although they are shared page cache.")
    w("- **p99/ideal**: p99 ÷ (concurrency × piece size ÷ throughput), the fair-share ideal from dp-bench's JSON.")
    if (env.get("repeat") or 1) > 1:
        w("- With several repetitions, each cell is the repetition of median throughput (its latencies, "
          "CPU and RSS), the range of throughput over all repetitions follows in brackets, and errors are summed.")
    w("- **× best peer**: throughput ÷ the best non-hawker server (nginx, dfdaemon) at the same concurrency; "
      "**CPU × nginx**: server CPU per GB ÷ nginx's.")
    for mode in env.get("modes", []):
        line = hawker_memlock_line(os.path.join(res_dir, "logs", f"hawker-{mode}.log"))
        if line:
            w(f"- hawker `--send-mode {mode}` said at start: `{line}`")
    w("")
    skipped = env.get("skipped", {})
    for who in ("dfdaemon", "nginx", "iperf3"):
        if skipped.get(who):
            w(f"**SKIPPED {who}: {skipped[who]}.**")
            w("")
    if env.get("dfdaemon_died"):
        w(f"**{env['dfdaemon_died']}**: its later runs are missing.")
        w("")

    peers = [lb for lb in order if not lb.startswith("hawker")]
    for c in concurrencies:
        best_peer = None
        for lb in peers:
            med, _, _ = pick((c, lb))
            if med and (best_peer is None or med["gbps"] > best_peer):
                best_peer = med["gbps"]
        ng, _, _ = pick((c, "nginx · http range"))
        ng_cpu = ng["server_cpu_per_gb"] if ng else None
        w(f"## Concurrency {c}")
        w("")
        w("| server | GB/s | × best peer | p50 ms | p99 ms | max ms | p99/ideal | errors | server CPU s/GB | CPU × nginx | client CPU s/GB | VmHWM MiB | RssAnon MiB | RssFile MiB | host cc | large folios | load before |")
        w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for lb in order:
            if (c, lb) not in cells:
                continue
            med, rng, errs = pick((c, lb))
            if med is None:
                rcs = ",".join(str(f.get("rc")) for _, f in cells[(c, lb)])
                w(f"| {lb} | no result (dp-bench exit {rcs}) |" + " |" * 16)
                continue
            g = fmt(med["gbps"], 3)
            if rng:
                g += f" ({rng[0]:.3f}–{rng[1]:.3f})"
            ratio = med["gbps"] / best_peer if best_peer else None
            cpu_ratio = med["server_cpu_per_gb"] / ng_cpu if ng_cpu and med["server_cpu_per_gb"] is not None else None
            e = str(errs) if not errs else f"**{errs}** " + ", ".join(f"{k} {v}" for k, v in med["errors_by_kind"].items())
            w(f"| {lb} | {g} | {fmt(ratio, 2)} | {fmt(med['p50_ms'], 1)} | {fmt(med['p99_ms'], 1)} | "
              f"{fmt(med['max_ms'], 1)} | {fmt(med['p99_over_ideal'], 2)} | {e} | {fmt(med['server_cpu_per_gb'], 3)} | "
              f"{fmt(cpu_ratio, 2)} | {fmt(med['client_cpu_per_gb'], 3)} | "
              f"{fmt(med['vmhwm_bytes'] / MIB if med['vmhwm_bytes'] else None, 1)} | "
              f"{fmt(med['rss_anon_bytes'] / MIB if med['rss_anon_bytes'] is not None else None, 1)} | "
              f"{fmt(med['rss_file_bytes'] / MIB if med['rss_file_bytes'] is not None else None, 1)} | "
              f"{med['host_cc']} | {fmt(med['folios'], 2)} | {med['load']} |")
        w("")

    # ---- targets at the highest concurrency ------------------------------------------------
    w("## Targets (concurrency 800, same client, same run)")
    w("")
    if 800 not in concurrencies:
        w("**Not measured in this run** (concurrency 800 was not run; `--quick` runs 8 and 64 only). "
          "Every target below is therefore open.")
        w("")
    else:
        c = 800
        peer_meds = {lb: pick((c, lb))[0] for lb in peers}
        best_lb = max((lb for lb in peer_meds if peer_meds[lb]), key=lambda lb: peer_meds[lb]["gbps"], default=None)
        best = peer_meds[best_lb]["gbps"] if best_lb else None
        ng = peer_meds.get("nginx · http range")
        if skipped.get("dfdaemon"):
            how = "; dfdaemon was skipped, so \"the better of nginx and dfdaemon\" is nginx alone."
        elif skipped.get("nginx"):
            how = "; nginx was skipped, so \"the better of nginx and dfdaemon\" is dfdaemon alone."
        else:
            how = ", the better of nginx and dfdaemon."
        w(f"Best peer at 800: **{best_lb or 'none'}** ({fmt(best, 3)} GB/s){how}")
        w("")
        w("| hawker | throughput ≥ 1.1× best peer | p99 ≤ 1.5× ideal | zero errors | server CPU/GB ≤ 0.5× nginx | peak RSS < 64 MiB, page cache aside (RssAnon; VmHWM shown) |")
        w("|---|---|---|---|---|---|")
        file_dominated = []
        for lb in order:
            if not lb.startswith("hawker") or (c, lb) not in cells:
                continue
            med, _, errs = pick((c, lb))
            if med is None:
                w(f"| {lb} | no result | | | | |")
                continue

            def verdict(ok, text):
                if ok is None:
                    return f"n/a ({text})"
                return ("met" if ok else "**MISSED**") + f" ({text})"

            r = med["gbps"] / best if best else None
            t1 = verdict(None if r is None else r >= TARGETS["throughput_over_best_peer_min"], f"{fmt(r, 2)}×")
            q = med["p99_over_ideal"]
            t2 = verdict(None if q is None else q <= TARGETS["p99_over_ideal_max"], f"{fmt(q, 2)}×")
            t3 = verdict(errs == 0, str(errs))
            cr = med["server_cpu_per_gb"] / ng["server_cpu_per_gb"] if ng and ng["server_cpu_per_gb"] and med["server_cpu_per_gb"] is not None else None
            t4 = verdict(None if cr is None else cr <= TARGETS["server_cpu_per_gb_over_nginx_max"], f"{fmt(cr, 2)}×")
            hwm, anon, fil = med["vmhwm_bytes"], med["rss_anon_bytes"], med["rss_file_bytes"]
            # "Page cache aside": judged on RssAnon (the script's sampler) when there is one,
            # else on VmHWM, which also counts the file pages of the content mappings.
            peak = anon if anon is not None else hwm
            ok5 = None if peak is None else peak < TARGETS["peak_rss_bytes_max"]
            t5 = verdict(ok5, f"anon {fmt(anon / MIB if anon is not None else None, 1)} MiB; VmHWM {fmt(hwm / MIB if hwm else None, 1)} MiB")
            if hwm and anon is not None and fil is not None and fil > anon:
                file_dominated.append(f"{lb} (file {fil / MIB:.1f} MiB vs anon {anon / MIB:.1f} MiB)")
            w(f"| {lb} | {t1} | {t2} | {t3} | {t4} | {t5} |")
        w("")
        if file_dominated:
            w("hawker's resident set is dominated by **file pages** of its read-only content mappings "
              "(page cache shared with every other reader, not memory hawker allocated) in: "
              + "; ".join(file_dominated) + ". RssAnon is hawker's own memory.")
            w("")

    w("## Caveats for reading these numbers")
    w("")
    w("- **Loopback.** Client and server share the machine's cores, and on loopback the receiving "
      "side's TCP processing usually runs in softirq context on the sending CPU, charged to whichever "
      "process is running there (often the sender). \"Server CPU per GB\" therefore carries part of "
      "the network stack for every server alike; two sendfile servers (nginx, hawker sendfile/auto) "
      "are unlikely to differ by 2× on loopback when most of their CPU is the kernel's: judge the "
      "CPU target over a real NIC as well.")
    w("- **Zero copy on loopback is always copied** by the kernel (`IORING_NOTIF_USAGE_ZC_COPIED`, "
      "see `io-uring-notes.md`): `zerocopy` here pays the copy plus the notification and says nothing "
      "about SEND_ZC over a NIC. `copy` and `zerocopy` touch the content through hawker's mapping, "
      "which is why their RssFile/VmHWM hold the whole content (file pages, shared page cache).")
    w(f"- **Noise.** {env.get('repeat')} repetition(s) on a 2-core machine; the `load before` column is "
      "the load average when each run started. Under load, neighbouring rows can differ by tens of "
      "per cent for reasons that have nothing to do with the servers; use `--repeat 3` on a quiet machine.")
    w("- **iperf3 3.12** is single-threaded (both streams of `-P 2` share one thread), so it is a "
      "floor for what loopback can carry, not a ceiling.")
    w("")

    # ---- errors --------------------------------------------------------------------------------
    bad = [(run, f) for key in cells for run, f in cells[key] if f.get("missing") or f.get("errors") or f.get("problems")]
    if bad:
        w("## Errors and problems")
        w("")
        for run, f in bad:
            if f.get("missing"):
                w(f"- `{run['name']}`: no JSON (dp-bench exit {f.get('rc')}); see `runs/{run['name']}.txt`")
                continue
            samples = "; ".join(f"{k}: {v}" for k, v in f["error_samples"].items())
            w(f"- `{run['name']}`: {f['errors']} errors {f['errors_by_kind']} {samples} {' '.join(f['problems'])}".rstrip())
        w("")

    w("## Reference: iperf3 over loopback")
    w("")
    if iperf:
        for bps, cpu in iperf:
            w(f"- `iperf3 -P 2 -l 1M`: **{bps / 8e9:.3f} GB/s** ({bps / 1e9:.2f} Gbit/s); CPU sender "
              f"{fmt(cpu.get('host_total'), 0)}%, receiver {fmt(cpu.get('remote_total'), 0)}% (iperf3 3.12 is single-threaded)")
    else:
        w("- no iperf3 result")
    w("")
    w("## Files")
    w("")
    w(f"`bench/results/{env.get('stamp', '?')}/`: `runs/<name>.json` (dp-bench `--json`), `runs/<name>.svg` "
      "(throughput and latency per second), `runs/<name>.txt` (summary), `runs/<name>.rss.json` (sampler), "
      "`tasks.txt`, `env.json`, `index.jsonl`, `commands.sh`, `logs/`. `bench/results/` is "
      "gitignored: the folder stays on the machine that ran it; this page is what is committed.")
    w("")
    w("## Exact commands")
    w("")
    w("Re-run everything (final numbers want a quiet machine, and ideally `--repeat 3`):")
    w("")
    w("```sh")
    w("cargo build --release -p hawker -p hawker-bench")
    w("bash bench/compare --repeat 3")
    w("```")
    w("")
    w("Every command this run executed, in order (paths and pids as they were):")
    w("")
    w("<details><summary>commands.sh</summary>")
    w("")
    w("```sh")
    try:
        with open(os.path.join(res_dir, "commands.sh")) as f:
            w(f.read().rstrip())
    except OSError:
        w("# commands.sh missing")
    w("```")
    w("")
    w("</details>")
    w("")
    with open(doc, "w") as f:
        f.write("\n".join(L))


if __name__ == "__main__":
    main()
