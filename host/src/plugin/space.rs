//! A running search-space plugin: `info`, `init` and `build` through its sandbox.

use super::instance::Plugin;
use super::v0_1_0::space_world::SearchSpacePlugin as Bindings;
use super::v0_1_0::Convert;
use crate::ir::{Binding, Dimension, Network, PluginInfo, Task};
use anyhow::Result;

/// A search-space plugin instance.
pub type SpacePlugin = Plugin<Bindings>;

impl Plugin<Bindings> {
    /// The plugin's self-description.
    pub fn info(&mut self) -> Result<PluginInfo> {
        let b = &self.bindings;
        let info = self
            .sandbox
            .call("info", |s| b.nas_plugin_metadata().call_info(s).map(Ok))?;
        Ok(info.convert())
    }

    /// Configures the space for a task and returns its dimensions.
    pub fn init(&mut self, config_json: &str, task: Task) -> Result<Vec<Dimension>> {
        let b = &self.bindings;
        let task = task.convert();
        let dimensions = self.sandbox.call("init", |s| {
            b.nas_plugin_search_space().call_init(s, config_json, task)
        })?;
        let dimensions: Vec<Dimension> = dimensions.convert();
        super::gate::dimensions(self.sandbox.limits(), self.name(), &dimensions)?;
        Ok(dimensions)
    }

    /// The network an assignment describes.
    pub fn build(&mut self, assignment: &[Binding]) -> Result<Network> {
        let b = &self.bindings;
        let assignment: Vec<_> = assignment.to_vec().convert();
        let network = self.sandbox.call("build", |s| {
            b.nas_plugin_search_space().call_build(s, &assignment)
        })?;
        let network: Network = network.convert();
        super::gate::network(self.sandbox.limits(), self.name(), &network)?;
        Ok(network)
    }
}
