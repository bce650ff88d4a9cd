//! edgeflow telemetry: what a deployed model tells the host, in small self-checking frames.
//!
//! A device emits a stream of frames over any byte link (UART, USB CDC, BLE, a log file).
//! Each frame says which device and which model it comes from, carries a sequence number
//! (so the host counts frames lost on the link) and a timestamp, and holds one body:
//!
//! | kind | body | when |
//! |---|---|---|
//! | [`FrameKind::Hello`] | [`Hello`]: firmware, board, model, model slot | at boot and after a model switch |
//! | [`FrameKind::Prediction`] | [`Prediction`]: class, score, latency | per inference (optional: costly on a slow link) |
//! | [`FrameKind::Summary`] | periodic [`SummaryAccumulator`] output: per-feature histograms over the artifact's monitoring-baseline bins, NaN and out-of-range counts, class counts, score histogram, dropped samples, stack and arena high-water | every window (e.g. 60 s) |
//! | [`FrameKind::Log`] | [`Log`]: level and a short text | rarely |
//! | [`FrameKind::Samples`] | [`SampleBlock`]: raw sensor samples, interleaved by axis | only while collecting data (`edgeflow device collect`) |
//! | [`FrameKind::Defmt`] | [`DefmtLog`]: one `defmt` log frame (format-string index + arguments), decoded on the host with the firmware ELF's defmt table | rarely (boot, slot, model switch, errors) |
//!
//! # Wire format (version 1.3)
//!
//! History: 1.0 first version; 1.1 appends `link_errors` to the summary body; 1.2 adds the
//! [`FrameKind::Samples`] kind (a 1.0/1.1 reader reports it as an unknown kind and skips it);
//! 1.3 adds the [`FrameKind::Defmt`] kind (older readers skip it the same way).
//!
//! A frame on the link is the COBS encoding (consistent-overhead byte stuffing) of the raw
//! frame, followed by one `0x00` delimiter. COBS removes every zero from the data, so a
//! reader that lost bytes (or joined mid-stream) resynchronises at the next `0x00`.
//!
//! The raw frame:
//!
//! ```text
//! field          encoding                      notes
//! major          u8                            readers reject majors they do not know
//! minor          u8                            additive changes only (see below)
//! kind           u8                            FrameKind; unknown kinds are reported, not errors
//! device_id      u64, 8 bytes little-endian
//! model_hash     u32, 4 bytes little-endian    CRC-32 of the artifact body (artifact header bytes 12..16)
//! seq            u32, postcard varint          +1 per frame emitted (also for frames the device dropped)
//! timestamp_us   u64, postcard varint          microseconds since boot
//! body           postcard                      per kind, see the body types
//! crc            u32, 4 bytes little-endian    CRC-32/ISO-HDLC (zlib) of every byte before it
//! ```
//!
//! # Versions
//!
//! [`FORMAT_MAJOR`] changes only when a frame written by the new version can no longer be
//! read by an old reader. A minor version may (a) add a new frame kind, which old readers
//! report as [`FrameKind::Unknown`] and skip, and (b) append fields at the end of a body,
//! which old readers ignore (the body's length is known from the frame, and postcard
//! decoding of the known prefix leaves the rest untouched). A reader of minor `m` decoding
//! a frame of an older minor fills the fields that minor did not have with their documented
//! defaults. Every body type documents the minor in which each of its fields appeared.
//!
//! # Use
//!
//! On the device (no_std, caller-owned buffers):
//!
//! ```
//! # use edgeflow_telemetry::*;
//! let mut link = Emitter::new(0x1234, 0xCAFE_F00D); // device id, artifact body CRC
//! let mut buf = [0u8; 64];
//! let n = link.frame(1_000, &Prediction { class: 2, score: 0.9, latency_us: 850 }, &mut buf)?;
//! // write buf[..n] to the UART; every 60 s: link.summary(now, &accumulator, &mut big_buf)
//! # Ok::<(), EncodeError>(())
//! ```
//!
//! On the host (feature `std`):
//!
//! ```
//! # #[cfg(feature = "std")] {
//! # use edgeflow_telemetry::*;
//! # let bytes_from_the_link = [0u8; 0];
//! let mut decoder = Decoder::new();
//! for event in decoder.push(&bytes_from_the_link) {
//!     match event {
//!         Event::Frame(f) => match f.body {
//!             Body::Summary(s) => { let _ = (f.header.device_id, s.feature_hist(0)); }
//!             Body::Prediction(p) => { let _ = p.class; }
//!             _ => {}
//!         },
//!         Event::Error(e) => eprintln!("{e}"), // already counted in decoder.stats()
//!     }
//! }
//! let lost = decoder.stats().missing_frames;
//! # let _ = lost; }
//! ```
//!
//! # Contract
//!
//! `no_std`, no `alloc`, no panics on any input: [`parse_frame`] checks length, CRC and
//! version before it decodes anything, and body decoders return errors, never panic. The
//! host [`Decoder`] (feature `std`) turns a byte stream into frames, resynchronising after
//! corrupt bytes, counting every discarded byte, every bad frame and every sequence gap.
#![cfg_attr(not(feature = "std"), no_std)]
// The panic audit (issue 19), enforced by `cargo xtask test` (clippy on the no_std and std
// builds): no unwrap/expect/panic, no unchecked indexing or arithmetic.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

