//! The other direction: commands a host sends to a device (samples in, model updates,
//! requests), framed like telemetry so one link carries both.
//!
//! # Wire format
//!
//! Each command is the COBS encoding of
//!
//! ```text
//! kind    u8
//! payload per kind (all integers little-endian, fixed width)
//! crc     u32 LE, CRC-32/ISO-HDLC of kind + payload
//! ```
//!
//! followed by a `0x00` delimiter. Kinds:
//!
//! | kind | name | payload |
//! |---|---|---|
//! | 1 | `Samples` | `f32` LE × n, interleaved by axis (n ≤ [`MAX_PAYLOAD`] / 4) |
//! | 2 | `UpdateBegin` | artifact length `u32`, artifact CRC-32 `u32` |
//! | 3 | `UpdateData` | offset `u32` (bytes already sent), then up to [`MAX_PAYLOAD`] − 4 artifact bytes |
//! | 4 | `UpdateCommit` | — |
//! | 5 | `Summary` | — (send a summary frame now and start a new window) |
//! | 6 | `Hello` | — (send a hello frame) |
//! | 7 | `Reset` | — (forget buffered samples) |
//! | 8 | `Exit` | — (stop; emulators exit) |
//! | 9 | `Collect` | axes `u16` (start streaming raw samples back as [`crate::SampleBlock`] frames, `axes` values per sample frame, instead of classifying them; 0 stops) |
//!
//! A device answers with telemetry frames: predictions as they come, a hello after every
//! model switch, and a log frame for each update step (`update begin`, `update ok`, or the
//! error) and for each rejected command. A command that fails its CRC or COBS check is
//! counted (summary `link_errors`) and dropped; the link recovers at the next delimiter.

use core::fmt;

use crate::EncodeError;
use edgeflow_format::crc32;

/// Largest payload of one command, in bytes.
pub const MAX_PAYLOAD: usize = 1024;
/// Largest raw command (kind + payload + CRC).
pub const MAX_RAW: usize = 1 + MAX_PAYLOAD + 4;
/// Largest encoded command on the link, delimiter included.
pub const MAX_ENCODED: usize = crate::max_encoded_len(MAX_RAW);

/// One command (borrowing its payload).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// Raw little-endian `f32` samples (length a multiple of 4).
    Samples(&'a [u8]),
    /// Start a model update.
    UpdateBegin {
        /// Artifact bytes.
        len: u32,
        /// CRC-32 of the artifact.
        crc: u32,
    },
    /// Artifact bytes at `offset`.
    UpdateData {
        /// Bytes of the artifact sent before these.
        offset: u32,
        /// The bytes.
        data: &'a [u8],
    },
    /// Verify and activate the update.
    UpdateCommit,
    /// Send a summary now.
    Summary,
    /// Send a hello frame.
    Hello,
    /// Forget buffered samples.
    Reset,
    /// Stop.
    Exit,
    /// Start (`axes` > 0) or stop (`axes` = 0) data collection: the device sends its raw
    /// samples back as [`crate::SampleBlock`] frames instead of classifying them.
    Collect {
        /// Values per sample frame (0: stop collecting).
        axes: u16,
    },
}

/// Why a command was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CommandError {
    /// Shorter than kind + CRC.
    TooShort,
    /// CRC mismatch (corrupted on the link).
    Crc,
    /// Unknown kind byte.
    UnknownKind(u8),
    /// The payload length does not suit the kind.
    BadLength {
        /// The kind.
        kind: u8,
        /// Payload bytes.
        len: usize,
    },
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            CommandError::TooShort => f.write_str("command shorter than kind + CRC"),
            CommandError::Crc => f.write_str("command CRC mismatch"),
            CommandError::UnknownKind(k) => write!(f, "unknown command kind {k}"),
            CommandError::BadLength { kind, len } => {
                write!(f, "command kind {kind} with a payload of {len} bytes")
            }
        }
    }
}

impl core::error::Error for CommandError {}

/// Appends `b` to `raw` at `*n`, advancing `*n`; [`EncodeError::Body`] when it does not fit.
fn put(raw: &mut [u8], n: &mut usize, b: &[u8]) -> Result<(), EncodeError> {
    let end = n.checked_add(b.len()).ok_or(EncodeError::Body)?;
    let dst = raw.get_mut(*n..end).ok_or(EncodeError::Body)?;
    dst.copy_from_slice(b);
    *n = end;
    Ok(())
}

fn u32_at(p: &[u8], i: usize) -> Option<u32> {
    p.get(i..)?
        .first_chunk::<4>()
        .map(|b| u32::from_le_bytes(*b))
}

impl<'a> Command<'a> {
    /// The kind byte.
    pub fn kind(&self) -> u8 {
        match self {
            Command::Samples(_) => 1,
            Command::UpdateBegin { .. } => 2,
            Command::UpdateData { .. } => 3,
            Command::UpdateCommit => 4,
            Command::Summary => 5,
            Command::Hello => 6,
            Command::Reset => 7,
            Command::Exit => 8,
            Command::Collect { .. } => 9,
        }
    }

