//! The host side: a byte stream in, decoded frames and link statistics out (feature `std`).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::{
    decode_hello, decode_log, decode_prediction, parse_frame, FrameBody, FrameError, FrameHeader,
    FrameKind, Hello, Log, Prediction,
};

/// A periodic summary as the host reads it (see [`crate::SummaryAccumulator`] for the
/// meaning and wire order of every field). `F = nan.len()` features, `B = bins`.
///
/// Also serialisable, so host tools and tests can write summary frames with
/// [`crate::encode`] exactly as a device would (in the current format, `link_errors`
/// `None` written as 0).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Microseconds the window covered.
    pub window_us: u64,
    /// Inferences in the window.
    pub inferences: u32,
    /// Input samples the device lost.
    pub dropped_samples: u32,
    /// Peak stack bytes (0 = not measured).
    pub stack_high_water: u32,
    /// Peak arena bytes in use (0 = not measured).
    pub arena_high_water: u32,
    /// Bins per feature.
    pub bins: u16,
    /// `F × B` histogram counts, feature-major, over the baseline's bin edges.
    pub hist: Vec<u32>,
    /// Per feature: NaN (or missing) values.
    pub nan: Vec<u32>,
    /// Per feature: values outside the training range `[min, max]`.
    pub out_of_range: Vec<u32>,
    /// Per class: top-1 predictions.
    pub classes: Vec<u32>,
    /// Score histogram over the baseline's score bins.
    pub scores: Vec<u32>,
    /// Predictions with a NaN score.
    pub score_nan: u32,
    /// Frames the device rejected on its input link (bad COBS, CRC or length) in the
    /// window (since 1.1; `None` in a frame written by 1.0).
    pub link_errors: Option<u32>,
}

/// The 1.0 summary body; 1.1 appends `link_errors: u32`.
#[derive(Deserialize)]
struct SummaryV1_0 {
    window_us: u64,
    inferences: u32,
    dropped_samples: u32,
    stack_high_water: u32,
    arena_high_water: u32,
    bins: u16,
    hist: Vec<u32>,
    nan: Vec<u32>,
    out_of_range: Vec<u32>,
    classes: Vec<u32>,
    scores: Vec<u32>,
    score_nan: u32,
}

impl Serialize for Summary {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut t = s.serialize_tuple(13)?;
        t.serialize_element(&self.window_us)?;
        t.serialize_element(&self.inferences)?;
        t.serialize_element(&self.dropped_samples)?;
        t.serialize_element(&self.stack_high_water)?;
        t.serialize_element(&self.arena_high_water)?;
        t.serialize_element(&self.bins)?;
        t.serialize_element(&self.hist)?;
        t.serialize_element(&self.nan)?;
        t.serialize_element(&self.out_of_range)?;
        t.serialize_element(&self.classes)?;
        t.serialize_element(&self.scores)?;
        t.serialize_element(&self.score_nan)?;
        t.serialize_element(&self.link_errors.unwrap_or(0))?;
        t.end()
    }
}

impl FrameBody for Summary {
    const KIND: FrameKind = FrameKind::Summary;
}

impl Summary {
    /// Number of monitored features.
    pub fn feature_count(&self) -> usize {
        self.nan.len()
    }

    /// The `B` histogram counts of feature `f`, or `None` past the end.
    pub fn feature_hist(&self, f: usize) -> Option<&[u32]> {
        let b = usize::from(self.bins);
        self.hist
            .get(f.checked_mul(b)?..f.checked_mul(b)?.checked_add(b)?)
    }

    /// Decodes a summary body written by any minor of major 1 (fields of later minors than
    /// `minor` are `None`) and checks that the arrays
    /// agree (`hist` is `F × B`, `out_of_range` is `F`). Never panics.
    pub fn decode(body: &[u8], minor: u8) -> Result<Summary, FrameError> {
        let bad = FrameError::Malformed {
            kind: FrameKind::Summary,
        };
        let (v, rest): (SummaryV1_0, _) = postcard::take_from_bytes(body).map_err(|_| bad)?;
        let link_errors = if minor >= 1 {
            let (n, _newer_fields): (u32, _) = postcard::take_from_bytes(rest).map_err(|_| bad)?;
            Some(n)
        } else {
            None
        };
        let s = Summary {
            window_us: v.window_us,
            inferences: v.inferences,
            dropped_samples: v.dropped_samples,
            stack_high_water: v.stack_high_water,
            arena_high_water: v.arena_high_water,
            bins: v.bins,
            hist: v.hist,
            nan: v.nan,
            out_of_range: v.out_of_range,
            classes: v.classes,
            scores: v.scores,
            score_nan: v.score_nan,
            link_errors,
        };
        let f = s.nan.len();
        if s.out_of_range.len() != f || f.checked_mul(usize::from(s.bins)) != Some(s.hist.len()) {
            return Err(bad);
        }
        Ok(s)
    }
}

