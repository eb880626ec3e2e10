//! Reads a plugin's config table (JSON text from the host) against the keys
//! the plugin declares, so every error names the plugin, the key and the fix.

use crate::ConfigKey;
use serde_json::{Map, Value};

/// A plugin's config: the user's values over the declared defaults.
#[derive(Debug)]
pub struct Config {
    plugin: &'static str,
    keys: Vec<ConfigKey>,
    values: Map<String, Value>,
}

impl Config {
    /// Parses `json` (an object) and refuses keys that are not declared.
    pub fn parse(json: &str, plugin: &'static str, keys: Vec<ConfigKey>) -> Result<Self, String> {
        let text = if json.trim().is_empty() { "{}" } else { json };
        let values = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            Ok(other) => {
                return Err(format!(
                    "plugin `{plugin}`: config must be a table, got {other}"
                ))
            }
            Err(e) => return Err(format!("plugin `{plugin}`: config is not valid JSON: {e}")),
        };
        for name in values.keys() {
            if !keys.iter().any(|k| &k.name == name) {
                let valid: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
                return Err(match nearest(name, &valid) {
                    Some(near) => format!("plugin `{plugin}`: unknown config key `{name}`; did you mean `{near}`?"),
                    None if valid.is_empty() => format!("plugin `{plugin}`: unknown config key `{name}`; this plugin takes no config keys"),
                    None => format!("plugin `{plugin}`: unknown config key `{name}`; valid keys: {}", valid.join(", ")),
                });
            }
        }
        Ok(Config {
            plugin,
            keys,
            values,
        })
    }

    fn raw(&self, name: &str) -> Result<Value, String> {
        if let Some(v) = self.values.get(name) {
            return Ok(v.clone());
        }
        let key = self.keys.iter().find(|k| k.name == name).ok_or_else(|| {
            format!(
                "plugin `{}` reads config key `{name}` but does not declare it (a plugin bug)",
                self.plugin
            )
        })?;
        serde_json::from_str(&key.default).map_err(|e| {
            format!(
                "plugin `{}`: default of `{name}` is not JSON ({e}) (a plugin bug)",
                self.plugin
            )
        })
    }

    fn wrong(&self, name: &str, want: &str, got: &Value) -> String {
        format!(
            "plugin `{}`: config key `{name}` must be {want}, got {got}",
            self.plugin
        )
    }

    /// The raw JSON value, for plugins with structured config (the declared
    /// default when the user gave none).
    pub fn json(&self, name: &str) -> Result<Value, String> {
        self.raw(name)
    }

    /// A non-negative integer.
    pub fn u64(&self, name: &str) -> Result<u64, String> {
        let v = self.raw(name)?;
        v.as_u64()
            .ok_or_else(|| self.wrong(name, "a non-negative integer", &v))
    }

    /// A number.
    pub fn f64(&self, name: &str) -> Result<f64, String> {
        let v = self.raw(name)?;
        v.as_f64().ok_or_else(|| self.wrong(name, "a number", &v))
    }

    /// `true` or `false`.
    pub fn bool(&self, name: &str) -> Result<bool, String> {
        let v = self.raw(name)?;
        v.as_bool()
            .ok_or_else(|| self.wrong(name, "true or false", &v))
    }

    /// A string.
    pub fn string(&self, name: &str) -> Result<String, String> {
        let v = self.raw(name)?;
        v.as_str()
            .map(str::to_owned)
            .ok_or_else(|| self.wrong(name, "a string", &v))
    }

    /// Whether the key's value is an empty list (a default meaning "none").
    pub fn is_empty_list(&self, name: &str) -> Result<bool, String> {
        Ok(self.raw(name)?.as_array().is_some_and(|a| a.is_empty()))
    }

    /// A non-empty list of non-negative integers.
    pub fn u64_list(&self, name: &str) -> Result<Vec<u64>, String> {
        let v = self.raw(name)?;
        v.as_array()
            .filter(|a| !a.is_empty())
            .and_then(|a| a.iter().map(Value::as_u64).collect::<Option<Vec<_>>>())
            .ok_or_else(|| self.wrong(name, "a non-empty list of non-negative integers", &v))
    }

    /// A non-empty list of strings.
    pub fn string_list(&self, name: &str) -> Result<Vec<String>, String> {
        let v = self.raw(name)?;
        v.as_array()
            .filter(|a| !a.is_empty())
            .and_then(|a| {
                a.iter()
                    .map(|x| x.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| self.wrong(name, "a non-empty list of strings", &v))
    }

    /// A non-empty list of numbers.
    pub fn f64_list(&self, name: &str) -> Result<Vec<f64>, String> {
        let v = self.raw(name)?;
        v.as_array()
            .filter(|a| !a.is_empty())
            .and_then(|a| a.iter().map(Value::as_f64).collect::<Option<Vec<_>>>())
            .ok_or_else(|| self.wrong(name, "a non-empty list of numbers", &v))
    }
}

/// The valid name `name` abbreviates, else the closest by edit distance when
/// close enough to be a typo.
fn nearest<'a>(name: &str, valid: &[&'a str]) -> Option<&'a str> {
    let prefix = valid
        .iter()
        .filter(|v| name.len() >= 3 && v.starts_with(name))
        .min_by_key(|v| v.len());
    prefix
        .or_else(|| {
            valid
                .iter()
                .map(|v| (strsim::levenshtein(name, v), v))
                .filter(|(d, v)| *d <= (v.len().max(name.len()) / 2).max(2))
                .min()
                .map(|(_, v)| v)
        })
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Vec<ConfigKey> {
        vec![ConfigKey::new(
            "real_points",
            "5",
            "points per real dimension",
        )]
    }

    #[test]
    fn defaults_apply_and_values_override() {
        assert_eq!(
            Config::parse("{}", "grid", keys())
                .unwrap()
                .u64("real_points")
                .unwrap(),
            5
        );
        assert_eq!(
            Config::parse(r#"{"real_points": 3}"#, "grid", keys())
                .unwrap()
                .u64("real_points")
                .unwrap(),
            3
        );
    }

    #[test]
    fn unknown_key_names_the_nearest_valid_one() {
        let e = Config::parse(r#"{"real_point": 3}"#, "grid", keys()).unwrap_err();
        assert!(
            e.contains("`real_point`") && e.contains("did you mean `real_points`"),
            "{e}"
        );
    }

    #[test]
    fn wrong_type_names_key_and_expected_type() {
        let c = Config::parse(r#"{"real_points": "many"}"#, "grid", keys()).unwrap();
        let e = c.u64("real_points").unwrap_err();
        assert!(
            e.contains("`real_points` must be a non-negative integer"),
            "{e}"
        );
    }
}
