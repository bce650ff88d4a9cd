//! File types by content (magic bytes), so a wrong file gets "X is a NumPy array, not a
//! model" rather than a parser's message about its first bytes.

use std::path::Path;

use anyhow::{Context, Result};

/// What a file's first bytes say it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An edgeflow artifact (`EDGF`).
    Artifact,
    /// A TFLite flatbuffer (file identifier `TFL3` at byte 4).
    Tflite,
    /// A NumPy `.npy` array (`\x93NUMPY`).
    Npy,
    /// A zip archive (`PK\x03\x04`): `.npz` arrays among others.
    Zip,
    /// A RIFF/WAVE audio file.
    Wav,
    /// A PNG image.
    Png,
    /// A JPEG image.
    Jpeg,
    /// A Parquet table (`PAR1`).
    Parquet,
    /// gzip-compressed data.
    Gzip,
    /// An ELF executable (firmware, a program).
    Elf,
    /// UTF-8 text (CSV, TOML, JSON, README …).
    Text,
    /// None of the above.
    Unknown,
}

impl Kind {
    /// Detects the kind from the first bytes (any length; never panics).
    pub fn sniff(bytes: &[u8]) -> Kind {
        let at = |off: usize, magic: &[u8]| bytes.get(off..off + magic.len()) == Some(magic);
        if at(0, &edgeflow_format::MAGIC) {
            Kind::Artifact
        } else if at(4, b"TFL3") {
            Kind::Tflite
        } else if at(0, b"\x93NUMPY") {
            Kind::Npy
        } else if at(0, b"PK\x03\x04") || at(0, b"PK\x05\x06") {
            Kind::Zip
        } else if at(0, b"RIFF") && at(8, b"WAVE") {
            Kind::Wav
        } else if at(0, b"\x89PNG\r\n\x1a\n") {
            Kind::Png
        } else if at(0, &[0xff, 0xd8, 0xff]) {
            Kind::Jpeg
        } else if at(0, b"PAR1") {
            Kind::Parquet
        } else if at(0, &[0x1f, 0x8b]) {
            Kind::Gzip
        } else if at(0, b"\x7fELF") {
            Kind::Elf
        } else if looks_like_text(bytes) {
            Kind::Text
        } else {
            Kind::Unknown
        }
    }

    /// "a NumPy array", "a WAV audio file" …, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Artifact => "an edgeflow artifact",
            Kind::Tflite => "a TFLite model",
            Kind::Npy => "a NumPy array",
            Kind::Zip => "a zip archive (such as .npz)",
            Kind::Wav => "a WAV audio file",
            Kind::Png => "a PNG image",
            Kind::Jpeg => "a JPEG image",
            Kind::Parquet => "a Parquet table",
            Kind::Gzip => "gzip-compressed data",
            Kind::Elf => "an ELF executable",
            Kind::Text => "a text file",
            Kind::Unknown => "a file of unknown type",
        }
    }
}

/// Text if the first 4 KiB are UTF-8 (a cut multi-byte character at the end allowed) and
/// hold no NUL bytes. An empty file counts as text.
fn looks_like_text(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(4096)];
    if head.contains(&0) {
        return false;
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && head.len() == 4096,
    }
}

/// Reads a file, naming it in the error.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_common_files() {
        assert_eq!(Kind::sniff(b"\x93NUMPY\x01\x00"), Kind::Npy);
        assert_eq!(Kind::sniff(b"RIFF\x00\x00\x00\x00WAVEfmt "), Kind::Wav);
        assert_eq!(Kind::sniff(b"EDGF\x01\x00"), Kind::Artifact);
        assert_eq!(Kind::sniff(b"\x1c\x00\x00\x00TFL3"), Kind::Tflite);
        assert_eq!(Kind::sniff(b"# README\n"), Kind::Text);
        assert_eq!(Kind::sniff(&[0xff, 0xd8, 0xff, 0xe0]), Kind::Jpeg);
        assert_eq!(Kind::sniff(&[0x00, 0x01, 0x02, 0xfe]), Kind::Unknown);
        assert_eq!(Kind::sniff(b""), Kind::Text);
        assert_eq!(Kind::sniff(b"TF"), Kind::Text);
    }
}