    /// Checks and splits one raw (COBS-decoded) command. Never panics.
    pub fn parse(raw: &'a [u8]) -> Result<Self, CommandError> {
        let Some((data, crc)) = raw.split_last_chunk::<4>() else {
            return Err(CommandError::TooShort);
        };
        let Some((&kind, p)) = data.split_first() else {
            return Err(CommandError::TooShort);
        };
        if crc32(data) != u32::from_le_bytes(*crc) {
            return Err(CommandError::Crc);
        }
        let bad = CommandError::BadLength { kind, len: p.len() };
        let empty = |c| if p.is_empty() { Ok(c) } else { Err(bad) };
        match kind {
            1 if p.len() % 4 == 0 && p.len() <= MAX_PAYLOAD => Ok(Command::Samples(p)),
            1 => Err(bad),
            2 if p.len() == 8 => Ok(Command::UpdateBegin {
                len: u32_at(p, 0).ok_or(bad)?,
                crc: u32_at(p, 4).ok_or(bad)?,
            }),
            2 => Err(bad),
            3 if p.len() <= MAX_PAYLOAD => match p.split_first_chunk::<4>() {
                Some((offset, data)) => Ok(Command::UpdateData {
                    offset: u32::from_le_bytes(*offset),
                    data,
                }),
                None => Err(bad),
            },
            3 => Err(bad),
            4 => empty(Command::UpdateCommit),
            5 => empty(Command::Summary),
            6 => empty(Command::Hello),
            7 => empty(Command::Reset),
            8 => empty(Command::Exit),
            9 => match <[u8; 2]>::try_from(p) {
                Ok(axes) => Ok(Command::Collect {
                    axes: u16::from_le_bytes(axes),
                }),
                Err(_) => Err(bad),
            },
            k => Err(CommandError::UnknownKind(k)),
        }
    }

    /// Writes the command (COBS-encoded, with the delimiter) into `out`; returns the bytes
    /// written. Errors: [`EncodeError::BufferFull`], or [`EncodeError::Body`] for a payload
    /// over [`MAX_PAYLOAD`] or samples not a multiple of 4 bytes. Never panics.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let mut raw = [0u8; MAX_RAW];
        raw[0] = self.kind();
        let mut n = 1;
        match *self {
            Command::Samples(s) => {
                if s.len() % 4 != 0 || s.len() > MAX_PAYLOAD {
                    return Err(EncodeError::Body);
                }
                put(&mut raw, &mut n, s)?
            }
            Command::UpdateBegin { len, crc } => {
                put(&mut raw, &mut n, &len.to_le_bytes())?;
                put(&mut raw, &mut n, &crc.to_le_bytes())?;
            }
            Command::UpdateData { offset, data } => {
                if data.len() > MAX_PAYLOAD.saturating_sub(4) {
                    return Err(EncodeError::Body);
                }
                put(&mut raw, &mut n, &offset.to_le_bytes())?;
                put(&mut raw, &mut n, data)?;
            }
            Command::Collect { axes } => put(&mut raw, &mut n, &axes.to_le_bytes())?,
            _ => {}
        }
        let body = raw.get(..n).ok_or(EncodeError::Body)?;
        let crc = crc32(body).to_le_bytes();
        put(&mut raw, &mut n, &crc)?;
        let framed = raw.get(..n).ok_or(EncodeError::Body)?;
        let len = cobs::try_encode(framed, out).map_err(|_| EncodeError::BufferFull)?;
        let delim = out.get_mut(len).ok_or(EncodeError::BufferFull)?;
        *delim = 0;
        len.checked_add(1).ok_or(EncodeError::BufferFull)
    }
}

/// Collects link bytes into commands on a device: push bytes one at a time; a complete
/// frame comes back as `Some(Ok(command))`, a damaged one as `Some(Err(..))` (count it).
/// Frames longer than the buffer are rejected whole ([`LinkError::Oversize`]).
pub struct CommandReader<const N: usize> {
    buf: [u8; N],
    len: usize,
    overflow: bool,
}

/// Why bytes between two delimiters were rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LinkError {
    /// Not valid COBS.
    Cobs,
    /// Longer than the reader's buffer.
    Oversize,
    /// Decoded, but not a valid command.
    Command(CommandError),
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkError::Cobs => f.write_str("link bytes are not valid COBS"),
            LinkError::Oversize => f.write_str("link frame longer than the receive buffer"),
            LinkError::Command(e) => write!(f, "{e}"),
        }
    }
}

impl<const N: usize> Default for CommandReader<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> CommandReader<N> {
    /// An empty reader.
    pub const fn new() -> Self {
        CommandReader {
            buf: [0; N],
            len: 0,
            overflow: false,
        }
    }

    /// Feeds one byte. At a delimiter, returns the frame it closed (`None` for an empty
    /// one). The returned command borrows the reader until the next call.
    pub fn push(&mut self, b: u8) -> Option<Result<Command<'_>, LinkError>> {
        if b != 0 {
            match self.buf.get_mut(self.len) {
                Some(slot) => {
                    *slot = b;
                    self.len = self.len.saturating_add(1);
                }
                None => self.overflow = true,
            }
            return None;
        }
        let (len, overflow) = (self.len, self.overflow);
        self.len = 0;
        self.overflow = false;
        if overflow {
            return Some(Err(LinkError::Oversize));
        }
        if len == 0 {
            return None;
        }
        let seg = &mut self.buf[..len];
        match cobs::decode_in_place(seg) {
            Err(_) => Some(Err(LinkError::Cobs)),
            Ok(n) => Some(Command::parse(seg.get(..n).unwrap_or(&[])).map_err(LinkError::Command)),
        }
    }
}
