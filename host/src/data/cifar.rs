//! The binary version of CIFAR-10: records of one label byte and 3 x 32 x 32
//! pixel bytes (red, green, blue planes), in `data_batch_1.bin`..`data_batch_5.bin`
//! and `test_batch.bin`.

use anyhow::{bail, Context, Result};
use std::path::Path;

/// Bytes of one record.
pub(crate) const RECORD: usize = 1 + 3 * 32 * 32;

/// Reads CIFAR-10 binary files; returns (pixels, labels) concatenated. With
/// `keep_pixels` false every file is checked the same but the pixels
/// returned are empty.
pub(crate) fn read(files: &[std::path::PathBuf], keep_pixels: bool) -> Result<(Vec<u8>, Vec<u8>)> {
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for file in files {
        read_one(file, &mut pixels, &mut labels)?;
        if !keep_pixels {
            pixels.clear();
        }
    }
    Ok((pixels, labels))
}

/// The largest batch file read (a real one holds 10,000 records, 30 MB).
const MAX_FILE_BYTES: u64 = 1 << 30;

fn read_one(path: &Path, pixels: &mut Vec<u8>, labels: &mut Vec<u8>) -> Result<()> {
    use std::io::Read;
    let file = super::idx::open_regular(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        bail!(
            "{} is over {} MiB, larger than any CIFAR-10 batch",
            path.display(),
            MAX_FILE_BYTES >> 20
        );
    }
    parse(&bytes, path, pixels, labels)
}

/// Appends the records of one binary batch (read from `path`, named in
/// errors) to `pixels` and `labels`.
pub fn parse(bytes: &[u8], path: &Path, pixels: &mut Vec<u8>, labels: &mut Vec<u8>) -> Result<()> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD) {
        bail!(
            "{} is not a CIFAR-10 binary batch: {} bytes is not a whole number of {RECORD}-byte records (truncated?)",
            path.display(),
            bytes.len()
        );
    }
    for (i, record) in bytes.chunks_exact(RECORD).enumerate() {
        if record[0] > 9 {
            bail!("{}: record {i} has label {}, but CIFAR-10 labels are 0..=9 (is this the CIFAR-100 format?)", path.display(), record[0]);
        }
        labels.push(record[0]);
        pixels.extend_from_slice(&record[1..]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_records_and_refuses_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("data_batch_1.bin");
        let mut bytes = vec![3u8];
        bytes.extend(vec![7u8; RECORD - 1]);
        bytes.push(9);
        bytes.extend(vec![1u8; RECORD - 1]);
        std::fs::write(&good, &bytes).unwrap();
        let (px, lab) = read(std::slice::from_ref(&good), true).unwrap();
        assert_eq!(lab, vec![3, 9]);
        assert_eq!(px.len(), 2 * 3072);
        assert_eq!((px[0], px[3072]), (7, 1));

        std::fs::write(&good, &bytes[..RECORD + 10]).unwrap();
        let e = read(std::slice::from_ref(&good), true)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("data_batch_1.bin") && e.contains("not a whole number"),
            "{e}"
        );

        bytes[0] = 42;
        std::fs::write(&good, &bytes).unwrap();
        let e = read(&[good], true).unwrap_err().to_string();
        assert!(e.contains("record 0 has label 42"), "{e}");
    }
}
