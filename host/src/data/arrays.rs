//! `npz` and `npy`: NumPy arrays, read with the `npyz` crate (and `zip` for
//! an `.npz` archive). Images are `N x H x W`, `N x H x W x C` (`layout =
//! "nhwc"`, the default) or `N x C x H x W` (`"nchw"`), as `uint8` (scaled
//! to 0..1) or `float32` (taken as they are, finite); `N x F` arrays are
//! tables of features. Labels are integers `0..K-1`. Each header's shape is
//! checked before anything is allocated. `uint8` arrays stored uncompressed
//! (an `.npy` file, or an `.npz` member written by `numpy.savez`) are
//! mapped from their files, not copied.

use super::examples::{Mapped, Values};
use super::{ArrayLayout, DataConfig, DatasetKind, Part, Raw};
use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The most values one array may hold.
const MAX_VALUES: u64 = 1 << 34;

/// The most classes the labels may name.
const MAX_CLASSES: i64 = 100_000;

/// Where the arrays come from: an `.npz` archive or a folder of `.npy` files.
enum Source {
    Archive(zip::ZipArchive<std::fs::File>),
    Folder,
}

/// The most bytes an `.npy` header may take (NumPy's own reading limit).
const MAX_HEADER: usize = 10_000;

/// The preamble and header of an `.npy` array read from `reader`, checked
/// before they are parsed: the magic string, a format version NumPy
/// writes, at most [`MAX_HEADER`] bytes of printable text with brackets
/// nested at most two deep (a dict holding a tuple). The header parser
/// backtracks exponentially on some malformed text; NumPy never writes it.
fn header_bytes(reader: &mut impl Read, what: &str) -> Result<Vec<u8>> {
    let read = |e: std::io::Error| anyhow::anyhow!("{what} is not an .npy array: {e}");
    let mut bytes = vec![0u8; 8];
    reader.read_exact(&mut bytes).map_err(read)?;
    if &bytes[..6] != b"\x93NUMPY" {
        bail!("{what} is not an .npy array (it does not start with \\x93NUMPY)");
    }
    let width = match bytes[6] {
        1 => 2,
        2 | 3 => 4,
        v => bail!("{what} is an .npy array of format version {v}; NumPy writes versions 1 to 3"),
    };
    let mut size = [0u8; 4];
    reader.read_exact(&mut size[..width]).map_err(read)?;
    bytes.extend_from_slice(&size[..width]);
    let len = u32::from_le_bytes(size) as usize;
    if len > MAX_HEADER {
        bail!("{what} has a header of {len} bytes; NumPy's are at most {MAX_HEADER}");
    }
    let start = bytes.len();
    bytes.resize(start + len, 0);
    reader.read_exact(&mut bytes[start..]).map_err(read)?;
    let mut depth = 0usize;
    for (i, &b) in bytes[start..].iter().enumerate() {
        match b {
            b'{' | b'(' | b'[' => depth += 1,
            b'}' | b')' | b']' => depth = depth.saturating_sub(1),
            b'\n' if i + 1 == len => {}
            0x20..=0x7e => {}
            _ => bail!("{what} has the byte {b:#04x} at {i} in its header; an .npy header is printable text"),
        }
        if depth > 2 {
            bail!("{what} has brackets nested more than two deep in its header; an .npy header is a dict with a shape tuple");
        }
    }
    Ok(bytes)
}

/// An opened array: its header read, the reader at its values.
struct Array<'a> {
    npy: npyz::NpyFile<Box<dyn Read + 'a>>,
    shape: Vec<usize>,
    /// The element type: `u1`, `f4`, ...
    kind: String,
    /// The file and the offset in it where the values lie uncompressed,
    /// where they do.
    at: Option<(PathBuf, u64)>,
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
            values: train_px.0,
            labels: train_lab,
        },
        val: None,
        test: test.map(|(values, labels)| Part { values, labels }),
    })
}

