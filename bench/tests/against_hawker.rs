//! dp-bench against the real hawker data plane (in-process, on loopback): a short run over
//! Vortex and over HTTP completes with zero errors and every piece verified. No timing
//! assertions: speed is measured in bench/compare, not here.

use std::process::Command;
use std::sync::Arc;

use hawker_dataplane::store::{import_file, Store, Verify};
use hawker_dataplane::{SendMode, ServeConfig, Server};

#[test]
fn dp_bench_runs_clean_against_hawker() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // Two tasks: 3 pieces and a bit, and one byte.
    for (i, len) in [(0u8, 3 * 4 * 1024 * 1024 + 777usize), (1, 1)] {
        let content: Vec<u8> = (0..len)
            .map(|j| (j as u8).wrapping_mul(31).wrapping_add(i))
            .collect();
        let f = tmp.path().join(format!("f{i}"));
        std::fs::write(&f, &content).unwrap();
        import_file(&data, &f, None).unwrap();
    }
    let tasks: Vec<Arc<_>> = {
        let store = Store::open(&data, Verify::Full).unwrap();
        store.tasks().cloned().collect()
    };
    let cores = hawker_dataplane::sys::allowed_cpus()
        .into_iter()
        .take(2)
        .collect();
    let mut cfg = ServeConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        "127.0.0.1:0".parse().unwrap(),
        cores,
    );
    cfg.send_mode = SendMode::Auto;
    let server = Server::start(cfg, tasks).unwrap();
    let targets = [
        vec!["--vortex".to_string(), server.vortex_addr.to_string()],
        vec!["--http".to_string(), format!("http://{}", server.http_addr)],
    ];
    for target in targets {
        let json = tmp.path().join("run.json");
        let out = Command::new(env!("CARGO_BIN_EXE_dp-bench"))
            .args(&target)
            .arg("--tasks-from-dir")
            .arg(&data)
            .args([
                "--concurrency",
                "16",
                "--requests",
                "200",
                "--threads",
                "2",
                "--json",
            ])
            .arg(&json)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{target:?}: dp-bench failed:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        assert_eq!(v["ok"], serde_json::Value::Bool(true), "{target:?}: {text}");
        assert_eq!(v["pieces"].as_u64(), Some(200), "{target:?}: {text}");
        assert_eq!(
            v["errors"]["total"].as_u64(),
            Some(0),
            "{target:?}: {}",
            v["errors"]
        );
    }
    server.drain();
    server.join().unwrap();
}
