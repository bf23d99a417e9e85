//! Start-up facts about the host: locked-memory limit, io_uring availability, CPU lists,
//! listening sockets. Every error here is written for the operator: what failed and what to do.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};

use io_uring::IoUring;
use socket2::{Domain, Protocol, Socket, Type};

/// Bytes of RLIMIT_MEMLOCK charged per ring of `entries` entries (measured on 6.18: ~104 KiB
/// for 1024 entries, ~404 KiB for 4096; we reserve a little more).
pub fn ring_memlock_bytes(entries: u32) -> u64 {
    u64::from(entries) * 112 + 16 * 1024
}

/// What [`raise_memlock`] found and did.
#[derive(Debug, Clone, Copy)]
pub struct Memlock {
    pub found_bytes: u64,
    pub now_bytes: u64,
    /// True when the limit does not bind (RLIM_INFINITY).
    pub unlimited: bool,
}

/// Tries to raise RLIMIT_MEMLOCK to `want_bytes` (soft and hard when privileged, else soft up
/// to hard) and reports what it got.
pub fn raise_memlock(want_bytes: u64) -> Memlock {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct we pass.
    unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) };
    let found = lim.rlim_cur;
    if lim.rlim_cur == libc::RLIM_INFINITY || lim.rlim_cur >= want_bytes {
        return Memlock {
            found_bytes: found,
            now_bytes: found,
            unlimited: lim.rlim_cur == libc::RLIM_INFINITY,
        };
    }
    let try_set = |cur: u64, max: u64| {
        let l = libc::rlimit {
            rlim_cur: cur,
            rlim_max: max,
        };
        // SAFETY: plain setrlimit with a valid struct.
        unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &l) == 0 }
    };
    let max = lim.rlim_max.max(want_bytes);
    if !try_set(want_bytes, max) {
        // Unprivileged: the soft limit may still go up to the hard one.
        let cur = want_bytes.min(lim.rlim_max);
        try_set(cur, lim.rlim_max);
    }
    // SAFETY: as above.
    unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) };
    Memlock {
        found_bytes: found,
        now_bytes: lim.rlim_cur,
        unlimited: lim.rlim_cur == libc::RLIM_INFINITY,
    }
}

/// Reads `kernel.io_uring_disabled` (0 enabled, 1 root/group only, 2 disabled), if present.
pub fn io_uring_disabled_sysctl() -> Option<u8> {
    std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// Builds one core's ring with the flags a single-threaded owner wants, falling back to a
/// plain ring on kernels that refuse them. Errors explain what the operator should do.
pub fn build_ring(entries: u32) -> Result<IoUring, String> {
    let tuned = IoUring::builder()
        .setup_single_issuer()
        .setup_coop_taskrun()
        .setup_defer_taskrun()
        .setup_cqsize(entries * 4)
        .build(entries);
    match tuned {
        Ok(r) => Ok(r),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => IoUring::builder()
            .setup_cqsize(entries * 4)
            .build(entries)
            .map_err(|e| ring_error(e, entries)),
        Err(e) => Err(ring_error(e, entries)),
    }
}

fn ring_error(e: io::Error, entries: u32) -> String {
    match e.raw_os_error() {
        Some(libc::ENOSYS) => "io_uring is not available in this kernel (ENOSYS): hawker needs Linux 6.0 or later built with CONFIG_IO_URING".into(),
        Some(libc::EPERM) | Some(libc::EACCES) => {
            let sysctl = io_uring_disabled_sysctl()
                .map(|v| format!(" (kernel.io_uring_disabled={v})"))
                .unwrap_or_default();
            format!("io_uring is disabled for this process{sysctl}: run `sysctl -w kernel.io_uring_disabled=0`, or in a container allow io_uring_setup in the seccomp profile")
        }
        Some(libc::ENOMEM) => format!(
            "cannot create an io_uring of {entries} entries: locked memory is exhausted (RLIMIT_MEMLOCK); run `ulimit -l unlimited`, or set LimitMEMLOCK=infinity in the systemd unit (tuning/hawker.service)"
        ),
        _ => format!("cannot create an io_uring: {e}"),
    }
}

/// Parses a CPU list like `0-3,6,8-9`.
pub fn parse_cpu_list(s: &str) -> Result<Vec<usize>, String> {
    let mut cpus = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("bad CPU list {s:?}: expected e.g. 0-3,6");
        if let Some((a, b)) = part.split_once('-') {
            let a: usize = a.trim().parse().map_err(|_| bad())?;
            let b: usize = b.trim().parse().map_err(|_| bad())?;
            if a > b || b >= 4096 {
                return Err(bad());
            }
            cpus.extend(a..=b);
        } else {
            let c: usize = part.parse().map_err(|_| bad())?;
            if c >= 4096 {
                return Err(bad());
            }
            cpus.push(c);
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    if cpus.is_empty() {
        return Err(format!("CPU list {s:?} is empty"));
    }
    Ok(cpus)
}

/// The CPUs this process may run on.
pub fn allowed_cpus() -> Vec<usize> {
    match nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) {
        Ok(set) => (0..nix::sched::CpuSet::count())
            .filter(|&c| set.is_set(c).unwrap_or(false))
            .collect(),
        Err(_) => (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect(),
    }
}

/// Pins the calling thread to `cpu`.
pub fn pin_to(cpu: usize) -> Result<(), String> {
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu)
        .map_err(|e| format!("CPU {cpu} is out of range: {e}"))?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .map_err(|e| format!("cannot pin a serving thread to CPU {cpu} ({e}): is it in the allowed set (taskset/cgroup cpuset)?"))
}

/// Options for the per-core listening sockets. The TCP options are set on the listener;
/// accepted connections inherit them (the kernel clones the listener's TCP state).
#[derive(Clone, Copy, Debug)]
pub struct ListenOpts<'a> {
    pub freebind: bool,
    pub tcp_max_segment: Option<u32>,
    pub tcp_notsent_lowat_bytes: Option<u32>,
    pub tcp_congestion: Option<&'a str>,
    pub backlog: i32,
    pub flag_name: &'static str,
}

