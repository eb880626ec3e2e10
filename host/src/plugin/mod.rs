//! Loads strategy and search-space plugins (WebAssembly components) and runs
//! each in its own sandbox: no files, environment, sockets or name lookup, a
//! memory cap, and a wall-clock deadline per call ([`PluginLimits`]).

pub mod builtin;
mod cache;
pub mod gate;
mod instance;
mod limits;
mod log;
mod sandbox;
mod space;
mod strategy;
mod v0_1_0;

pub use cache::ComponentCache;
pub use instance::Plugin;
pub use limits::PluginLimits;
pub use space::SpacePlugin;
pub use strategy::StrategyPlugin;

use anyhow::{bail, Context, Result};
use sandbox::{SandboxState, EPOCH_TICK};
use std::fmt;
use std::path::PathBuf;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine};

/// Where a plugin comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginSource {
    /// A plugin embedded in the binary, written `builtin:NAME`.
    Builtin(String),
    /// A component file.
    File(PathBuf),
}

impl PluginSource {
    /// Parses `builtin:NAME` or a file path.
    pub fn parse(text: &str) -> Result<Self> {
        match text.strip_prefix("builtin:") {
            Some(name) => {
                if builtin::bytes(name).is_none() {
                    bail!(
                        "there is no built-in plugin `{name}`; built-ins: {}",
                        builtin_list()
                    );
                }
                Ok(PluginSource::Builtin(name.to_string()))
            }
            None => Ok(PluginSource::File(PathBuf::from(text))),
        }
    }

    /// A short name for logs and errors.
    pub fn display_name(&self) -> String {
        match self {
            PluginSource::Builtin(name) => name.clone(),
            PluginSource::File(path) => path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string()),
        }
    }
}

impl fmt::Display for PluginSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginSource::Builtin(name) => write!(f, "builtin:{name}"),
            PluginSource::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// The WIT package name plugins export from.
const PACKAGE: &str = "nas:plugin";

/// The contract versions this host supports, one module each.
const SUPPORTED_VERSIONS: &[&str] = &[v0_1_0::VERSION];

/// The largest component file read (the biggest real ones, Python and
/// JavaScript runtimes, are tens of MiB).
const MAX_COMPONENT_BYTES: u64 = 512 << 20;

/// Reads a component file: a regular file (never a FIFO or a device, which
/// could block or never end) of at most [`MAX_COMPONENT_BYTES`].
fn read_component_file(path: &std::path::Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read plugin file {}", path.display()))?;
    if !meta.is_file() {
        bail!(
            "plugin file {} is not a regular file; give the path of a component (.wasm)",
            path.display()
        );
    }
    let too_big = || {
        anyhow::anyhow!(
            "plugin file {} is over {} MiB, the largest component nas-host reads",
            path.display(),
            MAX_COMPONENT_BYTES >> 20
        )
    };
    if meta.len() > MAX_COMPONENT_BYTES {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_COMPONENT_BYTES + 1).read_to_end(&mut bytes))
        .with_context(|| format!("cannot read plugin file {}", path.display()))?;
    if bytes.len() as u64 > MAX_COMPONENT_BYTES {
        return Err(too_big());
    }
    Ok(bytes)
}

fn builtin_list() -> String {
    builtin::names()
        .map(|n| format!("builtin:{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The world a component exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginKind {
    /// Exports `nas:plugin/strategy` (world `strategy-plugin`).
    Strategy,
    /// Exports `nas:plugin/search-space` (world `search-space-plugin`).
    SearchSpace,
}

impl PluginKind {
    /// The WIT world's name.
    pub fn world(self) -> &'static str {
        match self {
            PluginKind::Strategy => "strategy-plugin",
            PluginKind::SearchSpace => "search-space-plugin",
        }
    }

    fn interface(self) -> &'static str {
        match self {
            PluginKind::Strategy => "strategy",
            PluginKind::SearchSpace => "search-space",
        }
    }

    /// What the world exports, at a given package version.
    fn expected_exports(self, version: &str) -> [String; 2] {
        [
            format!("{PACKAGE}/metadata@{version}"),
            format!("{PACKAGE}/{}@{version}", self.interface()),
        ]
    }
}

/// A compiled component whose world is known.
pub struct LoadedComponent {
    /// Where it came from.
    pub source: PluginSource,
    /// The world it exports.
    pub kind: PluginKind,
    /// The WIT package version it targets.
    pub version: &'static str,
    component: Component,
}

/// Compiles, checks and instantiates plugins. One runtime serves a whole run.
pub struct PluginRuntime {
    engine: Engine,
    linker: Linker<SandboxState>,
    limits: PluginLimits,
    cache: Option<ComponentCache>,
}

impl PluginRuntime {
    /// A runtime with these limits and compiled-component cache (`None`: compile every time).
    pub fn new(limits: PluginLimits, cache: Option<ComponentCache>) -> Result<Self> {
        limits.validate()?;
        let mut config = Config::new();
        config.epoch_interruption(true).wasm_component_model(true);
        let engine = Engine::new(&config)
            .map_err(anyhow::Error::from)
            .context("create the WebAssembly engine")?;
        spawn_epoch_ticker(&engine)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(anyhow::Error::from)
            .context("add WASI to the plugin linker")?;
        Ok(PluginRuntime {
            engine,
            linker,
            limits,
            cache,
        })
    }

