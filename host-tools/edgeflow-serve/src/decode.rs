//! Request bodies: JSON and `.npy`, decoded into a [`Request`] for a [`Served`] model.
//!
//! JSON (one object; unknown fields are refused):
//!
//! | field | for | value |
//! |---|---|---|
//! | `features` | any model | the model input tensor's elements, flat or nested, in its dtype (int8 models take integers in −128..=127, the quantized values) |
//! | `samples` | signal pipeline | interleaved numbers, flat, or rows of `axes` numbers |
//! | `samples` | vector pipeline | one vector of `len` numbers, or rows of them (one result per row) |
//! | `text` | text pipeline | a string (tokens split at whitespace and commas, as `edgeflow run` splits a line) or a list of tokens |
//! | `pixels` | image pipeline | 8-bit pixels, HWC, flat or nested |
//!
//! `.npy` (sent as `application/x-npy` or `application/octet-stream`, or recognised by its
//! magic): an array of exactly the model input's shape and dtype is the features (as
//! `edgeflow run` decides for a `.npy` file); otherwise, with a feature pipeline, it is the
//! raw input: a signal as `[T, axes]` or flat, vectors as `[len]` or `[N, len]`, an image
//! as `uint8`. C order only.
//!
//! Every error is a [`ServeError::BadRequest`] that names the field or the `.npy` header
//! value that is wrong. Never panics, whatever the bytes.

use edgeflow_dsp::host::Sample;
use serde_json::Value;

use crate::model::{PipelineInput, Request, Served};
use crate::ServeError;

fn bad(msg: impl Into<String>) -> ServeError {
    ServeError::BadRequest(msg.into())
}

/// Whether `body` starts with the `.npy` magic (`\x93NUMPY`).
pub fn is_npy(body: &[u8]) -> bool {
    body.starts_with(b"\x93NUMPY")
}

/// Decodes a JSON request object for `m`.
pub fn json_request(m: &Served, body: &[u8]) -> Result<Request, ServeError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        bad(format!(
            "the body is not valid JSON ({e}); send an object such as {{\"samples\": [...]}} \
             or {{\"features\": [...]}}, or a .npy array"
        ))
    })?;
    value_request(m, &v)
}

