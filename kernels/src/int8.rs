//! Integer products for quantized inference: u8 activations times s8
//! weights, accumulated exactly in i32. With AVX-512 VNNI each `vpdpbusd`
//! adds 64 products (four per lane) per instruction; elsewhere a portable
//! loop computes the same integers. One operand is packed four depth steps
//! at a time per column, so that one 64-byte load holds four steps of
//! sixteen columns; the other is broadcast four bytes at a time. Dense
//! layers put their outputs in the columns ([`gemm_u8s8`]: a row per
//! sample), convolutions their output positions ([`gemm_s8u8`]: a row per
//! output channel, which is the layout of an image plane).

use rayon::prelude::*;

/// The deepest product: 65,536 steps of at most 255 x 128 stay within i32.
pub const MAX_DEPTH: usize = 1 << 16;
/// Columns per vector (i32 lanes of 512 bits).
const LANES: usize = 16;
/// Rows of one thread's share, enough work to be worth a task.
const ROWS_PER_TASK: usize = 32;

/// The length of one row of a product of `depth`: the depth rounded up to a
/// multiple of four (the padding bytes must be zero).
pub fn row_len(depth: usize) -> usize {
    depth.div_ceil(4) * 4
}

/// Checks a product's depth.
fn check_depth(depth: usize) -> Result<(), String> {
    if depth == 0 || depth > MAX_DEPTH {
        return Err(format!(
            "a product of depth {depth} is outside int8's 1..={MAX_DEPTH}"
        ));
    }
    Ok(())
}

/// Checks that `weights` are `outputs` rows of a valid `depth`.
fn check_weights(weights: &[i8], outputs: usize, depth: usize) -> Result<(), String> {
    check_depth(depth)?;
    if outputs.checked_mul(depth) != Some(weights.len()) {
        return Err(format!(
            "{} weights are not {outputs} outputs x {depth}",
            weights.len()
        ));
    }
    Ok(())
}

/// Per row of `depth` s8 values: their sum.
fn row_sums(values: &[i8], depth: usize) -> Vec<i32> {
    values
        .chunks_exact(depth)
        .map(|row| row.iter().map(|&w| i32::from(w)).sum())
        .collect()
}

/// Bytes of `count` rows of `depth` (row-major) packed as
/// `[depth / 4 (rounded up)][count rounded up to 16][4]`, zero elsewhere.
fn pack(rows: &[u8], count: usize, depth: usize, packed: &mut Vec<u8>) -> usize {
    let width = count.div_ceil(LANES) * LANES;
    let quads = depth.div_ceil(4);
    packed.clear();
    packed.resize(quads * width * 4, 0);
    for (c, row) in rows.chunks_exact(depth).take(count).enumerate() {
        let mut quads = row.chunks_exact(4);
        for (q, quad) in quads.by_ref().enumerate() {
            let at = (q * width + c) * 4;
            packed[at..at + 4].copy_from_slice(quad);
        }
        let rest = quads.remainder();
        if !rest.is_empty() {
            let at = ((depth / 4) * width + c) * 4;
            packed[at..at + rest.len()].copy_from_slice(rest);
        }
    }
    width
}

/// A layer's s8 weights (outputs x depth), packed for [`gemm_u8s8`].
pub struct PackedWeights {
    outputs: usize,
    depth: usize,
    /// Outputs rounded up to [`LANES`] (the packed and result row width).
    width: usize,
    /// The weights' bytes, packed.
    data: Vec<u8>,
    /// Per output: the sum of its weights (for the activation zero point).
    sums: Vec<i32>,
}

impl PackedWeights {
    /// Packs `weights` (row-major, `outputs x depth`); fails when the depth
    /// is over [`MAX_DEPTH`] or the sizes do not fit.
    pub fn new(weights: &[i8], outputs: usize, depth: usize) -> Result<Self, String> {
        check_weights(weights, outputs, depth)?;
        let bytes: Vec<u8> = weights.iter().map(|&w| w as u8).collect();
        let mut data = Vec::new();
        let width = pack(&bytes, outputs, depth, &mut data);
        Ok(PackedWeights {
            outputs,
            depth,
            width,
            data,
            sums: row_sums(weights, depth),
        })
    }