/// Checks that `addr` is free for us before SO_REUSEPORT listeners are bound (with reuseport
/// a second hawker would silently share the port) and resolves port 0 to a concrete port.
pub fn probe_port(addr: SocketAddr, opts: ListenOpts) -> Result<SocketAddr, String> {
    let sock = new_socket(addr, opts, false).map_err(|e| bind_error(addr, opts, e))?;
    sock.local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .ok_or_else(|| format!("cannot read the bound address of {addr}"))
}

/// Binds one SO_REUSEPORT listener on `addr` for one core.
pub fn listen_reuseport(addr: SocketAddr, opts: ListenOpts) -> Result<OwnedFd, String> {
    let sock = new_socket(addr, opts, true).map_err(|e| bind_error(addr, opts, e))?;
    // SAFETY: into_raw_fd hands over ownership of a valid descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(sock.into_raw_fd()) })
}

fn new_socket(addr: SocketAddr, opts: ListenOpts, reuseport: bool) -> io::Result<Socket> {
    let sock = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.cloexec(),
        Some(Protocol::TCP),
    )?;
    sock.set_reuse_address(true)?;
    if reuseport {
        sock.set_reuse_port(true)?;
    }
    if opts.freebind {
        if addr.is_ipv4() {
            sock.set_freebind_v4(true)?;
        } else {
            sock.set_freebind_v6(true)?;
        }
    }
    if let Some(mss) = opts.tcp_max_segment {
        sock.set_tcp_mss(mss)?;
    }
    if let Some(lowat) = opts.tcp_notsent_lowat_bytes {
        sock.set_tcp_notsent_lowat(lowat)?;
    }
    if let Some(cc) = opts.tcp_congestion {
        sock.set_tcp_congestion(cc.as_bytes())
            .map_err(|e| io::Error::new(e.kind(), CongestionError(cc.to_string(), e)))?;
    }
    sock.bind(&addr.into())?;
    sock.listen(opts.backlog)?;
    Ok(sock)
}

/// A TCP_CONGESTION the kernel refused, kept apart from bind errors so the message names the flag.
#[derive(Debug)]
struct CongestionError(String, io::Error);

