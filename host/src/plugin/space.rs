//! A running search-space plugin: `info`, `init` and `build` through its sandbox.

use super::sandbox::{Sandbox, SandboxState};
use super::{LoadedComponent, PluginLimits};
use crate::contract::space_world::SearchSpacePlugin as Bindings;
use crate::contract::{Binding, Dimension, Network, PluginInfo, Task};
use anyhow::{Context, Result};
use wasmtime::component::Linker;
use wasmtime::Engine;

/// A search-space plugin instance.
pub struct SpacePlugin {
    sandbox: Sandbox,
    bindings: Bindings,
}

impl SpacePlugin {
    pub(crate) fn instantiate(
        engine: &Engine,
        linker: &Linker<SandboxState>,
        limits: &PluginLimits,
        loaded: &LoadedComponent,
    ) -> Result<Self> {
        let mut sandbox = Sandbox::new(engine, &loaded.source.display_name(), limits);
        sandbox.arm_deadline();
        let bindings = Bindings::instantiate(&mut sandbox.store, &loaded.component, linker)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("cannot start plugin {} (the sandbox provides WASI 0.2 without files, network or environment)", loaded.source))?;
        Ok(SpacePlugin { sandbox, bindings })
    }

    /// Whether the plugin can still be called: false after a trap, a timeout
    /// or a memory overrun (its own returned errors leave it usable).
    pub fn is_usable(&self) -> bool {
        self.sandbox.is_usable()
    }

    /// The plugin's name as shown in errors and logs.
    pub fn name(&self) -> &str {
        &self.sandbox.name
    }

    /// The plugin's self-description.
    pub fn info(&mut self) -> Result<PluginInfo> {
        let b = &self.bindings;
        self.sandbox
            .call("info", |s| b.nas_plugin_metadata().call_info(s).map(Ok))
    }

    /// Configures the space for a task and returns its dimensions.
    pub fn init(&mut self, config_json: &str, task: Task) -> Result<Vec<Dimension>> {
        let b = &self.bindings;
        self.sandbox.call("init", |s| {
            b.nas_plugin_search_space().call_init(s, config_json, task)
        })
    }

    /// The network an assignment describes.
    pub fn build(&mut self, assignment: &[Binding]) -> Result<Network> {
        let b = &self.bindings;
        let assignment = assignment.to_vec();
        self.sandbox.call("build", |s| {
            b.nas_plugin_search_space().call_build(s, &assignment)
        })
    }
}
