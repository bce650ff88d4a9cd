//! NumPy `.npy` arrays and `.npz` archives, read row by row along the first axis.
//!
//! Values always come out in row-major (C) order and native numbers: big-endian
//! (`>f4`, …) arrays are converted by `npyz`, and Fortran-order arrays
//! (`fortran_order: True`, as `np.asfortranarray` or MATLAB exports save them) are
//! transposed to C order when read. A Fortran-order array cannot be streamed row by row
//! (a row is spread over the whole file), so it is read whole on the first row.

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use npyz::{NpyFile, TypeChar};

use super::{file_source, open_counted, BadRecords};
use crate::dataset::{Dataset, Stream};
use crate::error::{Error, Result};

/// The values of a tensor, in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    /// `bool`.
    Bool(Vec<bool>),
    /// `uint8`.
    U8(Vec<u8>),
    /// `int8`.
    I8(Vec<i8>),
    /// `uint16`.
    U16(Vec<u16>),
    /// `int16`.
    I16(Vec<i16>),
    /// `uint32`.
    U32(Vec<u32>),
    /// `int32`.
    I32(Vec<i32>),
    /// `uint64`.
    U64(Vec<u64>),
    /// `int64`.
    I64(Vec<i64>),
    /// `float32`.
    F32(Vec<f32>),
    /// `float64`.
    F64(Vec<f64>),
}

impl TensorData {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            TensorData::Bool(v) => v.len(),
            TensorData::U8(v) => v.len(),
            TensorData::I8(v) => v.len(),
            TensorData::U16(v) => v.len(),
            TensorData::I16(v) => v.len(),
            TensorData::U32(v) => v.len(),
            TensorData::I32(v) => v.len(),
            TensorData::U64(v) => v.len(),
            TensorData::I64(v) => v.len(),
            TensorData::F32(v) => v.len(),
            TensorData::F64(v) => v.len(),
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values as `f64` (exact for every type but 64-bit integers beyond 2^53,
    /// which round).
    pub fn to_f64(&self) -> Vec<f64> {
        match self {
            TensorData::Bool(v) => v.iter().map(|&b| f64::from(u8::from(b))).collect(),
            TensorData::U8(v) => v.iter().map(|&x| f64::from(x)).collect(),
            TensorData::I8(v) => v.iter().map(|&x| f64::from(x)).collect(),
            TensorData::U16(v) => v.iter().map(|&x| f64::from(x)).collect(),
            TensorData::I16(v) => v.iter().map(|&x| f64::from(x)).collect(),
            TensorData::U32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            TensorData::I32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            TensorData::U64(v) => v.iter().map(|&x| x as f64).collect(),
            TensorData::I64(v) => v.iter().map(|&x| x as f64).collect(),
            TensorData::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            TensorData::F64(v) => v.clone(),
        }
    }

    /// NumPy's name of the type (`float32`, …).
    pub fn dtype_name(&self) -> &'static str {
        match self {
            TensorData::Bool(_) => "bool",
            TensorData::U8(_) => "uint8",
            TensorData::I8(_) => "int8",
            TensorData::U16(_) => "uint16",
            TensorData::I16(_) => "int16",
            TensorData::U32(_) => "uint32",
            TensorData::I32(_) => "int32",
            TensorData::U64(_) => "uint64",
            TensorData::I64(_) => "int64",
            TensorData::F32(_) => "float32",
            TensorData::F64(_) => "float64",
        }
    }
}

/// A tensor: a shape and its values.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// The shape (empty for a scalar).
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values.
    pub data: TensorData,
}

/// Reads rows of one element type and wraps them as [`TensorData`].
trait RowReader: Send {
    fn read_row(&mut self, n: usize) -> std::io::Result<TensorData>;
}

struct Typed<T: npyz::Deserialize, R: Read> {
    inner: npyz::NpyReader<T, R>,
    wrap: fn(Vec<T>) -> TensorData,
}

