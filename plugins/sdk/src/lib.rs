//! Write nas-host plugins as plain Rust traits.
//!
//! A plugin crate is a `cdylib` built for `wasm32-wasip2`. It enables exactly
//! one feature of this crate, `strategy` or `search-space`, implements the
//! matching trait ([`Strategy`] or [`SearchSpace`]) and calls one export macro:
//!
//! ```ignore
//! use nas_plugin_sdk::*;
//!
//! struct First { dims: Vec<Dimension>, rng: Rng }
//!
//! impl Strategy for First {
//!     const NAME: &'static str = "first";
//!     const DESCRIPTION: &'static str = "Proposes random points";
//!     fn init(setup: StrategySetup) -> Result<Self, String> {
//!         Ok(First { dims: setup.dimensions, rng: Rng::new(setup.seed) })
//!     }
//!     fn ask(&mut self, max: u32) -> Result<Vec<Proposal>, String> {
//!         Ok((0..max).map(|_| Proposal::new(sample(&self.dims, &mut self.rng))).collect())
//!     }
//! }
//!
//! export_strategy!(First);
//! ```
//!
//! The SDK gives a seeded [`Rng`] (plugins must not use WASI randomness), a
//! [`Config`] reader that names bad keys, helpers that sample, enumerate,
//! mutate and check assignments while respecting domains and conditions
//! ([`space`]), and a [`NetworkBuilder`] for search spaces.

#[cfg(all(feature = "strategy", feature = "search-space"))]
compile_error!("nas-plugin-sdk: enable exactly one of the features `strategy` and `search-space`: a component exports one world");
#[cfg(not(any(feature = "strategy", feature = "search-space")))]
compile_error!("nas-plugin-sdk: enable one of the features `strategy` or `search-space`");

/// Bindings generated from `wit/v0.1.0` for the world this build exports.
#[doc(hidden)]
pub mod bindings {
    #[cfg(feature = "strategy")]
    wit_bindgen::generate!({
        path: "../../wit/v0.1.0",
        world: "nas:plugin/strategy-plugin@0.1.0",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "nas_plugin_sdk::bindings",
        additional_derives: [PartialEq],
    });
    #[cfg(feature = "search-space")]
    wit_bindgen::generate!({
        path: "../../wit/v0.1.0",
        world: "nas:plugin/search-space-plugin@0.1.0",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "nas_plugin_sdk::bindings",
        additional_derives: [PartialEq],
    });
}

mod config;
#[cfg(feature = "strategy")]
pub mod fidelity;
mod network;
pub mod numeric;
mod rng;
#[doc(hidden)]
pub mod runtime;
pub mod space;
#[cfg(feature = "strategy")]
pub mod tpe;

pub use bindings::nas::plugin::types::*;
pub use config::Config;
pub use network::NetworkBuilder;
pub use rng::Rng;
pub use space::{mutate, sample, validate};

/// What a strategy's `init` receives.
pub struct StrategySetup {
    /// The search space's dimensions, parents before their conditional children.
    pub dimensions: Vec<Dimension>,
    /// What the run optimises; at least one.
    pub objectives: Vec<Objective>,
    /// The strategy's config table, already checked against [`Strategy::config_keys`].
    pub config: Config,
    /// The run's strategy seed: the only source of randomness.
    pub seed: u64,
}

/// A search strategy. Implement this and call [`export_strategy!`].
pub trait Strategy: Sized + 'static {
    /// Short name, as users write it after `builtin:` or in listings.
    const NAME: &'static str;
    /// One line for `nas-host plugins`.
    const DESCRIPTION: &'static str;
    /// The config keys this strategy reads, with defaults and help.
    fn config_keys() -> Vec<ConfigKey> {
        Vec::new()
    }
    /// Called once before anything else.
    fn init(setup: StrategySetup) -> Result<Self, String>;
    /// Up to `max` proposals; an empty list means finished.
    fn ask(&mut self, max: u32) -> Result<Vec<Proposal>, String>;
    /// Results of earlier proposals, in any order. Ignoring them is allowed
    /// (random and grid search do).
    fn tell(&mut self, results: Vec<TrialResult>) -> Result<(), String> {
        let _ = results;
        Ok(())
    }
}

/// A search space. Implement this and call [`export_search_space!`].
pub trait SearchSpace: Sized + 'static {
    /// Short name, as users write it after `builtin:` or in listings.
    const NAME: &'static str;
    /// One line for `nas-host plugins`.
    const DESCRIPTION: &'static str;
    /// The config keys this space reads, with defaults and help.
    fn config_keys() -> Vec<ConfigKey> {
        Vec::new()
    }
    /// Reads the config for this task; returns the space and its dimensions.
    fn init(config: Config, task: Task) -> Result<(Self, Vec<Dimension>), String>;
    /// The network for an assignment of the active dimensions.
    fn build(&self, assignment: &Assignment) -> Result<Network, String>;
}

