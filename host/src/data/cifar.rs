//! The binary versions of CIFAR-10 and CIFAR-100: records of label bytes
//! (CIFAR-10: one; CIFAR-100: the coarse then the fine label) and 3 x 32 x 32
//! pixel bytes (red, green, blue planes). CIFAR-10 comes in
//! `data_batch_1.bin`..`data_batch_5.bin` and `test_batch.bin`, CIFAR-100 in
//! `train.bin` and `test.bin`.

use anyhow::{bail, Context, Result};
use std::path::Path;

/// Pixel bytes of one record.
const PIXELS: usize = 3 * 32 * 32;

/// A record layout, and which label it learns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One label byte, 0..=9.
    Cifar10,
    /// Coarse and fine label bytes; the fine label, 0..=99.
    Cifar100Fine,
    /// Coarse and fine label bytes; the coarse label, 0..=19.
    Cifar100Coarse,
}

impl Layout {
    /// Bytes of one record.
    pub fn record(self) -> usize {
        match self {
            Layout::Cifar10 => 1 + PIXELS,
            Layout::Cifar100Fine | Layout::Cifar100Coarse => 2 + PIXELS,
        }
    }

    /// The number of classes of the label learnt.
    pub fn classes(self) -> usize {
        match self {
            Layout::Cifar10 => 10,
            Layout::Cifar100Fine => 100,
            Layout::Cifar100Coarse => 20,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Layout::Cifar10 => "CIFAR-10",
            Layout::Cifar100Fine | Layout::Cifar100Coarse => "CIFAR-100",
        }
    }

    /// The label a record's label bytes give, and every label byte's range.
    fn label(self, record: &[u8]) -> std::result::Result<u8, String> {
        let check = |what: &str, v: u8, classes: u8| {
            if v < classes {
                Ok(v)
            } else {
                Err(format!(
                    "{what} {v}, but {} {what}s are 0..={}",
                    self.name(),
                    classes - 1
                ))
            }
        };
        match self {
            Layout::Cifar10 => check("label", record[0], 10),
            Layout::Cifar100Fine | Layout::Cifar100Coarse => {
                let coarse = check("coarse label", record[0], 20)?;
                let fine = check("fine label", record[1], 100)?;
                Ok(if self == Layout::Cifar100Fine {
                    fine
                } else {
                    coarse
                })
            }
        }
    }
}

/// Reads binary batch files of `layout`; returns (pixels, labels)
/// concatenated. With `keep_pixels` false every file is checked the same
/// but the pixels returned are empty.
pub(crate) fn read(
    files: &[std::path::PathBuf],
    layout: Layout,
    keep_pixels: bool,
) -> Result<(Vec<u8>, Vec<u8>)> {
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for file in files {
        read_one(file, layout, &mut pixels, &mut labels)?;
        if !keep_pixels {
            pixels.clear();
        }
    }
    Ok((pixels, labels))
}

/// The largest batch file read (a real one holds at most 50,000 records, 154 MB).
const MAX_FILE_BYTES: u64 = 1 << 30;

fn read_one(path: &Path, layout: Layout, pixels: &mut Vec<u8>, labels: &mut Vec<u8>) -> Result<()> {
    use std::io::Read;
    let file = super::idx::open_regular(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        bail!(
            "{} is over {} MiB, larger than any {} batch",
            path.display(),
            MAX_FILE_BYTES >> 20,
            layout.name()
        );
    }
    parse(&bytes, path, layout, pixels, labels)
}

/// Appends the records of one binary batch of `layout` (read from `path`,
/// named in errors) to `pixels` and `labels`.
pub fn parse(
    bytes: &[u8],
    path: &Path,
    layout: Layout,
    pixels: &mut Vec<u8>,
    labels: &mut Vec<u8>,
) -> Result<()> {
    let record = layout.record();
    if bytes.is_empty() || !bytes.len().is_multiple_of(record) {
        bail!(
            "{} is not a {} binary batch: {} bytes is not a whole number of {record}-byte records (truncated, or the other CIFAR's format?)",
            path.display(),
            layout.name(),
            bytes.len()
        );
    }
    for (i, r) in bytes.chunks_exact(record).enumerate() {
        let label = layout
            .label(r)
            .map_err(|why| anyhow::anyhow!("{}: record {i} has {why}", path.display()))?;
        labels.push(label);
        pixels.extend_from_slice(&r[record - PIXELS..]);
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
        let layout = Layout::Cifar10;
        let mut bytes = vec![3u8];
        bytes.extend(vec![7u8; PIXELS]);
        bytes.push(9);
        bytes.extend(vec![1u8; PIXELS]);
        std::fs::write(&good, &bytes).unwrap();
        let (px, lab) = read(std::slice::from_ref(&good), layout, true).unwrap();
        assert_eq!(lab, vec![3, 9]);
        assert_eq!(px.len(), 2 * 3072);
        assert_eq!((px[0], px[3072]), (7, 1));

        std::fs::write(&good, &bytes[..layout.record() + 10]).unwrap();
        let e = read(std::slice::from_ref(&good), layout, true)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("data_batch_1.bin") && e.contains("not a whole number"),
            "{e}"
        );

        bytes[0] = 42;
        std::fs::write(&good, &bytes).unwrap();
        let e = read(&[good], layout, true).unwrap_err().to_string();
        assert!(e.contains("record 0 has label 42"), "{e}");
    }

    /// CIFAR-100 records carry the coarse then the fine label; either can
    /// be learnt, and each is checked against its range.
    #[test]
    fn cifar100_records_give_fine_or_coarse_labels() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("train.bin");
        let mut bytes = vec![19u8, 99];
        bytes.extend(vec![5u8; PIXELS]);
        bytes.extend([0u8, 42]);
        bytes.extend(vec![6u8; PIXELS]);
        std::fs::write(&file, &bytes).unwrap();
        let (px, fine) = read(std::slice::from_ref(&file), Layout::Cifar100Fine, true).unwrap();
        assert_eq!(fine, vec![99, 42]);
        assert_eq!((px.len(), px[0], px[PIXELS]), (2 * PIXELS, 5, 6));
        let (_, coarse) = read(std::slice::from_ref(&file), Layout::Cifar100Coarse, true).unwrap();
        assert_eq!(coarse, vec![19, 0]);
        let e = read(std::slice::from_ref(&file), Layout::Cifar10, true)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not a whole number") && e.contains("other CIFAR"),
            "{e}"
        );
        bytes[1] = 100;
        std::fs::write(&file, &bytes).unwrap();
        let e = read(&[file], Layout::Cifar100Coarse, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("record 0 has fine label 100"), "{e}");
    }
}
