//! The line mode (`edgeflow serve ARTIFACT --stdin`): one JSON request per input line (the
//! same objects `POST /v1/predict` takes, see [`crate::decode`]), one JSON answer per output
//! line, in order, flushed after each, so it works in a pipe:
//!
//! ```text
//! {"samples": [[0.1, 0.2], [0.3, 0.4], ...]}   ->  {"line": 1, "results": [...]}
//! {"features": 3}                              ->  {"line": 2, "error": "features: ..."}
//! ```
//!
//! Blank lines are skipped. A bad line is answered with `error` and the next line is read;
//! at the end the mode fails (non-zero exit) if any line failed.

use std::io::{BufRead, Write};
use std::time::Instant;

use serde_json::{json, Value};

use crate::http::AppState;
use crate::ServeError;

/// Answers every line of `input` on `output`. Errors: [`ServeError::Io`] when reading or
/// writing fails (a closed stdout ends quietly with success), [`ServeError::BadRequest`]
/// counting the failed lines when any failed.
pub fn run(
    state: &AppState,
    input: impl BufRead,
    mut output: impl Write,
) -> Result<(), ServeError> {
    let mut failed = 0usize;
    let mut n = 0usize;
    for (i, line) in input.lines().enumerate() {
        let line = line.map_err(|source| ServeError::Io {
            what: format!("reading stdin line {}", i + 1),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        n += 1;
        let t = Instant::now();
        let m = state.model();
        let answer = (|| {
            let v: Value = serde_json::from_str(&line)
                .map_err(|e| ServeError::BadRequest(format!("not valid JSON ({e})")))?;
            let req = crate::decode::value_request(&m, &v)?;
            let outs = m.predict(&req)?;
            let us = t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
            for o in &outs {
                state.observe(&m, &o.features, &o.output, us, o.new_frames);
            }
            let k = state.limits().top;
            Ok::<_, ServeError>(outs.iter().map(|o| m.result_json(o, k)).collect::<Vec<_>>())
        })();
        let doc = match answer {
            Ok(results) => json!({ "line": i + 1, "results": results }),
            Err(e) => {
                failed += 1;
                json!({ "line": i + 1, "error": e.to_string() })
            }
        };
        let w = writeln!(output, "{doc}").and_then(|()| output.flush());
        if let Err(e) = w {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(ServeError::Io {
                what: "writing stdout".into(),
                source: e,
            });
        }
    }
    if failed > 0 {
        return Err(ServeError::BadRequest(format!(
            "{failed} of {n} input lines failed (each answered with \"error\")"
        )));
    }
    Ok(())
}