    /// Reads, compiles and checks the component at `source`, refusing files
    /// that are not components and components of an unknown world or version.
    pub fn load(&self, source: &PluginSource) -> Result<LoadedComponent> {
        let owned;
        let bytes: &[u8] = match source {
            PluginSource::Builtin(name) => builtin::bytes(name).with_context(|| {
                format!(
                    "there is no built-in plugin `{name}`; built-ins: {}",
                    builtin_list()
                )
            })?,
            PluginSource::File(path) => {
                owned = read_component_file(path)?;
                &owned
            }
        };
        check_header(source, bytes)?;
        let component = match &self.cache {
            Some(cache) => cache.load(&self.engine, bytes),
            None => Component::new(&self.engine, bytes).map_err(anyhow::Error::from),
        }
        .with_context(|| format!("plugin {source} is not a valid WebAssembly component"))?;
        let (kind, version) = self.identify(source, &component)?;
        Ok(LoadedComponent {
            source: source.clone(),
            kind,
            version,
            component,
        })
    }

    /// Finds the world and version a component exports from its export names.
    fn identify(
        &self,
        source: &PluginSource,
        component: &Component,
    ) -> Result<(PluginKind, &'static str)> {
        let exports: Vec<String> = component
            .component_type()
            .exports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        for kind in [PluginKind::Strategy, PluginKind::SearchSpace] {
            for version in SUPPORTED_VERSIONS {
                if kind
                    .expected_exports(version)
                    .iter()
                    .all(|e| exports.contains(e))
                {
                    return Ok((kind, version));
                }
            }
        }
        let supported = SUPPORTED_VERSIONS
            .iter()
            .map(|v| format!("{PACKAGE}@{v}"))
            .collect::<Vec<_>>()
            .join(", ");
        let prefix = format!("{PACKAGE}/");
        if let Some(other) = exports.iter().find(|e| e.starts_with(&prefix)) {
            let version = other
                .rsplit_once('@')
                .map(|(_, v)| v)
                .unwrap_or("(no version)");
            bail!(
                "plugin {source} targets {PACKAGE}@{version} (it exports `{other}`), which this nas-host does not support; \
                 supported versions: {supported}. Rebuild the plugin against a supported WIT package or upgrade nas-host."
            );
        }
        let shown = if exports.is_empty() {
            "nothing".to_string()
        } else {
            exports.join(", ")
        };
        bail!(
            "plugin {source} exports {shown}, but a nas-host plugin must export the world `strategy-plugin` \
             ({}) or `search-space-plugin` ({}); supported versions: {supported}",
            PluginKind::Strategy.expected_exports(SUPPORTED_VERSIONS[0]).join(" and "),
            PluginKind::SearchSpace.expected_exports(SUPPORTED_VERSIONS[0]).join(" and "),
        )
    }

    /// Loads `source` and starts it as a strategy.
    pub fn strategy(&self, source: &PluginSource) -> Result<StrategyPlugin> {
        self.start(source, PluginKind::Strategy, |store, component, linker| {
            v0_1_0::strategy_world::StrategyPlugin::instantiate(store, component, linker)
        })
    }

    /// Loads `source` and starts it as a search space.
    pub fn search_space(&self, source: &PluginSource) -> Result<SpacePlugin> {
        self.start(
            source,
            PluginKind::SearchSpace,
            |store, component, linker| {
                v0_1_0::space_world::SearchSpacePlugin::instantiate(store, component, linker)
            },
        )
    }

    /// Loads `source`, checks that it is a `kind` plugin, and starts it with
    /// `instantiate` (its world's generated bindings).
    fn start<B>(
        &self,
        source: &PluginSource,
        kind: PluginKind,
        instantiate: impl FnOnce(
            &mut wasmtime::Store<SandboxState>,
            &Component,
            &Linker<SandboxState>,
        ) -> wasmtime::Result<B>,
    ) -> Result<Plugin<B>> {
        let loaded = self.load(source)?;
        self.expect_kind(&loaded, kind)?;
        Plugin::start(&self.engine, &self.limits, &loaded, |store, component| {
            instantiate(store, component, &self.linker)
        })
    }

    fn expect_kind(&self, loaded: &LoadedComponent, want: PluginKind) -> Result<()> {
        if loaded.kind != want {
            bail!(
                "plugin {} is a {} plugin, but it was given where a {} plugin is expected",
                loaded.source,
                loaded.kind.world(),
                want.world()
            );
        }
        Ok(())
    }
}

/// Refuses what is not WebAssembly, and core modules, with a message that
/// says what the file is.
fn check_header(source: &PluginSource, bytes: &[u8]) -> Result<()> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        bail!("plugin {source} is not a WebAssembly file (it does not start with the `\\0asm` magic bytes)");
    }
    // Core modules have layer 0 (bytes 6..8); components have layer 1.
    if bytes[6..8] == [0, 0] {
        bail!(
            "plugin {source} is a core WebAssembly module, not a component; build it for the \
             wasm32-wasip2 target (or wrap it with `wasm-tools component new`)"
        );
    }
    Ok(())
}

/// Advances the engine's epoch every [`EPOCH_TICK`] so call deadlines fire;
/// the thread ends when the engine is dropped.
fn spawn_epoch_ticker(engine: &Engine) -> Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("nas-plugin-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .context("start the plugin deadline thread")?;
    Ok(())
}
