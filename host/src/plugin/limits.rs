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
}

impl Default for PluginLimits {
    fn default() -> Self {
        PluginLimits {
            memory_mib: 256,
            call_timeout_s: 10.0,
        }
    }
}

impl PluginLimits {
    /// The memory cap in bytes.
    pub fn memory_bytes(&self) -> usize {
        (self.memory_mib as usize).saturating_mul(1 << 20)
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
        Ok(())
    }
}