/// Decodes an already parsed JSON request object (also used by the line mode).
pub fn value_request(m: &Served, v: &Value) -> Result<Request, ServeError> {
    let Value::Object(obj) = v else {
        return Err(bad(format!(
            "expected a JSON object with \"samples\", \"features\", \"text\" or \"pixels\", got {}",
            kind(v)
        )));
    };
    if let Some(k) = obj
        .keys()
        .find(|k| !["features", "samples", "text", "pixels"].contains(&k.as_str()))
    {
        return Err(bad(format!(
            "unknown field {k:?} (known: \"features\", \"samples\", \"text\", \"pixels\")"
        )));
    }
    if obj.len() != 1 {
        return Err(bad(format!(
            "give exactly one of \"features\", \"samples\", \"text\", \"pixels\" (got {})",
            obj.len()
        )));
    }
    if let Some(f) = obj.get("features") {
        return features(m, f);
    }
    let pipeline = m.pipeline.ok_or_else(|| {
        bad(format!(
            "the artifact has no feature pipeline, so it takes only \"features\" (the model \
             input, {:?} {})",
            m.input.shape, m.input.dtype
        ))
    })?;
    match (pipeline, obj.iter().next()) {
        (PipelineInput::Signal { axes, .. }, Some((k, x))) if k == "samples" => {
            let rows = numbers_or_rows("samples", x)?;
            let mut flat = Vec::new();
            for (i, r) in rows.iter().enumerate() {
                if rows.len() > 1 && r.len() != axes as usize {
                    return Err(bad(format!(
                        "samples: row {} has {} values, the pipeline takes {axes} axes per time step",
                        i + 1,
                        r.len()
                    )));
                }
                flat.extend_from_slice(r);
            }
            if flat.len() % axes as usize != 0 {
                return Err(bad(format!(
                    "samples: {} values is not a whole number of time steps of {axes} axes",
                    flat.len()
                )));
            }
            Ok(Request::Samples(vec![Sample::Signal(flat)]))
        }
        (PipelineInput::Vector { len }, Some((k, x))) if k == "samples" => {
            let rows = numbers_or_rows("samples", x)?;
            rows.into_iter()
                .enumerate()
                .map(|(i, r)| {
                    if r.len() != len as usize {
                        Err(bad(format!(
                            "samples: row {} has {} values, the pipeline takes vectors of {len}",
                            i + 1,
                            r.len()
                        )))
                    } else {
                        Ok(Sample::Vector(r))
                    }
                })
                .collect::<Result<_, _>>()
                .map(Request::Samples)
        }
        (PipelineInput::Text { max_tokens }, Some((k, x))) if k == "text" => {
            let tokens: Vec<String> = match x {
                Value::String(s) => s
                    .split(|c: char| c.is_whitespace() || c == ',')
                    .filter(|t| !t.is_empty())
                    .map(String::from)
                    .collect(),
                Value::Array(a) => a
                    .iter()
                    .enumerate()
                    .map(|(i, t)| {
                        t.as_str().map(String::from).ok_or_else(|| {
                            bad(format!("text[{i}]: expected a string, got {}", kind(t)))
                        })
                    })
                    .collect::<Result<_, _>>()?,
                other => {
                    return Err(bad(format!(
                        "text: expected a string or a list of tokens, got {}",
                        kind(other)
                    )))
                }
            };
            if tokens.len() > max_tokens as usize {
                return Err(bad(format!(
                    "text: {} tokens, the pipeline takes at most {max_tokens}",
                    tokens.len()
                )));
            }
            Ok(Request::Samples(vec![Sample::Text(tokens)]))
        }
        (PipelineInput::Image, Some((k, x))) if k == "pixels" => {
            let mut px = Vec::new();
            flatten("pixels", x, &mut px)?;
            let bytes = px
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    if v.fract() == 0.0 && (0.0..=255.0).contains(&v) {
                        Ok(v as u8)
                    } else {
                        Err(bad(format!(
                            "pixels[{i}] = {v} is not an integer in 0..=255"
                        )))
                    }
                })
                .collect::<Result<_, _>>()?;
            Ok(Request::Samples(vec![Sample::Image(bytes)]))
        }
        (p, Some((k, _))) => Err(bad(format!(
            "{k:?} does not fit the artifact's pipeline, which takes {}",
            match p {
                PipelineInput::Signal { axes, .. } =>
                    format!("\"samples\" (a signal of {axes} axes)"),
                PipelineInput::Vector { len } => format!("\"samples\" (vectors of {len})"),
                PipelineInput::Text { .. } => "\"text\"".to_string(),
                PipelineInput::Image => "\"pixels\"".to_string(),
            }
        ))),
        (_, None) => Err(bad("empty request object")),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Flattens nested lists of numbers (depth-first, C order).
fn flatten(field: &str, v: &Value, out: &mut Vec<f64>) -> Result<(), ServeError> {
    // An explicit stack: a hostile body of deeply nested lists cannot overflow ours
    // (serde_json already refuses nesting deeper than 128).
    let mut stack = vec![v];
    while let Some(x) = stack.pop() {
        match x {
            Value::Number(n) => out
                .push(n.as_f64().ok_or_else(|| {
                    bad(format!("{field}: {n} is not representable as a number"))
                })?),
            Value::Array(a) => stack.extend(a.iter().rev()),
            other => {
                return Err(bad(format!(
                    "{field}[{}]: expected a number, got {}",
                    out.len(),
                    kind(other)
                )))
            }
        }
    }
    Ok(())
}