impl<T: npyz::Deserialize + Send, R: Read + Send> RowReader for Typed<T, R>
where
    <T as npyz::Deserialize>::TypeReader: Send,
{
    fn read_row(&mut self, n: usize) -> std::io::Result<TensorData> {
        let mut v = Vec::with_capacity(n.min(1 << 20));
        for _ in 0..n {
            match self.inner.next() {
                Some(x) => v.push(x?),
                None => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            }
        }
        Ok((self.wrap)(v))
    }
}

/// A Fortran-order array: read whole and transposed to C order on the first row.
struct Fortran<T: npyz::Deserialize, R: Read> {
    inner: Option<npyz::NpyReader<T, R>>,
    shape: Vec<usize>,
    data: Vec<T>,
    pos: usize,
    wrap: fn(Vec<T>) -> TensorData,
}

/// The C-order (row-major) copy of `f`, the values of an array of `shape` stored in
/// Fortran (column-major) order.
fn fortran_to_c<T: Copy>(shape: &[usize], f: &[T]) -> Vec<T> {
    let mut out = Vec::with_capacity(f.len());
    if f.is_empty() {
        return out;
    }
    // Column-major strides; walk the C-order multi-index like an odometer.
    let mut strides = Vec::with_capacity(shape.len());
    let mut s = 1usize;
    for &d in shape {
        strides.push(s);
        s = s.saturating_mul(d);
    }
    let mut idx = vec![0usize; shape.len()];
    let mut at = 0usize;
    for _ in 0..f.len() {
        out.push(f[at]);
        for k in (0..shape.len()).rev() {
            idx[k] += 1;
            at += strides[k];
            if idx[k] < shape[k] {
                break;
            }
            at -= strides[k] * idx[k];
            idx[k] = 0;
        }
    }
    out
}

impl<T: npyz::Deserialize + Copy + Send, R: Read + Send> RowReader for Fortran<T, R>
where
    <T as npyz::Deserialize>::TypeReader: Send,
{
    fn read_row(&mut self, n: usize) -> std::io::Result<TensorData> {
        if let Some(inner) = self.inner.take() {
            let total = self.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            let total = total.ok_or(std::io::ErrorKind::InvalidData)?;
            let mut v = Vec::with_capacity(total.min(1 << 20));
            for x in inner {
                v.push(x?);
            }
            if v.len() < total {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.data = fortran_to_c(&self.shape, &v);
        }
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or(std::io::ErrorKind::UnexpectedEof)?;
        let row = self.data[self.pos..end].to_vec();
        self.pos = end;
        Ok((self.wrap)(row))
    }
}

/// Header facts about an `.npy` array.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyInfo {
    /// The shape.
    pub shape: Vec<usize>,
    /// NumPy's type string (`<f4`, …).
    pub descr: String,
    /// Whether the file stores the values in Fortran (column-major) order; readers
    /// transpose them, so rows always come out in C order.
    pub fortran_order: bool,
}

