//! pgbench as a benchmark's baseline: a custom script at a given concurrency on the benchmark's
//! database, its transactions per second and p99 latency from its per-transaction log.

use std::{path::PathBuf, process::Command};

/// Run `script` (pgbench's script language) with `clients` clients for `seconds` against
/// `database`; returns (transactions/s, p99 in µs).
pub fn run(database: &str, script: &str, seconds: u64, clients: usize) -> (f64, u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("script.sql");
    std::fs::write(&path, script).expect("script");
    let prefix: PathBuf = dir.path().join("log");
    let out = Command::new("pgbench")
        .args(["-n", "-M", "prepared", "-c", &clients.to_string(), "-j", "2", "-T", &seconds.to_string(), "-f"])
        .arg(&path)
        .arg("-l")
        .arg("--log-prefix")
        .arg(&prefix)
        .arg(database)
        .output()
        .expect("pgbench on PATH");
    let text = String::from_utf8_lossy(&out.stdout);
    let tps = text
        .lines()
        .find(|l| l.starts_with("tps ="))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("pgbench output: {text}{}", String::from_utf8_lossy(&out.stderr)));
    let mut latencies: Vec<u64> = Vec::new();
    for entry in std::fs::read_dir(dir.path()).expect("logs").flatten() {
        if entry.file_name().to_string_lossy().starts_with("log") {
            let log = std::fs::read_to_string(entry.path()).unwrap_or_default();
            latencies.extend(log.lines().filter_map(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok()));
        }
    }
    latencies.sort_unstable();
    let p99 = latencies.get(latencies.len().saturating_sub(1) * 99 / 100).copied().unwrap_or(0);
    (tps, p99)
}
