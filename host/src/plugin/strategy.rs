//! A running strategy plugin: `info`, `init`, `ask` and `tell` through its sandbox.

use super::instance::Plugin;
use super::v0_1_0::strategy_world::StrategyPlugin as Bindings;
use super::v0_1_0::Convert;
use crate::ir::{Dimension, Objective, PluginInfo, Proposal, TrialResult};
use anyhow::Result;

/// A strategy plugin instance.
pub type StrategyPlugin = Plugin<Bindings>;

impl Plugin<Bindings> {
    /// The plugin's self-description.
    pub fn info(&mut self) -> Result<PluginInfo> {
        let b = &self.bindings;
        let info = self
            .sandbox
            .call("info", |s| b.nas_plugin_metadata().call_info(s).map(Ok))?;
        Ok(info.convert())
    }

    /// Starts the strategy on a search space's dimensions.
    pub fn init(
        &mut self,
        dimensions: &[Dimension],
        objectives: &[Objective],
        config_json: &str,
        seed: u64,
    ) -> Result<()> {
        let b = &self.bindings;
        let dimensions: Vec<_> = dimensions.to_vec().convert();
        let objectives: Vec<_> = objectives.to_vec().convert();
        self.sandbox.call("init", |s| {
            b.nas_plugin_strategy()
                .call_init(s, &dimensions, &objectives, config_json, seed)
        })
    }

    /// Up to `max` proposals; empty means the strategy has finished.
    pub fn ask(&mut self, max: u32) -> Result<Vec<Proposal>> {
        let b = &self.bindings;
        let proposals = self
            .sandbox
            .call("ask", |s| b.nas_plugin_strategy().call_ask(s, max))?;
        if proposals.len() > max as usize {
            anyhow::bail!(
                "plugin `{}` returned {} proposals from `ask({max})`, more than asked for",
                self.name(),
                proposals.len()
            );
        }
        let proposals: Vec<Proposal> = proposals.convert();
        super::gate::proposals(self.sandbox.limits(), self.name(), &proposals)?;
        Ok(proposals)
    }

    /// Reports finished trials.
    pub fn tell(&mut self, results: &[TrialResult]) -> Result<()> {
        let b = &self.bindings;
        let results: Vec<_> = results.to_vec().convert();
        self.sandbox
            .call("tell", |s| b.nas_plugin_strategy().call_tell(s, &results))
    }
}
