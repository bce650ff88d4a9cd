//! Shared helpers for the cross-crate tests: fixture discovery, `.npy` loading and
//! running an artifact on the host.
#![warn(missing_docs)]

pub mod device;
pub mod dsp_firmware;
pub mod firmware;
pub mod stack;

use std::path::{Path, PathBuf};

/// The workspace root.
pub fn root() -> PathBuf {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR"));
    tests.parent().unwrap_or(tests).to_path_buf()
}

/// A conformance fixture: a `.tflite` model, its input and TFLite Micro's output.
#[derive(Clone, Debug)]
pub struct Fixture {
    /// File stem.
    pub name: String,
    /// The `.tflite` file.
    pub model: PathBuf,
    /// `NAME.input.npy`.
    pub input: PathBuf,
    /// `NAME.output.npy` (TFLite Micro's output).
    pub output: PathBuf,
}

/// All fixtures in `conformance/fixtures`, sorted by name.
pub fn fixtures() -> Vec<Fixture> {
    let dir = root().join("conformance/fixtures");
    let mut v: Vec<Fixture> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "tflite"))
        .map(|p| {
            let name = p
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            Fixture {
                input: dir.join(format!("{name}.input.npy")),
                output: dir.join(format!("{name}.output.npy")),
                model: p,
                name,
            }
        })
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

/// A `.npy` array as little-endian bytes, with its dtype.
#[derive(Clone, Debug, PartialEq)]
pub enum Array {
    /// int8 values.
    I8(Vec<i8>),
    /// float32 values.
    F32(Vec<f32>),
}

impl Array {
    /// The little-endian bytes.
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Array::I8(v) => v.iter().map(|&x| x as u8).collect(),
            Array::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }
}

/// Loads an int8 or float32 `.npy` file, values in C order (through edgeflow-data's
/// `.npy` reader, which honours `fortran_order` and the byte order).
pub fn load_npy(path: &Path) -> Array {
    use edgeflow_data::sources::npy::{read_npy, TensorData};
    let t = read_npy(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match t.data {
        TensorData::I8(v) => Array::I8(v),
        TensorData::F32(v) => Array::F32(v),
        other => panic!(
            "{}: unexpected dtype {}",
            path.display(),
            other.dtype_name()
        ),
    }
}

/// Runs an artifact once on the host; returns the output bytes.
pub fn run_host(artifact: &[u8], input: &[u8]) -> Result<Vec<u8>, edgeflow_nn::Error> {
    let model = edgeflow_nn::Model::parse(artifact)?;
    let mut arena = edgeflow_nn::HostArena::for_model(&model).expect("allocate the arena");
    let mut rt = edgeflow_nn::Runtime::new(&model, arena.as_mut_bytes())?;
    let slot = rt.input_mut(0)?;
    if slot.len() != input.len() {
        return Err(edgeflow_nn::Error::NoSuchTensor { index: 0, count: 1 });
    }
    slot.copy_from_slice(input);
    rt.invoke()?;
    Ok(rt.output(0)?.to_vec())
}

/// Runs an artifact on the host path (`Runtime::invoke_packed`, weights packed by
/// `PackedModel::new`) three times on one `Runtime`, writing `input` before each: the
/// first call decodes the op records, the later ones reuse them. Returns output 0 of
/// each run, for comparison with [`run_host`]'s (the device path, which decodes every
/// record per op).
pub fn run_host_packed(artifact: &[u8], input: &[u8]) -> Result<Vec<Vec<u8>>, edgeflow_nn::Error> {
    let model = edgeflow_nn::Model::parse(artifact)?;
    let packed = edgeflow_nn::PackedModel::new(&model);
    let mut arena = edgeflow_nn::HostArena::for_model(&model).expect("allocate the arena");
    let mut rt = edgeflow_nn::Runtime::new(&model, arena.as_mut_bytes())?;
    let mut outs = Vec::new();
    for _ in 0..3 {
        let slot = rt.input_mut(0)?;
        if slot.len() != input.len() {
            return Err(edgeflow_nn::Error::NoSuchTensor { index: 0, count: 1 });
        }
        slot.copy_from_slice(input);
        rt.invoke_packed(&packed)?;
        outs.push(rt.output(0)?.to_vec());
    }
    Ok(outs)
}

/// Compares an edgeflow output with TFLite Micro's: int8 bit-exact; float32 with
/// `|a - b| <= 1e-5 * |b| + 1e-6` per element. Returns a description of the first mismatch.
pub fn compare(ours: &[u8], reference: &Array) -> Result<(), String> {
    match reference {
        Array::I8(r) => {
            let o: Vec<i8> = ours.iter().map(|&b| b as i8).collect();
            if o.len() != r.len() {
                return Err(format!("length {} vs {}", o.len(), r.len()));
            }
            let diffs: Vec<usize> = (0..r.len()).filter(|&i| o[i] != r[i]).collect();
            if let Some(&i) = diffs.first() {
                return Err(format!(
                    "{} of {} int8 values differ; first at {i}: ours {} vs TFLM {}",
                    diffs.len(),
                    r.len(),
                    o[i],
                    r[i]
                ));
            }
            Ok(())
        }
        Array::F32(r) => {
            let o: Vec<f32> = ours
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            if o.len() != r.len() {
                return Err(format!("length {} vs {}", o.len(), r.len()));
            }
            for i in 0..r.len() {
                let tol = 1e-5 * r[i].abs() + 1e-6;
                if !((o[i] - r[i]).abs() <= tol) {
                    return Err(format!(
                        "float at {i}: ours {} vs TFLM {} (tolerance {tol})",
                        o[i], r[i]
                    ));
                }
            }
            Ok(())
        }
    }
}
