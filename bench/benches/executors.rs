//! Wall time of one batch of similar trials with `[executor] kind = "local"`
//! (one at a time, all cores each) and `"process"` with 2 workers (one core
//! each): 8 seed-template networks, 3 epochs each, on the synthetic task.
//!   cargo bench -p nas-bench --bench executors
//! The bench binary is also the workers' command: called as `trial --spec
//! FILE`, it runs that trial, as `nas-host trial` would.

use nas_host::config::RunConfig;
use nas_host::executor::ExecutorKind;
use nas_host::progress::{Mode, Reporter};
use std::time::Instant;

const CONFIG: &str = r#"
[run]
seed = 4
max_trials = 8

[data]
dataset = "synthetic"
classes = 10
image_size = 16
train_samples = 2500
test_samples = 500

[train]
batch_size = 64
epochs = 3

[strategy]
plugin = "builtin:random"
[strategy.config]
unique = true
"#;

fn main() -> anyhow::Result<()> {
    nas_host::train::serial_candle_elementwise();
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("trial") {
        nas_host::trial::run_spec_file(std::path::Path::new(&args[3]))?;
        return Ok(());
    }
    let out = tempfile_dir()?;
    let mut results = Vec::new();
    for (label, kind) in [
        ("local (1 trial at a time)", ExecutorKind::Local),
        ("process, 2 workers", ExecutorKind::Process),
    ] {
        let mut config = RunConfig::parse(CONFIG, "executors bench")?;
        config.run.name = Some(format!("{kind:?}").to_lowercase());
        config.run.output_dir = out.clone();
        config.executor.kind = kind;
        config.executor.command = Some(std::env::current_exe()?);
        config.validate()?;
        let start = Instant::now();
        let result = nas_host::search::run(
            &config,
            &mut Reporter::new(Mode::Quiet),
            &nas_host::interrupt::Cancel::new(),
        )?;
        let seconds = start.elapsed().as_secs_f64();
        let mut accuracies: Vec<String> = result
            .trials
            .iter()
            .map(|t| {
                format!(
                    "{:.3}",
                    t.metrics.get("val_accuracy").copied().unwrap_or(f64::NAN)
                )
            })
            .collect();
        accuracies.sort();
        results.push((label, seconds, accuracies));
    }
    println!("| executor | wall seconds for 8 trials |");
    println!("|---|---|");
    for (label, seconds, _) in &results {
        println!("| {label} | {seconds:.1} |");
    }
    assert_eq!(
        results[0].2, results[1].2,
        "both executors give the same trials"
    );
    println!("speed-up: {:.2}x", results[0].1 / results[1].1);
    std::fs::remove_dir_all(&out)?;
    Ok(())
}

/// A fresh folder for the two runs.
fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("nas-bench-executors-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