fn typed<R: Read + Send + 'static>(
    path: &Path,
    f: NpyFile<R>,
) -> Result<(NpyInfo, Box<dyn RowReader>)> {
    let bad = |r: String| Error::file(path, r);
    let fortran = f.order() == npyz::Order::Fortran;
    let shape: Vec<usize> = f
        .shape()
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| bad(format!("dimension {d} too large"))))
        .collect::<Result<_>>()?;
    let dtype = f.dtype();
    let npyz::DType::Plain(ts) = &dtype else {
        return Err(bad(format!("structured dtype {dtype:?} is not supported")));
    };
    let info = NpyInfo {
        shape,
        descr: ts.to_string(),
        fortran_order: fortran,
    };
    macro_rules! rd {
        ($t:ty, $v:ident) => {{
            let inner = f.data::<$t>().map_err(|e| bad(e.to_string()))?;
            if fortran {
                Box::new(Fortran {
                    inner: Some(inner),
                    shape: info.shape.clone(),
                    data: Vec::new(),
                    pos: 0,
                    wrap: TensorData::$v,
                }) as Box<dyn RowReader>
            } else {
                Box::new(Typed {
                    inner,
                    wrap: TensorData::$v,
                }) as Box<dyn RowReader>
            }
        }};
    }
    let r = match (ts.type_char(), ts.size_field()) {
        (TypeChar::Bool, 1) => rd!(bool, Bool),
        (TypeChar::Uint, 1) => rd!(u8, U8),
        (TypeChar::Int, 1) => rd!(i8, I8),
        (TypeChar::Uint, 2) => rd!(u16, U16),
        (TypeChar::Int, 2) => rd!(i16, I16),
        (TypeChar::Uint, 4) => rd!(u32, U32),
        (TypeChar::Int, 4) => rd!(i32, I32),
        (TypeChar::Uint, 8) => rd!(u64, U64),
        (TypeChar::Int, 8) => rd!(i64, I64),
        (TypeChar::Float, 4) => rd!(f32, F32),
        (TypeChar::Float, 8) => rd!(f64, F64),
        _ => return Err(bad(format!("dtype {ts} is not supported"))),
    };
    Ok((info, r))
}

struct NpyStream {
    rows: Box<dyn RowReader>,
    path: PathBuf,
    row_shape: Vec<usize>,
    row_len: usize,
    left: u64,
    index: u64,
}

impl Stream<Tensor> for NpyStream {
    fn next(&mut self) -> Option<Result<Tensor>> {
        if self.left == 0 {
            return None;
        }
        let i = self.index;
        self.index += 1;
        match self.rows.read_row(self.row_len) {
            Ok(data) => {
                self.left -= 1;
                Some(Ok(Tensor {
                    shape: self.row_shape.clone(),
                    data,
                }))
            }
            Err(e) => {
                self.left = 0;
                let why = if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    "truncated data".to_string()
                } else {
                    e.to_string()
                };
                Some(Err(Error::record(&self.path, i, format!("row {i}: {why}"))))
            }
        }
    }
}

/// Rejects a `.npy` header whose shape's element count overflows 64 bits, before npyz
/// reads it (npyz multiplies the dimensions unchecked: a panic with overflow checks, a
/// wrapped count without). `head` is the start of the file; headers this cannot read are
/// left to npyz's own errors.
/// Deepest bracket nesting accepted in an `.npy` header (NumPy's own headers nest at
/// most a few levels: the dict, a structured dtype's list and its tuples, the shape).
const MAX_HEADER_NESTING: usize = 8;

fn check_shape_overflow(path: &Path, head: &[u8]) -> Result<()> {
    let Some(rest) = head.strip_prefix(b"\x93NUMPY") else {
        return Ok(());
    };
    let (len, start): (Option<usize>, usize) = match rest.first() {
        Some(1) => (
            rest.get(2..4)
                .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]]))),
            4,
        ),
        Some(2 | 3) => (
            rest.get(2..6)
                .and_then(|b| usize::try_from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])).ok()),
            6,
        ),
        _ => return Ok(()),
    };
    let Some(header) = len.and_then(|n| rest.get(start..start.checked_add(n)?)) else {
        return Ok(());
    };
    let header = String::from_utf8_lossy(header);
    // npyz's header parser backtracks exponentially on deeply nested or unbalanced
    // brackets (a fuzzer found a 118-byte header that takes over 30 s); a real header
    // nests a few levels at most (a structured dtype's list of tuples).
    let (mut depth, mut deepest) = (0usize, 0usize);
    for c in header.chars() {
        match c {
            '[' | '(' | '{' => {
                depth = depth.saturating_add(1);
                deepest = deepest.max(depth);
            }
            ']' | ')' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if deepest > MAX_HEADER_NESTING {
        return Err(Error::file(
            path,
            format!("bad .npy header: brackets nest {deepest} deep, at most {MAX_HEADER_NESTING} are read"),
        ));
    }
    let Some(tuple) = header
        .split_once("'shape'")
        .and_then(|(_, t)| t.split_once('('))
        .and_then(|(_, t)| t.split_once(')'))
        .map(|(t, _)| t)
    else {
        return Ok(());
    };
    let mut n = 1u64;
    for dim in tuple.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let Ok(d) = dim.parse::<u64>() else {
            return Ok(());
        };
        n = n.checked_mul(d).ok_or_else(|| {
            Error::file(
                path,
                format!("bad .npy header: shape ({tuple}) overflows: its element count does not fit in 64 bits"),
            )
        })?;
    }
    Ok(())
}