use core::fmt;

use postcard::ser_flavors::Flavor;
use serde::{Deserialize, Serialize};

pub mod command;
// Index arithmetic on the baseline's dimensions, which MonitoringBaseline::parse bounds
// (features <= 256, bins and score bins <= 64, classes <= 1024): the largest index,
// F x (B + 2) + C + S, is under 2^15, so no sum or product can overflow `usize`.
#[allow(clippy::arithmetic_side_effects)]
mod summary;
pub use summary::{AccumulatorError, SummaryAccumulator};

#[cfg(feature = "std")]
mod decode;
#[cfg(feature = "std")]
pub use decode::{
    encode_vec, Body, DecodeError, DecodeErrorKind, Decoder, Event, Frame, Samples, Stats, Summary,
};

#[cfg(feature = "defmt-decode")]
mod defmt_table;
#[cfg(feature = "defmt-decode")]
pub use defmt_table::{DefmtError, DefmtTable, LogResolver, LogStats};

/// The telemetry format major version this crate writes.
pub const FORMAT_MAJOR: u8 = 1;
/// The telemetry format minor version this crate writes.
pub const FORMAT_MINOR: u8 = 3;
/// Every major version this crate reads (any minor of them).
pub const READABLE_MAJORS: &[u8] = &[1];

/// The CRC over the raw frame (CRC-32/ISO-HDLC, the zlib/PNG CRC; the artifact uses it
/// too), with the `crc` crate's 1 KiB table, for host tools. This crate computes the same
/// value with [`edgeflow_format::crc32`] / [`edgeflow_format::Crc32`], the one CRC-32 of
/// the no_std crates (a 64-byte table on devices).
pub use edgeflow_format::CRC32;

/// Bytes of the fixed part of the header (major, minor, kind, device id, model hash).
pub const FIXED_HEADER_LEN: usize = 3 + 8 + 4;
/// Shortest possible raw frame: fixed header, one-byte seq and timestamp, CRC, empty body.
pub const MIN_RAW_LEN: usize = FIXED_HEADER_LEN + 1 + 1 + 4;
/// Longest text in [`Hello`] name fields, in bytes (UTF-8).
pub const NAME_LEN: usize = 32;
/// Longest [`Log`] message, in bytes (UTF-8).
pub const LOG_LEN: usize = 120;

/// Bytes needed on the link for a raw frame of `raw_len` bytes: COBS adds one byte per 254
/// plus one, and the delimiter adds one.
pub const fn max_encoded_len(raw_len: usize) -> usize {
    raw_len.saturating_add(raw_len / 254).saturating_add(2)
}

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FrameKind {
    /// [`Hello`] (since 1.0).
    Hello,
    /// [`Prediction`] (since 1.0).
    Prediction,
    /// A periodic summary, written by [`SummaryAccumulator`] (since 1.0).
    Summary,
    /// [`Log`] (since 1.0).
    Log,
    /// [`SampleBlock`] (since 1.2).
    Samples,
    /// [`DefmtLog`] (since 1.3).
    Defmt,
    /// A kind this reader does not know (written by a newer minor version): skipped.
    Unknown(u8),
}

