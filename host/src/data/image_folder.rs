//! `image-folder`: the user's own images, one subfolder per class
//! (`root/<class>/*.png`), or `train/`, `val/` and `test/` folders of those.
//! PNG, JPEG and BMP files are decoded with the `image` crate (limits on
//! size and allocation set before decoding), converted to grayscale or RGB,
//! and resized (stretched, or the centre cropped) to `image_size` when it is
//! set; otherwise every image must have the first one's size. Classes are
//! the sorted folder names of the training images; the images are taken in
//! file-name order across classes.

use super::{DataConfig, Part, Raw, Resize, Values};
use anyhow::{bail, Context, Result};
use image::imageops::FilterType;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// The largest `image_size`, and the largest side of an image decoded.
pub const MAX_SIDE: usize = 4096;

/// The most bytes one image may take while decoding.
const MAX_DECODE_BYTES: u64 = 256 << 20;

/// The file extensions read as images (in any case); other files are skipped.
const EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "bmp"];

/// Reads the folder `config` names; with `keep` false every image is still
/// decoded and checked, but its pixels are dropped.
pub(super) fn read(config: &DataConfig, keep: bool) -> Result<Raw> {
    let root = config.path.as_deref().context("[data] path is required")?;
    if !root.is_dir() {
        bail!(
            "[data] path {} is not a folder: dataset = \"image-folder\" reads a folder with a subfolder of images per class",
            root.display()
        );
    }
    let split_root = root.join("train");
    let (train_dir, val_dir, test_dir) = if split_root.is_dir() {
        let other = |name: &str| Some(root.join(name)).filter(|p| p.is_dir());
        (split_root, other("val"), other("test"))
    } else {
        (root.to_path_buf(), None, None)
    };
    let classes = class_folders(&train_dir)?;
    let names: Vec<String> = classes.iter().map(|(name, _)| name.clone()).collect();
    let channels = config.channels.unwrap_or(3);
    let mut size = config.image_size.map(|s| (s, s));
    let mut part = |dir: &Path| -> Result<Part> {
        let files = labelled_files(dir, &names)?;
        decode_all(&files, channels, config.resize, &mut size, keep)
    };
    let train = part(&train_dir)?;
    let val = val_dir.as_deref().map(&mut part).transpose()?;
    let test = test_dir.as_deref().map(&mut part).transpose()?;
    let (h, w) = size.context("no images were read")?;
    Ok(Raw {
        shape: (channels, h, w),
        classes: names,
        train,
        val,
        test,
    })
}

/// The class subfolders of `dir` (hidden ones skipped), sorted by name.
fn class_folders(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut classes = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && entry.path().is_dir() {
            classes.push((name, entry.path()));
        }
    }
    classes.sort();
    if classes.len() < 2 {
        bail!(
            "{} has {} class folder(s); dataset = \"image-folder\" needs a subfolder of images for each of at least two classes",
            dir.display(),
            classes.len()
        );
    }
    Ok(classes)
}

/// Every image of `dir`'s class folders with its class index in `names`
/// (the training classes), in file-name order across the classes (then
/// class order), so files named by their index keep a dataset's order.
fn labelled_files(dir: &Path, names: &[String]) -> Result<Vec<(PathBuf, u32)>> {
    let mut files = Vec::new();
    for (name, folder) in class_folders(dir)? {
        let Some(label) = names.iter().position(|n| *n == name) else {
            bail!(
                "{} is a class the training images do not have (their classes: {}); remove it or add training images of it",
                folder.display(),
                names.join(", ")
            );
        };
        let mut images = Vec::new();
        for entry in std::fs::read_dir(&folder)
            .with_context(|| format!("cannot read {}", folder.display()))?
        {
            let path = entry
                .with_context(|| format!("cannot read {}", folder.display()))?
                .path();
            let image = path.extension().is_some_and(|e| {
                EXTENSIONS.contains(&e.to_string_lossy().to_ascii_lowercase().as_str())
            });
            if image {
                images.push(path);
            }
        }
        if images.is_empty() {
            bail!(
                "class folder {} has no images ({}); remove the folder or add images",
                folder.display(),
                EXTENSIONS.map(|e| format!(".{e}")).join(", ")
            );
        }
        files.extend(images.into_iter().map(|p| (p, label as u32)));
    }
    files.sort_by(|(a, la), (b, lb)| a.file_name().cmp(&b.file_name()).then(la.cmp(lb)));
    Ok(files)
}

/// Decodes `files` in parallel (the result is in file order) to planar
/// bytes. `size` is the size every image must have or be resized
/// to; when unset, the first image sets it.
fn decode_all(
    files: &[(PathBuf, u32)],
    channels: usize,
    resize: Option<Resize>,
    size: &mut Option<(usize, usize)>,
    keep: bool,
) -> Result<Part> {
    let resizing = size.is_some();
    let first = &files.first().context("no images to read")?.0;
    if size.is_none() {
        let image = decode(first, channels)?;
        *size = Some((image.height() as usize, image.width() as usize));
    }
    let (h, w) = size.context("the image size is known")?;
    let per = channels * h * w;
    super::check_memory(files.len(), per, 1, keep)?;
    let decoded: Vec<Vec<u8>> = files
        .par_iter()
        .map(|(path, _)| {
            let image = decode(path, channels)?;
            let image = if resizing {
                fit(image, h, resize.unwrap_or(Resize::Stretch))
            } else if (image.height() as usize, image.width() as usize) != (h, w) {
                bail!(
                    "{} is {}x{} but {} is {w}x{h}: the images have mixed sizes; set [data] image_size to resize them all",
                    path.display(),
                    image.width(),
                    image.height(),
                    first.display(),
                );
            } else {
                image
            };
            Ok(if keep { planar(&image, channels) } else { Vec::new() })
        })
        .collect::<Result<_>>()?;
    Ok(Part {
        values: Values::Bytes(decoded.concat()),
        labels: files.iter().map(|(_, label)| *label).collect(),
    })
}

/// One image, decoded within the limits and converted to `channels`.
fn decode(path: &Path, channels: usize) -> Result<image::DynamicImage> {
    let file = super::idx::open_regular(path)?;
    let mut reader = image::ImageReader::new(std::io::BufReader::new(file))
        .with_guessed_format()
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE as u32);
    limits.max_image_height = Some(MAX_SIDE as u32);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let image = reader.decode().with_context(|| {
        format!(
            "{} is not a readable image (PNG, JPEG or BMP, at most {MAX_SIDE} pixels a side)",
            path.display()
        )
    })?;
    Ok(if channels == 1 {
        image::DynamicImage::ImageLuma8(image.to_luma8())
    } else {
        image::DynamicImage::ImageRgb8(image.to_rgb8())
    })
}

/// `image` brought to `side` x `side`: stretched, or its shorter side
/// resized to `side` and the centre cropped.
fn fit(image: image::DynamicImage, side: usize, resize: Resize) -> image::DynamicImage {
    let side = side as u32;
    match resize {
        Resize::Stretch => image.resize_exact(side, side, FilterType::Triangle),
        Resize::Crop => image.resize_to_fill(side, side, FilterType::Triangle),
    }
}

/// The image's pixels as planar bytes (all of channel 0, then 1, ...).
fn planar(image: &image::DynamicImage, channels: usize) -> Vec<u8> {
    let bytes = image.as_bytes();
    let pixels = bytes.len() / channels;
    let mut out = vec![0u8; bytes.len()];
    for (i, px) in bytes.chunks_exact(channels).enumerate() {
        for (c, v) in px.iter().enumerate() {
            out[c * pixels + i] = *v;
        }
    }
    out
}
