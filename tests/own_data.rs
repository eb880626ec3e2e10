//! Searching the user's own data, on real data nobody here wrote:
//! scikit-learn's bundled datasets from Debian's `python3-sklearn` (the
//! 1,797 8x8 digit images, written here as an image folder of PNG files;
//! the breast-cancer, wine and iris tables as CSV), searched end to end
//! with the `cnn` and `mlp` spaces; and bad input (an empty class folder, a
//! corrupt PNG, a PNG whose header claims 60,000 x 60,000 pixels, mixed
//! image sizes, a non-numeric cell, a missing label column), each a clear
//! error naming the file.

mod common;

use nas_host::store::{RunStore, DB_FILE};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Output;

/// Where Debian's `python3-sklearn` keeps its bundled datasets.
const SKLEARN: &str = "/usr/lib/python3/dist-packages/sklearn/datasets/data";

fn sklearn(file: &str) -> PathBuf {
    let path = Path::new(SKLEARN).join(file);
    assert!(
        path.exists(),
        "{} is missing: `apt-get install python3-sklearn` (scripts/test.sh does this)",
        path.display()
    );
    path
}

/// The rows of a scikit-learn CSV after its first line (counts and class
/// names, not a header): features, then the integer label.
fn sklearn_rows(file: &str) -> Vec<Vec<String>> {
    let path = sklearn(file);
    let mut text = String::new();
    if file.ends_with(".gz") {
        flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
            .read_to_string(&mut text)
            .unwrap();
    } else {
        text = std::fs::read_to_string(&path).unwrap();
    }
    let skip = usize::from(!file.starts_with("digits"));
    text.lines()
        .skip(skip)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(',').map(|c| c.trim().to_string()).collect())
        .collect()
}