fn stream<R: Read + Send + 'static>(path: &Path, reader: R, whole: bool) -> Result<NpyStream> {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::with_capacity(1 << 16, reader);
    let head = reader.fill_buf().map_err(|e| Error::io(path, e))?;
    check_shape_overflow(path, head)?;
    let f = NpyFile::new(reader).map_err(|e| Error::file(path, format!("bad .npy header: {e}")))?;
    let (info, rows) = typed(path, f)?;
    let (left, row_shape) = match info.shape.split_first() {
        _ if whole => (1, info.shape.clone()),
        Some((&n, rest)) => (n as u64, rest.to_vec()),
        None => (1, vec![]),
    };
    let row_len = row_shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let row_len = row_len.ok_or_else(|| Error::file(path, "shape too large"))?;
    Ok(NpyStream {
        rows,
        path: path.to_path_buf(),
        row_shape,
        row_len,
        left,
        index: 0,
    })
}

/// The rows of an `.npy` array along its first axis, as tensors of shape `shape[1..]`
/// (a 0-d array gives one scalar tensor). Supported: arrays of bool, (u)int8–64,
/// float32/64, either endianness, C or Fortran order (see the [module docs](self)).
/// A bad header or an unsupported dtype is a file error naming it; a short file is a
/// record error naming the first incomplete row.
pub fn npy(path: impl Into<PathBuf>, policy: BadRecords) -> Dataset<Tensor> {
    file_source("npy", path.into(), policy, |p, c| {
        stream(p, open_counted(p, c)?, false)
    })
}

/// The whole array of an `.npy` file as one tensor, values in C order (what `edgeflow
/// run` and `edgeflow features` read).
///
/// Errors: as [`npy`]: the file cannot be read, has a bad header or an unsupported
/// dtype ([`Error::File`]), or is shorter than its header says ([`Error::Record`]).
pub fn read_npy(path: &Path) -> Result<Tensor> {
    let counters = std::sync::Arc::default();
    let mut s = stream(path, open_counted(path, &counters)?, true)?;
    match s.next() {
        Some(r) => r,
        None => Err(Error::file(path, "no data")),
    }
}

/// The header of an `.npy` file.
///
/// Errors: the file cannot be read or has a bad header or an unsupported dtype.
pub fn npy_info(path: &Path) -> Result<NpyInfo> {
    use std::io::BufRead;
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 16, f);
    let head = reader.fill_buf().map_err(|e| Error::io(path, e))?;
    check_shape_overflow(path, head)?;
    let f = NpyFile::new(reader).map_err(|e| Error::file(path, format!("bad .npy header: {e}")))?;
    Ok(typed(path, f)?.0)
}

fn archive(path: &Path) -> Result<zip::ZipArchive<std::fs::File>> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    zip::ZipArchive::new(f).map_err(|e| Error::file(path, format!("not a .npz (zip) archive: {e}")))
}

/// The array names in an `.npz` archive (member names without `.npy`), in archive order.
///
/// Errors: the file cannot be read or is not a zip archive.
pub fn npz_names(path: &Path) -> Result<Vec<String>> {
    let a = archive(path)?;
    let mut names = Vec::new();
    for n in a.file_names() {
        let n = n.map_err(|e| Error::file(path, format!("bad member name: {e}")))?;
        if let Some(stem) = n.strip_suffix(".npy") {
            names.push(stem.to_string());
        }
    }
    Ok(names)
}