impl Proposal {
    /// A proposal of `assignment` with the run's default budget, no resume and no tag.
    pub fn new(assignment: Assignment) -> Self {
        Proposal {
            assignment,
            budget: None,
            resume_from: None,
            tag: String::new(),
        }
    }
}

/// The objective's value in a completed result, signed so that larger is
/// better; `None` for results that did not complete or lack the metric.
pub fn score(result: &TrialResult, objective: &Objective) -> Option<f64> {
    if result.status != TrialStatus::Completed {
        return None;
    }
    let value = result
        .metrics
        .iter()
        .find(|m| m.name == objective.metric)?
        .value;
    let signed = if objective.direction == Direction::Maximize {
        value
    } else {
        -value
    };
    signed.is_finite().then_some(signed)
}

impl Activation {
    /// The activation named `name` (`relu`, `gelu`, `silu`, `tanh`, `sigmoid`, `leaky-relu`).
    pub fn from_name(name: &str) -> Option<Activation> {
        Some(match name {
            "relu" => Activation::Relu,
            "gelu" => Activation::Gelu,
            "silu" => Activation::Silu,
            "tanh" => Activation::Tanh,
            "sigmoid" => Activation::Sigmoid,
            "leaky-relu" => Activation::LeakyRelu,
            _ => return None,
        })
    }
}

impl ConfigKey {
    /// A config key; `default` is JSON text such as `"5"` or `"[16, 32]"`.
    pub fn new(name: &str, default: &str, help: &str) -> Self {
        ConfigKey {
            name: name.into(),
            default: default.into(),
            help: help.into(),
        }
    }
}

/// Exports a [`Strategy`] implementation as this component's strategy.
#[cfg(feature = "strategy")]
#[macro_export]
macro_rules! export_strategy {
    ($t:ty) => {
        struct __NasPluginExport;
        impl $crate::bindings::exports::nas::plugin::metadata::Guest for __NasPluginExport {
            fn info() -> $crate::PluginInfo {
                $crate::PluginInfo {
                    name: <$t as $crate::Strategy>::NAME.into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    description: <$t as $crate::Strategy>::DESCRIPTION.into(),
                    config: <$t as $crate::Strategy>::config_keys(),
                }
            }
        }
        impl $crate::bindings::exports::nas::plugin::strategy::Guest for __NasPluginExport {
            fn init(
                dimensions: ::std::vec::Vec<$crate::Dimension>,
                objectives: ::std::vec::Vec<$crate::Objective>,
                config: ::std::string::String,
                seed: u64,
            ) -> ::std::result::Result<(), ::std::string::String> {
                $crate::runtime::strategy_init::<$t>(dimensions, objectives, config, seed)
            }
            fn ask(max: u32) -> ::std::result::Result<::std::vec::Vec<$crate::Proposal>, ::std::string::String> {
                $crate::runtime::strategy_ask::<$t>(max)
            }
            fn tell(results: ::std::vec::Vec<$crate::TrialResult>) -> ::std::result::Result<(), ::std::string::String> {
                $crate::runtime::strategy_tell::<$t>(results)
            }
        }
        $crate::bindings::export!(__NasPluginExport with_types_in $crate::bindings);
    };
}

/// Exports a [`SearchSpace`] implementation as this component's search space.
#[cfg(feature = "search-space")]
#[macro_export]
macro_rules! export_search_space {
    ($t:ty) => {
        struct __NasPluginExport;
        impl $crate::bindings::exports::nas::plugin::metadata::Guest for __NasPluginExport {
            fn info() -> $crate::PluginInfo {
                $crate::PluginInfo {
                    name: <$t as $crate::SearchSpace>::NAME.into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    description: <$t as $crate::SearchSpace>::DESCRIPTION.into(),
                    config: <$t as $crate::SearchSpace>::config_keys(),
                }
            }
        }
        impl $crate::bindings::exports::nas::plugin::search_space::Guest for __NasPluginExport {
            fn init(
                config: ::std::string::String,
                task: $crate::Task,
            ) -> ::std::result::Result<::std::vec::Vec<$crate::Dimension>, ::std::string::String> {
                $crate::runtime::space_init::<$t>(config, task)
            }
            fn build(assignment: $crate::Assignment) -> ::std::result::Result<$crate::Network, ::std::string::String> {
                $crate::runtime::space_build::<$t>(assignment)
            }
        }
        $crate::bindings::export!(__NasPluginExport with_types_in $crate::bindings);
    };
}
