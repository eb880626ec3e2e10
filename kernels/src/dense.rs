//! Dense (fully connected) layer: `x · wᵀ + b` and its three gradients as
//! whole-batch products over all threads, with an optional fused ReLU.
//! candle's matmul asked the operating system for the CPU count (it reads
//! `/proc/cpuinfo`) at every call, and its transpose, broadcast add and
//! their gradients were six more ops.

use super::activation::{relu_grad, relu_in_place};
use super::contiguous_f32;
use super::gemm::{matmul_threaded, View};
use super::record::Record;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};

/// `x (N x I) · wᵀ (w: O x I) + bias (O)`, then `max(·, 0)` when `relu`, on
/// the CPU kernels.
pub fn dense(x: &Tensor, w: &Tensor, bias: &Tensor, relu: bool, record: Record) -> Result<Tensor> {
    let input_grad = record.input_grad(x);
    record.apply3(
        x.contiguous()?,
        w.contiguous()?,
        bias.contiguous()?,
        Dense { relu, input_grad },
    )
}

struct Dense {
    relu: bool,
    /// Whether the input needs a gradient (the network's input needs none).
    input_grad: bool,
}

impl CustomOp3 for Dense {
    fn name(&self) -> &'static str {
        "nas-dense"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let ((n, i), (o, wi)) = (xl.shape().dims2()?, wl.shape().dims2()?);
        if i != wi || bl.shape().dims1()? != o {
            candle_core::bail!(
                "dense: input {:?}, weight {:?} and bias {:?} do not fit",
                xl.shape(),
                wl.shape(),
                bl.shape()
            );
        }
        let (x, w, b) = (
            contiguous_f32(xs, xl, "dense input")?,
            contiguous_f32(ws, wl, "dense weight")?,
            contiguous_f32(bs, bl, "dense bias")?,
        );
        let mut y = matmul_threaded(n, o, i, View::rows(x, i), View::transposed(w, i));
        for row in y.chunks_mut(o) {
            row.iter_mut().zip(b).for_each(|(v, b)| *v += b);
        }
        if self.relu {
            relu_in_place(&mut y);
        }
        Ok((CpuStorage::F32(y), Shape::from((n, o))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dy = relu_grad(dy, y, self.relu)?;
        let dx = if self.input_grad {
            Some(dy.apply_op2_no_bwd(w, &Grad::Input)?)
        } else {
            None
        };
        let dw = dy.apply_op2_no_bwd(&x.contiguous()?, &Grad::Weight)?;
        let db = dy.apply_op1_no_bwd(&BiasGrad)?;
        Ok((dx, Some(dw), Some(db)))
    }
}

/// A gradient as one product of the output gradient `dy (N x O)` with a
/// row-major `N x I` or `O x I` operand.
enum Grad {
    /// `dx (N x I) = dy · w`, the operand being the weight `w (O x I)`.
    Input,
    /// `dw (O x I) = dyᵀ · x`, the operand being the input `x (N x I)`.
    Weight,
}

impl CustomOp2 for Grad {
    fn name(&self) -> &'static str {
        match self {
            Grad::Input => "nas-dense-input-grad",
            Grad::Weight => "nas-dense-weight-grad",
        }
    }

    fn cpu_fwd(
        &self,
        ds: &CpuStorage,
        dl: &Layout,
        os: &CpuStorage,
        ol: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let ((n, o), (_, i)) = (dl.shape().dims2()?, ol.shape().dims2()?);
        let dy = contiguous_f32(ds, dl, "dense output gradient")?;
        let (what, rows, k, dy) = match self {
            Grad::Input => ("dense weight", n, o, View::rows(dy, o)),
            Grad::Weight => ("dense input", o, n, View::transposed(dy, o)),
        };
        let operand = View::rows(contiguous_f32(os, ol, what)?, i);
        let grad = matmul_threaded(rows, i, k, dy, operand);
        Ok((CpuStorage::F32(grad), Shape::from((rows, i))))
    }
}

/// `db (O)`: the rows of `dy` added in order (vectorised across outputs).
struct BiasGrad;

impl CustomOp1 for BiasGrad {
    fn name(&self) -> &'static str {
        "nas-dense-bias-grad"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (_, o) = l.shape().dims2()?;
        let dy = contiguous_f32(s, l, "dense output gradient")?;
        let mut db = vec![0f32; o];
        for row in dy.chunks(o) {
            db.iter_mut().zip(row).for_each(|(d, g)| *d += g);
        }
        Ok((CpuStorage::F32(db), Shape::from(o)))
    }
}