impl FrameKind {
    /// The wire byte.
    pub const fn to_u8(self) -> u8 {
        match self {
            FrameKind::Hello => 1,
            FrameKind::Prediction => 2,
            FrameKind::Summary => 3,
            FrameKind::Log => 4,
            FrameKind::Samples => 5,
            FrameKind::Defmt => 6,
            FrameKind::Unknown(k) => k,
        }
    }

    /// From the wire byte; any byte is accepted.
    pub const fn from_u8(b: u8) -> Self {
        match b {
            1 => FrameKind::Hello,
            2 => FrameKind::Prediction,
            3 => FrameKind::Summary,
            4 => FrameKind::Log,
            5 => FrameKind::Samples,
            6 => FrameKind::Defmt,
            k => FrameKind::Unknown(k),
        }
    }
}

/// The header every frame carries (see the crate docs for its encoding).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FrameHeader {
    /// Format major version the frame was written with.
    pub major: u8,
    /// Format minor version the frame was written with.
    pub minor: u8,
    /// Body kind.
    pub kind: FrameKind,
    /// Device identity (e.g. a hash of the MCU's unique id), fixed for the device's life.
    pub device_id: u64,
    /// CRC-32 of the running artifact's body (bytes 12..16 of the artifact header); 0 when
    /// no model is loaded.
    pub model_hash: u32,
    /// Frame sequence number: +1 per frame the device meant to send, wrapping at `u32::MAX`.
    pub seq: u32,
    /// Microseconds since the device booted.
    pub timestamp_us: u64,
}

#[derive(Serialize, Deserialize)]
struct WireHeader {
    major: u8,
    minor: u8,
    kind: u8,
    #[serde(with = "postcard::fixint::le")]
    device_id: u64,
    #[serde(with = "postcard::fixint::le")]
    model_hash: u32,
    seq: u32,
    timestamp_us: u64,
}

/// Why a frame could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum EncodeError {
    /// The output buffer is too small for the frame.
    BufferFull,
    /// The body could not be serialised (a name or message longer than its limit).
    Body,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::BufferFull => {
                f.write_str("telemetry frame does not fit the output buffer")
            }
            EncodeError::Body => f.write_str("telemetry frame body could not be serialised"),
        }
    }
}

impl core::error::Error for EncodeError {}

/// Why a raw (COBS-decoded) frame was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FrameError {
    /// Fewer bytes than the smallest frame ([`MIN_RAW_LEN`]).
    TooShort {
        /// Bytes found.
        len: usize,
    },
    /// The CRC over the frame does not match: the frame was corrupted on the link.
    Crc {
        /// CRC stored in the frame.
        stored: u32,
        /// CRC computed over the bytes received.
        computed: u32,
    },
    /// The frame's major version is not in [`READABLE_MAJORS`].
    UnsupportedMajor {
        /// Major found.
        major: u8,
        /// Minor found.
        minor: u8,
    },
    /// The header or the body of a known kind does not decode (a bug in the writer: the CRC
    /// matched).
    Malformed {
        /// The frame kind (`Unknown(0)` when the header itself is malformed).
        kind: FrameKind,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FrameError::TooShort { len } => write!(
                f,
                "telemetry frame of {len} bytes is shorter than the smallest frame ({MIN_RAW_LEN} bytes)"
            ),
            FrameError::Crc { stored, computed } => write!(
                f,
                "telemetry frame CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
            FrameError::UnsupportedMajor { major, minor } => write!(
                f,
                "telemetry format {major}.{minor} is not supported (this reader reads major {FORMAT_MAJOR})"
            ),
            FrameError::Malformed { kind } => {
                write!(f, "telemetry frame of kind {kind:?} does not decode")
            }
        }
    }
}

impl core::error::Error for FrameError {}

