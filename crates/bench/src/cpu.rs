//! CPU accounting, from /proc: steadier than rates on a shared machine, and it
//! says which process the time goes to.
use serde_json::{json, Value};

/// /proc reports CPU time in USER_HZ, which is 100 on Linux.
const TICKS_PER_SECOND: f64 = 100.0;

/// The numeric fields of /proc/PID/stat after the command name (which, in
/// parentheses, may hold spaces): index n - 3 holds field n, so 1 is the
/// parent's PID and 11-14 are utime, stime, cutime and cstime.
fn stat_fields(pid: u32) -> Option<Vec<u64>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(
        stat.rsplit_once(')')?
            .1
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect(),
    )
}

/// utime + stime of a process (all its threads), plus cutime + cstime (its
/// exited, reaped children) when `children`.
fn own_ticks(fields: &[u64], children: bool) -> Option<u64> {
    let own = fields.get(11)? + fields.get(12)?;
    Some(if children {
        own + fields.get(13)? + fields.get(14)?
    } else {
        own
    })
}

fn cpu_ticks(pid: u32, children: bool) -> Option<u64> {
    own_ticks(&stat_fields(pid)?, children)
}

/// CPU time of a process and of all its children, the exited ones included
/// (PostgreSQL's postmaster and its backends).
fn tree_ticks(root: u32) -> Option<u64> {
    let mut total = cpu_ticks(root, true)?;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Some(fields) = stat_fields(pid) else {
            continue;
        };
        if fields.get(1) == Some(&u64::from(root)) {
            total += own_ticks(&fields, false).unwrap_or(0);
        }
    }
    Some(total)
}

#[derive(Clone, Copy, Default)]
pub struct CpuSample {
    server: Option<f64>,
    postgres: Option<f64>,
    generator: Option<f64>,
}

impl CpuSample {
    pub fn take(server: Option<u32>, postgres: Option<u32>) -> Self {
        let ticks = |t: Option<u64>| t.map(|t| t as f64 / TICKS_PER_SECOND);
        Self {
            server: ticks(server.and_then(|p| cpu_ticks(p, true))),
            postgres: ticks(postgres.and_then(tree_ticks)),
            generator: ticks(cpu_ticks(std::process::id(), false)),
        }
    }

    /// Microseconds per unit of work between `before` and this sample.
    pub fn per_unit_since(&self, before: &Self, units: usize) -> Self {
        let per = |a: Option<f64>, b: Option<f64>| Some((a? - b?) * 1e6 / units.max(1) as f64);
        Self {
            server: per(self.server, before.server),
            postgres: per(self.postgres, before.postgres),
            generator: per(self.generator, before.generator),
        }
    }

    pub fn json(&self) -> Value {
        json!({ "server": self.server, "postgres": self.postgres, "generator": self.generator })
    }
}

impl std::fmt::Display for CpuSample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        for (name, v) in [
            ("database", self.postgres),
            ("meetpool serve", self.server),
            ("load generator", self.generator),
        ] {
            if let Some(us) = v {
                parts.push(format!("{name} {us:.0} µs"));
            }
        }
        if parts.is_empty() {
            parts.push("not measured (--server-pid, --postgres-pid)".into());
        }
        f.write_str(&parts.join(", "))
    }
}
