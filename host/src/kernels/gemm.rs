//! A bounds-checked wrapper over the `gemm` crate's matrix product.

/// Row and column strides of a matrix, in elements.
#[derive(Clone, Copy)]
pub(crate) struct Strides {
    row: usize,
    col: usize,
}

impl Strides {
    /// A row-major matrix with `cols` columns.
    pub fn rows(cols: usize) -> Self {
        Strides { row: cols, col: 1 }
    }

    /// The transpose of a row-major matrix with `cols` columns.
    pub fn transposed(cols: usize) -> Self {
        Strides { row: 1, col: cols }
    }

    /// Whether a `rows x cols` matrix with these strides stays inside `len` elements.
    fn fits(&self, rows: usize, cols: usize, len: usize) -> bool {
        rows == 0 || cols == 0 || (rows - 1) * self.row + (cols - 1) * self.col < len
    }
}

/// A matrix view: data and its strides.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    pub data: &'a [f32],
    pub strides: Strides,
}

impl<'a> View<'a> {
    /// A row-major `rows x cols` matrix.
    pub fn rows(data: &'a [f32], cols: usize) -> Self {
        View {
            data,
            strides: Strides::rows(cols),
        }
    }

    /// The transpose of a row-major `rows x cols` matrix (so `cols x rows`).
    pub fn transposed(data: &'a [f32], cols: usize) -> Self {
        View {
            data,
            strides: Strides::transposed(cols),
        }
    }
}

/// `c (m x n, laid out by `c_strides`) = a (m x k) * b (k x n)`, or
/// `c += a * b` when `accumulate`, on the calling thread (the kernels call
/// it from their own parallel tasks).
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul(
    m: usize,
    n: usize,
    k: usize,
    c: &mut [f32],
    c_strides: Strides,
    accumulate: bool,
    a: View,
    b: View,
) {
    product(
        m,
        n,
        k,
        c,
        c_strides,
        accumulate,
        a,
        b,
        gemm::Parallelism::None,
    );
}

/// [`matmul`] split over all of rayon's threads, for one large product.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul_threaded(
    m: usize,
    n: usize,
    k: usize,
    c: &mut [f32],
    c_strides: Strides,
    accumulate: bool,
    a: View,
    b: View,
) {
    let threads = gemm::Parallelism::Rayon(rayon::current_num_threads());
    product(m, n, k, c, c_strides, accumulate, a, b, threads);
}

#[allow(clippy::too_many_arguments)]
fn product(
    m: usize,
    n: usize,
    k: usize,
    c: &mut [f32],
    c_strides: Strides,
    accumulate: bool,
    a: View,
    b: View,
    parallelism: gemm::Parallelism,
) {
    assert!(
        c_strides.fits(m, n, c.len())
            && a.strides.fits(m, k, a.data.len())
            && b.strides.fits(k, n, b.data.len()),
        "matmul operands too small for {m}x{k} * {k}x{n}"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    c[i * c_strides.row + j * c_strides.col] = 0.0;
                }
            }
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
            c_strides.col as isize,
            c_strides.row as isize,
            accumulate,
            a.data.as_ptr(),
            a.strides.col as isize,
            a.strides.row as isize,
            b.data.as_ptr(),
            b.strides.col as isize,
            b.strides.row as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}
