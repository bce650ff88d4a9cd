//! Class labels: reading a user's labels file, and the artifact's `Labels` section through
//! [`edgeflow_format::labels`] (UTF-8, one label per line, class index = line index).

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

/// The section bytes (see [`edgeflow_format::labels::encode`]).
pub fn encode(labels: &[String]) -> Result<Vec<u8>> {
    edgeflow_format::labels::encode(labels).map_err(|e| anyhow::anyhow!("{e}"))
}

/// The labels of a section, validated by [`edgeflow_format::labels::Labels::parse`].
pub fn decode(section: &[u8]) -> Result<Vec<String>> {
    let l = edgeflow_format::labels::Labels::parse(section)
        .map_err(|e| anyhow::anyhow!("invalid labels section: {e}"))?;
    Ok(l.iter().map(str::to_string).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        let l = vec!["yes".to_string(), "no".into(), "_silence_".into()];
        let b = encode(&l).unwrap_or_default();
        assert_eq!(b, b"yes\nno\n_silence_\n");
        assert_eq!(decode(&b).unwrap_or_default(), l);
    }
}