impl std::fmt::Display for CongestionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let available = crate::config::ipv4_sysctl("tcp_available_congestion_control");
        write!(
            f,
            "--tcp-congestion {:?} refused by the kernel ({}); available here: {}{}",
            self.0,
            self.1,
            available,
            if self.1.raw_os_error() == Some(libc::ENOENT) {
                " (load its module, e.g. `modprobe tcp_bbr`, or choose one of these)"
            } else {
                " (an unprivileged process may use only net.ipv4.tcp_allowed_congestion_control)"
            }
        )
    }
}

impl std::error::Error for CongestionError {}

fn bind_error(addr: SocketAddr, opts: ListenOpts, e: io::Error) -> String {
    let flag = opts.flag_name;
    if let Some(cc) = e
        .get_ref()
        .and_then(|i| i.downcast_ref::<CongestionError>())
    {
        return cc.to_string();
    }
    match e.raw_os_error() {
        Some(libc::EADDRINUSE) => format!(
            "{addr} is already in use by another process: stop it (`ss -ltnp 'sport = :{}'` shows who) or choose another {flag}",
            addr.port()
        ),
        Some(libc::EACCES) => format!(
            "no permission to bind {addr}: ports below 1024 need root or CAP_NET_BIND_SERVICE; choose another {flag}"
        ),
        Some(libc::EADDRNOTAVAIL) => format!(
            "{addr} is not an address of this host: add it (tuning/vip add --vip IP) or keep IP_FREEBIND on"
        ),
        _ => format!("cannot listen on {addr} ({flag}): {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse_and_bad_ones_say_why() {
        assert_eq!(
            parse_cpu_list("0-3,6, 8-9").unwrap(),
            vec![0, 1, 2, 3, 6, 8, 9]
        );
        assert_eq!(parse_cpu_list("1,1,0").unwrap(), vec![0, 1]);
        for bad in ["", "3-1", "x", "0-", "99999"] {
            let e = parse_cpu_list(bad).unwrap_err();
            assert!(e.contains("CPU list"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn ring_errors_tell_the_operator_what_to_do() {
        let e = |errno| ring_error(io::Error::from_raw_os_error(errno), 1024);
        assert!(e(libc::EPERM).contains("sysctl -w kernel.io_uring_disabled=0"));
        assert!(e(libc::ENOSYS).contains("not available in this kernel"));
        assert!(e(libc::ENOMEM).contains("ulimit -l unlimited"));
    }

    fn opts(cc: Option<&str>) -> ListenOpts<'_> {
        ListenOpts {
            freebind: false,
            tcp_max_segment: None,
            tcp_notsent_lowat_bytes: Some(300_000),
            tcp_congestion: cc,
            backlog: 16,
            flag_name: "--vortex-listen",
        }
    }

    #[test]
    fn accepted_connections_inherit_the_listeners_tcp_options() {
        // "reno" is built into every kernel (it cannot be a module).
        let fd = listen_reuseport("127.0.0.1:0".parse().unwrap(), opts(Some("reno"))).unwrap();
        let listener = Socket::from(fd);
        let addr = listener.local_addr().unwrap().as_socket().unwrap();
        let _client = std::net::TcpStream::connect(addr).unwrap();
        let (conn, _) = listener.accept().unwrap();
        let cc = conn.tcp_congestion().unwrap();
        assert_eq!(cc.split(|&b| b == 0).next().unwrap(), b"reno");
        assert_eq!(conn.tcp_notsent_lowat().unwrap(), 300_000);
    }

    #[test]
    fn an_unknown_congestion_control_names_the_flag_and_the_choices() {
        let e =
            listen_reuseport("127.0.0.1:0".parse().unwrap(), opts(Some("no-such-cc"))).unwrap_err();
        assert!(e.contains("--tcp-congestion \"no-such-cc\""), "{e}");
        assert!(e.contains("available here:") && e.contains("reno"), "{e}");
    }

    #[test]
    fn the_ring_memlock_estimate_covers_what_the_kernel_charges() {
        // Measured on 6.18: about 104 KiB for 1024 entries, 404 KiB for 4096.
        assert!(ring_memlock_bytes(1024) >= 104 * 1024);
        assert!(ring_memlock_bytes(4096) >= 404 * 1024);
    }
}
