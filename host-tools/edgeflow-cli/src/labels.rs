//! Class labels in the artifact's `Labels` section: UTF-8 text, one label per line, the
//! class index is the line index (the format `edgeflow_format` documents for the section).
//! A trailing newline is allowed; `\r\n` line ends are accepted when reading a user's file.

use std::path::Path;

use anyhow::{bail, Context, Result};

/// Reads a labels file (one label per line), naming the file and line in errors: every
/// line must be non-empty after trimming surrounding spaces, and labels must be distinct.
pub fn read_file(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {} as UTF-8 text", path.display()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut labels: Vec<String> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() {
            bail!(
                "{}: line {} is empty (one label per line, the class index is the line index)",
                path.display(),
                i + 1
            );
        }
        if let Some(j) = labels.iter().position(|x| x == l) {
            bail!(
                "{}: line {} repeats the label {l:?} of line {}",
                path.display(),
                i + 1,
                j + 1
            );
        }
        labels.push(l.to_string());
    }
    if labels.is_empty() {
        bail!("{}: no labels", path.display());
    }
    Ok(labels)
}

/// The section bytes: the labels joined by `\n`, with a final `\n`.
pub fn encode(labels: &[String]) -> Vec<u8> {
    let mut s = String::new();
    for l in labels {
        s.push_str(l);
        s.push('\n');
    }
    s.into_bytes()
}

/// The labels of a section; an error if it is not UTF-8.
pub fn decode(section: &[u8]) -> Result<Vec<String>> {
    let text = std::str::from_utf8(section).context("the labels section is not UTF-8 text")?;
    Ok(text.lines().map(str::to_string).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        let l = vec!["yes".to_string(), "no".into(), "_silence_".into()];
        assert_eq!(encode(&l), b"yes\nno\n_silence_\n");
        assert_eq!(decode(&encode(&l)).unwrap_or_default(), l);
    }
}
