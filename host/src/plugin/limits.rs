//! The limits of every plugin instance, as one value with defaults that a
//! run's `[plugins]` config table can override: the sandbox's (memory,
//! tables, deadline) and those on what a plugin returns (texts, dimensions,
//! labels, messages; checked by [`super::gate`]). Each has a ceiling, so no
//! config can lift a bound the host's own arithmetic relies on. A network's
//! structural limits are fixed, in [`crate::network::shape::LIMITS`].

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The largest `memory_mib` (1 TiB).
const MAX_MEMORY_MIB: u64 = 1 << 20;
/// The largest `call_timeout_s` (a day): a per-call deadline, not a run limit.
const MAX_CALL_TIMEOUT_S: f64 = 86_400.0;
/// The largest `table_elements`.
const MAX_TABLE_ELEMENTS: u64 = 1 << 30;
/// The largest `text_bytes` and `message_bytes` (1 MiB).
const MAX_TEXT_BYTES: u64 = 1 << 20;
/// The largest `dimensions`.
const MAX_DIMENSIONS: u64 = 1_000_000;
/// The largest `labels`.
const MAX_LABELS: u64 = 10_000_000;

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
    /// The longest name, label, network key or tag a plugin may return, in
    /// bytes (config key `text_bytes`).
    pub text_bytes: u64,
    /// The most dimensions a space may have (config key `dimensions`).
    pub dimensions: u64,
    /// The most labels of one categorical dimension (config key `labels`).
    pub labels: u64,
    /// Where a plugin's error message is cut, in bytes (config key
    /// `message_bytes`).
    pub message_bytes: u64,
}

impl Default for PluginLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl PluginLimits {
    /// The defaults.
    pub const DEFAULT: PluginLimits = PluginLimits {
        memory_mib: 256,
        call_timeout_s: 10.0,
        table_elements: 1 << 20,
        text_bytes: 4096,
        dimensions: 10_000,
        labels: 100_000,
        message_bytes: 4096,
    };

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
        if !(1..=MAX_MEMORY_MIB).contains(&self.memory_mib) {
            anyhow::bail!(
                "plugins.memory_mib = {} must be between 1 and {MAX_MEMORY_MIB} (default 256)",
                self.memory_mib
            );
        }
        if !(self.call_timeout_s > 0.0 && self.call_timeout_s <= MAX_CALL_TIMEOUT_S) {
            anyhow::bail!(
                "plugins.call_timeout_s = {} must be a positive number of seconds, at most {MAX_CALL_TIMEOUT_S} (default 10)",
                self.call_timeout_s
            );
        }
        if !(1..=MAX_TABLE_ELEMENTS).contains(&self.table_elements) {
            anyhow::bail!(
                "plugins.table_elements = {} must be between 1 and {MAX_TABLE_ELEMENTS} (default 1048576)",
                self.table_elements
            );
        }
        for (key, value, max, default) in [
            ("text_bytes", self.text_bytes, MAX_TEXT_BYTES, 4096),
            ("dimensions", self.dimensions, MAX_DIMENSIONS, 10_000),
            ("labels", self.labels, MAX_LABELS, 100_000),
            ("message_bytes", self.message_bytes, MAX_TEXT_BYTES, 4096),
        ] {
            if !(1..=max).contains(&value) {
                anyhow::bail!(
                    "plugins.{key} = {value} must be between 1 and {max} (default {default})"
                );
            }
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
                    call_timeout_s: 1e300,
                    ..PluginLimits::default()
                },
                "plugins.call_timeout_s",
            ),
            (
                PluginLimits {
                    memory_mib: u64::MAX,
                    ..PluginLimits::default()
                },
                "plugins.memory_mib",
            ),
            (
                PluginLimits {
                    table_elements: 0,
                    ..PluginLimits::default()
                },
                "plugins.table_elements",
            ),
            (
                PluginLimits {
                    text_bytes: 1 << 30,
                    ..PluginLimits::default()
                },
                "plugins.text_bytes",
            ),
            (
                PluginLimits {
                    dimensions: 0,
                    ..PluginLimits::default()
                },
                "plugins.dimensions",
            ),
            (
                PluginLimits {
                    labels: u64::MAX,
                    ..PluginLimits::default()
                },
                "plugins.labels",
            ),
            (
                PluginLimits {
                    message_bytes: 0,
                    ..PluginLimits::default()
                },
                "plugins.message_bytes",
            ),
        ];
        for (limits, key) in cases {
            let e = limits.validate().unwrap_err().to_string();
            assert!(e.contains(key), "{e}");
        }
    }
}
