//! The compute device, chosen by one config value and threaded through: `cpu`,
//! or `cuda:N` in builds with the `cuda` feature.

use anyhow::{bail, Context, Result};
use candle_core::Device;

/// Opens the device named `name`.
pub fn parse(name: &str) -> Result<Device> {
    match name.trim() {
        "cpu" => Ok(Device::Cpu),
        other => match other
            .strip_prefix("cuda:")
            .or((other == "cuda").then_some("0"))
        {
            Some(index) => {
                let index: usize = index.parse().with_context(|| {
                    format!("device `{other}`: the CUDA index must be a number, as in cuda:0")
                })?;
                cuda(index)
            }
            None => bail!("device `{other}` is not known; use \"cpu\" or \"cuda:N\""),
        },
    }
}

#[cfg(feature = "cuda")]
fn cuda(index: usize) -> Result<Device> {
    Device::new_cuda(index).with_context(|| format!("cannot open CUDA device {index}"))
}

#[cfg(not(feature = "cuda"))]
fn cuda(index: usize) -> Result<Device> {
    bail!("device `cuda:{index}` needs CUDA support, and this nas-host was built without it; rebuild with `cargo build --release --features cuda` on a machine with the CUDA toolkit, or use device = \"cpu\"")
}
