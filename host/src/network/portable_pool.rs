//! Max and average pooling from candle's basic ops, for devices without the
//! CPU kernels. candle 0.11's own max-pool backward multiplies each gradient
//! by the fraction of maxima in its window (a quarter for 2x2 windows: every
//! pool shrank the gradients behind it fourfold, found on an H200), and its
//! average pool counts the padding and has no backward for overlapping
//! windows. Here each window is gathered with `index_select` (whose backward
//! is a scatter-add) and reduced, so the gradient reaches the window's
//! maximum whole and the average leaves the padding out, as the CPU kernels
//! do. One difference remains: where a window holds several equal maxima,
//! each gets the whole gradient (candle's `max` backward); the CPU kernel
//! gives it to the first.

use anyhow::Result;
use candle_core::{Tensor, D};
use nas_kernels::PoolWindow;

/// Pools `x` (N x C x H x W) over `window`: the maximum when `max`, else the
/// mean of the window's positions inside the image.
pub fn pool(x: &Tensor, window: PoolWindow, max: bool) -> Result<Tensor> {
    let PoolWindow {
        kernel,
        stride,
        pad,
    } = window;
    let (n, c, h, w) = x.dims4()?;
    let (hp, wp) = (h + 2 * pad, w + 2 * pad);
    anyhow::ensure!(
        hp >= kernel && wp >= kernel,
        "pool: window {kernel} does not fit {h}x{w} with padding {pad}"
    );
    let (oh, ow) = ((hp - kernel) / stride + 1, (wp - kernel) / stride + 1);
    // Position in the padded plane of each (output, window offset) pair.
    let mut at = Vec::with_capacity(oh * ow * kernel * kernel);
    for oy in 0..oh {
        for ox in 0..ow {
            for ky in 0..kernel {
                for kx in 0..kernel {
                    at.push(((oy * stride + ky) * wp + ox * stride + kx) as u32);
                }
            }
        }
    }
    let at = Tensor::from_vec(at, oh * ow * kernel * kernel, x.device())?;
    let fill = if max { f32::NEG_INFINITY } else { 0.0 };
    let windows = pad_spatial(x, pad, fill)?
        .flatten_from(2)?
        .index_select(&at, 2)?
        .reshape((n, c, oh * ow, kernel * kernel))?;
    let y = if max {
        windows.max(D::Minus1)?
    } else {
        // Positions of each window inside the image along one axis.
        let inside = |o: usize, len: usize| {
            let start = o * stride;
            (start..start + kernel)
                .filter(|&p| p >= pad && p < len + pad)
                .count()
        };
        let counts: Vec<f32> = (0..oh * ow)
            .map(|o| (inside(o / ow, h) * inside(o % ow, w)) as f32)
            .collect();
        let counts = Tensor::from_vec(counts, oh * ow, x.device())?;
        windows.sum(D::Minus1)?.broadcast_div(&counts)?
    };
    Ok(y.reshape((n, c, oh, ow))?)
}

/// `x` with `pad` rows and columns of `value` on each side.
fn pad_spatial(x: &Tensor, pad: usize, value: f32) -> Result<Tensor> {
    if pad == 0 {
        return Ok(x.clone());
    }
    let (n, c, h, w) = x.dims4()?;
    let rows = Tensor::full(value, (n, c, pad, w), x.device())?;
    let x = Tensor::cat(&[&rows, x, &rows], 2)?;
    let cols = Tensor::full(value, (n, c, h + 2 * pad, pad), x.device())?;
    Ok(Tensor::cat(&[&cols, &x, &cols], 3)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use nas_kernels as kernels;

    /// On the CPU the gathered pools give what the CPU kernels give: outputs
    /// and input gradients (random inputs, so no tied maxima).
    #[test]
    fn gathered_pools_match_the_cpu_kernels() {
        for (kernel, stride, pad, (h, w)) in [
            (2, 2, 0, (8, 8)),
            (2, 2, 0, (7, 9)),
            (3, 2, 1, (9, 8)),
            (3, 1, 1, (6, 6)),
            (2, 1, 0, (5, 7)),
            (5, 3, 2, (11, 10)),
        ] {
            let window = PoolWindow {
                kernel,
                stride,
                pad,
            };
            let x =
                Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 3, h, w), &Device::Cpu).unwrap())
                    .unwrap();
            for max in [true, false] {
                let ours = pool(&x, window, max).unwrap();
                let reference = if max {
                    kernels::max_pool2d(
                        &x,
                        kernels::PoolWindow::new(kernel, stride, pad),
                        kernels::Record::Graph,
                    )
                    .unwrap()
                } else {
                    kernels::avg_pool2d(
                        &x,
                        kernels::PoolWindow::new(kernel, stride, pad),
                        kernels::Record::Graph,
                    )
                    .unwrap()
                };
                let what = format!("max {max}, window {window:?}, {h}x{w}");
                assert_eq!(ours.dims(), reference.dims(), "{what}");
                let weights = Tensor::randn(0f32, 1.0, ours.dims(), &Device::Cpu).unwrap();
                let grad = |y: &Tensor| {
                    let g = (y * &weights)
                        .unwrap()
                        .sum_all()
                        .unwrap()
                        .backward()
                        .unwrap();
                    g.get(&x)
                        .unwrap()
                        .flatten_all()
                        .unwrap()
                        .to_vec1::<f32>()
                        .unwrap()
                };
                let values = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                let close =
                    |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(a, b)| (a - b).abs() <= 1e-5);
                assert!(
                    close(&values(&ours), &values(&reference)),
                    "{what}: forward"
                );
                assert!(close(&grad(&ours), &grad(&reference)), "{what}: gradient");
            }
        }
    }
}
