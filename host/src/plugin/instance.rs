//! What every running plugin has, whatever its world: the sandbox it runs
//! in, its generated bindings, how it is started, and whether it can still
//! be called.

use super::sandbox::{Sandbox, SandboxState};
use super::{LoadedComponent, PluginLimits};
use anyhow::{Context, Result};
use wasmtime::component::Component;
use wasmtime::{Engine, Store};

/// A plugin instance with bindings `B` of its world (see
/// [`super::StrategyPlugin`] and [`super::SpacePlugin`] for the calls).
pub struct Plugin<B> {
    pub(super) sandbox: Sandbox,
    pub(super) bindings: B,
}

impl<B> Plugin<B> {
    /// Starts `loaded` in a new sandbox; `instantiate` makes the world's
    /// bindings (it runs guest code, so under the call deadline).
    pub(super) fn start(
        engine: &Engine,
        limits: &PluginLimits,
        loaded: &LoadedComponent,
        instantiate: impl FnOnce(&mut Store<SandboxState>, &Component) -> wasmtime::Result<B>,
    ) -> Result<Self> {
        let mut sandbox = Sandbox::new(engine, &loaded.source.display_name(), limits);
        sandbox.arm_deadline();
        let bindings = instantiate(&mut sandbox.store, &loaded.component)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("cannot start plugin {} (the sandbox provides WASI 0.2 without files, network or environment)", loaded.source))?;
        Ok(Plugin { sandbox, bindings })
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
}