fn missing(path: &Path, name: &str, key: &str) -> String {
    format!(
        "{} has no array `{name}`; name the array with [data] {key}",
        path.display()
    )
}

/// The `.npy` bytes of array `name`, and the file and offset where they
/// lie uncompressed (where they do); None when there is no such array.
#[allow(clippy::type_complexity)]
fn open<'a>(
    source: &'a mut Source,
    path: &Path,
    name: &str,
) -> Result<Option<(Box<dyn Read + 'a>, Option<(PathBuf, u64)>)>> {
    let file = format!("{name}.npy");
    match source {
        Source::Archive(zip) => match zip.by_name(&file) {
            Ok(entry) => {
                let stored = entry.compression() == zip::CompressionMethod::Stored;
                let at = entry
                    .data_start()
                    .filter(|_| stored)
                    .map(|start| (path.to_path_buf(), start));
                Ok(Some((Box::new(entry), at)))
            }
            Err(zip::result::ZipError::FileNotFound) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("{}: cannot read `{file}`", path.display())),
        },
        Source::Folder => {
            let at = path.join(&file);
            if !at.exists() {
                return Ok(None);
            }
            let reader = std::io::BufReader::new(super::idx::open_regular(&at)?);
            Ok(Some((Box::new(reader), Some((at, 0)))))
        }
    }
}

/// Array `name` with its header checked; None when there is no such array.
fn array<'a>(source: &'a mut Source, path: &Path, name: &str) -> Result<Option<Array<'a>>> {
    let Some((reader, at)) = open(source, path, name)? else {
        return Ok(None);
    };
    let what = || format!("{}: `{name}`", path.display());
    let mut reader = reader;
    let bytes = header_bytes(&mut reader, &what())?;
    let header = npyz::NpyHeader::from_reader(&bytes[..])
        .with_context(|| format!("{} is not an .npy array", what()))?;
    let values_at = at.map(|(file, start)| (file, start + bytes.len() as u64));
    let npy = npyz::NpyFile::with_header(header, reader);
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
    Ok(Some(Array {
        npy,
        shape,
        kind,
        at: values_at,
    }))
}

/// Examples of array `name` (bytes, owned planar or mapped as stored; or
/// planar floats), with the shape of one and the count; None when there
/// is no such array.
#[allow(clippy::type_complexity)]
fn images(
    source: &mut Source,
    path: &Path,
    name: &str,
    layout: ArrayLayout,
    keep: bool,
) -> Result<Option<((usize, usize, usize), (Values, usize))>> {
    let Some(Array {
        npy,
        shape: dims,
        kind,
        at,
    }) = array(source, path, name)?
    else {
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
    let per = shape.0 * shape.1 * shape.2;
    if let (Some((file, offset)), "u1") = (at, kind.as_str()) {
        // n * per <= MAX_VALUES (checked in `array`).
        let len = (n * per) as u64;
        let mapped = Mapped::new(&file, offset, len, nhwc).with_context(what)?;
        return Ok(Some((shape, (Values::Mapped(mapped), n))));
    }
    let value_bytes = if kind == "u1" { 1 } else { 4 };
    // The values are read even only to check them.
    super::check_memory(n, per, value_bytes, true)?;
    let read = |e: std::io::Error| anyhow::anyhow!("{}: {e}", what());
    let values = match kind.as_str() {
        "u1" => {
            let bytes = npy.into_vec::<u8>().map_err(read)?;
            Values::Bytes(planar_kept(bytes, keep, nhwc, n, shape))
        }
        "f4" => {
            let v = npy.into_vec::<f32>().map_err(read)?;
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                bail!(
                    "{} holds {} at flat index {i}; values must be finite",
                    what(),
                    v[i]
                );
            }
            Values::Floats(planar_kept(v, keep, nhwc, n, shape))
        }
        other => bail!(
            "{} holds `{other}` values; images must be uint8 (0..255) or float32",
            what()
        ),
    };
    Ok(Some((shape, (values, n))))
}

