//! `edgeflow boards` and the `--boards-dir` option: which boards `--board NAME` accepts.
//!
//! Boards are resolved by [`edgeflow_compile::board::Catalog`]: the repository's boards are
//! built into the binary; a user's board files come from the project's `boards/` folder
//! (beside the nearest `edgeflow.toml`), from `EDGEFLOW_BOARDS_DIR`, and from `--boards-dir`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use edgeflow_compile::board::{Catalog, RunnerKind, BOARDS_DIR_ENV};

use crate::outln;

/// The option every board-taking command shares.
#[derive(Args, Debug)]
pub struct BoardsDirArg {
    /// A directory of your own board files (NAME.toml), searched before the built-in
    /// boards (also: the EDGEFLOW_BOARDS_DIR environment variable, and `boards/` beside
    /// the project's edgeflow.toml).
    #[arg(long, value_name = "DIR")]
    boards_dir: Option<PathBuf>,
}

impl BoardsDirArg {
    /// The catalog: built-in boards and the user's.
    pub fn catalog(&self) -> Result<Catalog> {
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        Ok(Catalog::discover(self.boards_dir.as_deref(), &cwd)?)
    }
}

/// Arguments of `edgeflow boards`.
#[derive(Args, Debug)]
pub struct BoardsArgs {
    #[command(flatten)]
    dir: BoardsDirArg,
}

/// Prints one line per board: name, CPU, flash, RAM, clock, runner, where it came from.
pub fn run(a: BoardsArgs) -> Result<()> {
    let c = a.dir.catalog()?;
    let rows: Vec<[String; 7]> = c
        .iter()
        .map(|(b, origin)| {
            let runner = match (b.runner.kind, &b.runner.machine, &b.runner.chip) {
                (RunnerKind::Qemu, Some(m), _) => format!("qemu {m}"),
                (RunnerKind::ProbeRs, _, Some(chip)) => format!("probe-rs {chip}"),
                (k, _, _) => k.to_string(),
            };
            [
                b.name.clone(),
                format!("{}{}", b.cpu, if b.fpu { " (FPU)" } else { "" }),
                size(b.flash_bytes),
                size(b.ram_bytes),
                format!("{} MHz", b.core_clock_hz as f64 / 1e6),
                runner,
                origin.to_string(),
            ]
        })
        .collect();
    let header = ["board", "cpu", "flash", "ram", "clock", "runner", "from"];
    let mut width = header.map(str::len);
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        let parts: Vec<String> = cells
            .iter()
            .zip(width)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        parts.join("  ").trim_end().to_string()
    };
    outln!("{}", line(&header.map(String::from)))?;
    for r in &rows {
        outln!("{}", line(r))?;
    }
    outln!()?;
    outln!(
        "searched: {} (add your own with --boards-dir DIR or {BOARDS_DIR_ENV})",
        c.searched().join(", ")
    )?;
    Ok(())
}

/// Bytes as KiB/MiB when exact, else bytes.
fn size(b: u64) -> String {
    if b % (1 << 20) == 0 {
        format!("{} MiB", b >> 20)
    } else if b % (1 << 10) == 0 {
        format!("{} KiB", b >> 10)
    } else {
        format!("{b} B")
    }
}
