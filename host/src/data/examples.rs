//! Examples in memory as they were read: image bytes (owned, or mapped from
//! an uncompressed `.npy` array) or floats (tables, synthetic images,
//! float arrays). Images stay bytes, a quarter of the memory floats would
//! take, until a batch is made: then the batch's examples are gathered and
//! normalised with the training split's statistics.

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use std::path::Path;
use std::sync::Arc;

/// The values of a part's examples, example after example.
pub(crate) enum Values {
    /// Image bytes (0..255 for 0..1), planar (channel after channel).
    Bytes(Vec<u8>),
    /// Image bytes mapped from a file.
    Mapped(Mapped),
    /// Floats, planar.
    Floats(Vec<f32>),
}

impl Default for Values {
    fn default() -> Self {
        Values::Floats(Vec::new())
    }
}

/// Bytes of an `.npy` array mapped from its file: the page cache holds
/// them, shared by every process that trains on the file, instead of the
/// heap of each.
pub(crate) struct Mapped {
    map: memmap2::Mmap,
    offset: usize,
    len: usize,
    /// The examples are `H x W x C` (NumPy's usual image order), made
    /// planar as batches are gathered.
    channels_last: bool,
}

impl Mapped {
    /// Maps the `len` bytes at `offset` of the file at `path`, after
    /// checking that the file holds them.
    pub(crate) fn new(path: &Path, offset: u64, len: u64, channels_last: bool) -> Result<Mapped> {
        let file = super::idx::open_regular(path)?;
        let size = file
            .metadata()
            .with_context(|| format!("cannot read {}", path.display()))?
            .len();
        let end = offset.checked_add(len).filter(|end| *end <= size);
        let Some(end) = end else {
            bail!(
                "{} is {size} bytes but its header promises {len} bytes of values after byte {offset}: the file is truncated",
                path.display()
            );
        };
        let (offset, len) = (usize::try_from(offset)?, usize::try_from(len)?);
        // SAFETY: the map is read-only and its length was checked against
        // the file's above. What Rust cannot rule out is another process
        // changing the file while it is mapped: rewriting it changes
        // examples under the run, truncating it ends the process with
        // SIGBUS at the next read. The README says that array files must
        // stay as they are while a run uses them, as any training input must.
        let map = unsafe { memmap2::MmapOptions::new().len(end as usize).map(&file) }
            .with_context(|| format!("cannot map {}", path.display()))?;
        Ok(Mapped {
            map,
            offset,
            len,
            channels_last,
        })
    }

    fn bytes(&self) -> &[u8] {
        &self.map[self.offset..self.offset + self.len]
    }
}

/// How values become a network's inputs: per channel (per feature for a
/// table), `(value - mean) / std`, in f64 and rounded to f32 once; for
/// bytes `value` is `byte / 255` and the 256 results are tabulated.
pub(crate) struct Norm {
    stats: Vec<(f64, f64)>,
    tables: Vec<[f32; 256]>,
}

impl Norm {
    fn from_stats(stats: Vec<(f64, f64)>) -> Norm {
        let tables = stats
            .iter()
            .map(|&(mean, std)| {
                std::array::from_fn(|b| (((b as f32 / 255.0) as f64 - mean) / std) as f32)
            })
            .collect();
        Norm { stats, tables }
    }

    /// Values as they are (bytes scaled to 0..1).
    pub(crate) fn identity(channels: usize) -> Norm {
        Norm::from_stats(vec![(0.0, 1.0); channels])
    }

    /// The mean and standard deviation of each channel over the examples
    /// `rows` of `values`.
    pub(crate) fn fit(values: &Values, shape: (usize, usize, usize), rows: &[usize]) -> Norm {
        let (c, h, w) = shape;
        let plane = h * w;
        let scale = Norm::identity(1);
        let stats = (0..c)
            .map(|ch| {
                let (mut sum, mut sq) = (0f64, 0f64);
                let mut add = |v: f32| {
                    sum += v as f64;
                    sq += (v as f64) * (v as f64);
                };
                for &row in rows {
                    match values {
                        Values::Floats(f) => {
                            plane_of(f, shape, row, ch).iter().for_each(|v| add(*v))
                        }
                        Values::Bytes(b) => plane_of(b, shape, row, ch)
                            .iter()
                            .for_each(|b| add(scale.tables[0][*b as usize])),
                        Values::Mapped(m) => {
                            for_each_byte(m, shape, row, ch, |b| add(scale.tables[0][b as usize]))
                        }
                    }
                }
                let count = (rows.len() * plane) as f64;
                let mean = sum / count;
                let std = ((sq / count - mean * mean).max(0.0)).sqrt().max(1e-6);
                (mean, std)
            })
            .collect();
        Norm::from_stats(stats)
    }
}