/// Writes the digits as `root/<digit>/<index>.png` (8x8 grayscale, the 0..16
/// intensities scaled to 0..255); returns how many images each class has.
fn digits_folder(root: &Path) -> [usize; 10] {
    let mut counts = [0; 10];
    for (i, row) in sklearn_rows("digits.csv.gz").iter().enumerate() {
        let label: usize = row[64].parse::<f64>().unwrap() as usize;
        let pixels: Vec<u8> = row[..64]
            .iter()
            .map(|v| (v.parse::<f64>().unwrap() * 255.0 / 16.0).round() as u8)
            .collect();
        let dir = root.join(label.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        image::GrayImage::from_raw(8, 8, pixels)
            .unwrap()
            .save(dir.join(format!("{i:04}.png")))
            .unwrap();
        counts[label] += 1;
    }
    counts
}

/// Runs Debian's Python (the one `python3-sklearn` brings NumPy to) on `script`.
fn numpy(script: &str) {
    let out = std::process::Command::new("/usr/bin/python3")
        .args(["-c", script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "NumPy (Debian's python3-numpy, installed with python3-sklearn): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The dataset `config` describes, loaded on the CPU with seed 0.
fn load(config: &str) -> nas_host::data::Dataset {
    let config: nas_host::data::DataConfig = toml::from_str(config).unwrap();
    nas_host::data::load(&config, 0, &candle_core::Device::Cpu).unwrap()
}

/// Every split's images and labels, as bytes and numbers.
fn tensors(d: &nas_host::data::Dataset) -> Vec<(Vec<u32>, Vec<u32>)> {
    [&d.train, &d.val, &d.test]
        .iter()
        .map(|s| {
            let (values, labels) = s.examples(0..s.len());
            (values.iter().map(|f| f.to_bits()).collect(), labels)
        })
        .collect()
}

fn run(dir: &Path, config: &str) -> Output {
    let path = dir.join("config.toml");
    std::fs::write(&path, config).unwrap();
    common::nas_host_command(&["run", path.to_str().unwrap(), "--quiet"])
        .current_dir(dir)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn meta(run_dir: &Path, key: &str) -> String {
    RunStore::open_read_only(&run_dir.join(DB_FILE))
        .unwrap()
        .meta(key)
        .unwrap()
        .unwrap_or_default()
}

#[test]
fn digits_as_an_image_folder_are_searched_with_the_cnn_space() {
    let dir = tempfile::tempdir().unwrap();
    let counts = digits_folder(&dir.path().join("digits"));
    assert_eq!(counts.iter().sum::<usize>(), 1797);
    let out = run(
        dir.path(),
        r#"
[run]
name = "digits"
max_trials = 2
seed = 3

[data]
dataset = "image-folder"
path = "digits"
channels = 1

[train]
epochs = 8
batch_size = 32
learning_rate = 0.003

[space]
plugin = "builtin:cnn"
[space.config]
max_stages = 1
max_blocks = 1
filters = [16]
kernels = [3]
downsamples = ["none"]
dense_units = [64]
dropout_rates = [0.0]

[strategy]
plugin = "builtin:random"
"#,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let run_dir = dir.path().join("runs/digits");
    // 20 percent held out for the test, 20 percent of the rest for validation.
    assert_eq!(
        meta(&run_dir, "data"),
        "ImageFolder 1x8x8, 10 classes (0, 1, 2, 3, 4, 5, 6, 7, 8, 9): 1150 train / 288 validation / 359 test images"
    );
    assert_eq!(
        meta(&run_dir, "classes"),
        r#"["0","1","2","3","4","5","6","7","8","9"]"#
    );
    let test: f64 = meta(&run_dir, "test_accuracy").parse().unwrap();
    assert!(test > 0.8, "a small CNN learns the digits: {test}");
    let best = std::fs::read_to_string(run_dir.join("best/metrics.json")).unwrap();
    assert!(best.contains("\"classes\""), "{best}");
}

/// Each scikit-learn table with a header added, searched with `mlp`: the
/// best network beats always answering the most common class.
#[test]
fn the_breast_cancer_wine_and_iris_tables_are_searched_with_the_mlp_space() {
    for (file, majority) in [
        ("breast_cancer.csv", 357.0 / 569.0),
        ("wine_data.csv", 71.0 / 178.0),
        ("iris.csv", 50.0 / 150.0),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let rows = sklearn_rows(file);
        let features = rows[0].len() - 1;
        let mut csv = (0..features).map(|i| format!("x{i},")).collect::<String>() + "target\n";
        for row in &rows {
            csv += &(row.join(",") + "\n");
        }
        std::fs::write(dir.path().join("table.csv"), csv).unwrap();
        let out = run(
            dir.path(),
            r#"
[run]
name = "table"
max_trials = 3
seed = 5

[data]
dataset = "csv"
path = "table.csv"
label = "target"

[train]
epochs = 30
batch_size = 16
learning_rate = 0.003

[space]
plugin = "builtin:mlp"

[strategy]
plugin = "builtin:random"
"#,
        );
        assert!(out.status.success(), "{file}: {}", stderr(&out));
        let run_dir = dir.path().join("runs/table");
        let data = meta(&run_dir, "data");
        assert!(
            data.starts_with(&format!("Csv {features}x1x1")) && data.ends_with("test rows"),
            "{data}"
        );
        let test: f64 = meta(&run_dir, "test_accuracy").parse().unwrap();
        assert!(
            test > majority + 0.1,
            "{file}: test accuracy {test}, majority class {majority}"
        );
    }
}

/// Bad input of each kind is an error naming the file, and the fix.
#[test]
fn bad_images_and_tables_are_clear_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("images");
    let image = |class: &str, name: &str, side: u32| {
        let path = folder.join(class);
        std::fs::create_dir_all(&path).unwrap();
        image::GrayImage::from_pixel(side, side, image::Luma([128]))
            .save(path.join(name))
            .unwrap();
    };
    let images = |extra: &str| {
        format!("[run]\nname = \"bad\"\nmax_trials = 1\n[data]\ndataset = \"image-folder\"\npath = \"images\"\n{extra}\n[train]\nepochs = 1\n[space]\nplugin = \"builtin:mlp\"\n")
    };
    let fails = |config: &str, needles: &[&str]| {
        let out = run(dir.path(), config);
        let e = stderr(&out);
        assert!(!out.status.success(), "{config}");
        for n in needles {
            assert!(e.contains(n), "expected `{n}` in: {e}");
        }
    };
    for i in 0..5 {
        image("cat", &format!("{i}.png"), 6);
        image("dog", &format!("{i}.png"), 6);
    }
    std::fs::create_dir_all(folder.join("empty")).unwrap();
    fails(&images(""), &["class folder", "empty", "has no images"]);
    std::fs::remove_dir(folder.join("empty")).unwrap();

    std::fs::write(
        folder.join("dog/broken.png"),
        b"\x89PNG\r\n\x1a\nnot really",
    )
    .unwrap();
    fails(&images(""), &["broken.png", "not a readable image"]);
    std::fs::remove_file(folder.join("dog/broken.png")).unwrap();

    // A valid header claiming 60,000 x 60,000 pixels (3.6 GB): refused
    // before anything is allocated.
    std::fs::write(folder.join("dog/huge.png"), png_header_only(60_000)).unwrap();
    fails(
        &images(""),
        &[
            "huge.png",
            "not a readable image",
            "at most 4096 pixels a side",
        ],
    );
    std::fs::remove_file(folder.join("dog/huge.png")).unwrap();

    image("dog", "big.png", 9);
    fails(
        &images(""),
        &["big.png", "is 9x9", "mixed sizes", "set [data] image_size"],
    );
    // With a size set they are resized, and the search runs.
    let out = run(dir.path(), &images("image_size = 6\nchannels = 1"));
    assert!(out.status.success(), "{}", stderr(&out));

    let table = |text: &str| std::fs::write(dir.path().join("t.csv"), text).unwrap();
    let csv = |label: &str| {
        format!("[run]\nname = \"bad\"\nmax_trials = 1\n[data]\ndataset = \"csv\"\npath = \"t.csv\"\nlabel = \"{label}\"\n[train]\nepochs = 1\n[space]\nplugin = \"builtin:mlp\"\n")
    };
    table("a,b,y\n1,2,0\n3,x,1\n");
    fails(
        &csv("y"),
        &[
            "t.csv",
            "line 3",
            "column `b`",
            "`x` is not a finite number",
        ],
    );
    table("a,b,y\n1,2,0\n3,4,1\n");
    fails(
        &csv("label"),
        &["t.csv", "has no column `label`", "a, b, y"],
    );
}

/// The example configs for one's own images and tables are valid as they
/// stand (their data paths are placeholders to point at one's files).
#[test]
fn the_own_data_examples_are_valid_configs() {
    for example in ["own-images.toml", "own-table.toml"] {
        let path = common::root().join("examples").join(example);
        nas_host::config::RunConfig::load(&path).unwrap();
    }
}

/// The digits as an `.npz` written by NumPy (compressed) load to the same
/// tensors, bit for bit and in the same order, as the PNG folder of them,
/// and search end to end; bad arrays are errors naming the file and array.
#[test]
fn digits_as_npz_load_like_the_image_folder_and_are_searched() {
    let dir = tempfile::tempdir().unwrap();
    let rows = sklearn_rows("digits.csv.gz");
    digits_folder(&dir.path().join("digits"));
    let npz = dir.path().join("digits.npz");
    numpy(&format!(
        "import numpy as np\n\
         d = np.loadtxt({:?}, delimiter=',')\n\
         x = np.round(d[:, :64] * 255.0 / 16.0).astype(np.uint8).reshape(-1, 8, 8, 1)\n\
         np.savez_compressed({:?}, x_train=x, y_train=d[:, 64].astype(np.int64))\n",
        sklearn("digits.csv.gz").to_str().unwrap(),
        npz.to_str().unwrap()
    ));
    let folder = load(&format!(
        "dataset = \"image-folder\"\npath = {:?}\nchannels = 1",
        dir.path().join("digits").to_str().unwrap()
    ));
    let arrays = load(&format!(
        "dataset = \"npz\"\npath = {:?}",
        npz.to_str().unwrap()
    ));
    assert_eq!(
        arrays.train.len() + arrays.val.len() + arrays.test.len(),
        rows.len()
    );
    assert!(
        tensors(&folder) == tensors(&arrays),
        "same tensors from PNG files and NumPy arrays"
    );
    // The same arrays as .npy files in a folder, channels first.
    let npy = dir.path().join("npy");
    numpy(&format!(
        "import numpy as np, os\nos.mkdir({npy:?})\nz = np.load({npz:?})\n\
         np.save({npy:?} + '/images.npy', z['x_train'].transpose(0, 3, 1, 2))\n\
         np.save({npy:?} + '/y_train.npy', z['y_train'].astype(np.uint8))\n",
        npy = npy.to_str().unwrap(),
        npz = npz.to_str().unwrap()
    ));
    let files = load(&format!(
        "dataset = \"npy\"\npath = {:?}\ntrain_images = \"images\"\nlayout = \"nchw\"",
        npy.to_str().unwrap()
    ));
    assert!(
        tensors(&files) == tensors(&arrays),
        "an .npy folder as the .npz"
    );

    let out = run(
        dir.path(),
        "[run]\nname = \"npz\"\nmax_trials = 2\n[data]\ndataset = \"npz\"\npath = \"digits.npz\"\n[train]\nepochs = 2\n[space]\nplugin = \"builtin:mlp\"\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(meta(&dir.path().join("runs/npz"), "data").starts_with("Npz 1x8x8, 10 classes"));

    // Missing arrays, and labels of the wrong shape or type.
    let bad = dir.path().join("bad.npz");
    numpy(&format!(
        "import numpy as np\nnp.savez({:?}, images=np.zeros((4, 8, 8), np.uint8), y_train=np.zeros(3, np.int64), f=np.zeros(4, np.float64))\n",
        bad.to_str().unwrap()
    ));
    let config = |extra: &str| {
        let config: nas_host::data::DataConfig = toml::from_str(&format!(
            "dataset = \"npz\"\npath = {:?}\n{extra}",
            bad.to_str().unwrap()
        ))
        .unwrap();
        nas_host::data::load(&config, 0, &candle_core::Device::Cpu)
            .err()
            .unwrap()
            .to_string()
    };
    let e = config("");
    assert!(
        e.contains("bad.npz has no array `x_train`") && e.contains("[data] train_images"),
        "{e}"
    );
    let e = config("train_images = \"images\"");
    assert!(
        e.contains("`y_train` has the shape [3]") && e.contains("each of the 4 examples"),
        "{e}"
    );
    let e = config("train_images = \"images\"\ntrain_labels = \"f\"");
    assert!(
        e.contains("`f` holds `f8` values; labels must be integers"),
        "{e}"
    );
}

/// Fashion-MNIST (Debian's files; the first 6,000 training and 1,000 test
/// images) as IDX files, as PNG folders named by index, and as an `.npz`
/// written by NumPy from the package's files: all three load to the same
/// tensors, bit for bit and in the same order, and a seeded search on each
/// gives the same trials.
#[test]
fn fashion_mnist_as_an_image_folder_and_as_npz_loads_like_the_idx_files() {
    let dir = tempfile::tempdir().unwrap();
    let source = Path::new(nas_host::data::FASHION_MNIST_DEFAULT);
    let idx = dir.path().join("idx");
    let folder = dir.path().join("folder");
    std::fs::create_dir_all(&idx).unwrap();
    for (split, prefix, count) in [("train", "train", 6000usize), ("test", "t10k", 1000)] {
        let read = |kind: &str, ndims: usize| {
            let path = source.join(format!("{prefix}-{kind}-idx{ndims}-ubyte.gz"));
            let file = std::fs::File::open(&path).expect("apt-get install dataset-fashion-mnist");
            nas_host::data::idx::read(flate2::read::GzDecoder::new(file), ndims, kind, &path)
                .unwrap()
        };
        let (dims, pixels) = read("images", 3);
        let (_, labels) = read("labels", 1);
        let side = dims[1] * dims[2];
        // Truncated IDX files: the header with the new count, then the values.
        let write = |name: &str, magic: u32, dims: &[usize], values: &[u8]| {
            let mut bytes = magic.to_be_bytes().to_vec();
            for d in dims {
                bytes.extend((*d as u32).to_be_bytes());
            }
            bytes.extend_from_slice(values);
            std::fs::write(idx.join(name), bytes).unwrap();
        };
        write(
            &format!("{prefix}-images-idx3-ubyte"),
            0x803,
            &[count, 28, 28],
            &pixels[..count * side],
        );
        write(
            &format!("{prefix}-labels-idx1-ubyte"),
            0x801,
            &[count],
            &labels[..count],
        );
        for i in 0..count {
            let class = folder.join(split).join(labels[i].to_string());
            std::fs::create_dir_all(&class).unwrap();
            image::GrayImage::from_raw(28, 28, pixels[i * side..(i + 1) * side].to_vec())
                .unwrap()
                .save(class.join(format!("{i:05}.png")))
                .unwrap();
        }
    }
    let npz = dir.path().join("fashion.npz");
    numpy(&format!(
        "import gzip, numpy as np\n\
         def a(name, offset, shape, n):\n\
         \x20   return np.frombuffer(gzip.open({src:?} + '/' + name).read(), np.uint8, offset=offset).reshape(shape)[:n]\n\
         np.savez({npz:?}, x_train=a('train-images-idx3-ubyte.gz', 16, (-1, 28, 28), 6000), y_train=a('train-labels-idx1-ubyte.gz', 8, (-1,), 6000), x_test=a('t10k-images-idx3-ubyte.gz', 16, (-1, 28, 28), 1000), y_test=a('t10k-labels-idx1-ubyte.gz', 8, (-1,), 1000))\n",
        src = source.to_str().unwrap(),
        npz = npz.to_str().unwrap()
    ));
    let from_idx = load(&format!(
        "dataset = \"fashion-mnist\"\npath = {:?}",
        idx.to_str().unwrap()
    ));
    let from_folder = load(&format!(
        "dataset = \"image-folder\"\npath = {:?}\nchannels = 1",
        folder.to_str().unwrap()
    ));
    let from_npz = load(&format!(
        "dataset = \"npz\"\npath = {:?}",
        npz.to_str().unwrap()
    ));
    assert_eq!(
        (
            from_idx.train.len(),
            from_idx.val.len(),
            from_idx.test.len()
        ),
        (4800, 1200, 1000)
    );
    let reference = tensors(&from_idx);
    assert!(tensors(&from_folder) == reference, "PNG folders as IDX");
    assert!(tensors(&from_npz) == reference, "NumPy arrays as IDX");

    // And a seeded search on each gives the same trials.
    let searched = |name: &str, data: &str| {
        let out = run(
            dir.path(),
            &format!("[run]\nname = \"{name}\"\nseed = 4\nmax_trials = 2\n[data]\n{data}\n[train]\nepochs = 1\nlatency_repeats = 1\n"),
        );
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        RunStore::open_read_only(&dir.path().join("runs").join(name).join(DB_FILE))
            .unwrap()
            .trials()
            .unwrap()
            .iter()
            .map(common::deterministic)
            .collect::<Vec<_>>()
    };
    let trials = searched(
        "idx",
        &format!(
            "dataset = \"fashion-mnist\"\npath = {:?}",
            idx.to_str().unwrap()
        ),
    );
    assert_eq!(trials.len(), 2);
    assert_eq!(
        searched(
            "folder",
            &format!(
                "dataset = \"image-folder\"\npath = {:?}\nchannels = 1",
                folder.to_str().unwrap()
            )
        ),
        trials
    );
    assert_eq!(
        searched(
            "npz",
            &format!("dataset = \"npz\"\npath = {:?}", npz.to_str().unwrap())
        ),
        trials
    );
}

/// A PNG that is only its signature and a header claiming `side` x `side`
/// grayscale pixels (with a correct checksum, so only the size is wrong).
fn png_header_only(side: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(side.to_be_bytes());
    ihdr.extend(side.to_be_bytes());
    ihdr.extend([8, 0, 0, 0, 0]);
    let mut crc = !0u32;
    for b in &ihdr {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                0xEDB8_8320 ^ (crc >> 1)
            } else {
                crc >> 1
            };
        }
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(13u32.to_be_bytes());
    out.extend(&ihdr);
    out.extend((!crc).to_be_bytes());
    out
}