/// A flat list of numbers (one row) or a list of lists of numbers (rows).
fn numbers_or_rows(field: &str, v: &Value) -> Result<Vec<Vec<f32>>, ServeError> {
    let Value::Array(a) = v else {
        return Err(bad(format!(
            "{field}: expected a list of numbers or of rows, got {}",
            kind(v)
        )));
    };
    let row = |i: Option<usize>, r: &[Value]| -> Result<Vec<f32>, ServeError> {
        r.iter()
            .enumerate()
            .map(|(j, x)| {
                let at = match i {
                    Some(i) => format!("{field}[{i}][{j}]"),
                    None => format!("{field}[{j}]"),
                };
                let f = x
                    .as_f64()
                    .ok_or_else(|| bad(format!("{at}: expected a number, got {}", kind(x))))?;
                if !f.is_finite() || f.abs() > f64::from(f32::MAX) {
                    return Err(bad(format!("{at}: {f} is outside the float32 range")));
                }
                Ok(f as f32)
            })
            .collect()
    };
    if a.iter().all(Value::is_array) && !a.is_empty() {
        a.iter()
            .enumerate()
            .map(|(i, r)| row(Some(i), r.as_array().map_or(&[][..], Vec::as_slice)))
            .collect()
    } else {
        Ok(vec![row(None, a)?])
    }
}

/// `features`: the model input tensor's elements in its dtype.
fn features(m: &Served, v: &Value) -> Result<Request, ServeError> {
    let mut vals = Vec::new();
    flatten("features", v, &mut vals)?;
    if vals.len() != m.input.elements {
        return Err(bad(format!(
            "features: {} values, the model input {:?} {} has {}",
            vals.len(),
            m.input.shape,
            m.input.dtype,
            m.input.elements
        )));
    }
    let mut out = Vec::with_capacity(m.input.bytes());
    for (i, &x) in vals.iter().enumerate() {
        match m.input.dtype {
            "int8" => {
                if x.fract() != 0.0 || !(-128.0..=127.0).contains(&x) {
                    return Err(bad(format!(
                        "features[{i}] = {x}: the model input is int8, so features are the \
                         quantized integers in -128..=127"
                    )));
                }
                out.push(x as i8 as u8);
            }
            "float32" => {
                if !x.is_finite() || x.abs() > f64::from(f32::MAX) {
                    return Err(bad(format!(
                        "features[{i}] = {x} is outside the float32 range"
                    )));
                }
                out.extend_from_slice(&(x as f32).to_le_bytes());
            }
            _ => {
                if x.fract() != 0.0 || !(f64::from(i32::MIN)..=f64::from(i32::MAX)).contains(&x) {
                    return Err(bad(format!("features[{i}] = {x} is not an int32")));
                }
                out.extend_from_slice(&(x as i32).to_le_bytes());
            }
        }
    }
    Ok(Request::Features(out))
}