/// Channel `ch` of example `row` of planar `values`.
fn plane_of<T>(values: &[T], (c, h, w): (usize, usize, usize), row: usize, ch: usize) -> &[T] {
    let start = (row * c + ch) * h * w;
    &values[start..start + h * w]
}

/// Calls `f` with each byte of channel `ch` of example `row` of `m`, in
/// pixel order.
fn for_each_byte(
    m: &Mapped,
    shape: (usize, usize, usize),
    row: usize,
    ch: usize,
    mut f: impl FnMut(u8),
) {
    let (c, h, w) = shape;
    if m.channels_last && c > 1 {
        let example = &m.bytes()[row * c * h * w..(row + 1) * c * h * w];
        example.iter().skip(ch).step_by(c).for_each(|b| f(*b));
    } else {
        plane_of(m.bytes(), shape, row, ch)
            .iter()
            .for_each(|b| f(*b));
    }
}

/// The examples of one part of a dataset, shared by the splits carved from it.
pub(crate) struct Store {
    pub(crate) values: Values,
    /// One example's channels, height and width (features, 1, 1 for a table).
    pub(crate) shape: (usize, usize, usize),
}

/// One split of a dataset: examples (rows) of a part, their labels, and
/// the normalisation of the dataset's training split.
pub struct Split {
    store: Arc<Store>,
    rows: Vec<usize>,
    labels: Vec<u32>,
    norm: Arc<Norm>,
}

impl Split {
    /// The examples `rows` of `store`, with `labels` (one per row).
    pub(crate) fn new(
        store: Arc<Store>,
        rows: Vec<usize>,
        labels: Vec<u32>,
        norm: Arc<Norm>,
    ) -> Split {
        debug_assert_eq!(rows.len(), labels.len());
        Split {
            store,
            rows,
            labels,
            norm,
        }
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the split is empty.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The class index of each example.
    pub fn labels(&self) -> &[u32] {
        &self.labels
    }

    /// One example's channels, height and width.
    pub fn shape(&self) -> (usize, usize, usize) {
        self.store.shape
    }

    /// The examples at `positions` of this split, normalised, as
    /// `N x C x H x W` floats, and their labels.
    pub fn examples(&self, positions: impl Iterator<Item = usize>) -> (Vec<f32>, Vec<u32>) {
        let shape = self.store.shape;
        let (c, h, w) = shape;
        let (lower, _) = positions.size_hint();
        let (mut out, mut labels) = (
            Vec::with_capacity(lower * c * h * w),
            Vec::with_capacity(lower),
        );
        for position in positions {
            let row = self.rows[position];
            labels.push(self.labels[position]);
            for ch in 0..c {
                let table = &self.norm.tables[ch];
                match &self.store.values {
                    Values::Bytes(b) => out.extend(
                        plane_of(b, shape, row, ch)
                            .iter()
                            .map(|b| table[*b as usize]),
                    ),
                    Values::Mapped(m) => {
                        for_each_byte(m, shape, row, ch, |b| out.push(table[b as usize]))
                    }
                    Values::Floats(f) => {
                        let (mean, std) = self.norm.stats[ch];
                        out.extend(
                            plane_of(f, shape, row, ch)
                                .iter()
                                .map(|v| ((*v as f64 - mean) / std) as f32),
                        )
                    }
                }
            }
        }
        (out, labels)
    }

    /// Examples `start..start + len` as tensors on `device`: images
    /// (`N x C x H x W`) and labels.
    pub fn tensors(&self, start: usize, len: usize, device: &Device) -> Result<(Tensor, Tensor)> {
        let (values, labels) = self.examples(start..start + len);
        as_tensors(values, labels, self.shape(), device)
    }
}

/// Gathered examples ([`Split::examples`]) as tensors on `device`.
pub fn as_tensors(
    values: Vec<f32>,
    labels: Vec<u32>,
    (c, h, w): (usize, usize, usize),
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let n = labels.len();
    Ok((
        Tensor::from_vec(values, (n, c, h, w), device)?,
        Tensor::from_vec(labels, n, device)?,
    ))
}

#[cfg(test)]
impl Split {
    /// How the examples are held: `bytes`, `mapped` or `floats`.
    pub(crate) fn storage(&self) -> &'static str {
        match self.store.values {
            Values::Bytes(_) => "bytes",
            Values::Mapped(_) => "mapped",
            Values::Floats(_) => "floats",
        }
    }
}
