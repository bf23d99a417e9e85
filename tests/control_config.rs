//! The control plane's operational surface of the `hawker` binary: the example config file
//! parses and holds the defaults, `hawker scheduler` + `hawker serve --scheduler` (fleet mode:
//! the seed announces itself), SIGTERM stops both within bounds, and a control-plane port the
//! operator chose that is in use is a one-line error saying what to do.

use hawker_control::FileConfig;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const HAWKER: &str = env!("CARGO_BIN_EXE_hawker");

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_listening(addr: SocketAddr, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}

fn sigterm_and_wait(p: &mut Proc, within: Duration) -> std::process::ExitStatus {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(p.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("kill");
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = p.0.try_wait().expect("wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "did not exit within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_example_config_parses_validates_and_holds_the_defaults() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tuning/hawker.example.toml");
    let cfg = FileConfig::load(std::path::Path::new(path)).expect("example parses");
    cfg.validate().expect("example validates");
    let d = FileConfig::default();
    assert_eq!(format!("{:?}", cfg.scheduler), format!("{:?}", d.scheduler));
    assert_eq!(format!("{:?}", cfg.control), format!("{:?}", d.control));
    assert_eq!(format!("{:?}", cfg.admin), format!("{:?}", d.admin));
    assert_eq!(cfg.origin, d.origin);
    assert_eq!(
        cfg.serve.vortex_listen,
        Some("0.0.0.0:4015".parse().expect("addr"))
    );
    assert_eq!(cfg.serve.control_plane, Some(true));
    // The binary refuses a bad key with the file's name and the key.
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[scheduler]\nlisten_typo = 1\n").expect("write");
    let out = Command::new(HAWKER)
        .args(["scheduler", "--config"])
        .arg(&bad)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("bad.toml") && err.contains("listen_typo"),
        "{err}"
    );
}

#[test]
fn fleet_mode_seed_announces_itself_to_a_standalone_scheduler_and_sigterm_stops_both() {
    let (sched, sched_admin) = (free_port(), free_port());
    let mut scheduler = Proc(
        Command::new(HAWKER)
            .args(["scheduler", "--listen", &sched.to_string()])
            .args(["--admin-listen", &sched_admin.to_string()])
            .env("HAWKER_LOG", "warn")
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn scheduler"),
    );
    wait_listening(sched, "hawker scheduler");
    wait_listening(sched_admin, "hawker scheduler admin");
    let dir = tempfile::tempdir().expect("tempdir");
    let (vortex, http, upload, admin) = (free_port(), free_port(), free_port(), free_port());
    let mut seed = Proc(
        Command::new(HAWKER)
            .args(["serve", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--vortex-listen", &vortex.to_string()])
            .args(["--http-listen", &http.to_string()])
            .args(["--upload-listen", &upload.to_string()])
            .args(["--admin-listen", &admin.to_string()])
            .args(["--scheduler", &sched.to_string()])
            .args(["--cores", "0", "--send-mode", "copy"])
            .env("HAWKER_LOG", "warn")
            .env("HOSTNAME", "fleet-seed")
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn serve"),
    );
    wait_listening(admin, "seed admin");
    // The seed runs no scheduler of its own, and announces itself (ip = the vortex listen IP).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let hosts = get(sched_admin, "/hosts");
        if hosts.contains("127.0.0.1-fleet-seed-seed") {
            assert!(
                hosts.contains(&format!("\"port\": {}", upload.port())),
                "{hosts}"
            );
            assert!(hosts.contains("\"seed\": true"), "{hosts}");
            break;
        }
        assert!(Instant::now() < deadline, "seed never announced: {hosts}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let m = get(sched_admin, "/metrics");
    assert!(m.contains("hawker_control_hosts 1"), "{m}");
    let seed_hosts = get(admin, "/hosts");
    assert!(seed_hosts.contains("\"this_node\": true"), "{seed_hosts}");
    assert!(!get(admin, "/metrics").contains("hawker_control_hosts"));

    let status = sigterm_and_wait(&mut seed, Duration::from_secs(15));
    assert!(status.success(), "serve exit {status}");
    let status = sigterm_and_wait(&mut scheduler, Duration::from_secs(10));
    assert!(status.success(), "scheduler exit {status}");
}

#[test]
fn a_chosen_control_port_in_use_is_a_clear_error() {
    let busy = TcpListener::bind("127.0.0.1:0").expect("bind");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(HAWKER)
        .args(["serve", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(["--vortex-listen", &free_port().to_string()])
        .args(["--http-listen", &free_port().to_string()])
        .args(["--upload-listen", &free_port().to_string()])
        .args(["--admin-listen", &free_port().to_string()])
        .args([
            "--scheduler-listen",
            &busy.local_addr().expect("addr").to_string(),
        ])
        .args(["--cores", "0", "--send-mode", "copy"])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let line = err
        .lines()
        .find(|l| l.starts_with("hawker:"))
        .unwrap_or_else(|| panic!("no error line in {err}"));
    assert!(
        line.contains("cannot listen on") && line.contains("--scheduler-listen"),
        "{line}"
    );
}
