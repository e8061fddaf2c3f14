#![allow(dead_code)] // shared by several benchmarks, each using a part
//! Processor time, read from `/proc`: what a process (this one, the broker, PostgreSQL's
//! backends) used between two readings, so that a benchmark can say what each record cost and
//! what rate the machine's cores would allow at that cost.

/// Clock ticks per second of `/proc/<pid>/stat` (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds (user and system) process `pid` has used so far; 0 once it is gone.
pub fn seconds(pid: u32) -> f64 {
    stat_seconds(&format!("/proc/{pid}/stat"))
}

/// CPU seconds this process has used so far, every thread included.
pub fn own_seconds() -> f64 {
    stat_seconds("/proc/self/stat")
}

fn stat_seconds(path: &str) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11..13).map(|f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum()).unwrap_or(0.0);
    ticks / TICKS_PER_SECOND
}

/// CPU seconds used so far by every process named `name` (PostgreSQL's backends, say).
pub fn seconds_of(name: &str) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0.0 };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == name))
        .map(seconds)
        .sum()
}

/// The whole machine's busy and total CPU seconds so far (the `cpu` line of `/proc/stat`; idle
/// and I/O wait count as not busy).
pub fn machine() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let line = stat.lines().next().unwrap_or_default();
    let ticks: Vec<f64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    let total: f64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3).copied().unwrap_or(0.0) + ticks.get(4).copied().unwrap_or(0.0);
    ((total - idle) / TICKS_PER_SECOND, total / TICKS_PER_SECOND)
}

/// The processors this process may run on.
pub fn cores() -> f64 {
    std::thread::available_parallelism().map(|n| n.get() as f64).unwrap_or(1.0)
}

/// One reading of the three parties to an event benchmark: this process (the service, or the
/// bare client being measured), the broker (when started here) and PostgreSQL, and the machine.
#[derive(Clone, Copy)]
pub struct Reading {
    pub process: f64,
    pub broker: f64,
    pub postgres: f64,
    busy: f64,
    total: f64,
    at: std::time::Instant,
}

impl Reading {
    /// Read them now; `process` is the measured process's CPU seconds, `broker` the broker's pid.
    pub fn now(process: f64, broker: Option<u32>) -> Self {
        let (busy, total) = machine();
        Self {
            process,
            broker: broker.map(seconds).unwrap_or(0.0),
            postgres: seconds_of("postgres"),
            busy,
            total,
            at: std::time::Instant::now(),
        }
    }

    /// What was used from `before` to this reading, for `records` records.
    pub fn since(&self, before: &Self, records: usize) -> Used {
        let n = records.max(1) as f64;
        let total = self.total - before.total;
        Used {
            process_us: (self.process - before.process) * 1e6 / n,
            broker_us: (self.broker - before.broker) * 1e6 / n,
            postgres_us: (self.postgres - before.postgres) * 1e6 / n,
            busy: if total > 0.0 { (self.busy - before.busy) / total } else { 0.0 },
            seconds: self.at.duration_since(before.at).as_secs_f64(),
        }
    }
}

/// CPU microseconds per record of each party, and how busy the machine was.
#[derive(Clone, Copy)]
pub struct Used {
    pub process_us: f64,
    pub broker_us: f64,
    pub postgres_us: f64,
    /// Share of the machine's processor time that was busy (every process counted).
    pub busy: f64,
    pub seconds: f64,
}

impl Used {
    /// CPU microseconds per record of the three together.
    pub fn total_us(&self) -> f64 {
        self.process_us + self.broker_us + self.postgres_us
    }

    /// The records per second the machine's cores would allow at this cost, if nothing else ran
    /// and nothing waited.
    pub fn ceiling(&self) -> f64 {
        cores() * 1e6 / self.total_us().max(f64::MIN_POSITIVE)
    }

    /// One line: each party's microseconds per record, and the machine's busy share.
    pub fn line(&self) -> String {
        format!(
            "{:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>6.0} %",
            self.process_us,
            self.broker_us,
            self.postgres_us,
            self.total_us(),
            self.busy * 100.0
        )
    }
}
