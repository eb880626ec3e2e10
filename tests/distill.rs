//! Knowledge distillation on Fashion-MNIST: a small student distilled from
//! a larger trained teacher beats the same student trained alone at the
//! same budget, over five seeds; and `[distill]` in a run config trains
//! every trial of a search with the teacher, deterministically.

mod common;

use candle_core::Device;
use common::nas_host;
use nas_host::data::{self, DataConfig, DatasetKind};
use nas_host::interrupt::Cancel;
use nas_host::ir::{Activation, Conv2d, Network, Node, Op, Padding, Pool};
use nas_host::network::Model;
use nas_host::train::distill::TeacherSpec;
use nas_host::train::{evaluate, train, train_with, Extras, TrainConfig};

fn chain(key: &str, ops: Vec<Op>) -> Network {
    let mut nodes = vec![Node {
        op: Op::Input,
        inputs: vec![],
    }];
    for (i, op) in ops.into_iter().enumerate() {
        nodes.push(Node {
            op,
            inputs: vec![i as u32],
        });
    }
    Network {
        nodes,
        key: key.into(),
    }
}

fn conv(filters: u32) -> Op {
    Op::Conv2d(Conv2d {
        filters,
        kernel: 3,
        stride: 1,
        padding: Padding::Same,
        dilation: 1,
        groups: 1,
        bias: true,
    })
}

fn pool() -> Op {
    Op::MaxPool(Pool {
        kernel: 2,
        stride: 2,
        padding: Padding::Valid,
    })
}

/// One-sided 95 percent point of Student's t with 4 degrees of freedom.
const T_95_4DF: f64 = 2.132;

#[test]
fn a_student_distilled_from_a_larger_teacher_beats_the_student_alone_over_five_seeds() {
    let relu = || Op::Activation(Activation::Relu);
    let load = |subset| {
        let config = DataConfig {
            dataset: DatasetKind::FashionMnist,
            subset: Some(subset),
            ..DataConfig::default()
        };
        data::load(&config, 0, &Device::Cpu).unwrap()
    };
    // The teacher learned from 9,600 images; the student has 1,200 of them
    // (the first ones), where on its own it fits the hard labels too well.
    let teacher_data = load(12_000);
    let data = load(1_500);
    let train_config = TrainConfig {
        batch_size: 64,
        ..TrainConfig::default()
    };
    let cancel = Cancel::new();
    let teacher_net = chain(
        "teacher",
        vec![
            conv(32),
            relu(),
            pool(),
            conv(64),
            relu(),
            pool(),
            Op::Flatten,
            Op::Dense(128),
            relu(),
            Op::Dense(10),
        ],
    );
    let teacher = Model::new(&teacher_net, &data.task, 0, &Device::Cpu).unwrap();
    train(
        &teacher,
        &teacher_data,
        &train_config,
        3,
        0,
        None,
        &cancel,
        &mut |_| {},
    )
    .unwrap();
    let (_, teacher_accuracy) = evaluate(&teacher, &data.test, 500).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("teacher.safetensors");
    teacher.save(&weights).unwrap();
    let spec = TeacherSpec {
        network: teacher_net,
        weights,
        alpha: 0.5,
        temperature: 4.0,
    };
    let teacher = spec.load(&data.task, &Device::Cpu).unwrap();
    let student = chain(
        "student",
        vec![Op::Flatten, Op::Dense(64), relu(), Op::Dense(10)],
    );
    let epochs = 30;
    let mut gains = Vec::new();
    for seed in 1..=5u64 {
        let test_accuracy = |distilled: bool| {
            let model = Model::new(&student, &data.task, seed, &Device::Cpu).unwrap();
            let teacher = distilled.then_some(&teacher);
            train_with(
                &model,
                &data,
                &train_config,
                epochs,
                seed,
                None,
                &Extras {
                    teacher,
                    ..Extras::default()
                },
                &cancel,
                &mut |_| {},
            )
            .unwrap();
            evaluate(&model, &data.test, 500).unwrap().1
        };
        let (alone, distilled) = (test_accuracy(false), test_accuracy(true));
        eprintln!("seed {seed}: alone {alone:.4}, distilled {distilled:.4}");
        gains.push(distilled - alone);
    }
    let n = gains.len() as f64;
    let mean = gains.iter().sum::<f64>() / n;
    let sd = (gains.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let t = mean / (sd / n.sqrt());
    eprintln!("teacher {teacher_accuracy:.4}; mean gain {mean:.4} (t = {t:.2})");
    assert!(
        mean > 0.0 && t > T_95_4DF,
        "distillation gained {gains:?} (mean {mean:.4}, t = {t:.2})"
    );
}

fn config(dir: &std::path::Path, name: &str, extra: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let text = format!(
        r#"
[run]
name = "{name}"
output_dir = "{}"
seed = 4
max_trials = 2
[data]
dataset = "synthetic"
classes = 4
image_size = 12
train_samples = 400
test_samples = 100
[train]
batch_size = 32
epochs = 2
latency_repeats = 1
[space]
plugin = "builtin:seed-template"
{extra}
"#,
        dir.display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn accuracies(run: &std::path::Path) -> Vec<(u64, f64)> {
    let store =
        nas_host::store::RunStore::open_read_only(&run.join(nas_host::store::DB_FILE)).unwrap();
    store
        .trials()
        .unwrap()
        .iter()
        .map(|t| {
            assert_eq!(
                t.status,
                nas_host::ir::TrialStatus::Completed,
                "{:?}",
                t.reason
            );
            (t.id, t.metrics["val_accuracy"])
        })
        .collect()
}

/// `[distill]` with a run directory or an export folder as the teacher
/// trains every trial with it: the same teacher gives the same trials,
/// bitwise, and they differ from trials trained alone.
#[test]
fn distill_in_a_run_config_trains_every_trial_with_the_teacher_deterministically() {
    let dir = tempfile::tempdir().unwrap();
    let run = |config: &std::path::Path| {
        let out = nas_host(&["run", config.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&config(dir.path(), "teacher", ""));
    let exported = dir.path().join("exported");
    let export = nas_host(&[
        "export",
        dir.path().join("teacher").to_str().unwrap(),
        "--out",
        exported.to_str().unwrap(),
    ]);
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let distill = |teacher: &str| format!("[distill]\nteacher = \"{teacher}\"\nalpha = 0.3\n");
    run(&config(dir.path(), "alone", ""));
    run(&config(dir.path(), "from-run", &distill("teacher")));
    run(&config(dir.path(), "from-export", &distill("exported")));
    let from_run = accuracies(&dir.path().join("from-run"));
    assert_eq!(from_run, accuracies(&dir.path().join("from-export")));
    // The teacher's logits were computed once per run, under one name for
    // one teacher and one dataset.
    let cached = |run: &str| -> Vec<_> {
        std::fs::read_dir(dir.path().join(run).join("teacher-logits"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect()
    };
    assert_eq!(cached("from-run").len(), 1);
    assert_eq!(cached("from-run"), cached("from-export"));
    assert_ne!(from_run, accuracies(&dir.path().join("alone")));

    // A teacher that is not there, or built for other data, stops the run
    // before any trial, naming [distill].
    let missing = config(dir.path(), "missing", &distill("nowhere"));
    let out = nas_host(&["run", missing.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("[distill] teacher"),
        "{stderr}"
    );
    let other = config(dir.path(), "other-task", &distill("exported"));
    let text = std::fs::read_to_string(&other)
        .unwrap()
        .replace("classes = 4", "classes = 3");
    std::fs::write(&other, text).unwrap();
    let out = nas_host(&["run", other.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("was built for"),
        "{stderr}"
    );
}
