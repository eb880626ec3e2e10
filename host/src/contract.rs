//! The plugin contract's types (WIT package `nas:plugin@0.1.0`, in
//! `wit/v0.1.0/`) as Rust values: networks, dimensions, assignments,
//! proposals and trial results. Every layer of the host speaks these types, so
//! what a plugin returns is what the trainer compiles and the store records.

#![allow(missing_docs)] // Generated code; the WIT file documents every item.

/// Bindings of the `strategy-plugin` world; they also define the shared types.
pub(crate) mod strategy_world {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1.0",
        world: "nas:plugin/strategy-plugin@0.1.0",
        additional_derives: [serde::Serialize, serde::Deserialize, PartialEq],
    });
}

/// Bindings of the `search-space-plugin` world, sharing the types above.
pub(crate) mod space_world {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1.0",
        world: "nas:plugin/search-space-plugin@0.1.0",
        with: { "nas:plugin/types": super::strategy_world::nas::plugin::types },
    });
}

pub use strategy_world::nas::plugin::types::*;

/// The WIT package versions this host supports.
pub const SUPPORTED_VERSIONS: &[&str] = &["0.1.0"];

/// The WIT package name plugins export from.
pub const PACKAGE: &str = "nas:plugin";

impl Task {
    /// Parses `CxHxW:CLASSES`, for example `1x28x28:10`.
    pub fn parse(text: &str) -> anyhow::Result<Task> {
        let parse = || -> Option<Task> {
            let (shape, classes) = text.split_once(':')?;
            let dims: Vec<u32> = shape
                .split('x')
                .map(|p| p.trim().parse().ok())
                .collect::<Option<_>>()?;
            let [channels, height, width] = dims[..] else {
                return None;
            };
            Some(Task {
                channels,
                height,
                width,
                num_classes: classes.trim().parse().ok()?,
            })
        };
        match parse() {
            Some(t) if t.channels > 0 && t.height > 0 && t.width > 0 && t.num_classes > 1 => Ok(t),
            _ => anyhow::bail!("task `{text}` must look like CHANNELSxHEIGHTxWIDTH:CLASSES, for example 1x28x28:10"),
        }
    }
}
