//! Model tensors as files: `.npy` in and out with the model input's exact shape and dtype,
//! the host's arena limit, and the tensor helpers `run` prints with.

use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};
use edgeflow_format::graph::{DType, TensorDef};
use npyz::WriterBuilder;

/// Default cap on the arena `run` allocates: far above any microcontroller model (their
/// arenas are kilobytes to a few megabytes), small enough that a hostile artifact of a few
/// hundred bytes cannot make the host allocate and write gigabytes.
pub(crate) const DEFAULT_MAX_ARENA: usize = 256 << 20;

/// A byte limit from environment variable `var`, or `default` when it is unset.
pub(crate) fn env_limit(var: &str, default: usize) -> Result<usize> {
    match std::env::var(var) {
        Ok(v) => v
            .trim()
            .parse()
            .with_context(|| format!("{var}={v:?} is not a byte count")),
        Err(_) => Ok(default),
    }
}

/// The model input in `path` (an `.npy` read by edgeflow-data: C order whatever the
/// file's order, native byte order whatever the file's), as the tensor's bytes. The shape
/// must be exactly the model input's.
pub(crate) fn read_npy(path: &Path, t: &TensorDef<'_>) -> Result<Vec<u8>> {
    use edgeflow_data::sources::npy::TensorData;
    let a = edgeflow_data::sources::npy::read_npy(path)?;
    let shape: Vec<u64> = a.shape.iter().map(|&d| d as u64).collect();
    let want: Vec<u64> = t.shape.dims().iter().map(|&d| d as u64).collect();
    if shape != want {
        let count = |s: &[u64]| s.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        let hint = if want.first() == Some(&1) && want.get(1..) == Some(&shape[..]) {
            " (add the batch dimension of 1: np.expand_dims(x, 0))"
        } else if shape.first() == Some(&1) && shape.get(1..) == Some(&want[..]) {
            " (remove the leading dimension of 1)"
        } else if count(&shape) == count(&want) {
            " (same number of elements in another layout: reshape or transpose it explicitly)"
        } else {
            ""
        };
        bail!(
            "{}: shape {:?}, but the model input is {:?}{hint}",
            path.display(),
            shape,
            want
        );
    }
    let out = match (t.dtype, a.data) {
        (DType::I8, TensorData::I8(v)) => v.into_iter().map(|v| v as u8).collect(),
        (DType::F32, TensorData::F32(v)) => v.into_iter().flat_map(f32::to_le_bytes).collect(),
        (DType::I32, TensorData::I32(v)) => v.into_iter().flat_map(i32::to_le_bytes).collect(),
        (want, got) => bail!(
            "{}: dtype {}, the model input is {}",
            path.display(),
            got.dtype_name(),
            match want {
                DType::I8 => "int8 ('|i1')",
                DType::F32 => "float32 ('<f4')",
                DType::I32 => "int32 ('<i4')",
            }
        ),
    };
    Ok(out)
}

/// Writes `values` as a C-order `.npy` array of `shape`, with the element type's own
/// dtype: the CLI's one `.npy` writer. Errors name the file.
pub(crate) fn write_npy<T: npyz::AutoSerialize>(
    path: &Path,
    shape: &[u64],
    values: impl IntoIterator<Item = T>,
) -> Result<()> {
    let write = || -> Result<()> {
        let file = fs::File::create(path)?;
        let mut out = npyz::WriteOptions::new()
            .default_dtype()
            .shape(shape)
            .writer(std::io::BufWriter::new(file))
            .begin_nd()?;
        out.extend(values)?;
        out.finish()?;
        Ok(())
    };
    write().with_context(|| format!("cannot write {}", path.display()))
}

/// Writes `data` (little-endian elements of `dtype`) as a `.npy` array of `shape`.
pub(crate) fn write_npy_shape(path: &Path, shape: &[u64], dtype: DType, data: &[u8]) -> Result<()> {
    let le4 = |c: &[u8]| [c[0], c[1], c[2], c[3]];
    match dtype {
        DType::I8 => write_npy(path, shape, data.iter().map(|&b| b as i8)),
        DType::F32 => write_npy(
            path,
            shape,
            data.chunks_exact(4).map(|c| f32::from_le_bytes(le4(c))),
        ),
        DType::I32 => write_npy(
            path,
            shape,
            data.chunks_exact(4).map(|c| i32::from_le_bytes(le4(c))),
        ),
    }
}

/// Whether a `.npy` file's header announces exactly the model input's shape and dtype.
pub(crate) fn npy_matches(path: &Path, t: &TensorDef<'_>) -> bool {
    let Ok(info) = edgeflow_data::sources::npy::npy_info(path) else {
        return false;
    };
    let same_shape = info.shape.len() == t.shape.dims().len()
        && info
            .shape
            .iter()
            .zip(t.shape.dims())
            .all(|(&a, &b)| a == b as usize);
    same_shape && info.descr.ends_with(npy_code(t.dtype))
}

fn npy_code(d: DType) -> &'static str {
    match d {
        DType::I8 => "i1",
        DType::F32 => "f4",
        DType::I32 => "i4",
    }
}

/// "int8", "float32", "int32".
pub(crate) fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::I8 => "int8",
        DType::F32 => "float32",
        DType::I32 => "int32",
    }
}

/// The output as real numbers: `scale * (q - zero_point)` for quantized tensors.
pub(crate) fn dequantize(t: &TensorDef<'_>, bytes: &[u8]) -> Vec<f64> {
    match t.dtype {
        DType::I8 => bytes
            .iter()
            .map(|&b| {
                let q = f64::from(b as i8);
                match t.quant {
                    Some(qp) => f64::from(qp.scale) * (q - f64::from(qp.zero_point)),
                    None => q,
                }
            })
            .collect(),
        DType::F32 => bytes
            .chunks_exact(4)
            .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        DType::I32 => bytes
            .chunks_exact(4)
            .map(|c| f64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
    }
}