/// A decoded frame body.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    /// [`FrameKind::Hello`].
    Hello(Hello),
    /// [`FrameKind::Prediction`].
    Prediction(Prediction),
    /// [`FrameKind::Summary`].
    Summary(Summary),
    /// [`FrameKind::Log`].
    Log(Log),
    /// [`FrameKind::Samples`].
    Samples(Samples),
    /// [`FrameKind::Defmt`]: the raw defmt frame (index + arguments), to be decoded with
    /// the firmware ELF's table ([`crate::DefmtTable`], feature `defmt-decode`).
    Defmt(Vec<u8>),
    /// A kind from a newer minor version: the raw body, unread.
    Unknown(Vec<u8>),
}

/// One decoded frame.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    /// The header (device, model, sequence number, timestamp, version, kind).
    pub header: FrameHeader,
    /// The body.
    pub body: Body,
    /// Frames of this device missing just before this one, from the sequence numbers
    /// (after a restart: the frames of the new boot before this one).
    pub gap: u32,
    /// Offset of the frame's first byte in the stream.
    pub offset: u64,
}

/// What went wrong with one stretch of the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeErrorKind {
    /// The bytes between two delimiters are not valid COBS (corrupted on the link).
    #[error("bytes are not valid COBS")]
    Cobs,
    /// More bytes than the decoder's frame limit without a delimiter.
    #[error("no frame delimiter within {max} bytes")]
    Oversize {
        /// The limit.
        max: usize,
    },
    /// The stream ended inside a frame.
    #[error("the stream ended inside a frame")]
    Truncated,
    /// The frame failed a check (length, CRC, version, body).
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// A rejected stretch of the stream: where, how long, and why. The decoder has already
/// resynchronised at the next delimiter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("telemetry stream bytes {offset}..{}: {kind}", offset.saturating_add(*len as u64))]
pub struct DecodeError {
    /// Stream offset of the first rejected byte.
    pub offset: u64,
    /// Bytes rejected (delimiter not included).
    pub len: usize,
    /// Why.
    pub kind: DecodeErrorKind,
}

/// One result from [`Decoder::push`].
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A frame that passed every check.
    Frame(Frame),
    /// A rejected stretch of bytes (counted in [`Stats`]).
    Error(DecodeError),
}

/// Link statistics, cumulative since the decoder was created. Every byte of the stream is
/// either in a frame, a delimiter, or counted in `discarded_bytes`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes pushed.
    pub bytes: u64,
    /// Frames decoded.
    pub frames: u64,
    /// Bytes in rejected stretches.
    pub discarded_bytes: u64,
    /// Stretches that were not valid COBS.
    pub cobs_errors: u64,
    /// Frames with a bad CRC.
    pub crc_errors: u64,
    /// Frames too short to be a frame.
    pub short_frames: u64,
    /// Frames of a major version this decoder does not read.
    pub unsupported_version: u64,
    /// Frames whose CRC matched but whose header or body did not decode.
    pub malformed: u64,
    /// Stretches longer than the frame limit.
    pub oversize: u64,
    /// Frames of a kind this decoder does not know (newer minor); decoded as [`Body::Unknown`].
    pub unknown_kinds: u64,
    /// Frames missing according to sequence numbers (sum of [`Frame::gap`]).
    pub missing_frames: u64,
    /// Sequence numbers that went backwards (device restarts).
    pub restarts: u64,
    /// Frames whose sequence number repeated the previous one.
    pub duplicates: u64,
}

