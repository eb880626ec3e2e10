//! The IDX format of MNIST and Fashion-MNIST, gzip-compressed or raw:
//! a big-endian magic (0x00000803 images, 0x00000801 labels), the dimensions,
//! then one byte per value.

use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::Path;

/// Reads a whole file, decompressing it when it starts with the gzip magic.
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    decode(raw, path)
}

/// The bytes of an IDX file read from `path`: gunzipped when they start
/// with the gzip magic, else as they are.
pub fn decode(raw: Vec<u8>, path: &Path) -> Result<Vec<u8>> {
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .with_context(|| {
                format!(
                    "{} looks gzip-compressed but does not decompress (truncated or corrupt)",
                    path.display()
                )
            })?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parses IDX bytes (read from `path`, named in errors) with the expected
/// number of dimensions; returns the dimensions and the values.
pub fn parse(bytes: &[u8], ndims: usize, what: &str, path: &Path) -> Result<(Vec<usize>, Vec<u8>)> {
    let file = path.display();
    let magic = 0x0800u32 | ndims as u32;
    if bytes.len() < 4 + 4 * ndims {
        bail!(
            "{file} is too short to be an IDX {what} file ({} bytes)",
            bytes.len()
        );
    }
    let got = u32::from_be_bytes(bytes[0..4].try_into().unwrap());
    if got != magic {
        bail!("{file} is not an IDX {what} file: magic number {got:#010x}, expected {magic:#010x}");
    }
    let dims: Vec<usize> = (0..ndims)
        .map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize)
        .collect();
    let data = &bytes[4 + 4 * ndims..];
    let expected = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    if expected != Some(data.len()) {
        let promised = dims.iter().map(|&d| d as u128).product::<u128>();
        bail!("{file}: the header promises {dims:?} = {promised} values but the file holds {} (truncated or padded)", data.len());
    }
    Ok((dims, data.to_vec()))
}

/// Reads an images file (N x H x W) and its labels file (N); checks the counts agree.
pub(crate) fn read_pair(images: &Path, labels: &Path) -> Result<(Vec<usize>, Vec<u8>, Vec<u8>)> {
    let (dims, pixels) = parse(&read_maybe_gz(images)?, 3, "images", images)?;
    let (ldims, labels_data) = parse(&read_maybe_gz(labels)?, 1, "labels", labels)?;
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
        let (dims, px, lab) = read_pair(&images, &labels).unwrap();
        assert_eq!((dims, px.len(), lab), (vec![2, 2, 3], 12, vec![3, 7]));

        std::fs::write(&images, idx(0x801, &[2, 2, 3], &[0; 12])).unwrap();
        let e = read_pair(&images, &labels).unwrap_err().to_string();
        assert!(
            e.contains("img") && e.contains("magic number 0x00000801, expected 0x00000803"),
            "{e}"
        );

        std::fs::write(&images, idx(0x803, &[2, 2, 3], &[0; 10])).unwrap();
        let e = read_pair(&images, &labels).unwrap_err().to_string();
        assert!(
            e.contains("promises [2, 2, 3] = 12 values but the file holds 10"),
            "{e}"
        );

        // Found by the fuzz target: dimensions whose product overflows.
        let huge = u32::MAX;
        std::fs::write(&images, idx(0x803, &[huge, huge, huge], &[0; 12])).unwrap();
        let e = read_pair(&images, &labels).unwrap_err().to_string();
        assert!(e.contains("values but the file holds 12"), "{e}");

        std::fs::write(&images, idx(0x803, &[3, 2, 2], &[0; 12])).unwrap();
        let e = read_pair(&images, &labels).unwrap_err().to_string();
        assert!(
            e.contains("holds 3 images") && e.contains("holds 2 labels"),
            "{e}"
        );

        std::fs::write(&labels, [0x1f, 0x8b, 8, 0, 1, 2]).unwrap();
        let e = format!(
            "{:#}",
            read_pair(&dir.path().join("img"), &labels).unwrap_err()
        );
        assert!(
            e.contains("lab.gz") && e.contains("does not decompress"),
            "{e}"
        );
    }
}
