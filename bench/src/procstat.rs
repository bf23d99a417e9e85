//! CPU and memory accounting: the bench's own CPU time (`getrusage(RUSAGE_SELF)`, all
//! threads) and, with `--server-pid` (repeatable, summed), the server's CPU time from `/proc/PID/stat` (utime and
//! stime, in clock ticks of `sysconf(_SC_CLK_TCK)`, usually 10 ms) and its peak resident set
//! from `/proc/PID/status` (`VmHWM`: the peak over the process's whole life, not just this run).
//!
//! Invariants: a sample is taken at t0 and at the end; the figure reported is the difference,
//! so CPU spent before the run (start-up, import) is not charged to it. The server's figures
//! have a resolution of one clock tick, so short runs against an idle-ish server are coarse.

/// CPU seconds spent, split into user and system time.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct CpuTime {
    /// Seconds in user mode.
    pub user_s: f64,
    /// Seconds in the kernel on the process's behalf.
    pub sys_s: f64,
}

impl CpuTime {
    /// User plus system seconds.
    pub fn total_s(&self) -> f64 {
        self.user_s + self.sys_s
    }

    /// `self - earlier`, never negative.
    pub fn since(&self, earlier: &CpuTime) -> CpuTime {
        CpuTime {
            user_s: (self.user_s - earlier.user_s).max(0.0),
            sys_s: (self.sys_s - earlier.sys_s).max(0.0),
        }
    }
}

/// The CPU time this process has used so far (all threads).
pub fn self_cpu() -> CpuTime {
    // SAFETY: getrusage writes into the zeroed struct we own; RUSAGE_SELF is always valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    if rc != 0 {
        return CpuTime::default();
    }
    let secs = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    CpuTime {
        user_s: secs(usage.ru_utime),
        sys_s: secs(usage.ru_stime),
    }
}

/// Reads other processes' counters from /proc: one server, or several processes of one server
/// (nginx's workers, say), whose figures are summed.
#[derive(Debug, Clone)]
pub struct ProcWatcher {
    pids: Vec<u32>,
}

impl ProcWatcher {
    /// Watches `pids` (at least one); errors now if one does not exist.
    pub fn new(pids: &[u32]) -> Result<ProcWatcher, String> {
        if pids.is_empty() {
            return Err("no pid to watch".into());
        }
        let watcher = ProcWatcher {
            pids: pids.to_vec(),
        };
        watcher.cpu()?;
        Ok(watcher)
    }

    /// The watched pids.
    pub fn pids(&self) -> &[u32] {
        &self.pids
    }

    /// The processes' CPU time so far, summed.
    pub fn cpu(&self) -> Result<CpuTime, String> {
        let mut sum = CpuTime::default();
        for pid in &self.pids {
            let path = format!("/proc/{pid}/stat");
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("{path}: {e} (is the server still running?)"))?;
            let cpu = parse_stat_cpu(&text, clock_ticks_per_s())
                .ok_or_else(|| format!("{path}: unexpected format"))?;
            sum.user_s += cpu.user_s;
            sum.sys_s += cpu.sys_s;
        }
        Ok(sum)
    }

    /// The processes' peak resident set sizes (VmHWM) summed, in bytes: for several processes
    /// an upper bound of their joint peak.
    pub fn peak_rss_bytes(&self) -> Result<u64, String> {
        let mut sum = 0;
        for pid in &self.pids {
            let path = format!("/proc/{pid}/status");
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
            sum += parse_status_kib(&text, "VmHWM:")
                .map(|kib| kib * 1024)
                .ok_or_else(|| format!("{path}: no VmHWM line"))?;
        }
        Ok(sum)
    }
}

fn clock_ticks_per_s() -> f64 {
    // SAFETY: sysconf has no memory effects.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// utime and stime from the text of /proc/PID/stat. The command name (field 2) is in
/// parentheses and may itself hold spaces and parentheses, so fields are counted after the
/// LAST `)`: there, field 3 (state) is index 0 and utime/stime (fields 14/15) are 11/12.
pub fn parse_stat_cpu(text: &str, ticks_per_s: f64) -> Option<CpuTime> {
    let after = &text[text.rfind(')')? + 1..];
    let mut fields = after.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(CpuTime {
        user_s: utime as f64 / ticks_per_s,
        sys_s: stime as f64 / ticks_per_s,
    })
}

/// The kB value of a `Name:   123 kB` line of /proc/PID/status.
pub fn parse_status_kib(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    line[name.len()..]
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let text = "1234 (we ird) name)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 \
                    4 0 12345 1000000 200 18446744073709551615";
        let cpu = parse_stat_cpu(text, 100.0).unwrap();
        assert_eq!(cpu.user_s, 2.5);
        assert_eq!(cpu.sys_s, 0.75);
        assert!(parse_stat_cpu("garbage", 100.0).is_none());
    }

    #[test]
    fn status_lines_parse() {
        let text = "Name:\thawker\nVmPeak:\t  999 kB\nVmHWM:\t   20480 kB\nVmRSS:\t 100 kB\n";
        assert_eq!(parse_status_kib(text, "VmHWM:"), Some(20480));
        assert_eq!(parse_status_kib(text, "VmSwap:"), None);
    }

    #[test]
    fn this_process_can_be_watched() {
        let me = ProcWatcher::new(&[std::process::id()]).unwrap();
        let twice = ProcWatcher::new(&[std::process::id(), std::process::id()]).unwrap();
        assert!(twice.peak_rss_bytes().unwrap() >= me.peak_rss_bytes().unwrap());
        assert!(twice.cpu().unwrap().total_s() >= me.cpu().unwrap().total_s());
        let burn: u64 = (0..2_000_000u64).map(|i| i.wrapping_mul(i) >> 3).sum();
        assert!(burn > 0);
        assert!(me.cpu().unwrap().total_s() >= 0.0);
        assert!(me.peak_rss_bytes().unwrap() > 0);
        assert!(self_cpu().total_s() > 0.0);
        assert!(ProcWatcher::new(&[u32::MAX]).is_err());
        assert!(ProcWatcher::new(&[]).is_err());
    }
}
