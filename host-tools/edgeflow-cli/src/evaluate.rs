//! `edgeflow evaluate CONFIG.toml`: metrics of the trained float artifact (and optionally an
//! int8 artifact) on the config's test split, computed through edgeflow-nn — the device's
//! arithmetic — with the threshold of binary models chosen on the validation split.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use edgeflow_train::TrainConfig;

/// Arguments of `edgeflow evaluate`.
#[derive(Args, Debug)]
pub struct EvaluateArgs {
    /// The training config (TOML) that defines data, splits and pipeline.
    config: PathBuf,
    /// The float artifact (default: `model.edgeflow` in the config's output directory).
    #[arg(long)]
    model: Option<PathBuf>,
    /// An int8 artifact of the same model: evaluated too, with float-vs-int8 agreement.
    #[arg(long)]
    int8: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs the subcommand.
pub fn run(a: EvaluateArgs) -> Result<()> {
    let cfg = TrainConfig::load(&a.config)?;
    let model = a
        .model
        .clone()
        .unwrap_or_else(|| cfg.output.dir.join("model.edgeflow"));
    let read = |p: &PathBuf| {
        std::fs::read(p).with_context(|| {
            format!(
                "cannot read {} (train first: edgeflow train {})",
                p.display(),
                a.config.display()
            )
        })
    };
    let float = read(&model)?;
    let int8 = a.int8.as_ref().map(read).transpose()?;
    let fname = model.display().to_string();
    let qname = a.int8.as_ref().map(|p| p.display().to_string());
    let e = edgeflow_train::evaluate(
        &cfg,
        (&fname, &float),
        match (&qname, &int8) {
            (Some(n), Some(b)) => Some((n.as_str(), b.as_slice())),
            _ => None,
        },
    )
    .with_context(|| format!("evaluating {}", model.display()))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&e)?);
    } else {
        print!("{}", e.table());
    }
    Ok(())
}