/// A streaming telemetry decoder: push bytes as they arrive (any chunking), get frames and
/// errors back. Never panics on any input; memory is bounded by the frame limit.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    overflow: usize,
    offset: u64,
    start: u64,
    max_frame: usize,
    stats: Stats,
    last_seq: HashMap<u64, u32>,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// Default limit on an encoded frame: 256 KiB (a summary of 256 features × 64 bins
    /// with every count at its largest varint is about 84 KB).
    pub const DEFAULT_MAX_FRAME: usize = 256 * 1024;

    /// A decoder with [`Decoder::DEFAULT_MAX_FRAME`].
    pub fn new() -> Self {
        Self::with_max_frame(Self::DEFAULT_MAX_FRAME)
    }

    /// A decoder that rejects encoded frames longer than `max_frame` bytes.
    pub fn with_max_frame(max_frame: usize) -> Self {
        Decoder {
            buf: Vec::new(),
            overflow: 0,
            offset: 0,
            start: 0,
            max_frame,
            stats: Stats::default(),
            last_seq: HashMap::new(),
        }
    }

    /// Statistics so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Feeds bytes; returns the frames and errors completed by them, in stream order.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Event> {
        let mut out = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            // `after` is empty, or starts with the delimiter.
            let (chunk, after) =
                rest.split_at(rest.iter().position(|&b| b == 0).unwrap_or(rest.len()));
            let room = self.max_frame.saturating_sub(self.buf.len());
            let (kept, dropped) = chunk.split_at(chunk.len().min(room));
            self.buf.extend_from_slice(kept);
            self.overflow = self.overflow.saturating_add(dropped.len());
            self.advance(chunk.len());
            rest = after;
            if let Some((_delimiter, tail)) = after.split_first() {
                self.advance(1);
                rest = tail;
                if let Some(e) = self.end_segment() {
                    out.push(e);
                }
                self.start = self.offset;
            }
        }
        out
    }

    /// Counts `n` more stream bytes (saturating: a stream of 2^64 bytes is not reached).
    fn advance(&mut self, n: usize) {
        self.offset = self.offset.saturating_add(n as u64);
        self.stats.bytes = self.stats.bytes.saturating_add(n as u64);
    }

    /// Declares the end of the stream: a frame still open is reported as
    /// [`DecodeErrorKind::Truncated`].
    pub fn finish(&mut self) -> Option<Event> {
        if self.buf.is_empty() && self.overflow == 0 {
            return None;
        }
        let len = self.buf.len().saturating_add(self.overflow);
        self.buf.clear();
        self.overflow = 0;
        let start = self.start;
        self.start = self.offset;
        Some(self.reject(start, len, DecodeErrorKind::Truncated))
    }

    fn reject(&mut self, offset: u64, len: usize, kind: DecodeErrorKind) -> Event {
        let st = &mut self.stats;
        st.discarded_bytes = st.discarded_bytes.saturating_add(len as u64);
        let counter = match kind {
            DecodeErrorKind::Cobs => Some(&mut st.cobs_errors),
            DecodeErrorKind::Oversize { .. } => Some(&mut st.oversize),
            DecodeErrorKind::Truncated => None,
            DecodeErrorKind::Frame(FrameError::Crc { .. }) => Some(&mut st.crc_errors),
            DecodeErrorKind::Frame(FrameError::TooShort { .. }) => Some(&mut st.short_frames),
            DecodeErrorKind::Frame(FrameError::UnsupportedMajor { .. }) => {
                Some(&mut st.unsupported_version)
            }
            DecodeErrorKind::Frame(FrameError::Malformed { .. }) => Some(&mut st.malformed),
        };
        if let Some(c) = counter {
            *c = c.saturating_add(1);
        }
        Event::Error(DecodeError { offset, len, kind })
    }

    fn end_segment(&mut self) -> Option<Event> {
        let start = self.start;
        if self.overflow > 0 {
            let len = self.buf.len().saturating_add(self.overflow);
            self.buf.clear();
            self.overflow = 0;
            let max = self.max_frame;
            return Some(self.reject(start, len, DecodeErrorKind::Oversize { max }));
        }
        if self.buf.is_empty() {
            // Back-to-back delimiters: idle filler, not an error.
            return None;
        }
        let mut seg = std::mem::take(&mut self.buf);
        let len = seg.len();
        let ev = match cobs::decode_in_place(&mut seg) {
            Err(_) => self.reject(start, len, DecodeErrorKind::Cobs),
            Ok(n) => match decode_raw(seg.get(..n).unwrap_or(&[])) {
                Err(e) => self.reject(start, len, DecodeErrorKind::Frame(e)),
                Ok((header, body)) => {
                    let gap = self.sequence(&header);
                    self.stats.frames = self.stats.frames.saturating_add(1);
                    if matches!(body, Body::Unknown(_)) {
                        self.stats.unknown_kinds = self.stats.unknown_kinds.saturating_add(1);
                    }
                    Event::Frame(Frame {
                        header,
                        body,
                        gap,
                        offset: start,
                    })
                }
            },
        };
        seg.clear();
        self.buf = seg;
        Some(ev)
    }

    fn sequence(&mut self, h: &FrameHeader) -> u32 {
        let gap = match self.last_seq.get(&h.device_id) {
            None => 0,
            Some(&last) => {
                let d = h.seq.wrapping_sub(last);
                if d == 0 {
                    self.stats.duplicates = self.stats.duplicates.saturating_add(1);
                    0
                } else if d < 1 << 31 {
                    d.saturating_sub(1)
                } else {
                    self.stats.restarts = self.stats.restarts.saturating_add(1);
                    h.seq
                }
            }
        };
        self.stats.missing_frames = self.stats.missing_frames.saturating_add(u64::from(gap));
        self.last_seq.insert(h.device_id, h.seq);
        gap
    }
}