/// Decodes a `.npy` body for `m` (see the module documentation).
pub fn npy_request(m: &Served, body: &[u8]) -> Result<Request, ServeError> {
    let f = npyz::NpyFile::new(body).map_err(|e| bad(format!(".npy body: bad header: {e}")))?;
    if f.order() == npyz::Order::Fortran {
        return Err(bad(
            ".npy body: Fortran order; send a C-order array (np.ascontiguousarray)",
        ));
    }
    let shape: Vec<u64> = f.shape().to_vec();
    let npyz::DType::Plain(ts) = f.dtype() else {
        return Err(bad(".npy body: structured dtypes are not supported"));
    };
    let n = shape
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .filter(|&n| {
            n.checked_mul(ts.size_field() as u64)
                .is_some_and(|b| b <= body.len() as u64)
        })
        .ok_or_else(|| {
            bad(format!(
                ".npy body: shape {shape:?} of {ts} needs more data than the {} bytes sent",
                body.len()
            ))
        })? as usize;
    let descr = ts.to_string();
    let code = match m.input.dtype {
        "int8" => "i1",
        "float32" => "f4",
        _ => "i4",
    };
    let is_input = shape.len() == m.input.shape.len()
        && shape
            .iter()
            .zip(&m.input.shape)
            .all(|(&a, &b)| a == u64::from(b))
        && descr.ends_with(code)
        && (code == "i1" || descr.starts_with('<') || descr.starts_with('|'));
    use npyz::TypeChar;
    let read_err = |e: std::io::Error| bad(format!(".npy body: {e}"));
    let values: Vec<f64> = match (ts.type_char(), ts.size_field()) {
        (TypeChar::Int, 1) => f.into_vec::<i8>().map_err(read_err)?.into_iter().map(f64::from).collect(),
        (TypeChar::Uint, 1) => f.into_vec::<u8>().map_err(read_err)?.into_iter().map(f64::from).collect(),
        (TypeChar::Int, 2) => f.into_vec::<i16>().map_err(read_err)?.into_iter().map(f64::from).collect(),
        (TypeChar::Int, 4) => f.into_vec::<i32>().map_err(read_err)?.into_iter().map(f64::from).collect(),
        (TypeChar::Float, 4) => f.into_vec::<f32>().map_err(read_err)?.into_iter().map(f64::from).collect(),
        (TypeChar::Float, 8) => f.into_vec::<f64>().map_err(read_err)?,
        _ => return Err(bad(format!(".npy body: dtype {descr} is not supported (int8, uint8, int16, int32, float32, float64)"))),
    };
    if values.len() != n {
        return Err(bad(format!(
            ".npy body: {} values for shape {shape:?}",
            values.len()
        )));
    }
    if is_input {
        return features(
            m,
            &Value::Array(values.into_iter().map(Value::from).collect()),
        );
    }
    let Some(pipeline) = m.pipeline else {
        return Err(bad(format!(
            ".npy body: shape {shape:?} {descr}, but the model input is {:?} {} (the artifact \
             has no feature pipeline for raw samples)",
            m.input.shape, m.input.dtype
        )));
    };
    let f32s = |v: Vec<f64>| -> Vec<f32> { v.into_iter().map(|x| x as f32).collect() };
    match pipeline {
        PipelineInput::Signal { axes, .. } => {
            let ok = match shape.as_slice() {
                [_] => n % axes as usize == 0,
                [_, a] => *a == u64::from(axes),
                _ => false,
            };
            if !ok {
                return Err(bad(format!(
                    ".npy body: shape {shape:?}; the pipeline takes a signal of {axes} axes as \
                     [T, {axes}] or flat (and the model input is {:?} {})",
                    m.input.shape, m.input.dtype
                )));
            }
            Ok(Request::Samples(vec![Sample::Signal(f32s(values))]))
        }
        PipelineInput::Vector { len } => match shape.as_slice() {
            [l] if *l == u64::from(len) => Ok(Request::Samples(vec![Sample::Vector(f32s(values))])),
            [_, l] if *l == u64::from(len) => Ok(Request::Samples(
                values
                    .chunks(len as usize)
                    .map(|c| Sample::Vector(c.iter().map(|&x| x as f32).collect()))
                    .collect(),
            )),
            _ => Err(bad(format!(
                ".npy body: shape {shape:?}; the pipeline takes vectors of {len} as [{len}] or [N, {len}]"
            ))),
        },
        PipelineInput::Image if descr.ends_with("u1") => Ok(Request::Samples(vec![Sample::Image(
            values.into_iter().map(|x| x as u8).collect(),
        )])),
        PipelineInput::Image => Err(bad(format!(
            ".npy body: dtype {descr}; the pipeline takes an 8-bit image (uint8, HWC)"
        ))),
        PipelineInput::Text { .. } => Err(bad(
            ".npy body: the pipeline takes text; send JSON {\"text\": \"...\"}",
        )),
    }
}
