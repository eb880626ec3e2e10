//! The IDX format of MNIST and Fashion-MNIST, gzip-compressed or raw:
//! a big-endian magic (0x00000803 images, 0x00000801 labels), the dimensions,
//! then one byte per value.

use anyhow::{bail, Context, Result};
use std::io::{BufRead, Read};
use std::path::Path;

/// The most values an IDX file may hold (4 GiB of bytes): a header that
/// claims more is refused before anything is allocated.
pub const MAX_VALUES: usize = 1 << 32;

/// Opens `path` for reading if it is a regular file (never a FIFO or a
/// device, which could block or never end).
pub(crate) fn open_regular(path: &Path) -> Result<std::fs::File> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if !meta.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))
}

/// An IDX stream after its checked header: the dimensions, the value count
/// they promise, and the values still to read.
struct Stream<'a> {
    dims: Vec<usize>,
    expected: usize,
    promised: u128,
    reader: Box<dyn Read + 'a>,
    gzip: bool,
}

impl<'a> Stream<'a> {
    /// Opens `source` (an IDX file's bytes, gzip-compressed or raw; `path`
    /// names it in errors) and checks its header: the magic, every
    /// dimension at least 1, the value count within [`MAX_VALUES`].
    fn open(source: impl Read + 'a, ndims: usize, what: &str, path: &Path) -> Result<Stream<'a>> {
        let file = path.display();
        let mut source = std::io::BufReader::new(source);
        let gzip = source
            .fill_buf()
            .with_context(|| format!("cannot read {file}"))?
            .starts_with(&[0x1f, 0x8b]);
        let mut reader: Box<dyn Read + 'a> = if gzip {
            Box::new(flate2::read::GzDecoder::new(source))
        } else {
            Box::new(source)
        };
        let mut header = vec![0u8; 4 + 4 * ndims];
        let mut got = 0;
        while got < header.len() {
            match reader
                .read(&mut header[got..])
                .map_err(|e| broken(gzip, path, e))?
            {
                0 => bail!("{file} is too short to be an IDX {what} file ({got} bytes)"),
                n => got += n,
            }
        }
        let word =
            |i: usize| u32::from_be_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
        let magic = 0x0800u32 | ndims as u32;
        if word(0) != magic {
            bail!(
                "{file} is not an IDX {what} file: magic number {:#010x}, expected {magic:#010x}",
                word(0)
            );
        }
        let dims: Vec<usize> = (0..ndims).map(|i| word(4 + 4 * i) as usize).collect();
        if dims.contains(&0) {
            bail!(
                "{file}: the header claims dimensions {dims:?}; every dimension must be at least 1"
            );
        }
        let promised = dims.iter().map(|&d| d as u128).product::<u128>();
        if promised > MAX_VALUES as u128 {
            bail!(
                "{file}: the header promises {dims:?} = {promised} values, over the limit of {MAX_VALUES} an IDX file may hold"
            );
        }
        Ok(Stream {
            dims,
            expected: promised as usize,
            promised,
            reader,
            gzip,
        })
    }

    /// Reads the values into `out` (at most one past the promise), then
    /// checks the file held exactly what its header promised.
    fn finish(self, out: &mut impl std::io::Write, path: &Path) -> Result<Vec<usize>> {
        let held = std::io::copy(&mut self.reader.take(self.expected as u64 + 1), out)
            .map_err(|e| broken(self.gzip, path, e))?;
        if held != self.expected as u64 {
            let held = if held > self.expected as u64 {
                "more".to_string()
            } else {
                held.to_string()
            };
            bail!(
                "{}: the header promises {:?} = {} values but the file holds {held} (truncated or padded)",
                path.display(),
                self.dims,
                self.promised
            );
        }
        Ok(self.dims)
    }
}

fn broken(gzip: bool, path: &Path, e: std::io::Error) -> anyhow::Error {
    let file = path.display();
    if gzip {
        anyhow::anyhow!(
            "{file} looks gzip-compressed but does not decompress (truncated or corrupt): {e}"
        )
    } else {
        anyhow::anyhow!("cannot read {file}: {e}")
    }
}

/// Reads an IDX file with `ndims` dimensions from `source` (its bytes,
/// gzip-compressed or raw; `path` names it in errors): the header is checked
/// (magic, every dimension at least 1, the value count within
/// [`MAX_VALUES`]) before the values are read, and decompression stops at
/// the count the header promised, so a small file that expands to gigabytes
/// costs nothing. Returns the dimensions and the values.
pub fn read(
    source: impl Read,
    ndims: usize,
    what: &str,
    path: &Path,
) -> Result<(Vec<usize>, Vec<u8>)> {
    let stream = Stream::open(source, ndims, what, path)?;
    let mut data = Vec::with_capacity(stream.expected);
    let dims = stream.finish(&mut data, path)?;
    Ok((dims, data))
}

