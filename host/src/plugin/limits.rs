//! The sandbox limits of every plugin instance, as one value with defaults
//! that a run's `[plugins]` config table can override.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Limits applied to each plugin instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginLimits {
    /// Cap on the instance's linear memory, in MiB (config key `memory_mib`).
    pub memory_mib: u64,
    /// Wall-clock deadline of each call, in seconds (config key `call_timeout_s`).
    pub call_timeout_s: f64,
    /// Cap on the elements of each of the instance's tables (function
    /// references), config key `table_elements`.
    pub table_elements: u64,
}

impl Default for PluginLimits {
    fn default() -> Self {
        PluginLimits {
            memory_mib: 256,
            call_timeout_s: 10.0,
            table_elements: 1 << 20,
        }
    }
}

impl PluginLimits {
    /// The memory cap in bytes.
    pub fn memory_bytes(&self) -> usize {
        (self.memory_mib as usize).saturating_mul(1 << 20)
    }

    /// The table cap in elements.
    pub fn table_elements(&self) -> usize {
        usize::try_from(self.table_elements).unwrap_or(usize::MAX)
    }

    /// The per-call deadline.
    pub fn call_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.call_timeout_s.max(0.0))
    }

    /// Checks the values are usable.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.memory_mib == 0 {
            anyhow::bail!("plugins.memory_mib must be at least 1 (default 256)");
        }
        if !(self.call_timeout_s > 0.0 && self.call_timeout_s.is_finite()) {
            anyhow::bail!(
                "plugins.call_timeout_s must be a positive number of seconds (default 10)"
            );
        }
        if self.table_elements == 0 {
            anyhow::bail!("plugins.table_elements must be at least 1 (default 1048576)");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_limits_are_refused_naming_the_key() {
        assert!(PluginLimits::default().validate().is_ok());
        let cases = [
            (
                PluginLimits {
                    memory_mib: 0,
                    ..PluginLimits::default()
                },
                "plugins.memory_mib",
            ),
            (
                PluginLimits {
                    call_timeout_s: f64::NAN,
                    ..PluginLimits::default()
                },
                "plugins.call_timeout_s",
            ),
            (
                PluginLimits {
                    table_elements: 0,
                    ..PluginLimits::default()
                },
                "plugins.table_elements",
            ),
        ];
        for (limits, key) in cases {
            let e = limits.validate().unwrap_err().to_string();
            assert!(e.contains(key), "{e}");
        }
    }
}