    /// The number of outputs.
    pub fn outputs(&self) -> usize {
        self.outputs
    }

    /// The depth of each product.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// The row width of [`gemm_u8s8`]'s result: outputs rounded up to 16.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Per output, the sum of its weights.
    pub fn sums(&self) -> &[i32] {
        &self.sums
    }
}

/// A layer's s8 weights as rows of [`row_len`] bytes, for [`gemm_s8u8`].
pub struct WeightRows {
    outputs: usize,
    depth: usize,
    /// The weights' bytes, each row zero-padded.
    data: Vec<u8>,
    sums: Vec<i32>,
}

impl WeightRows {
    /// `weights` (row-major, `outputs x depth`) as padded rows; fails when
    /// the depth is over [`MAX_DEPTH`] or the sizes do not fit.
    pub fn new(weights: &[i8], outputs: usize, depth: usize) -> Result<Self, String> {
        check_weights(weights, outputs, depth)?;
        let stride = row_len(depth);
        let mut data = vec![0u8; outputs * stride];
        for (dst, row) in data
            .chunks_exact_mut(stride)
            .zip(weights.chunks_exact(depth))
        {
            for (d, &w) in dst.iter_mut().zip(row) {
                *d = w as u8;
            }
        }
        Ok(WeightRows {
            outputs,
            depth,
            data,
            sums: row_sums(weights, depth),
        })
    }

    /// The number of outputs.
    pub fn outputs(&self) -> usize {
        self.outputs
    }

    /// Per output, the sum of its weights.
    pub fn sums(&self) -> &[i32] {
        &self.sums
    }
}

/// u8 activations packed as columns for [`gemm_s8u8`]: a buffer reused
/// from product to product.
#[derive(Default)]
pub struct PackedCodes {
    columns: usize,
    depth: usize,
    width: usize,
    data: Vec<u8>,
}

impl PackedCodes {
    /// Packs `columns` rows of [`row_len`]`(depth)` codes (row-major; one
    /// row per column of the product).
    pub fn fill(&mut self, rows: &[u8], columns: usize, depth: usize) -> Result<(), String> {
        check_depth(depth)?;
        if rows.len() != columns * row_len(depth) {
            return Err(format!(
                "{} codes are not {columns} rows of depth {depth}",
                rows.len()
            ));
        }
        self.width = pack(rows, columns, row_len(depth), &mut self.data);
        self.columns = columns;
        self.depth = depth;
        Ok(())
    }

