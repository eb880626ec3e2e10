//! ReLU whose backward pass is one multiply-by-mask over the saved output,
//! instead of candle's chain of comparison, conversion and product tensors.

use super::record::Record;
use super::{contiguous_f32, zeros};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Elements per parallel task.
const CHUNK: usize = 1 << 14;

/// `max(x, 0)` on the CPU kernels.
pub fn relu(x: &Tensor, record: Record) -> Result<Tensor> {
    record.apply1(x.contiguous()?, Relu)
}

struct Relu;

impl CustomOp1 for Relu {
    fn name(&self) -> &'static str {
        "nas-relu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s, l, "relu input")?;
        let mut y = zeros::<f32>(x.len());
        y.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(y, x)| {
                y.iter_mut().zip(x).for_each(|(y, &x)| *y = x.max(0.0));
            });
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(relu_grad(dy, y, true)?))
    }
}

/// `max(v, 0)` for every element, in place: the ops that fuse a following
/// ReLU apply it to their output while it is still in the cache.
pub(crate) fn relu_in_place(y: &mut [f32]) {
    y.iter_mut().for_each(|v| *v = v.max(0.0));
}

/// The gradient before an op's output `y`, contiguous: with a (fused) ReLU,
/// `dy` where `y > 0`, else 0; without, `dy` itself.
pub(crate) fn relu_grad(dy: &Tensor, y: &Tensor, relu: bool) -> Result<Tensor> {
    let dy = dy.contiguous()?;
    if relu {
        dy.apply_op2_no_bwd(y, &ReluGrad)
    } else {
        Ok(dy)
    }
}

/// `dy` where the output was positive, else 0.
struct ReluGrad;

impl CustomOp2 for ReluGrad {
    fn name(&self) -> &'static str {
        "nas-relu-grad"
    }

    fn cpu_fwd(
        &self,
        ds: &CpuStorage,
        dl: &Layout,
        ys: &CpuStorage,
        yl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (dy, y) = (
            contiguous_f32(ds, dl, "relu output gradient")?,
            contiguous_f32(ys, yl, "relu output")?,
        );
        let mut dx = zeros::<f32>(dy.len());
        dx.par_chunks_mut(CHUNK)
            .zip(dy.par_chunks(CHUNK).zip(y.par_chunks(CHUNK)))
            .for_each(|(dx, (dy, y))| {
                for ((dx, &dy), &y) in dx.iter_mut().zip(dy).zip(y) {
                    *dx = if y > 0.0 { dy } else { 0.0 };
                }
            });
        Ok((CpuStorage::F32(dx), dl.shape().clone()))
    }
}
