//! Model files: an edgeflow artifact as it is, a `.tflite` compiled, an ONNX model
//! imported (float, or int8 when it is QDQ-quantized). Kept apart from [`crate::filetype`]
//! (which only sniffs and reads) so the input path of `edgeflow run` can be fuzzed without
//! the ONNX importer.

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::filetype::{read, Kind};

/// The artifact for a model file: an artifact as it is, a `.tflite` compiled. Any other
/// file is an error naming what it is.
pub fn load_model(path: &Path) -> Result<Vec<u8>> {
    let bytes = read(path)?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let kind = Kind::sniff(&bytes);
    match kind {
        Kind::Artifact => Ok(bytes),
        // A .tflite without the identifier (or a damaged one) still goes to the importer,
        // whose error names what is wrong with it.
        Kind::Tflite => compile(path, &bytes),
        Kind::Text | Kind::Unknown if ext == "tflite" => compile(path, &bytes),
        _ if ext == "onnx" || edgeflow_compile::onnx::looks_like_onnx(&bytes) => {
            let m = edgeflow_compile::onnx::import_model(&bytes)
                .with_context(|| format!("cannot import the ONNX model {}", path.display()))?;
            // A QDQ model (QuantizeLinear / DequantizeLinear pairs) becomes an int8
            // artifact with its own parameters and float input/output; a float one a
            // float artifact.
            let graph = match &m.qdq {
                Some(q) => edgeflow_compile::quantize::quantize_qdq(&m.graph, q, true)
                    .with_context(|| {
                        format!(
                            "cannot map the QDQ model {} onto int8 kernels",
                            path.display()
                        )
                    })?,
                None => m.graph,
            };
            let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
            let c = edgeflow_compile::emit(&graph, name)
                .with_context(|| format!("cannot convert {}", path.display()))?;
            Ok(c.artifact)
        }
        other => bail!(
            "{} is {}, not a model (expected a .tflite or .onnx model or an edgeflow artifact)",
            path.display(),
            other.describe()
        ),
    }
}

/// Imports an ONNX model into the IR (channels-first inputs of convolutions become
/// channels-last: see `edgeflow_compile::onnx`).
pub fn import_onnx(path: &Path, bytes: &[u8]) -> Result<edgeflow_compile::ir::Graph> {
    edgeflow_compile::onnx::import(bytes)
        .with_context(|| format!("cannot import the ONNX model {}", path.display()))
}

fn compile(path: &Path, bytes: &[u8]) -> Result<Vec<u8>> {
    let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
    let c = edgeflow_compile::compile(bytes, name)
        .with_context(|| format!("cannot convert {}", path.display()))?;
    Ok(c.artifact)
}
