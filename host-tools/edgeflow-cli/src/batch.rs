//! `edgeflow features --pipeline P DIR -o features.npy`: a whole folder in one array.
//!
//! `DIR` holds one sub-folder per class (`DIR/yes/*.wav`, `DIR/no/*.wav` …), or only
//! files (then the examples are unlabelled). Every readable file is run through the
//! pipeline (each window of a recording, each row of a CSV is one example) and the
//! examples are stacked into `features.npy`, with beside it:
//!
//! - `features.labels.npy`: int32 class index per example (only for labelled folders);
//! - `features.classes.txt`: the class names, one per line (index = line), the format
//!   `edgeflow convert --labels` takes.
//!
//! Files of other types (a README, `.DS_Store`) are skipped and counted in the summary.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use edgeflow_dsp::host::{self, Sample};
use edgeflow_dsp::{Input, OutputType, Pipeline, Runtime};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::outln;

/// Extensions `features` reads for a pipeline's input kind.
fn readable(input: Input, ext: &str) -> bool {
    match input {
        Input::Signal { .. } => matches!(ext, "wav" | "csv" | "npy"),
        Input::Vector { .. } => matches!(ext, "csv" | "npy"),
        Input::Text { .. } => matches!(ext, "txt" | "csv"),
        Input::Image { .. } => matches!(ext, "png" | "jpg" | "jpeg" | "npy"),
    }
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let e = e.with_context(|| format!("cannot list {}", dir.display()))?;
        let name = e.file_name();
        if !name.to_string_lossy().starts_with('.') {
            v.push(e.path());
        }
    }
    v.sort();
    Ok(v)
}

