//! Keeps freed memory in the process for reuse. glibc's malloc serves blocks
//! above its threshold (128 KiB at first, up to 32 MiB as it adapts) with
//! fresh `mmap`s and returns freed memory to the kernel, so every training
//! step's activations and gradients (megabytes each, allocated and freed
//! every step) were page-faulted and zero-filled by the kernel again: at
//! batch 128 that was more than half of the seed-template network's step.
//! Raising both thresholds makes malloc reuse those pages; the cost is that
//! the process keeps its peak heap until it exits.

/// Allocations above this still get their own mapping (1 GiB).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 1 << 30;

/// Asks malloc once per process to keep freed memory; true when it accepted
/// (always false off glibc, where nothing is changed). [`super::train`] and
/// [`super::evaluate`] call it; code that trains by other means can too.
pub fn keep_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ACCEPTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *ACCEPTED.get_or_init(|| {
            // SAFETY: mallopt only sets allocator parameters; it takes malloc's own locks.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                    && libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX) == 1
            }
        })
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    false
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_accepts_the_thresholds() {
        assert!(super::keep_freed_memory());
    }
}
