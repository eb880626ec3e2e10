//! How much memory this process may still take: the least of what the
//! machine has available, what its control groups allow (a Slurm job's
//! `--mem`, a container's limit) and what its resource limits allow
//! (`ulimit -d`, `ulimit -v`). A trial's memory estimate is checked against
//! it before any weight is allocated, so a network too big for the job is
//! a failed trial rather than a process killed or aborted halfway.

use std::path::Path;

/// The memory left to this process, in MiB, and what bounds it (for
/// messages). None where nothing can be read (not Linux).
pub(crate) fn available_mib() -> Option<(f64, String)> {
    let mut bounds = Vec::new();
    if let Some(kib) = meminfo_available_kib() {
        bounds.push((kib as f64 / 1024.0, "available on the machine".to_string()));
    }
    if let Some(bytes) = cgroup_headroom() {
        bounds.push((
            bytes as f64 / MIB,
            "left under its control group's memory limit".to_string(),
        ));
    }
    for (limit, usage, what) in [
        ("Max data size", "VmData:", "data-size limit (ulimit -d)"),
        (
            "Max address space",
            "VmSize:",
            "address-space limit (ulimit -v)",
        ),
    ] {
        if let Some(bytes) = rlimit_headroom(limit, usage) {
            bounds.push((bytes as f64 / MIB, format!("left under the {what}")));
        }
    }
    bounds.into_iter().min_by(|a, b| a.0.total_cmp(&b.0))
}

const MIB: f64 = 1024.0 * 1024.0;

/// `MemAvailable` of /proc/meminfo, in KiB.
fn meminfo_available_kib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    status_kib(&text, "MemAvailable:")
}

/// A `NAME:  N kB` line's N.
fn status_kib(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The least headroom (limit minus usage, in bytes) of this process's
/// memory control group and its ancestors, cgroup v2 or v1.
fn cgroup_headroom() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mut least: Option<u64> = None;
    for line in text.lines() {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        let (root, limit, usage) = if controllers.is_empty() {
            ("/sys/fs/cgroup", "memory.max", "memory.current")
        } else if controllers.split(',').any(|c| c == "memory") {
            (
                "/sys/fs/cgroup/memory",
                "memory.limit_in_bytes",
                "memory.usage_in_bytes",
            )
        } else {
            continue;
        };
        // Every ancestor's limit applies; one missing from this mount
        // namespace is skipped.
        let mut dir = Some(Path::new(path.trim_start_matches('/')));
        while let Some(d) = dir {
            let folder = Path::new(root).join(d);
            let read = |file: &str| std::fs::read_to_string(folder.join(file)).ok();
            if let (Some(limit), Some(usage)) = (read(limit), read(usage)) {
                if let (Ok(limit), Ok(usage)) =
                    (limit.trim().parse::<u64>(), usage.trim().parse::<u64>())
                {
                    let room = limit.saturating_sub(usage);
                    least = Some(least.map_or(room, |l| l.min(room)));
                }
            }
            dir = d.parent();
        }
    }
    least
}

/// The soft resource limit `limit` (a row of /proc/self/limits) minus the
/// process's `usage` (a row of /proc/self/status, in KiB), in bytes; None
/// when unlimited.
fn rlimit_headroom(limit: &str, usage: &str) -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let row = limits.lines().find(|l| l.starts_with(limit))?;
    let soft: u64 = row[limit.len()..].split_whitespace().next()?.parse().ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let used = status_kib(&status, usage)?.saturating_mul(1024);
    Some(soft.saturating_sub(used))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_is_positive_and_within_the_machine() {
        let (mib, what) = available_mib().expect("Linux has /proc/meminfo");
        let machine = meminfo_available_kib().unwrap() as f64 / 1024.0;
        assert!(mib > 0.0 && mib <= machine, "{mib} MiB {what}");
    }

    #[test]
    fn status_rows_are_read_in_kib() {
        let text = "Name:\tx\nVmData:\t  123456 kB\n";
        assert_eq!(status_kib(text, "VmData:"), Some(123456));
        assert_eq!(status_kib(text, "VmSize:"), None);
    }
}
