//! `dp-bench`: parses the flags, runs the load, prints the summary, writes `--json` and
//! `--svg`. Exit status: 0 for a clean run, 1 when the run had errors, completed no piece or
//! was interrupted, 2 when the flags or the set-up were wrong.

use std::process::ExitCode;

use clap::Parser;
use hawker_bench::cli::Args;
use hawker_bench::engine;
use hawker_bench::procstat::{self, ProcWatcher};
use hawker_bench::report::{Monitor, Summary};
use hawker_bench::svg;

extern "C" fn on_sigint(_: libc::c_int) {
    engine::request_abort();
}

/// The first SIGINT asks the run to stop and still report; the second kills (SA_RESETHAND).
fn install_sigint() {
    // SAFETY: the handler only performs an atomic store; the sigaction struct is zeroed and
    // fully initialised before use.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESETHAND;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut());
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let plan = match args.plan() {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("dp-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let pids = &args.server_pid;
    let watcher = match (!pids.is_empty())
        .then(|| ProcWatcher::new(pids))
        .transpose()
    {
        Ok(w) => w,
        Err(e) => {
            eprintln!("dp-bench: --server-pid: {e}");
            return ExitCode::from(2);
        }
    };
    install_sigint();
    if !args.quiet {
        eprintln!(
            "dp-bench: {} {} ({}): {} connections on {} threads, {} tasks / {} pieces",
            plan.info.protocol,
            plan.info.target,
            plan.info.addr,
            plan.info.concurrency,
            plan.info.threads,
            plan.info.tasks,
            plan.info.pieces_total
        );
    }
    let mut monitor = Monitor::new(!args.quiet, watcher);
    let outcome = match engine::run(&plan.engine, plan.workload, &mut monitor) {
        Ok(outcome) => outcome,
        Err(e) => {
            monitor.finish();
            eprintln!("dp-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let client_cpu_end = procstat::self_cpu();
    monitor.finish();
    let mut info = plan.info;
    info.threads = outcome.threads;
    let summary = Summary::build(info, &outcome, &monitor, client_cpu_end);
    print!("{}", summary.to_text());
    let mut status = if summary.ok { 0 } else { 1 };
    if let Some(path) = &args.json {
        if let Err(e) = std::fs::write(path, summary.to_json()) {
            eprintln!("dp-bench: --json {}: {e}", path.display());
            status = 2;
        }
    }
    if let Some(path) = &args.svg {
        if let Err(e) = std::fs::write(path, svg::render(&summary)) {
            eprintln!("dp-bench: --svg {}: {e}", path.display());
            status = 2;
        }
    }
    ExitCode::from(status)
}
