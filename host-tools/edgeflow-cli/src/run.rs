//! `edgeflow run MODEL --input X [-o Y.npy] [--top K] [--json]`: one inference per input.
//! A model with several inputs or outputs takes one `--input` per model input (in order,
//! or `K=path` for input K) and one `--output` per output: `edgeflow run M --input a.npy
//! --input b.npy --output y0.npy --output y1.npy`.
//!
//! The input is a `.npy` tensor of exactly the model input's shape and dtype, or — when the
//! artifact carries a feature pipeline — a raw sample (WAV, CSV, image, text or `.npy`)
//! that the artifact's own pipeline turns into model inputs first (a recording may give
//! several windows, a CSV several rows: the model runs once per feature tensor). The
//! output is printed as the top-k classes (with the artifact's labels when it has them),
//! or as JSON with `--json`, and written as `.npy` with `-o`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;

use crate::tensor_io::{self, dequantize, dtype_name};
use crate::{infer, labels, model_file, outln};

/// Arguments of `edgeflow run`.
#[derive(Args)]
pub struct RunArgs {
    /// A .tflite model or an edgeflow artifact.
    model: PathBuf,
    /// The input: a .npy tensor (the model input's exact shape and dtype), or a raw sample
    /// (.wav, .csv, .png, .jpg, .txt, .npy) when the artifact carries a feature pipeline.
    /// Models with several inputs: repeat it once per input, in order, or as `K=path`.
    #[arg(short, long, required = true)]
    input: Vec<String>,
    /// Write the output tensor here (.npy; several results are stacked on a new first axis).
    /// Models with several outputs: repeat it once per output, in order.
    #[arg(short, long)]
    output: Vec<PathBuf>,
    /// Number of top classes to print.
    #[arg(long, default_value_t = 3)]
    top: usize,
    /// Print the results as one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Largest arena the host will allocate for the model, in bytes (default 256 MiB,
    /// or the `EDGEFLOW_MAX_ARENA_BYTES` environment variable).
    #[arg(long)]
    max_arena: Option<usize>,
}

/// One model result: where it came from and the raw output bytes.
struct Result1 {
    what: String,
    output: Vec<u8>,
}

/// Runs the subcommand.
pub fn run(a: RunArgs) -> Result<()> {
    let artifact = model_file::load_model(&a.model)?;
    let m = edgeflow_nn::Model::parse(&artifact)
        .with_context(|| format!("{} is not a valid artifact", a.model.display()))?;
    let h = m.header();
    if h.inputs.len() != 1 || a.input.len() != 1 || a.output.len() > 1 {
        return run_multi(&a, &m);
    }
    let input = PathBuf::from(&a.input[0]);
    let output = a.output.first().cloned();
    let out_def = *h.outputs.first().context("the model has no output")?;
    let label_names = match m.artifact().labels {
        Some(s) => Some(
            labels::decode(s).with_context(|| format!("{}: labels section", a.model.display()))?,
        ),
        None => None,
    };

    let limit = match a.max_arena {
        Some(n) => n,
        None => tensor_io::env_limit("EDGEFLOW_MAX_ARENA_BYTES", tensor_io::DEFAULT_MAX_ARENA)?,
    };
    let infer::Prepared { inputs, how } = infer::model_inputs(&a.model, &m, &input)?;
    let results: Vec<Result1> = infer::invoke_each(&a.model, &m, &inputs, limit)?
        .into_iter()
        .zip(inputs)
        .map(|(output, (what, _))| Result1 { what, output })
        .collect();

    let out_dims: Vec<u64> = out_def.shape.dims().iter().map(|&d| d as u64).collect();
    if let Some(path) = &output {
        let mut shape = out_dims.clone();
        if results.len() > 1 {
            shape.insert(0, results.len() as u64);
        }
        let all: Vec<u8> = results
            .iter()
            .flat_map(|r| r.output.iter().copied())
            .collect();
        tensor_io::write_npy_shape(path, &shape, out_def.dtype, &all)?;
    }

    let classes = out_def.shape.dims().last().copied().unwrap_or(1) as usize;
    let is_vector = out_dims.iter().rev().skip(1).all(|&d| d == 1);
    let show_top = label_names.is_some() || is_vector;
    if a.json {
        let items: Vec<serde_json::Value> = results
            .iter()
            .map(|r| {
                let values = dequantize(&out_def, &r.output);
                let mut obj = serde_json::json!({ "values": values });
                if !r.what.is_empty() {
                    obj["from"] = r.what.clone().into();
                }
                if show_top {
                    obj["top"] = top_k(&values, classes, a.top)
                        .into_iter()
                        .map(|(i, s)| {
                            serde_json::json!({
                                "class": i,
                                "label": label_names.as_ref().and_then(|l| l.get(i)),
                                "score": s,
                            })
                        })
                        .collect();
                }
                obj
            })
            .collect();
        let doc = serde_json::json!({
            "model": a.model.display().to_string(),
            "input": input.display().to_string(),
            "input_kind": how,
            "output_shape": out_dims,
            "output_dtype": dtype_name(out_def.dtype),
            "output_file": output.as_ref().map(|p| p.display().to_string()),
            "results": items,
        });
        outln!("{}", serde_json::to_string_pretty(&doc)?)?;
        return Ok(());
    }

    outln!("{}: {how}", input.display())?;
    for r in &results {
        let values = dequantize(&out_def, &r.output);
        let prefix = if r.what.is_empty() {
            String::new()
        } else {
            format!("{}: ", r.what)
        };
        if show_top {
            let parts: Vec<String> = top_k(&values, classes, a.top)
                .into_iter()
                .map(|(i, s)| match label_names.as_ref().and_then(|l| l.get(i)) {
                    Some(name) => format!("{name} {s:.4}"),
                    None => format!("class {i} {s:.4}"),
                })
                .collect();
            outln!("{prefix}{}", parts.join(", "))?;
        } else if !prefix.is_empty() {
            outln!("{prefix}{} values", values.len())?;
        }
    }
    match &output {
        Some(p) => outln!(
            "wrote {}: output shape {:?} {}{}",
            p.display(),
            out_dims,
            dtype_name(out_def.dtype),
            if results.len() > 1 {
                format!(", {} results stacked", results.len())
            } else {
                String::new()
            }
        )?,
        None if !show_top => outln!(
            "output shape {:?} {} (write it with -o OUT.npy)",
            out_dims,
            dtype_name(out_def.dtype)
        )?,
        None => {}
    }
    Ok(())
}

