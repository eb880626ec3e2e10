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

/// Where a product goes: `data` laid out by `strides`, overwritten, or added
/// to when `accumulate`.
pub(crate) struct Out<'a> {
    data: &'a mut [f32],
    strides: Strides,
    accumulate: bool,
}

impl<'a> Out<'a> {
    /// A row-major matrix with `cols` columns, overwritten.
    pub fn rows(data: &'a mut [f32], cols: usize) -> Self {
        Out {
            data,
            strides: Strides::rows(cols),
            accumulate: false,
        }
    }

    /// The transpose of a row-major matrix with `cols` columns, overwritten.
    pub fn transposed(data: &'a mut [f32], cols: usize) -> Self {
        Out {
            data,
            strides: Strides::transposed(cols),
            accumulate: false,
        }
    }

    /// The same destination, added to when `accumulate`.
    pub fn adding(self, accumulate: bool) -> Self {
        Out { accumulate, ..self }
    }
}

/// `c (m x n) = a (m x k) * b (k x n)` into `c`, on the calling thread (the
/// kernels call it from their own parallel tasks).
pub(crate) fn matmul(m: usize, n: usize, k: usize, c: Out, a: View, b: View) {
    product(m, n, k, c, a, b, gemm::Parallelism::None);
}

/// `a (m x k) * b (k x n)` as a new row-major `m x n` matrix, split over all of
/// rayon's threads: for one large product.
pub(crate) fn matmul_threaded(m: usize, n: usize, k: usize, a: View, b: View) -> Vec<f32> {
    let mut c = vec![0f32; m * n];
    let threads = gemm::Parallelism::Rayon(rayon::current_num_threads());
    product(m, n, k, Out::rows(&mut c, n), a, b, threads);
    c
}

fn product(m: usize, n: usize, k: usize, c: Out, a: View, b: View, parallelism: gemm::Parallelism) {
    let Out {
        data: c,
        strides: c_strides,
        accumulate,
    } = c;
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
