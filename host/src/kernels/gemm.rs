//! A bounds-checked wrapper over the `gemm` crate's matrix product.

/// A matrix view: data with row and column strides (in elements).
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    pub data: &'a [f32],
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> View<'a> {
    /// A row-major `rows x cols` matrix.
    pub fn rows(data: &'a [f32], cols: usize) -> Self {
        View {
            data,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose of a row-major `rows x cols` matrix (so `cols x rows`).
    pub fn transposed(data: &'a [f32], cols: usize) -> Self {
        View {
            data,
            row_stride: 1,
            col_stride: cols,
        }
    }

    fn fits(&self, rows: usize, cols: usize) -> bool {
        rows == 0
            || cols == 0
            || (rows - 1) * self.row_stride + (cols - 1) * self.col_stride < self.data.len()
    }
}

/// `c (m x n, row-major) = a (m x k) * b (k x n)`, or `c += a * b` when `accumulate`.
pub(crate) fn matmul(
    m: usize,
    n: usize,
    k: usize,
    c: &mut [f32],
    accumulate: bool,
    a: View,
    b: View,
) {
    assert!(
        c.len() >= m * n && a.fits(m, k) && b.fits(k, n),
        "matmul operands too small for {m}x{k} * {k}x{n}"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c[..m * n].fill(0.0);
        }
        return;
    }
    // SAFETY: the assertion above keeps every element the strides reach inside
    // its slice; `c` is exclusively borrowed and does not overlap `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}