    /// The row width of [`gemm_s8u8`]'s result: columns rounded up to 16.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Packs a convolution's taps: one column per output position of
    /// `window` over `image` (codes `[height][width][channels]`, padding
    /// included), its `count` channels from `first` at each tap, in tap,
    /// channel order.
    pub fn fill_window(&mut self, image: &[u8], window: &Window) -> Result<(), String> {
        let Window {
            channels,
            first,
            count,
            kernel,
            stride,
            dilation,
            width,
            out_height,
            out_width,
        } = *window;
        let depth = count * kernel * kernel;
        check_depth(depth)?;
        let span = dilation * (kernel - 1) + 1;
        let height = (out_height.max(1) - 1) * stride + span;
        let reach = (out_width.max(1) - 1) * stride + span;
        if first + count > channels || reach > width || image.len() < height * width * channels {
            return Err(format!(
                "a {kernel}x{kernel} window of channels {first}..{} reaches outside a {width}-wide image of {} bytes and {channels} channels",
                first + count,
                image.len()
            ));
        }
        let columns = out_height * out_width;
        self.columns = columns;
        self.depth = depth;
        self.width = columns.div_ceil(LANES) * LANES;
        self.data.clear();
        self.data.resize(depth.div_ceil(4) * self.width * 4, 0);
        // The byte of output position (oy, ox)'s tap (ky, kx), first channel.
        let at = |oy: usize, ox: usize, ky: usize, kx: usize| {
            ((oy * stride + ky * dilation) * width + ox * stride + kx * dilation) * channels + first
        };
        let packed_width = self.width;
        if count % 4 == 0 {
            // Whole quads of channels: a run of four bytes per position,
            // written along the packed row of one quad.
            for ky in 0..kernel {
                for kx in 0..kernel {
                    for j in 0..count / 4 {
                        let q = (ky * kernel + kx) * count / 4 + j;
                        let row = &mut self.data[q * packed_width * 4..][..columns * 4];
                        for (oy, line) in row.chunks_exact_mut(out_width * 4).enumerate() {
                            let start = at(oy, 0, ky, kx) + 4 * j;
                            let step = stride * channels;
                            for (ox, dst) in line.chunks_exact_mut(4).enumerate() {
                                let src = start + ox * step;
                                dst.copy_from_slice(&image[src..src + 4]);
                            }
                        }
                    }
                }
            }
        } else {
            for p in 0..columns {
                let (oy, ox) = (p / out_width, p % out_width);
                for ky in 0..kernel {
                    for kx in 0..kernel {
                        let src = &image[at(oy, ox, ky, kx)..][..count];
                        for (ci, &code) in src.iter().enumerate() {
                            let k = (ky * kernel + kx) * count + ci;
                            self.data[((k / 4) * packed_width + p) * 4 + k % 4] = code;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// A convolution's window over a channel-last image of codes, for
/// [`PackedCodes::fill_window`].
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// The image's channels.
    pub channels: usize,
    /// The first channel the window reads (its group's).
    pub first: usize,
    /// The channels it reads.
    pub count: usize,
    /// Kernel height and width.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Dilation.
    pub dilation: usize,
    /// The image's width (padding included).
    pub width: usize,
    /// Output positions down.
    pub out_height: usize,
    /// Output positions across.
    pub out_width: usize,
}

/// One product: broadcast rows times packed columns.
#[derive(Clone, Copy)]
struct Product<'a> {
    /// Row-major, [`row_len`] bytes per row.
    rows: &'a [u8],
    /// `[quads][width][4]`.
    packed: &'a [u8],
    width: usize,
    /// Whether the rows hold the s8 weights (and the columns the u8 codes).
    signed_rows: bool,
}

impl Product<'_> {
    fn stride(&self) -> usize {
        self.packed.len() / self.width
    }

    /// Every row of the product into `out` (rows of `width`), rows shared
    /// out over threads; the integers are exact, so the split does not matter.
    fn run(self, out: &mut [i32]) {
        let stride = self.stride();
        let task = |(rows, out): (&[u8], &mut [i32])| {
            let part = Product { rows, ..self };
            #[cfg(target_arch = "x86_64")]
            if vnni() {
                // SAFETY: the CPU has AVX-512F, BW and VNNI (checked
                // above); `rows` holds whole rows of `stride` bytes and
                // `out` as many rows of `width` values (the callers check).
                unsafe { avx512::gemm(part, out) };
                return;
            }
            portable(part, out);
        };
        let rows = self.rows.len() / stride;
        if rows * self.width * stride < 1 << 16 {
            task((self.rows, out));
        } else {
            self.rows
                .par_chunks(ROWS_PER_TASK * stride)
                .zip(out.par_chunks_mut(ROWS_PER_TASK * self.width))
                .for_each(task);
        }
    }
}

/// `out[r][o] = Σ_k a[r][k] · w[o][k]` for every row `r` of `a` (rows of
/// [`row_len`] u8 codes; a sample's input to a dense layer) and output `o`;
/// `out` has rows of `w.width()` i32 values (the columns past
/// `w.outputs()` are zero).
pub fn gemm_u8s8(a: &[u8], rows: usize, w: &PackedWeights, out: &mut [i32]) -> Result<(), String> {
    if a.len() != rows * row_len(w.depth) || out.len() != rows * w.width {
        return Err(format!(
            "int8 product: {} activation bytes and {} results do not fit {rows} rows of depth {} and {} outputs",
            a.len(),
            out.len(),
            w.depth,
            w.outputs
        ));
    }
    Product {
        rows: a,
        packed: &w.data,
        width: w.width,
        signed_rows: false,
    }
    .run(out);
    Ok(())
}

/// `out[o][c] = Σ_k w[o][k] · x[c][k]` for every output `o` of `w` and
/// column `c` of `x` (a convolution's output positions); `out` has rows of
/// `x.width()` i32 values (the columns past the last are zero).
pub fn gemm_s8u8(w: &WeightRows, x: &PackedCodes, out: &mut [i32]) -> Result<(), String> {
    if w.depth != x.depth || out.len() != w.outputs * x.width {
        return Err(format!(
            "int8 product: weights of depth {} and codes of depth {} into {} results for {} outputs x {} columns",
            w.depth,
            x.depth,
            out.len(),
            w.outputs,
            x.width
        ));
    }
    Product {
        rows: &w.data,
        packed: &x.data,
        width: x.width,
        signed_rows: true,
    }
    .run(out);
    Ok(())
}

/// Whether the VNNI path runs: AVX-512 F, BW and VNNI, and AVX-512 not
/// switched off (`NAS_KERNELS_AVX512=off`).
fn vnni() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static FOUND: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *FOUND.get_or_init(|| {
            super::has_avx512()
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512vnni")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Whether the integer products use AVX-512 VNNI on this machine.
pub fn uses_vnni() -> bool {
    vnni()
}

/// The same integers in portable code.
fn portable(p: Product, out: &mut [i32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked above).
        unsafe { portable_avx2(p, out) };
        return;
    }
    if p.signed_rows {
        portable_as::<true>(p, out);
    } else {
        portable_as::<false>(p, out);
    }
}

/// [`portable`] compiled for AVX2, where the loop vectorises eight columns
/// at a time (the same integers).
///
/// # Safety
/// The CPU has AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn portable_avx2(p: Product, out: &mut [i32]) {
    if p.signed_rows {
        portable_as::<true>(p, out);
    } else {
        portable_as::<false>(p, out);
    }
}

/// [`portable`] with `S` for `p.signed_rows`.
#[inline(always)]
fn portable_as<const S: bool>(p: Product, out: &mut [i32]) {
    let row_value = |b: u8| if S { i32::from(b as i8) } else { i32::from(b) };
    let column_value = |b: u8| if S { i32::from(b) } else { i32::from(b as i8) };
    for (row, acc) in p
        .rows
        .chunks_exact(p.stride())
        .zip(out.chunks_exact_mut(p.width))
    {
        acc.fill(0);
        for (quad, packed) in row.chunks_exact(4).zip(p.packed.chunks_exact(p.width * 4)) {
            let q = [
                row_value(quad[0]),
                row_value(quad[1]),
                row_value(quad[2]),
                row_value(quad[3]),
            ];
            for (o, c) in acc.iter_mut().zip(packed.chunks_exact(4)) {
                *o += q[0] * column_value(c[0])
                    + q[1] * column_value(c[1])
                    + q[2] * column_value(c[2])
                    + q[3] * column_value(c[3]);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Product, LANES};
    use std::arch::x86_64::*;

    /// Rows per tile (each a broadcast of four bytes).
    const ROWS: usize = 4;
    /// Vectors of sixteen columns per tile.
    const VECTORS: usize = 4;

    /// # Safety
    /// AVX-512 F, BW and VNNI; `p.rows` holds whole rows of `p.stride()`
    /// bytes and `out` as many rows of `p.width` values.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn gemm(p: Product, out: &mut [i32]) {
        if p.signed_rows {
            // SAFETY: this function's contract.
            unsafe { tiles::<true>(p, out) }
        } else {
            // SAFETY: this function's contract.
            unsafe { tiles::<false>(p, out) }
        }
    }

    /// # Safety
    /// As for [`gemm`]; `S` is `p.signed_rows`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn tiles<const S: bool>(p: Product, out: &mut [i32]) {
        let rows = p.rows.len() / p.stride();
        let vectors = p.width / LANES;
        let mut r = 0;
        while r < rows {
            let n = (rows - r).min(ROWS);
            let mut v = 0;
            while v < vectors {
                let m = (vectors - v).min(VECTORS);
                // SAFETY: rows r..r+n and vectors v..v+m lie inside the
                // rows, the packed columns and `out` (the loops' bounds).
                unsafe {
                    match (n, m) {
                        (4, 4) => tile::<4, 4, S>(p, out, r, v),
                        (4, 3) => tile::<4, 3, S>(p, out, r, v),
                        (4, 2) => tile::<4, 2, S>(p, out, r, v),
                        (4, _) => tile::<4, 1, S>(p, out, r, v),
                        (3, 4) => tile::<3, 4, S>(p, out, r, v),
                        (3, 3) => tile::<3, 3, S>(p, out, r, v),
                        (3, 2) => tile::<3, 2, S>(p, out, r, v),
                        (3, _) => tile::<3, 1, S>(p, out, r, v),
                        (2, 4) => tile::<2, 4, S>(p, out, r, v),
                        (2, 3) => tile::<2, 3, S>(p, out, r, v),
                        (2, 2) => tile::<2, 2, S>(p, out, r, v),
                        (2, _) => tile::<2, 1, S>(p, out, r, v),
                        (_, 4) => tile::<1, 4, S>(p, out, r, v),
                        (_, 3) => tile::<1, 3, S>(p, out, r, v),
                        (_, 2) => tile::<1, 2, S>(p, out, r, v),
                        (_, _) => tile::<1, 1, S>(p, out, r, v),
                    }
                }
                v += m;
            }
            r += n;
        }
    }

    /// Rows `r..r + R` times column vectors `v..v + V`. `vpdpbusd` takes its
    /// u8 operand first: the broadcast rows' four bytes, or (`S`, signed
    /// rows) the packed columns'.
    ///
    /// # Safety
    /// As for [`gemm`], and those rows and vectors exist.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[inline]
    unsafe fn tile<const R: usize, const V: usize, const S: bool>(
        p: Product,
        out: &mut [i32],
        r: usize,
        v: usize,
    ) {
        let stride = p.stride();
        // SAFETY: every offset below stays inside the rows and vectors the
        // caller names (the `# Safety` contract).
        unsafe {
            let mut acc = [[_mm512_setzero_si512(); V]; R];
            let rows = p.rows.as_ptr().add(r * stride);
            let mut columns = p.packed.as_ptr().add(v * LANES * 4);
            for q in 0..stride / 4 {
                let mut c = [_mm512_setzero_si512(); V];
                for (j, cj) in c.iter_mut().enumerate() {
                    *cj = _mm512_loadu_si512(columns.add(j * LANES * 4).cast());
                }
                for (i, row) in acc.iter_mut().enumerate() {
                    let quad = rows.add(i * stride + q * 4).cast::<i32>().read_unaligned();
                    let x = _mm512_set1_epi32(quad);
                    for (aij, cj) in row.iter_mut().zip(&c) {
                        *aij = if S {
                            _mm512_dpbusd_epi32(*aij, *cj, x)
                        } else {
                            _mm512_dpbusd_epi32(*aij, x, *cj)
                        };
                    }
                }
                columns = columns.add(p.width * 4);
            }
            for (i, row) in acc.iter().enumerate() {
                let dst = out.as_mut_ptr().add((r + i) * p.width + v * LANES);
                for (j, aij) in row.iter().enumerate() {
                    _mm512_storeu_si512(dst.add(j * LANES).cast(), *aij);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The products in i64, straight from the definition.
    fn reference(a: &[u8], rows: usize, w: &[i8], outputs: usize, depth: usize) -> Vec<i64> {
        let stride = row_len(depth);
        let mut out = vec![0i64; rows * outputs];
        for r in 0..rows {
            for o in 0..outputs {
                out[r * outputs + o] = (0..depth)
                    .map(|k| i64::from(a[r * stride + k]) * i64::from(w[o * depth + k]))
                    .sum();
            }
        }
        out
    }

    fn case(rng: &mut ChaCha8Rng, rows: usize, outputs: usize, depth: usize, extreme: bool) {
        let stride = row_len(depth);
        let mut a = vec![0u8; rows * stride];
        for r in 0..rows {
            for k in 0..depth {
                a[r * stride + k] = if extreme { 255 } else { rng.random() };
            }
        }
        let w: Vec<i8> = (0..outputs * depth)
            .map(|_| if extreme { -128 } else { rng.random() })
            .collect();
        let packed = PackedWeights::new(&w, outputs, depth).unwrap();
        let want = reference(&a, rows, &w, outputs, depth);
        let mut got = vec![7i32; rows * packed.width()];
        gemm_u8s8(&a, rows, &packed, &mut got).unwrap();
        let mut portable_out = vec![7i32; rows * packed.width()];
        let product = Product {
            rows: &a,
            packed: &packed.data,
            width: packed.width,
            signed_rows: false,
        };
        portable(product, &mut portable_out);
        // The same product with the weights as rows and the codes as columns.
        let weight_rows = WeightRows::new(&w, outputs, depth).unwrap();
        let mut codes = PackedCodes::default();
        codes.fill(&a, rows, depth).unwrap();
        let mut transposed = vec![7i32; outputs * codes.width()];
        gemm_s8u8(&weight_rows, &codes, &mut transposed).unwrap();
        let mut portable_transposed = vec![7i32; outputs * codes.width()];
        let product = Product {
            rows: &weight_rows.data,
            packed: &codes.data,
            width: codes.width,
            signed_rows: true,
        };
        portable(product, &mut portable_transposed);
        for r in 0..rows {
            for o in 0..packed.width() {
                let g = got[r * packed.width() + o];
                let p = portable_out[r * packed.width() + o];
                let e = if o < outputs {
                    want[r * outputs + o]
                } else {
                    0
                };
                assert_eq!(
                    i64::from(g),
                    e,
                    "rows {rows} outputs {outputs} depth {depth}: [{r}][{o}]"
                );
                assert_eq!(
                    i64::from(p),
                    e,
                    "portable: rows {rows} outputs {outputs} depth {depth}: [{r}][{o}]"
                );
            }
            for o in 0..outputs {
                let e = want[r * outputs + o];
                let t = transposed[o * codes.width() + r];
                let pt = portable_transposed[o * codes.width() + r];
                assert_eq!(
                    i64::from(t),
                    e,
                    "transposed: rows {rows} outputs {outputs} depth {depth}: [{o}][{r}]"
                );
                assert_eq!(
                    i64::from(pt),
                    e,
                    "portable transposed: rows {rows} outputs {outputs} depth {depth}: [{o}][{r}]"
                );
            }
        }
        assert_eq!(weight_rows.sums(), packed.sums());
        for (o, s) in packed.sums().iter().enumerate() {
            let e: i32 = w[o * depth..(o + 1) * depth]
                .iter()
                .map(|&x| i32::from(x))
                .sum();
            assert_eq!(*s, e);
        }
    }

    #[test]
    fn products_equal_the_definition_over_a_spread_of_shapes() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for rows in [1, 2, 3, 4, 5, 7, 9, 33, 70] {
            for outputs in [1, 5, 16, 17, 33, 64, 65, 80] {
                for depth in [1, 2, 3, 4, 5, 9, 27, 64, 75, 150] {
                    case(&mut rng, rows, outputs, depth, false);
                }
            }
        }
    }

    #[test]
    fn the_deepest_products_of_extreme_values_do_not_overflow() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        case(&mut rng, 3, 17, MAX_DEPTH, true);
        assert!(PackedWeights::new(&vec![0; MAX_DEPTH + 1], 1, MAX_DEPTH + 1).is_err());
        assert!(PackedWeights::new(&[0; 5], 2, 3).is_err());
        let packed = PackedWeights::new(&[1; 6], 2, 3).unwrap();
        assert!(gemm_u8s8(&[0; 7], 2, &packed, &mut [0; 32]).is_err());
        let rows = WeightRows::new(&[1; 6], 2, 3).unwrap();
        let mut codes = PackedCodes::default();
        assert!(codes.fill(&[0; 7], 2, 3).is_err());
        codes.fill(&[0; 8], 2, 3).unwrap();
        assert!(gemm_s8u8(&rows, &codes, &mut [0; 31]).is_err());
        let deeper = WeightRows::new(&[1; 8], 2, 4).unwrap();
        assert!(gemm_s8u8(&deeper, &codes, &mut [0; 32]).is_err());
    }
}