/// A checked raw frame: header decoded, CRC verified, body bytes borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawFrame<'a> {
    /// The header.
    pub header: FrameHeader,
    /// The postcard body (for a newer minor it may carry fields this reader does not know).
    pub body: &'a [u8],
}

/// Checks and splits one raw frame (the COBS-decoded bytes between two delimiters, without
/// the delimiter). Checks, in order: length, CRC, major version, header encoding. Never
/// panics.
pub fn parse_frame(raw: &[u8]) -> Result<RawFrame<'_>, FrameError> {
    if raw.len() < MIN_RAW_LEN {
        return Err(FrameError::TooShort { len: raw.len() });
    }
    let too_short = FrameError::TooShort { len: raw.len() };
    let (data, crc) = raw.split_last_chunk::<4>().ok_or(too_short)?;
    let stored = u32::from_le_bytes(*crc);
    let computed = edgeflow_format::crc32(data);
    if stored != computed {
        return Err(FrameError::Crc { stored, computed });
    }
    let &[major, minor] = data.first_chunk::<2>().ok_or(too_short)?;
    if !READABLE_MAJORS.contains(&major) {
        return Err(FrameError::UnsupportedMajor { major, minor });
    }
    let (h, body): (WireHeader, _) =
        postcard::take_from_bytes(data).map_err(|_| FrameError::Malformed {
            kind: FrameKind::Unknown(0),
        })?;
    Ok(RawFrame {
        header: FrameHeader {
            major: h.major,
            minor: h.minor,
            kind: FrameKind::from_u8(h.kind),
            device_id: h.device_id,
            model_hash: h.model_hash,
            seq: h.seq,
            timestamp_us: h.timestamp_us,
        },
        body,
    })
}

/// A frame body this crate can write: its kind and its postcard form.
pub trait FrameBody: Serialize {
    /// The kind written in the header.
    const KIND: FrameKind;
}

/// Sent at boot and after every model switch: what runs on the device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Firmware name and version, e.g. `"edgeflow-app 0.1.0"` (since 1.0).
    pub firmware: heapless::String<NAME_LEN>,
    /// Board name as in `boards/*.toml`, e.g. `"mps2-an386"` (since 1.0).
    pub board: heapless::String<NAME_LEN>,
    /// Model name (artifact metadata or file name; may be empty) (since 1.0).
    pub model: heapless::String<NAME_LEN>,
    /// Artifact format version `(major, minor)` (since 1.0).
    pub artifact_version: (u16, u16),
    /// Model slot the model was loaded from (0 = A, 1 = B; 255 = compiled in) (since 1.0).
    pub slot: u8,
    /// The slot's update sequence number (since 1.0).
    pub slot_sequence: u32,
    /// Arena bytes the model needs (since 1.0).
    pub arena_bytes: u32,
}

impl FrameBody for Hello {
    const KIND: FrameKind = FrameKind::Hello;
}

/// Copies `s` into a fixed-capacity string, cutting it at a character boundary if it is
/// longer than `N` bytes. Never panics.
pub fn truncated<const N: usize>(s: &str) -> heapless::String<N> {
    let mut out = heapless::String::new();
    for c in s.chars() {
        if out.push(c).is_err() {
            break;
        }
    }
    out
}

/// One inference.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Top-1 class index (since 1.0).
    pub class: u16,
    /// Its score as a real number (dequantized model output) (since 1.0).
    pub score: f32,
    /// Microseconds from the last sample of the window to the prediction: features plus
    /// inference (since 1.0).
    pub latency_us: u32,
}

impl FrameBody for Prediction {
    const KIND: FrameKind = FrameKind::Prediction;
}

/// Severity of a [`Log`] frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum Level {
    /// Something failed.
    Error = 0,
    /// Something looks wrong.
    Warn = 1,
    /// Normal operation.
    Info = 2,
    /// Detail for debugging.
    Debug = 3,
}

/// A short text message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Log {
    /// Severity (since 1.0).
    pub level: Level,
    /// The message, at most [`LOG_LEN`] bytes (since 1.0).
    pub message: heapless::String<LOG_LEN>,
}

