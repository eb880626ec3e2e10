//! One plugin instance's store: WASI with nothing reachable, a memory cap, a
//! per-call deadline, and the call wrapper that turns traps, timeouts and
//! memory overruns into errors naming the plugin and the call.

use super::log::PluginLog;
use super::PluginLimits;
use anyhow::{anyhow, Result};
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// How often the engine's epoch advances; deadlines are counted in these ticks.
pub(crate) const EPOCH_TICK: std::time::Duration = std::time::Duration::from_millis(10);

/// The host state of one plugin instance.
pub(crate) struct SandboxState {
    wasi: WasiCtx,
    table: ResourceTable,
    memory: MemoryCap,
}

impl WasiView for SandboxState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Refuses memory growth past the cap and remembers that it did, so the
/// resulting trap can be reported as a memory overrun.
struct MemoryCap {
    max_bytes: usize,
    max_table_elements: usize,
    refused: Option<usize>,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.refused = Some(desired);
            return Err(wasmtime::Error::msg("memory limit reached"));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.max_table_elements)
    }
}

/// A plugin's store and the bookkeeping around its calls.
pub(crate) struct Sandbox {
    /// The plugin's display name (built-in name or file name).
    pub(crate) name: String,
    pub(crate) store: Store<SandboxState>,
    limits: PluginLimits,
    log: PluginLog,
    /// Set after a trap: a trapped instance must not be entered again.
    broken: Option<String>,
}

/// Bytes WASI randomness returns, cycled: fixed so that plugins stay
/// deterministic even when they (or their language runtime, for hash maps)
/// read WASI randomness.
fn fixed_random_bytes() -> Vec<u8> {
    let mut x: u64 = 0x6E61_732D_686F_7374;
    (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

impl Sandbox {
    pub(crate) fn new(engine: &wasmtime::Engine, name: &str, limits: &PluginLimits) -> Self {
        let log = PluginLog::new(name);
        // Nothing is granted: no preopened directories, environment, arguments,
        // stdin, sockets or name lookup (WasiCtxBuilder's defaults, stated here).
        let wasi = WasiCtxBuilder::new()
            .stdout(log.clone())
            .stderr(log.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .secure_random(wasmtime_wasi::Deterministic::new(fixed_random_bytes()))
            .insecure_random(wasmtime_wasi::Deterministic::new(fixed_random_bytes()))
            .insecure_random_seed(0)
            .build();
        let state = SandboxState {
            wasi,
            table: ResourceTable::new(),
            memory: MemoryCap {
                max_bytes: limits.memory_bytes(),
                max_table_elements: limits.table_elements(),
                refused: None,
            },
        };
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.memory);
        store.epoch_deadline_trap();
        Sandbox {
            name: name.to_string(),
            store,
            limits: limits.clone(),
            log,
            broken: None,
        }
    }

    /// The limits the instance runs under.
    pub(crate) fn limits(&self) -> &PluginLimits {
        &self.limits
    }

    /// Whether the instance can still be called (it has not trapped).
    pub(crate) fn is_usable(&self) -> bool {
        self.broken.is_none()
    }

    /// Starts the call deadline and clears the memory-overrun mark; done
    /// before every entry into the guest, instantiation included.
    pub(crate) fn arm_deadline(&mut self) {
        let ticks = (self.limits.call_timeout().as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        self.store.set_epoch_deadline(ticks);
        self.store.data_mut().memory.refused = None;
    }

    /// Runs one call of the plugin under its deadline. `call` is the WIT
    /// function's name, used in errors; the closure's outer error is a trap,
    /// its inner `Err(String)` the plugin's own refusal.
    pub(crate) fn call<R>(
        &mut self,
        call: &str,
        f: impl FnOnce(&mut Store<SandboxState>) -> wasmtime::Result<Result<R, String>>,
    ) -> Result<R> {
        if let Some(why) = &self.broken {
            return Err(anyhow!(
                "plugin `{}` cannot run `{call}`: it stopped working earlier ({why})",
                self.name
            ));
        }
        self.arm_deadline();
        let outcome = f(&mut self.store);
        self.log.flush_pending();
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(message)) => Err(anyhow!(
                "plugin `{}` returned an error from `{call}`: {}",
                self.name,
                super::gate::clipped(&self.limits, &message)
            )),
            Err(trap) => {
                let error = self.describe_trap(call, trap);
                self.broken = Some(format!("{error:#}"));
                Err(error)
            }
        }
    }

    fn describe_trap(&self, call: &str, trap: wasmtime::Error) -> anyhow::Error {
        let name = &self.name;
        if let Some(desired) = self.store.data().memory.refused {
            return anyhow!(
                "plugin `{name}` exceeded its memory limit in `{call}`: it asked for {} MiB, the limit is {} MiB \
                 (raise `memory_mib` in the run's [plugins] table if the plugin really needs it)",
                desired.div_ceil(1 << 20),
                self.limits.memory_mib
            );
        }
        if trap.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            return anyhow!(
                "plugin `{name}` ran past its deadline of {} s in `{call}` and was stopped \
                 (raise `call_timeout_s` in the run's [plugins] table if the plugin is just slow)",
                self.limits.call_timeout_s
            );
        }
        anyhow!("plugin `{name}` trapped in `{call}`: {trap:#}")
    }
}