/// The rows of array `name` of an `.npz` archive (`np.savez` or `np.savez_compressed`),
/// as [`npy`] reads them. The member is decompressed into memory when the dataset is
/// opened: memory is one array.
pub fn npz(path: impl Into<PathBuf>, name: &str, policy: BadRecords) -> Dataset<Tensor> {
    let member = format!("{name}.npy");
    file_source("npz", path.into(), policy, move |p, c| {
        let mut a = archive(p)?;
        let mut f = a
            .by_name(&member)
            .map_err(|e| Error::file(p, format!("member {member}: {e}")))?;
        let mut bytes = Vec::with_capacity(f.size().min(1 << 30) as usize);
        f.read_to_end(&mut bytes)
            .map_err(|e| Error::file(p, format!("member {member}: {e}")))?;
        c.add_bytes(f.compressed_size());
        let label = p.join(&member);
        stream(&label, Cursor::new(bytes), false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use npyz::WriterBuilder;

    fn write_f32(p: &Path, shape: &[u64], data: &[f32]) {
        let mut out = Vec::new();
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(shape)
            .writer(&mut out)
            .begin_nd()
            .unwrap();
        w.extend(data.iter().copied()).unwrap();
        w.finish().unwrap();
        std::fs::write(p, out).unwrap();
    }

    #[test]
    fn fortran_order_is_transposed_to_c_order() {
        // A 2×3×2 array; value = its C-order index.
        let shape = [2usize, 3, 2];
        let c: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let mut f = vec![0.0f32; 12];
        for i in 0..2 {
            for j in 0..3 {
                for k in 0..2 {
                    f[i + 2 * (j + 3 * k)] = c[(i * 3 + j) * 2 + k];
                }
            }
        }
        assert_eq!(fortran_to_c(&shape, &f), c);
        assert_eq!(fortran_to_c(&[4], &[1, 2, 3, 4]), [1, 2, 3, 4]);
        assert!(fortran_to_c::<u8>(&[0, 3], &[]).is_empty());
    }

    #[test]
    fn deeply_nested_headers_are_refused_before_parsing() {
        // The header a fuzzer found (npyz took over 30 s on it): a run of '[' after the
        // shape. Refused at once, by name.
        let mut header = String::from("{'descr': '>i2', 'fortran_order': False, 'shape': (3, 4),");
        header.push_str(&"[".repeat(20));
        header.push_str("}\n");
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&[0u8; 24]);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nested.npy");
        std::fs::write(&p, &bytes).unwrap();
        let e = read_npy(&p).expect_err("a 21-deep header must be refused");
        assert!(e.to_string().contains("brackets nest 21 deep"), "{e}");
        // A normal header still reads.
        let ok = dir.path().join("ok.npy");
        write_f32(&ok, &[3, 4], &[0.5; 12]);
        assert!(read_npy(&ok).is_ok());
    }

    #[test]
    fn rows_along_the_first_axis() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        write_f32(&p, &[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let rows = npy(&p, BadRecords::Error).collect_vec().unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[1],
            Tensor {
                shape: vec![2],
                data: TensorData::F32(vec![3.0, 4.0])
            }
        );
        assert_eq!(
            npy_info(&p).unwrap(),
            NpyInfo {
                shape: vec![3, 2],
                descr: "<f4".into(),
                fortran_order: false,
            }
        );
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 2]).unwrap();
        let items: Vec<_> = npy(&p, BadRecords::Error).iter().collect();
        assert_eq!(items.len(), 3);
        let e = items[2].as_ref().unwrap_err().to_string();
        assert!(e.contains("a.npy: record 2: row 2: truncated"), "{e}");
        std::fs::write(&p, b"\x93NUMPY\x01\x00garbage").unwrap();
        let e = npy(&p, BadRecords::Skip)
            .collect_vec()
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad .npy header"), "{e}");
    }
}