impl FrameBody for Log {
    const KIND: FrameKind = FrameKind::Log;
}

/// Longest [`SampleBlock`] in values: one samples command's worth
/// ([`command::MAX_PAYLOAD`] / 4), so a device can send back what it received in one frame.
pub const MAX_BLOCK_VALUES: usize = command::MAX_PAYLOAD / 4;

/// A block of raw sensor samples, as the device's sample source produced them (before any
/// feature extraction): what `edgeflow device collect` records into a dataset.
///
/// Body encoding (postcard): `first` varint, `axes` varint, then `samples` as a varint
/// length and that many `f32` little-endian.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SampleBlock<'a> {
    /// Index of the first value of this block among all values sent since collection
    /// started (values, not frames: a frame of `axes` values counts `axes`), so the host
    /// sees a lost block as a jump (since 1.2).
    pub first: u32,
    /// Values per sample frame (e.g. 6 for a 6-axis IMU); `samples.len()` is a multiple
    /// of it (since 1.2).
    pub axes: u16,
    /// The values, interleaved by axis, at most [`MAX_BLOCK_VALUES`] (since 1.2).
    pub samples: &'a [f32],
}

impl FrameBody for SampleBlock<'_> {
    const KIND: FrameKind = FrameKind::Samples;
}

/// Longest [`DefmtLog`] frame in bytes (index, arguments) a device sends.
pub const DEFMT_LEN: usize = 128;

/// One `defmt` log frame, as the firmware's global logger wrote it: the raw (unencoded)
/// defmt frame, i.e. the 16-bit index of the format string in the ELF's `.defmt` section
/// followed by the encoded arguments (defmt wire format 4, `encoding-raw`; no defmt
/// timestamp: the telemetry header has one). The level is part of the format string's
/// table entry. The host decodes it with `defmt-decoder` and the firmware ELF (feature
/// `defmt-decode`, [`DefmtTable`]).
///
/// Body encoding (postcard): the bytes as a varint length and that many bytes (since 1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct DefmtLog<'a> {
    /// The raw defmt frame, at most [`DEFMT_LEN`] bytes (since 1.3).
    pub frame: &'a [u8],
}

impl FrameBody for DefmtLog<'_> {
    const KIND: FrameKind = FrameKind::Defmt;
}

/// CRC-32 computing pass-through postcard flavor: every byte goes to the CRC and on to the
/// COBS encoder.
struct CrcCobs<'b> {
    cobs: postcard::ser_flavors::Cobs<postcard::ser_flavors::Slice<'b>>,
    digest: edgeflow_format::Crc32,
}

impl postcard::ser_flavors::Flavor for CrcCobs<'_> {
    type Output = usize;

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.digest.update(core::slice::from_ref(&data));
        self.cobs.try_push(data)
    }

    fn finalize(self) -> postcard::Result<usize> {
        let mut cobs = self.cobs;
        for b in self.digest.finish().to_le_bytes() {
            cobs.try_push(b)?;
        }
        cobs.finalize().map(|s| s.len())
    }
}

