//! Searching the user's own data, on real data nobody here wrote:
//! scikit-learn's bundled datasets from Debian's `python3-sklearn` (the
//! 1,797 8x8 digit images, written here as an image folder of PNG files;
//! the breast-cancer, wine and iris tables as CSV), searched end to end
//! with the `cnn` and `mlp` spaces; and bad input (an empty class folder, a
//! corrupt PNG, mixed image sizes, a non-numeric cell, a missing label
//! column), each a clear error naming the file.

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