/// A decoded [`crate::SampleBlock`]: raw sensor samples from the device.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct Samples {
    /// Index of the first value among all values sent since collection started.
    pub first: u32,
    /// Values per sample frame.
    pub axes: u16,
    /// The values, interleaved by axis.
    pub samples: Vec<f32>,
}

impl Samples {
    /// Decodes a sample block body written by any minor of major 1 (since 1.2) and checks
    /// that `axes` is not 0, divides the value count, and that the block is at most
    /// [`crate::MAX_BLOCK_VALUES`] values. Never panics.
    pub fn decode(body: &[u8], _minor: u8) -> Result<Samples, FrameError> {
        let bad = FrameError::Malformed {
            kind: FrameKind::Samples,
        };
        // Check the declared length before postcard allocates for it.
        let (head, rest): ((u32, u16), _) = postcard::take_from_bytes(body).map_err(|_| bad)?;
        let (n, _): (u32, _) = postcard::take_from_bytes(rest).map_err(|_| bad)?;
        if n as usize > crate::MAX_BLOCK_VALUES {
            return Err(bad);
        }
        let (s, _newer_fields): (Samples, _) = postcard::take_from_bytes(body).map_err(|_| bad)?;
        if s.samples.len().checked_rem(usize::from(head.1)) != Some(0) {
            return Err(bad);
        }
        Ok(s)
    }
}

/// Decodes a [`crate::DefmtLog`] body (since 1.3): at most [`crate::DEFMT_LEN`] bytes.
/// Never panics.
fn decode_defmt(body: &[u8]) -> Result<Vec<u8>, FrameError> {
    let bad = FrameError::Malformed {
        kind: FrameKind::Defmt,
    };
    // Check the declared length before postcard allocates for it.
    let (n, _): (u32, _) = postcard::take_from_bytes(body).map_err(|_| bad)?;
    if n as usize > crate::DEFMT_LEN {
        return Err(bad);
    }
    let (v, _newer_fields): (Vec<u8>, _) = postcard::take_from_bytes(body).map_err(|_| bad)?;
    Ok(v)
}

/// Checks and decodes one raw (COBS-decoded) frame. Never panics.
pub(crate) fn decode_raw(raw: &[u8]) -> Result<(FrameHeader, Body), FrameError> {
    let f = parse_frame(raw)?;
    let minor = f.header.minor;
    let body = match f.header.kind {
        FrameKind::Hello => Body::Hello(decode_hello(f.body, minor)?),
        FrameKind::Prediction => Body::Prediction(decode_prediction(f.body, minor)?),
        FrameKind::Summary => Body::Summary(Summary::decode(f.body, minor)?),
        FrameKind::Log => Body::Log(decode_log(f.body, minor)?),
        FrameKind::Samples => Body::Samples(Samples::decode(f.body, minor)?),
        FrameKind::Defmt => Body::Defmt(decode_defmt(f.body)?),
        FrameKind::Unknown(_) => Body::Unknown(f.body.to_vec()),
    };
    Ok((f.header, body))
}

/// Writes one frame (as [`crate::encode`]) into a new vector.
pub fn encode_vec<B: FrameBody>(
    header: &FrameHeader,
    body: &B,
) -> Result<Vec<u8>, crate::EncodeError> {
    let mut size = 256;
    loop {
        let mut out = vec![0u8; size];
        match crate::encode(header, body, &mut out) {
            Ok(n) => {
                out.truncate(n);
                return Ok(out);
            }
            Err(crate::EncodeError::BufferFull) if size < (1 << 24) => {
                size = size.saturating_mul(4)
            }
            Err(e) => return Err(e),
        }
    }
}