fn encode_with(
    header: &FrameHeader,
    kind: FrameKind,
    out: &mut [u8],
    body: impl FnOnce(&mut postcard::Serializer<CrcCobs<'_>>) -> Result<(), EncodeError>,
) -> Result<usize, EncodeError> {
    let cobs = postcard::ser_flavors::Cobs::try_new(postcard::ser_flavors::Slice::new(out))
        .map_err(|_| EncodeError::BufferFull)?;
    let mut ser = postcard::Serializer {
        output: CrcCobs {
            cobs,
            digest: edgeflow_format::Crc32::new(),
        },
    };
    let wire = WireHeader {
        major: header.major,
        minor: header.minor,
        kind: kind.to_u8(),
        device_id: header.device_id,
        model_hash: header.model_hash,
        seq: header.seq,
        timestamp_us: header.timestamp_us,
    };
    wire.serialize(&mut ser).map_err(map_ser)?;
    body(&mut ser)?;
    ser.output.finalize().map_err(|_| EncodeError::BufferFull)
}

fn map_ser(e: postcard::Error) -> EncodeError {
    match e {
        postcard::Error::SerializeBufferFull => EncodeError::BufferFull,
        _ => EncodeError::Body,
    }
}

/// Writes one frame with `body` (its kind overrides `header.kind`) into `out`: COBS-encoded,
/// with the trailing `0x00` delimiter. Returns the bytes written. `out` needs at most
/// [`max_encoded_len`] of the raw size. Errors: [`EncodeError`]. Never panics.
pub fn encode<B: FrameBody>(
    header: &FrameHeader,
    body: &B,
    out: &mut [u8],
) -> Result<usize, EncodeError> {
    encode_with(header, B::KIND, out, |ser| {
        body.serialize(ser).map_err(map_ser)
    })
}

/// The device side of a telemetry link: device id, running model and the sequence counter.
#[derive(Clone, Copy, Debug)]
pub struct Emitter {
    /// Device identity written into every frame.
    pub device_id: u64,
    /// CRC-32 of the running artifact's body (0 when none).
    pub model_hash: u32,
    seq: u32,
}

impl Emitter {
    /// A link starting at sequence number 0.
    pub const fn new(device_id: u64, model_hash: u32) -> Self {
        Emitter {
            device_id,
            model_hash,
            seq: 0,
        }
    }

    /// The sequence number the next frame gets.
    pub fn next_seq(&self) -> u32 {
        self.seq
    }

    fn header(&self, timestamp_us: u64) -> FrameHeader {
        FrameHeader {
            major: FORMAT_MAJOR,
            minor: FORMAT_MINOR,
            kind: FrameKind::Unknown(0),
            device_id: self.device_id,
            model_hash: self.model_hash,
            seq: self.seq,
            timestamp_us,
        }
    }

    /// Writes `body` as the next frame into `out` and returns the bytes written. The
    /// sequence number advances even when the frame does not fit (`BufferFull`), so the host
    /// sees a dropped frame as a gap rather than not at all.
    pub fn frame<B: FrameBody>(
        &mut self,
        timestamp_us: u64,
        body: &B,
        out: &mut [u8],
    ) -> Result<usize, EncodeError> {
        let r = encode(&self.header(timestamp_us), body, out);
        self.seq = self.seq.wrapping_add(1);
        r
    }

    /// Writes the accumulator's summary as the next frame (see [`Emitter::frame`]).
    pub fn summary(
        &mut self,
        timestamp_us: u64,
        acc: &SummaryAccumulator<'_, '_>,
        out: &mut [u8],
    ) -> Result<usize, EncodeError> {
        let r = encode_with(&self.header(timestamp_us), FrameKind::Summary, out, |ser| {
            acc.wire(timestamp_us).serialize(ser).map_err(map_ser)
        });
        self.seq = self.seq.wrapping_add(1);
        r
    }

    /// Counts a frame the device chose not to send (e.g. link busy) so the host sees a gap.
    pub fn skip(&mut self) {
        self.seq = self.seq.wrapping_add(1);
    }
}

/// Decodes a [`Hello`] body written by any minor of major 1. Never panics.
pub fn decode_hello(body: &[u8], _minor: u8) -> Result<Hello, FrameError> {
    postcard::take_from_bytes::<Hello>(body)
        .map(|(h, _newer_fields)| h)
        .map_err(|_| FrameError::Malformed {
            kind: FrameKind::Hello,
        })
}

/// Decodes a [`Prediction`] body written by any minor of major 1. Never panics.
pub fn decode_prediction(body: &[u8], _minor: u8) -> Result<Prediction, FrameError> {
    postcard::take_from_bytes::<Prediction>(body)
        .map(|(p, _newer_fields)| p)
        .map_err(|_| FrameError::Malformed {
            kind: FrameKind::Prediction,
        })
}

/// Decodes a [`Log`] body written by any minor of major 1. Never panics.
pub fn decode_log(body: &[u8], _minor: u8) -> Result<Log, FrameError> {
    postcard::take_from_bytes::<Log>(body)
        .map(|(l, _newer_fields)| l)
        .map_err(|_| FrameError::Malformed {
            kind: FrameKind::Log,
        })
}
