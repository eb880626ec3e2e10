//! `npz` and `npy`: NumPy arrays, read with the `npyz` crate (and `zip` for
//! an `.npz` archive). Images are `N x H x W`, `N x H x W x C` (`layout =
//! "nhwc"`, the default) or `N x C x H x W` (`"nchw"`), as `uint8` (scaled
//! to 0..1) or `float32` (taken as they are, finite); `N x F` arrays are
//! tables of features. Labels are integers `0..K-1`. Each header's shape is
//! checked before anything is allocated.

use super::{ArrayLayout, DataConfig, DatasetKind, Part, Raw};
use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::Path;

/// The most values one array may hold.
const MAX_VALUES: u64 = 1 << 34;

/// The most classes the labels may name.
const MAX_CLASSES: i64 = 100_000;

/// Where the arrays come from: an `.npz` archive or a folder of `.npy` files.
enum Source {
    Archive(zip::ZipArchive<std::fs::File>),
    Folder,
}

/// Reads the arrays `config` names.
pub(super) fn read(config: &DataConfig, keep: bool) -> Result<Raw> {
    let path = config.path.as_deref().context("[data] path is required")?;
    let mut source = match config.dataset {
        DatasetKind::Npz => {
            let file = super::idx::open_regular(path)?;
            Source::Archive(
                zip::ZipArchive::new(file)
                    .with_context(|| format!("{} is not an .npz archive", path.display()))?,
            )
        }
        _ => Source::Folder,
    };
    let names = |key: &Option<String>, default: &'static str| {
        key.clone().unwrap_or_else(|| default.to_string())
    };
    let layout = config.layout.unwrap_or(ArrayLayout::Nhwc);
    let train_images = names(&config.train_images, "x_train");
    let test_images = names(&config.test_images, "x_test");
    let (shape, train_px) = images(&mut source, path, &train_images, layout, keep)?
        .with_context(|| missing(path, &train_images, "train_images"))?;
    let train_labels = names(&config.train_labels, "y_train");
    let train_lab = labels(&mut source, path, &train_labels, train_px.1)?
        .with_context(|| missing(path, &train_labels, "train_labels"))?;
    let test = match images(&mut source, path, &test_images, layout, keep)? {
        None => None,
        Some((test_shape, test_px)) => {
            if test_shape != shape {
                bail!(
                    "{}: `{test_images}` holds {test_shape:?} examples but `{train_images}` holds {shape:?}",
                    path.display()
                );
            }
            let name = names(&config.test_labels, "y_test");
            let lab = labels(&mut source, path, &name, test_px.1)?
                .with_context(|| missing(path, &name, "test_labels"))?;
            Some((test_px.0, lab))
        }
    };
    let test_lab = test.iter().flat_map(|(_, l)| l.iter().copied());
    let classes = super::class_count(
        &train_lab,
        test_lab,
        &format!("{}: `{train_labels}`", path.display()),
    )?;
    Ok(Raw {
        shape,
        classes: super::numbered(classes),
        train: Part {
            pixels: train_px.0,
            labels: train_lab,
        },
        val: None,
        test: test.map(|(pixels, labels)| Part { pixels, labels }),
    })
}

fn missing(path: &Path, name: &str, key: &str) -> String {
    format!(
        "{} has no array `{name}`; name the array with [data] {key}",
        path.display()
    )
}

/// The `.npy` bytes of array `name`, or None when there is none.
fn open<'a>(source: &'a mut Source, path: &Path, name: &str) -> Result<Option<Box<dyn Read + 'a>>> {
    let file = format!("{name}.npy");
    match source {
        Source::Archive(zip) => match zip.by_name(&file) {
            Ok(entry) => Ok(Some(Box::new(entry))),
            Err(zip::result::ZipError::FileNotFound) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("{}: cannot read `{file}`", path.display())),
        },
        Source::Folder => {
            let at = path.join(&file);
            if !at.exists() {
                return Ok(None);
            }
            Ok(Some(Box::new(std::io::BufReader::new(
                super::idx::open_regular(&at)?,
            ))))
        }
    }
}

/// Array `name` with its header checked: its shape and element type
/// (`u1`, `f4`, ...); None when there is no such array.
#[allow(clippy::type_complexity)]
fn array<'a>(
    source: &'a mut Source,
    path: &Path,
    name: &str,
) -> Result<Option<(npyz::NpyFile<Box<dyn Read + 'a>>, Vec<usize>, String)>> {
    let Some(reader) = open(source, path, name)? else {
        return Ok(None);
    };
    let what = || format!("{}: `{name}`", path.display());
    let npy =
        npyz::NpyFile::new(reader).with_context(|| format!("{} is not an .npy array", what()))?;
    if npy.order() == npyz::Order::Fortran {
        bail!(
            "{} is stored in Fortran order; save it with numpy.ascontiguousarray",
            what()
        );
    }
    let kind = match npy.dtype() {
        npyz::DType::Plain(t) => t
            .to_string()
            .trim_start_matches(['<', '>', '|', '='])
            .to_string(),
        other => bail!(
            "{} has the structured type {other:?}; expected numbers",
            what()
        ),
    };
    let mut values: u64 = 1;
    for &d in npy.shape() {
        values = values
            .checked_mul(d)
            .filter(|v| *v <= MAX_VALUES)
            .with_context(|| {
                format!(
                    "{} has the shape {:?}, more than {MAX_VALUES} values",
                    what(),
                    npy.shape()
                )
            })?;
    }
    let shape = npy.shape().iter().map(|&d| d as usize).collect();
    Ok(Some((npy, shape, kind)))
}