/// `values` planar (`N x C x H x W`) where they are kept; empty otherwise.
fn planar_kept<T: Copy + Default>(
    values: Vec<T>,
    keep: bool,
    nhwc: bool,
    n: usize,
    shape: (usize, usize, usize),
) -> Vec<T> {
    match (keep, nhwc) {
        (false, _) => Vec::new(),
        (true, true) => planar(&values, n, shape),
        (true, false) => values,
    }
}

/// `N x H x W x C` values as `N x C x H x W`.
fn planar<T: Copy + Default>(values: &[T], n: usize, (c, h, w): (usize, usize, usize)) -> Vec<T> {
    let per = c * h * w;
    let mut out = vec![T::default(); values.len()];
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
    let Some(Array {
        npy,
        shape: dims,
        kind,
        ..
    }) = array(source, path, name)?
    else {
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

#[cfg(test)]
mod tests {
    use super::super::{load, DataConfig, Dataset, DatasetKind};
    use candle_core::Device;
    use npyz::WriterBuilder;
    use std::io::Write;
    use std::path::Path;

    /// An `.npy` file of `shape` holding `data`, written by `npyz`.
    fn npy(shape: &[u64], data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut writer = npyz::WriteOptions::new()
            .default_dtype()
            .shape(shape)
            .writer(&mut out)
            .begin_nd()
            .unwrap();
        writer.extend(data.iter().copied()).unwrap();
        writer.finish().unwrap();
        out
    }

    /// Six 4x4 RGB images, channel-last as NumPy keeps them, in 3 classes.
    fn arrays() -> Vec<(&'static str, Vec<u8>)> {
        let pixels: Vec<u8> = (0..6 * 4 * 4 * 3).map(|i| (i * 37 % 251) as u8).collect();
        let labels: Vec<u8> = (0..6).map(|i| i % 3).collect();
        vec![
            ("x_train.npy", npy(&[6, 4, 4, 3], &pixels)),
            ("y_train.npy", npy(&[6], &labels)),
            ("x_test.npy", npy(&[2, 4, 4, 3], &pixels[..96])),
            ("y_test.npy", npy(&[2], &labels[..2])),
        ]
    }

    fn npz(path: &Path, method: zip::CompressionMethod) {
        let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
        for (name, bytes) in arrays() {
            let options = zip::write::SimpleFileOptions::default().compression_method(method);
            zip.start_file(name, options).unwrap();
            zip.write_all(&bytes).unwrap();
        }
        zip.finish().unwrap();
    }

    fn loaded(dataset: DatasetKind, path: &Path, normalize: bool) -> Dataset {
        let config = DataConfig {
            dataset,
            path: Some(path.to_path_buf()),
            validation_split: 0.5,
            normalize,
            ..DataConfig::default()
        };
        load(&config, 5, &Device::Cpu).unwrap()
    }

    /// Every split's examples as bits, and labels.
    fn contents(d: &Dataset) -> Vec<(Vec<u32>, Vec<u32>)> {
        [&d.train, &d.val, &d.test]
            .iter()
            .map(|s| {
                let (values, labels) = s.examples(0..s.len());
                (values.iter().map(|v| v.to_bits()).collect(), labels)
            })
            .collect()
    }

    /// uint8 arrays stored uncompressed (a `.npy` file, an `.npz` member of
    /// `numpy.savez`) are mapped and made planar batch by batch; deflated
    /// ones (`numpy.savez_compressed`) are read into memory and made planar
    /// at once: both give the same examples, normalised or not.
    #[test]
    fn mapped_and_read_uint8_arrays_give_the_same_examples() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("arrays");
        std::fs::create_dir(&folder).unwrap();
        for (name, bytes) in arrays() {
            std::fs::write(folder.join(name), bytes).unwrap();
        }
        let (stored, deflated) = (dir.path().join("s.npz"), dir.path().join("d.npz"));
        npz(&stored, zip::CompressionMethod::Stored);
        npz(&deflated, zip::CompressionMethod::Deflated);
        for normalize in [false, true] {
            let from_folder = loaded(DatasetKind::Npy, &folder, normalize);
            let from_stored = loaded(DatasetKind::Npz, &stored, normalize);
            let from_deflated = loaded(DatasetKind::Npz, &deflated, normalize);
            assert_eq!(from_folder.train.storage(), "mapped");
            assert_eq!(from_stored.train.storage(), "mapped");
            assert_eq!(from_deflated.train.storage(), "bytes");
            assert_eq!(contents(&from_folder), contents(&from_deflated));
            assert_eq!(contents(&from_stored), contents(&from_deflated));
        }
        // Test image 1 (the second one stored): planar, scaled to 0..1.
        let raw = loaded(DatasetKind::Npy, &folder, false);
        let (values, labels) = raw.test.examples(1..2);
        assert_eq!(labels, [1]);
        for ch in 0..3 {
            for p in 0..16 {
                let byte = ((48 + p * 3 + ch) * 37 % 251) as f32;
                assert_eq!(values[ch * 16 + p], byte / 255.0, "channel {ch}, pixel {p}");
            }
        }
    }

    /// Header text NumPy never writes (control bytes, deep brackets, a huge
    /// length) is refused before the header parser, which backtracks
    /// exponentially on some of it (a fuzzer found a header that took it
    /// minutes), sees it.
    #[test]
    fn malformed_npy_headers_are_refused_before_parsing() {
        let dir = tempfile::tempdir().unwrap();
        let config = DataConfig {
            dataset: DatasetKind::Npy,
            path: Some(dir.path().to_path_buf()),
            ..DataConfig::default()
        };
        for (name, bytes) in arrays() {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        let with_header = |text: &[u8]| {
            let mut out = b"\x93NUMPY\x01\x00".to_vec();
            out.extend((text.len() as u16).to_le_bytes());
            out.extend(text);
            out
        };
        let control: Vec<u8> =
            b"{'descr': '|u1', 'fortran_order': False, 'shape': (4, 3, \x08\t\n\x0b\x0c\r"
                .iter()
                .copied()
                .chain(0x0e..0x20)
                .collect();
        let deep = b"{'descr': '|u1', 'fortran_order': False, 'shape': (((6,),),), }\n".to_vec();
        let mut huge = b"\x93NUMPY\x02\x00".to_vec();
        huge.extend(20_000u32.to_le_bytes());
        huge.extend(vec![b' '; 20_000]);
        for (bytes, needle) in [
            (with_header(&control), "has the byte 0x08 at 57"),
            (with_header(&deep), "nested more than two deep"),
            (huge, "a header of 20000 bytes"),
        ] {
            std::fs::write(dir.path().join("x_train.npy"), bytes).unwrap();
            let e = format!("{:#}", super::super::probe(&config, 5).unwrap_err());
            assert!(e.contains("x_train") && e.contains(needle), "{e}");
        }
    }

    /// A `.npy` file shorter than its header says is refused before it is
    /// mapped (reading past the end of a map would end the process).
    #[test]
    fn a_truncated_npy_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        for (name, mut bytes) in arrays() {
            if name == "x_train.npy" {
                bytes.truncate(bytes.len() - 5);
            }
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        let config = DataConfig {
            dataset: DatasetKind::Npy,
            path: Some(dir.path().to_path_buf()),
            ..DataConfig::default()
        };
        let e = format!("{:#}", load(&config, 5, &Device::Cpu).err().unwrap());
        assert!(
            e.contains("x_train") && e.contains("the file is truncated"),
            "{e}"
        );
        let e = format!("{:#}", super::super::probe(&config, 5).unwrap_err());
        assert!(e.contains("the file is truncated"), "{e}");
    }
}
