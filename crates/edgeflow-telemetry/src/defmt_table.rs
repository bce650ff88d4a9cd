//! Host decoding of [`crate::DefmtLog`] frames with the firmware ELF's defmt table
//! (feature `defmt-decode`, on `defmt-decoder`).
//!
//! A device that logs with `defmt` sends only the index of each format string (its place
//! in the ELF's `.defmt` section) and the encoded arguments; the strings stay on the host.
//! [`DefmtTable`] reads that table from the firmware ELF; [`LogResolver`] turns each
//! [`Body::Defmt`] frame into a [`Body::Log`] with the level and the formatted message, so
//! the rest of the host reads device logs one way whichever logger wrote them. A frame the
//! table cannot decode (corrupt, or a table from another build) is counted and reported,
//! never dropped silently; without a table the raw bytes are kept and reported with a note.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::{truncated, Body, Frame, Level, Log};

/// Why a defmt table could not be read or a defmt frame could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DefmtError {
    /// The firmware ELF could not be read.
    #[error("cannot read the firmware ELF {path}: {source}")]
    Read {
        /// The ELF path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The ELF is not one `defmt-decoder` can read, or its defmt version is not supported.
    #[error("{path}: cannot read its defmt table: {message}")]
    Table {
        /// The ELF path.
        path: PathBuf,
        /// What `defmt-decoder` said.
        message: String,
    },
    /// The bytes of a defmt frame do not decode with the table (corrupted on the device, or
    /// the table belongs to another firmware build).
    #[error("defmt frame {hex} does not decode with {path}: {message}")]
    Frame {
        /// The ELF the table came from.
        path: PathBuf,
        /// The frame's bytes in hex.
        hex: String,
        /// What `defmt-decoder` said.
        message: String,
    },
}

/// The defmt table of one firmware ELF: format strings and levels by index.
pub struct DefmtTable {
    table: defmt_decoder::Table,
    path: PathBuf,
}

impl std::fmt::Debug for DefmtTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DefmtTable")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl DefmtTable {
    /// Reads the table of the ELF at `path`. `Ok(None)` when the ELF has no `.defmt`
    /// section (a firmware built without defmt logging). Errors: [`DefmtError::Read`],
    /// [`DefmtError::Table`].
    pub fn from_elf(path: &Path) -> Result<Option<DefmtTable>, DefmtError> {
        let bytes = std::fs::read(path).map_err(|source| DefmtError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_elf_bytes(&bytes, path)
    }

    /// As [`DefmtTable::from_elf`], from the ELF's bytes (`path` names it in errors).
    pub fn from_elf_bytes(elf: &[u8], path: &Path) -> Result<Option<DefmtTable>, DefmtError> {
        match defmt_decoder::Table::parse(elf) {
            Ok(Some(table)) => Ok(Some(DefmtTable {
                table,
                path: path.to_path_buf(),
            })),
            Ok(None) => Ok(None),
            Err(e) => Err(DefmtError::Table {
                path: path.to_path_buf(),
                message: format!("{e:#}"),
            }),
        }
    }

    /// The ELF the table was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Decodes one raw defmt frame (the body of a [`crate::DefmtLog`]) to its level and
    /// formatted message. The whole frame must be consumed. Errors: [`DefmtError::Frame`].
    /// Never panics.
    pub fn decode(&self, bytes: &[u8]) -> Result<(Level, String), DefmtError> {
        let bad = |message: String| DefmtError::Frame {
            path: self.path.clone(),
            hex: hex(bytes),
            message,
        };
        let (frame, used) = self.table.decode(bytes).map_err(|e| bad(format!("{e}")))?;
        if used != bytes.len() {
            return Err(bad(format!(
                "{} trailing bytes after the frame",
                bytes.len().saturating_sub(used)
            )));
        }
        let level = match frame.level().map(|l| l.as_str()) {
            Some("error") => Level::Error,
            Some("warn") => Level::Warn,
            Some("info") => Level::Info,
            // Debug, trace, and `println!` (no level).
            _ => Level::Debug,
        };
        Ok((level, frame.display_message().to_string()))
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len().saturating_mul(2));
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// What a [`LogResolver`] did, cumulative.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Defmt frames decoded to log lines.
    pub decoded: u64,
    /// Defmt frames the table could not decode (corrupt, or another build's table).
    pub corrupt: u64,
    /// Defmt frames left raw because there was no table.
    pub undecoded: u64,
}

/// Turns [`Body::Defmt`] frames into [`Body::Log`] frames with a [`DefmtTable`].
#[derive(Debug, Default)]
pub struct LogResolver {
    table: Option<DefmtTable>,
    /// Why there is no table (part of the note on each raw frame).
    missing: Option<String>,
    stats: LogStats,
}

impl LogResolver {
    /// A resolver with `table`, or without one (`why` says why: it is part of the note
    /// [`LogResolver::resolve`] returns with the first undecoded frame).
    pub fn new(table: Option<DefmtTable>, why: Option<String>) -> LogResolver {
        LogResolver {
            table,
            missing: why,
            stats: LogStats::default(),
        }
    }

    /// A resolver for the firmware ELF at `elf` (`None`: the ELF is unknown). Never fails:
    /// a missing or unreadable table gives a resolver that keeps defmt frames raw and says
    /// why.
    pub fn for_elf(elf: Option<&Path>) -> LogResolver {
        match elf.map(DefmtTable::from_elf) {
            Some(Ok(Some(t))) => LogResolver::new(Some(t), None),
            Some(Ok(None)) => LogResolver::new(
                None,
                Some(format!(
                    "{} has no .defmt section",
                    elf.map_or(String::new(), |p| p.display().to_string())
                )),
            ),
            Some(Err(e)) => LogResolver::new(None, Some(e.to_string())),
            None => LogResolver::new(None, Some("the firmware ELF is not known".into())),
        }
    }

    /// Whether a table was loaded.
    pub fn has_table(&self) -> bool {
        self.table.is_some()
    }

    /// Counts so far.
    pub fn stats(&self) -> &LogStats {
        &self.stats
    }

    /// Resolves `frame` in place when it is a defmt frame: decoded, it becomes a
    /// [`Body::Log`] (message cut at [`crate::LOG_LEN`] bytes); otherwise it stays
    /// [`Body::Defmt`] and the returned note says why (corrupt: counted in
    /// [`LogStats::corrupt`]; no table: [`LogStats::undecoded`]). Other frames are left as
    /// they are and give `None`.
    pub fn resolve(&mut self, frame: &mut Frame) -> Option<String> {
        let Body::Defmt(bytes) = &frame.body else {
            return None;
        };
        let seq = frame.header.seq;
        match &self.table {
            Some(t) => match t.decode(bytes) {
                Ok((level, message)) => {
                    self.stats.decoded = self.stats.decoded.saturating_add(1);
                    frame.body = Body::Log(Log {
                        level,
                        message: truncated(&message),
                    });
                    None
                }
                Err(e) => {
                    self.stats.corrupt = self.stats.corrupt.saturating_add(1);
                    Some(format!("device log #{seq}: corrupt defmt frame: {e}"))
                }
            },
            None => {
                self.stats.undecoded = self.stats.undecoded.saturating_add(1);
                Some(format!(
                    "device log #{seq}: raw defmt frame {} (not decoded: {})",
                    hex(bytes),
                    self.missing
                        .as_deref()
                        .unwrap_or("no defmt table was loaded")
                ))
            }
        }
    }
}