/// Examples of array `name` as planar floats, with the shape of one and
/// the count; None when there is no such array.
#[allow(clippy::type_complexity)]
fn images(
    source: &mut Source,
    path: &Path,
    name: &str,
    layout: ArrayLayout,
    keep: bool,
) -> Result<Option<((usize, usize, usize), (Vec<f32>, usize))>> {
    let Some((npy, dims, kind)) = array(source, path, name)? else {
        return Ok(None);
    };
    let what = || format!("{}: `{name}`", path.display());
    let (n, shape, nhwc) = match dims.as_slice() {
        [n, f] => (*n, (*f, 1, 1), false),
        [n, h, w] => (*n, (1, *h, *w), false),
        [n, h, w, c] if layout == ArrayLayout::Nhwc => (*n, (*c, *h, *w), true),
        [n, c, h, w] => (*n, (*c, *h, *w), false),
        _ => bail!(
            "{} has the shape {dims:?}; expected N x F, N x H x W, N x H x W x C ([data] layout = \"nhwc\") or N x C x H x W (\"nchw\")",
            what()
        ),
    };
    if n == 0 || shape.0 * shape.1 * shape.2 == 0 {
        bail!("{} has the shape {dims:?}: no examples", what());
    }
    // The values are read even only to check them.
    super::check_memory(n, shape.0 * shape.1 * shape.2, true)?;
    let read = |e: std::io::Error| anyhow::anyhow!("{}: {e}", what());
    let values: Vec<f32> = match kind.as_str() {
        "u1" => npy
            .into_vec::<u8>()
            .map_err(read)?
            .into_iter()
            .map(|b| b as f32 / 255.0)
            .collect(),
        "f4" => {
            let v = npy.into_vec::<f32>().map_err(read)?;
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                bail!(
                    "{} holds {} at flat index {i}; values must be finite",
                    what(),
                    v[i]
                );
            }
            v
        }
        other => bail!(
            "{} holds `{other}` values; images must be uint8 (0..255) or float32",
            what()
        ),
    };
    let values = if !keep {
        Vec::new()
    } else if nhwc {
        planar(&values, n, shape)
    } else {
        values
    };
    Ok(Some((shape, (values, n))))
}

/// `N x H x W x C` values as `N x C x H x W`.
fn planar(values: &[f32], n: usize, (c, h, w): (usize, usize, usize)) -> Vec<f32> {
    let per = c * h * w;
    let mut out = vec![0f32; values.len()];
    for i in 0..n {
        for p in 0..h * w {
            for ch in 0..c {
                out[i * per + ch * h * w + p] = values[i * per + p * c + ch];
            }
        }
    }
    out
}

/// Array `name` as class indices: integers `0..K-1`, one per example.
fn labels(source: &mut Source, path: &Path, name: &str, count: usize) -> Result<Option<Vec<u32>>> {
    let Some((npy, dims, kind)) = array(source, path, name)? else {
        return Ok(None);
    };
    let what = || format!("{}: `{name}`", path.display());
    if dims != [count] {
        bail!(
            "{} has the shape {dims:?}; expected one label for each of the {count} examples",
            what()
        );
    }
    let read = |e: std::io::Error| anyhow::anyhow!("{}: {e}", what());
    let values: Vec<i64> = match kind.as_str() {
        "u1" => widen(npy.into_vec::<u8>().map_err(read)?),
        "i1" => widen(npy.into_vec::<i8>().map_err(read)?),
        "u2" => widen(npy.into_vec::<u16>().map_err(read)?),
        "i2" => widen(npy.into_vec::<i16>().map_err(read)?),
        "u4" => widen(npy.into_vec::<u32>().map_err(read)?),
        "i4" => widen(npy.into_vec::<i32>().map_err(read)?),
        "i8" => npy.into_vec::<i64>().map_err(read)?,
        "u8" => npy
            .into_vec::<u64>()
            .map_err(read)?
            .into_iter()
            .map(|v| i64::try_from(v).unwrap_or(i64::MAX))
            .collect(),
        other => bail!("{} holds `{other}` values; labels must be integers", what()),
    };
    if let Some(i) = values.iter().position(|v| !(0..MAX_CLASSES).contains(v)) {
        bail!(
            "{} holds the label {} at index {i}; labels must be 0..K-1 (at most {MAX_CLASSES} classes)",
            what(),
            values[i]
        );
    }
    Ok(Some(values.into_iter().map(|v| v as u32).collect()))
}

fn widen<T: Into<i64>>(values: Vec<T>) -> Vec<i64> {
    values.into_iter().map(Into::into).collect()
}
