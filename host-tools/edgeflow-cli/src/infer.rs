//! The input path of `edgeflow run`, apart from its printing: model inputs from files (a
//! `.npy` tensor, or a raw sample through the artifact's own feature pipeline) and one
//! inference per input under the host's arena limit. The `cli_run` fuzz target compiles
//! this module with the ones it uses, so every error here is a value, never a panic. The
//! host's limits: the arena (`--max-arena`), decoded images (edgeflow-data's pixel cap),
//! resampling (16× at most); the feature pipeline's workspace is bounded by the pipeline
//! validation (`edgeflow_dsp::MAX_ELEMENTS` per block).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use edgeflow_nn::Model;

use crate::filetype::{self, Kind};
use crate::tensor_io::{self, dtype_name};

/// The model inputs one `--input` file gives, in order, with where each came from (empty
/// for a single tensor; "window 2" or "row 3" otherwise), and how the file was read.
pub(crate) struct Prepared {
    /// `(origin, the input tensor's bytes)` per inference.
    pub inputs: Vec<(String, Vec<u8>)>,
    /// A phrase for the user: "a .npy tensor [1, 49, 10, 1] int8", "a WAV file through …".
    pub how: String,
}

/// Reads `input` for the first input of `m` (loaded from `model`, named in errors).
///
/// A `.npy` goes to the model as a tensor when the artifact has no feature pipeline (the
/// tensor reader then names any shape or dtype mismatch) or when it is exactly the model
/// input; otherwise the file is a raw sample (WAV, CSV, image, text, `.npy`) for the
/// artifact's pipeline, which may give several feature tensors (windows of a recording,
/// rows of a CSV).
///
/// # Errors
/// An unreadable or malformed file, a shape or dtype that is not the model's, a raw sample
/// with no pipeline to turn it into features, an invalid pipeline section, or a sample too
/// short for one feature tensor; each names the file.
pub(crate) fn model_inputs(model: &Path, m: &Model<'_>, input: &Path) -> Result<Prepared> {
    let h = m.header();
    let in_def = *h.inputs.first().context("the model has no input")?;
    let input_bytes = filetype::read(input)?;
    let kind = Kind::sniff(&input_bytes);
    let pipeline = m.artifact().feature_pipeline;
    let npy_ext = input
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    let tensor_input = match pipeline {
        None => kind == Kind::Npy || npy_ext,
        Some(_) => kind == Kind::Npy && tensor_io::npy_matches(input, &in_def),
    };
    if tensor_input {
        let data = tensor_io::read_npy(input, &in_def)?;
        let how = format!(
            "a .npy tensor {:?} {}",
            in_def.shape.dims(),
            dtype_name(in_def.dtype)
        );
        return Ok(Prepared {
            inputs: vec![(String::new(), data)],
            how,
        });
    }
    let Some(section) = pipeline else {
        bail!(
            "{} is {}; the model takes a .npy tensor of shape {:?} {} (raw samples need an \
             artifact with a feature pipeline: `edgeflow convert MODEL --pipeline P.toml`)",
            input.display(),
            kind.describe(),
            in_def.shape.dims(),
            dtype_name(in_def.dtype)
        );
    };
    let p = edgeflow_dsp::Pipeline::from_bytes(section)
        .with_context(|| format!("{}: invalid feature pipeline section", model.display()))?;
    let samples = crate::feature_io::read_input(input, &p)?;
    let outs = edgeflow_dsp::host::run_many(&p, &samples).context("running the pipeline")?;
    let inputs = edgeflow_dsp::host::label_outputs(outs);
    if inputs.is_empty() {
        bail!(
            "{}: too short for one feature tensor of the artifact's pipeline",
            input.display()
        );
    }
    let n = inputs.len();
    let csv = kind == Kind::Text
        && input
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let how = format!(
        "{} through the artifact's feature pipeline ({n} feature tensor{})",
        if csv { "a CSV file" } else { kind.describe() },
        if n == 1 { "" } else { "s" }
    );
    Ok(Prepared { inputs, how })
}

/// Allocates `m`'s arena (refused, naming both sizes, above `limit` bytes) and runs one
/// inference per input tensor; returns each inference's first output, in order.
///
/// # Errors
/// The arena above the limit or not allocatable, an input whose byte length is not the
/// model input's, or a run-time error.
pub(crate) fn invoke_each(
    model: &Path,
    m: &Model<'_>,
    inputs: &[(String, Vec<u8>)],
    limit: usize,
) -> Result<Vec<Vec<u8>>> {
    let mut arena = arena(model, m, limit)?;
    let mut rt = edgeflow_nn::Runtime::new(m, arena.as_mut_bytes())?;
    let mut results = Vec::with_capacity(inputs.len());
    for (_, data) in inputs {
        let dst = rt.input_mut(0)?;
        if dst.len() != data.len() {
            bail!(
                "the feature pipeline gives {} bytes, the model input needs {}",
                data.len(),
                dst.len()
            );
        }
        dst.copy_from_slice(data);
        rt.invoke()?;
        results.push(rt.output(0)?.to_vec());
    }
    Ok(results)
}

/// One inference of a model with several inputs, input `k` read from the `.npy` file
/// `paths[k]` (exact shape and dtype); returns every output's bytes, in order.
///
/// # Errors
/// A count of paths other than the model's inputs, a file that is not the input's tensor
/// (naming the input and tensor), the arena above `limit`, or a run-time error.
pub(crate) fn invoke_multi(
    model: &Path,
    m: &Model<'_>,
    paths: &[PathBuf],
    limit: usize,
) -> Result<Vec<Vec<u8>>> {
    let h = m.header();
    if paths.len() != h.inputs.len() {
        bail!(
            "the model has {} inputs, {} files given",
            h.inputs.len(),
            paths.len()
        );
    }
    let mut arena = arena(model, m, limit)?;
    let mut rt = edgeflow_nn::Runtime::new(m, arena.as_mut_bytes())?;
    for (k, (p, d)) in paths.iter().zip(h.inputs.iter()).enumerate() {
        let data = tensor_io::read_npy(p, d)
            .with_context(|| format!("model input {k} (tensor {})", d.id))?;
        let dst = rt.input_mut(k)?;
        if dst.len() != data.len() {
            bail!(
                "model input {k}: {} bytes read, the tensor needs {}",
                data.len(),
                dst.len()
            );
        }
        dst.copy_from_slice(&data);
    }
    rt.invoke()?;
    (0..h.outputs.len())
        .map(|k| Ok(rt.output(k)?.to_vec()))
        .collect()
}

/// The model's arena, refused above `limit` bytes with both sizes named.
fn arena(model: &Path, m: &Model<'_>, limit: usize) -> Result<edgeflow_nn::HostArena> {
    let need = m.arena_bytes();
    if need > limit {
        bail!(
            "{}: the model's arena needs {need} bytes, above the host limit of {limit} bytes \
             (raise it with --max-arena or EDGEFLOW_MAX_ARENA_BYTES)",
            model.display()
        );
    }
    edgeflow_nn::HostArena::for_model(m)
        .with_context(|| format!("cannot allocate the {need}-byte arena"))
}