/// Checks an IDX file as [`read`] does, without keeping its values (they
/// stream through); returns the dimensions.
pub fn check(source: impl Read, ndims: usize, what: &str, path: &Path) -> Result<Vec<usize>> {
    Stream::open(source, ndims, what, path)?.finish(&mut std::io::sink(), path)
}

/// Reads an images file (N x H x W) and its labels file (N); checks the
/// counts agree. With `pixels` false the images are checked but not kept
/// (the pixels returned are empty).
pub(crate) fn read_pair(
    images: &Path,
    labels: &Path,
    pixels: bool,
) -> Result<(Vec<usize>, Vec<u8>, Vec<u8>)> {
    let (dims, pixels) = if pixels {
        read(open_regular(images)?, 3, "images", images)?
    } else {
        (
            check(open_regular(images)?, 3, "images", images)?,
            Vec::new(),
        )
    };
    let (ldims, labels_data) = read(open_regular(labels)?, 1, "labels", labels)?;
    if ldims[0] != dims[0] {
        bail!(
            "{} holds {} images but {} holds {} labels; the two files must come from the same split",
            images.display(),
            dims[0],
            labels.display(),
            ldims[0]
        );
    }
    Ok((dims, pixels, labels_data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// An IDX file's bytes.
    pub(crate) fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut out = magic.to_be_bytes().to_vec();
        for d in dims {
            out.extend(d.to_be_bytes());
        }
        out.extend(data);
        out
    }

    #[test]
    fn reads_raw_and_gzip_and_checks_everything() {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("img");
        let labels = dir.path().join("lab.gz");
        std::fs::write(
            &images,
            idx(0x803, &[2, 2, 3], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]),
        )
        .unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&idx(0x801, &[2], &[3, 7])).unwrap();
        std::fs::write(&labels, gz.finish().unwrap()).unwrap();
        let (dims, px, lab) = read_pair(&images, &labels, true).unwrap();
        assert_eq!((dims, px.len(), lab), (vec![2, 2, 3], 12, vec![3, 7]));

        std::fs::write(&images, idx(0x801, &[2, 2, 3], &[0; 12])).unwrap();
        let e = read_pair(&images, &labels, true).unwrap_err().to_string();
        assert!(
            e.contains("img") && e.contains("magic number 0x00000801, expected 0x00000803"),
            "{e}"
        );

        std::fs::write(&images, idx(0x803, &[2, 2, 3], &[0; 10])).unwrap();
        let e = read_pair(&images, &labels, true).unwrap_err().to_string();
        assert!(
            e.contains("promises [2, 2, 3] = 12 values but the file holds 10"),
            "{e}"
        );

        // Found by the fuzz target: dimensions whose product overflows.
        let huge = u32::MAX;
        std::fs::write(&images, idx(0x803, &[huge, huge, huge], &[0; 12])).unwrap();
        let e = read_pair(&images, &labels, true).unwrap_err().to_string();
        assert!(e.contains("values, over the limit of 4294967296"), "{e}");

        // A dimension of 0 (each image would be empty).
        std::fs::write(&images, idx(0x803, &[300, 0, 0], &[])).unwrap();
        let e = read_pair(&images, &labels, true).unwrap_err().to_string();
        assert!(e.contains("every dimension must be at least 1"), "{e}");

        // A small gzip file whose header promises 28x28 images, and that
        // would expand to a gigabyte: read up to the promise, then refused.
        let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        bomb.write_all(&idx(0x803, &[2, 28, 28], &[])).unwrap();
        for _ in 0..1024 {
            bomb.write_all(&[0; 1 << 20]).unwrap();
        }
        let bomb = bomb.finish().unwrap();
        assert!(bomb.len() < 2 << 20);
        std::fs::write(&images, bomb).unwrap();
        let e = read_pair(&images, &labels, true).unwrap_err().to_string();
        assert!(e.contains("= 1568 values but the file holds more"), "{e}");

        // A FIFO is refused, not waited on.
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let e = read_pair(&fifo, &labels, true).unwrap_err().to_string();
        assert!(e.contains("is not a regular file"), "{e}");

        std::fs::write(&images, idx(0x803, &[3, 2, 2], &[0; 12])).unwrap();
        let e = read_pair(&images, &labels, true).unwrap_err().to_string();
        assert!(
            e.contains("holds 3 images") && e.contains("holds 2 labels"),
            "{e}"
        );

        std::fs::write(&labels, [0x1f, 0x8b, 8, 0, 1, 2]).unwrap();
        let e = format!(
            "{:#}",
            read_pair(&dir.path().join("img"), &labels, true).unwrap_err()
        );
        assert!(
            e.contains("lab.gz") && e.contains("does not decompress"),
            "{e}"
        );
    }
}
