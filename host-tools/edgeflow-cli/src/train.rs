//! `edgeflow train CONFIG.toml`: trains the model a config describes on features computed
//! by the edgeflow-dsp pipeline and writes a float32 artifact (see `edgeflow_train::train`).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use edgeflow_train::{EpochLog, TrainConfig, TrainOptions};

/// Arguments of `edgeflow train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// The training config (TOML).
    config: PathBuf,
    /// Continue from the checkpoint in the config's output directory.
    #[arg(long)]
    resume: bool,
    /// Print one line per epoch instead of a progress bar.
    #[arg(long)]
    plain: bool,
    /// Do not train: compute the features of every split with the pipeline and write them
    /// to DIR as `.npy` (x_train, y_train, x_validation, …; x is [examples, values] in the
    /// model's NHWC input order), for comparisons with other frameworks.
    #[arg(long, value_name = "DIR")]
    features_only: Option<PathBuf>,
}

fn write_features(dir: &std::path::Path, cfg: &TrainConfig) -> Result<()> {
    use npyz::WriterBuilder;
    let prep = edgeflow_train::train::prepare(cfg)?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, f) in [
        ("train", &prep.train),
        ("validation", &prep.validation),
        ("test", &prep.test),
    ] {
        let x = dir.join(format!("x_{name}.npy"));
        let file =
            std::fs::File::create(&x).with_context(|| format!("cannot write {}", x.display()))?;
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&[f.len() as u64, f.dim as u64])
            .writer(std::io::BufWriter::new(file))
            .begin_nd()?;
        w.extend(f.x.iter().copied())?;
        w.finish()?;
        let y = dir.join(format!("y_{name}.npy"));
        let file =
            std::fs::File::create(&y).with_context(|| format!("cannot write {}", y.display()))?;
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&[f.len() as u64])
            .writer(std::io::BufWriter::new(file))
            .begin_nd()?;
        w.extend(f.y.iter().map(|&v| v as i64))?;
        w.finish()?;
        println!(
            "wrote {} and {}: {} examples x {} values",
            x.display(),
            y.display(),
            f.len(),
            f.dim
        );
    }
    Ok(())
}

/// Runs the subcommand.
pub fn run(a: TrainArgs) -> Result<()> {
    let cfg = TrainConfig::load(&a.config)?;
    if let Some(dir) = &a.features_only {
        return write_features(dir, &cfg);
    }
    let bar = (!a.plain).then(|| {
        let b = indicatif::ProgressBar::new(cfg.train.epochs as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:30} epoch {pos}/{len} {msg} [{elapsed_precise}]",
        ) {
            b.set_style(style);
        }
        b
    });
    let line = |h: &EpochLog| {
        let acc = |a: Option<f64>| a.map_or(String::new(), |a| format!(" acc {a:.3}"));
        format!(
            "loss {:.4}{} | val loss {:.4}{} | lr {:.2e} | {:.2} s",
            h.train_loss,
            acc(h.train_accuracy),
            h.val_loss,
            acc(h.val_accuracy),
            h.lr,
            h.seconds
        )
    };
    let mut progress = |h: &EpochLog, total: usize| match &bar {
        Some(b) => {
            b.set_position(h.epoch as u64);
            b.set_message(line(h));
        }
        None => println!("epoch {:>3}/{total}  {}", h.epoch, line(h)),
    };
    let trained = edgeflow_train::train(
        &cfg,
        TrainOptions {
            resume: a.resume,
            on_epoch: Some(&mut progress),
        },
    )
    .with_context(|| format!("training {}", a.config.display()))?;
    if let Some(b) = bar {
        b.finish();
    }
    let dir = &cfg.output.dir;
    println!(
        "kept the weights of epoch {} of {}; wrote {} (float32 artifact), {}, {} and {}",
        trained.best_epoch,
        trained.history.len(),
        trained.artifact.display(),
        dir.join("model.bpk").display(),
        dir.join("train_log.jsonl").display(),
        dir.join("checkpoint").display()
    );
    println!(
        "next: edgeflow evaluate {}   (or edgeflow inspect {})",
        a.config.display(),
        trained.artifact.display()
    );
    Ok(())
}