/// Runs the pipeline over every file of `dir` and writes the stacked features, the
/// labels and the class names (see the module doc).
pub fn run(spec: host::Spec, pipeline_path: &Path, dir: &Path, output: &Path) -> Result<()> {
    let p = Pipeline::new(spec)
        .with_context(|| format!("{} is not a valid pipeline", pipeline_path.display()))?;
    let entries = sorted_entries(dir)?;
    let classes: Vec<PathBuf> = entries.iter().filter(|e| e.is_dir()).cloned().collect();
    // (file, class index) in a stable order: classes by name, files by name.
    let mut files: Vec<(PathBuf, Option<usize>)> = Vec::new();
    if classes.is_empty() {
        files.extend(
            entries
                .into_iter()
                .filter(|e| e.is_file())
                .map(|f| (f, None)),
        );
    } else {
        for (ci, c) in classes.iter().enumerate() {
            for f in sorted_entries(c)? {
                if f.is_file() {
                    files.push((f, Some(ci)));
                }
            }
        }
    }
    let ext = |f: &Path| {
        f.extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    let (files, skipped): (Vec<_>, Vec<_>) = files
        .into_iter()
        .partition(|(f, _)| readable(p.desc().input, &ext(f)));
    if files.is_empty() {
        bail!(
            "{}: no files this pipeline reads ({} input) in the folder or its sub-folders",
            dir.display(),
            match p.desc().input {
                Input::Signal { .. } => ".wav, .csv or .npy for a signal",
                Input::Vector { .. } => ".csv or .npy for a vector",
                Input::Text { .. } => ".txt or .csv for a text",
                Input::Image { .. } => ".png, .jpg or .npy for an image",
            }
        );
    }

    let bar = ProgressBar::with_draw_target(Some(files.len() as u64), ProgressDrawTarget::stderr())
        .with_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} files, eta {eta}  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
    let mut ws = vec![0.0f32; p.workspace_len()];
    let mut rt = Runtime::new(&p, &mut ws).map_err(host::HostError::Run)?;
    let mut data: Vec<u8> = Vec::new();
    let mut labels: Vec<i32> = Vec::new();
    let mut per_class = vec![0usize; classes.len().max(1)];
    let mut too_short = Vec::new();
    let mut n = 0u64;
    crate::resample::QUIET.store(true, std::sync::atomic::Ordering::Relaxed);
    crate::resample::take_count();
    for (f, class) in &files {
        bar.set_message(
            f.file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        let samples = crate::feature_io::read_input(f, &p)?;
        let mut produced = 0;
        for s in &samples {
            let outs = host::run_on(&mut rt, s)
                .with_context(|| format!("{}: running the pipeline", f.display()))?;
            for o in outs {
                data.extend_from_slice(&o);
                if let Some(c) = class {
                    labels.push(*c as i32);
                    per_class[*c] += 1;
                }
                produced += 1;
                n += 1;
            }
        }
        if produced == 0 {
            too_short.push(f.display().to_string());
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if n == 0 {
        bail!(
            "{}: no file was long enough for one output of the pipeline",
            dir.display()
        );
    }

    let per_output: Vec<u64> = match p.desc().input {
        Input::Signal { .. } => {
            let [frames, feats, _] = p.output_shape();
            if frames == 1 {
                vec![feats as u64]
            } else {
                vec![frames as u64, feats as u64]
            }
        }
        _ => p
            .output_shape()
            .into_iter()
            .filter(|&d| d > 0)
            .map(|d| d as u64)
            .collect(),
    };
    let mut shape = vec![n];
    shape.extend(&per_output);
    crate::feature_io::write_npy(output, &shape, p.output_type(), &data)?;
    outln!(
        "wrote {}: shape {shape:?} {} from {} files",
        output.display(),
        match p.output_type() {
            OutputType::F32 => "float32",
            OutputType::I8 => "int8",
        },
        files.len()
    )?;
    if !classes.is_empty() {
        let names: Vec<String> = classes
            .iter()
            .map(|c| {
                c.file_name()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
            .collect();
        write_labels(output, &names, &labels, &per_class)?;
    } else {
        outln!("no sub-folders: the examples are unlabelled")?;
    }
    let resampled = crate::resample::take_count();
    if resampled > 0 {
        let rate = match p.desc().input {
            Input::Signal { rate_hz, .. } => rate_hz,
            _ => 0.0,
        };
        outln!(
            "resampled {resampled} of {} files to the pipeline's {rate} Hz ({})",
            files.len(),
            crate::resample::RESAMPLER
        )?;
    }
    if !skipped.is_empty() {
        outln!(
            "skipped {} files of other types (first: {})",
            skipped.len(),
            skipped[0].0.display()
        )?;
    }
    if !too_short.is_empty() {
        outln!(
            "{} files too short for one output (first: {})",
            too_short.len(),
            too_short[0]
        )?;
    }
    Ok(())
}

/// `OUT.labels.npy` beside `OUT.npy` (and so on for other suffixes).
fn sidecar(output: &Path, suffix: &str) -> PathBuf {
    let stem = output
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    output.with_file_name(format!("{stem}.{suffix}"))
}

/// Writes `OUT.labels.npy` (int32 class index per example) and `OUT.classes.txt` (one
/// class name per line, index = line) and prints the class counts.
fn write_labels(
    output: &Path,
    names: &[String],
    labels: &[i32],
    per_class: &[usize],
) -> Result<()> {
    let lp = sidecar(output, "labels.npy");
    crate::tensor_io::write_npy(&lp, &[labels.len() as u64], labels.iter().copied())?;
    let cp = sidecar(output, "classes.txt");
    std::fs::write(&cp, crate::labels::encode(names)?)
        .with_context(|| format!("cannot write {}", cp.display()))?;
    outln!(
        "wrote {} (int32 class per example) and {} ({} classes)",
        lp.display(),
        cp.display(),
        names.len()
    )?;
    let n = labels.len().max(1) as f64;
    for (name, count) in names.iter().zip(per_class) {
        outln!(
            "  {name:<20} {count:>7} examples ({:.1}%)",
            100.0 * *count as f64 / n
        )?;
    }
    Ok(())
}

/// `edgeflow features --pipeline P TABLE.csv --label COLUMN -o OUT.npy`: a labelled
/// table, one example per row, for a vector pipeline. The label column (a header name,
/// or a 0-based index) gives the classes; every other column is an input value. Classes
/// are numbered in sorted order (numerically when every label is an integer, else by
/// text) and written as in the folder mode (`OUT.labels.npy`, `OUT.classes.txt`).
///
/// Errors: the pipeline does not take vectors (a signal CSV has one time step per row,
/// so a row has no label of its own), the file is not a `.csv`, a row has the wrong
/// number of values for the pipeline, or any error of
/// [`edgeflow_data::sources::csv::read_labelled_csv`].
pub fn run_labelled_csv(
    spec: host::Spec,
    pipeline_path: &Path,
    input: &Path,
    label: &str,
    output: &Path,
) -> Result<()> {
    let p = Pipeline::new(spec)
        .with_context(|| format!("{} is not a valid pipeline", pipeline_path.display()))?;
    let len = match p.desc().input {
        Input::Vector { len } => len as usize,
        _ => bail!(
            "--label takes a CSV with one example per row, for a vector pipeline; {} takes {}",
            pipeline_path.display(),
            match p.desc().input {
                Input::Signal { .. } => "a signal (label recordings by sub-folder instead)",
                Input::Text { .. } => "text",
                _ => "images (label them by sub-folder instead)",
            }
        ),
    };
    let is_csv = input
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if !is_csv {
        bail!(
            "{}: --label reads a label column of a .csv file",
            input.display()
        );
    }
    let t = edgeflow_data::sources::csv::read_labelled_csv(input, b',', label)?;
    if let Some(r) = t.rows.first() {
        if r.len() != len {
            bail!(
                "{}: {} values per row besides the label, the pipeline takes {len}",
                input.display(),
                r.len()
            );
        }
    }
    let mut names: Vec<String> = t.labels.clone();
    names.sort();
    names.dedup();
    if names.iter().all(|n| n.parse::<i64>().is_ok()) {
        names.sort_by_key(|n| n.parse::<i64>().unwrap_or(0));
    }
    let index: std::collections::HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let mut ws = vec![0.0f32; p.workspace_len()];
    let mut rt = Runtime::new(&p, &mut ws).map_err(host::HostError::Run)?;
    let mut data: Vec<u8> = Vec::new();
    let mut labels: Vec<i32> = Vec::with_capacity(t.rows.len());
    let mut per_class = vec![0usize; names.len()];
    for (i, (row, l)) in t.rows.into_iter().zip(&t.labels).enumerate() {
        let outs = host::run_on(&mut rt, &Sample::Vector(row))
            .with_context(|| format!("{}: row {}: running the pipeline", input.display(), i + 1))?;
        let c = index.get(l.as_str()).copied().unwrap_or(0);
        for o in outs {
            data.extend_from_slice(&o);
            labels.push(c as i32);
            per_class[c] += 1;
        }
    }
    let shape = vec![labels.len() as u64, p.output_len() as u64];
    crate::feature_io::write_npy(output, &shape, p.output_type(), &data)?;
    outln!(
        "wrote {}: shape {shape:?} {} from {} rows of {}",
        output.display(),
        match p.output_type() {
            OutputType::F32 => "float32",
            OutputType::I8 => "int8",
        },
        labels.len(),
        input.display()
    )?;
    write_labels(output, &names, &labels, &per_class)
}