/// `run` for models with several inputs or outputs: every input is a `.npy` tensor.
fn run_multi(a: &RunArgs, m: &edgeflow_nn::Model<'_>) -> Result<()> {
    let h = m.header();
    let n_in = h.inputs.len();
    let mut paths: Vec<Option<PathBuf>> = vec![None; n_in];
    for (pos, arg) in a.input.iter().enumerate() {
        let (k, path) = match arg.split_once('=') {
            Some((k, p)) if !k.is_empty() && k.chars().all(|c| c.is_ascii_digit()) => {
                let k: usize = k
                    .parse()
                    .with_context(|| format!("--input {arg}: bad index"))?;
                (k, PathBuf::from(p))
            }
            _ => (pos, PathBuf::from(arg)),
        };
        if k >= n_in {
            bail!(
                "--input {arg}: the model has {n_in} input{} (0..{n_in}), given {} --input",
                if n_in == 1 { "" } else { "s" },
                a.input.len()
            );
        }
        if paths[k].replace(path).is_some() {
            bail!("model input {k} is given twice");
        }
    }
    if let Some(k) = paths.iter().position(Option::is_none) {
        let d = h.inputs[k];
        bail!(
            "the model has {n_in} inputs and {} {} given: input {k} (tensor {}, shape {:?} {}) is missing",
            a.input.len(),
            if a.input.len() == 1 { "was" } else { "were" },
            d.id,
            d.shape.dims(),
            dtype_name(d.dtype)
        );
    }
    if !a.output.is_empty() && a.output.len() != h.outputs.len() {
        bail!(
            "the model has {} outputs; give --output once per output ({} given)",
            h.outputs.len(),
            a.output.len()
        );
    }
    let limit = match a.max_arena {
        Some(n) => n,
        None => tensor_io::env_limit("EDGEFLOW_MAX_ARENA_BYTES", tensor_io::DEFAULT_MAX_ARENA)?,
    };
    let paths: Vec<PathBuf> = paths.into_iter().flatten().collect();
    let outputs = infer::invoke_multi(&a.model, m, &paths, limit)?;
    let mut doc = Vec::new();
    for (k, d) in h.outputs.iter().enumerate() {
        let bytes = outputs.get(k).context("model output")?.clone();
        let dims: Vec<u64> = d.shape.dims().iter().map(|&x| x as u64).collect();
        if let Some(p) = a.output.get(k) {
            tensor_io::write_npy_shape(p, &dims, d.dtype, &bytes)?;
        }
        let values = dequantize(d, &bytes);
        if a.json {
            doc.push(serde_json::json!({
                "output": k,
                "shape": dims,
                "dtype": dtype_name(d.dtype),
                "file": a.output.get(k).map(|p| p.display().to_string()),
                "values": values,
            }));
        } else {
            let classes = dims.last().copied().unwrap_or(1) as usize;
            let top: Vec<String> = top_k(&values, classes, a.top)
                .into_iter()
                .map(|(i, s)| format!("class {i} {s:.4}"))
                .collect();
            outln!(
                "output {k}: shape {dims:?} {}{}; {}",
                dtype_name(d.dtype),
                a.output
                    .get(k)
                    .map(|p| format!(", wrote {}", p.display()))
                    .unwrap_or_default(),
                top.join(", ")
            )?;
        }
    }
    if a.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "outputs": doc }))?
        )?;
    }
    Ok(())
}

/// The `k` largest of the last `classes` values (the last row), largest first; ties keep
/// the lower class index first.
fn top_k(values: &[f64], classes: usize, k: usize) -> Vec<(usize, f64)> {
    let row = &values[values.len().saturating_sub(classes)..];
    let mut idx: Vec<(usize, f64)> = row.iter().copied().enumerate().collect();
    idx.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    idx.truncate(k);
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_orders_by_score_then_index() {
        let v = [0.1, 0.5, 0.2, 0.5];
        assert_eq!(top_k(&v, 4, 3), vec![(1, 0.5), (3, 0.5), (2, 0.2)]);
        assert_eq!(top_k(&v, 4, 10).len(), 4);
    }
}
