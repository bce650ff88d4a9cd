//! The edgeflow model artifact.
//!
//! An artifact is one file that a device needs and nothing else: the model graph with its
//! weights and memory plan, the feature pipeline, labels ([`labels`]), monitoring baseline
//! ([`baseline`]) and metadata (a JSON object for host tools). This crate is `no_std`, allocates nothing and never
//! panics on any input bytes.
//!
//! # Layout
//!
//! ```text
//! offset  size  field
//! 0       4     magic  b"EDGF"
//! 4       2     format major version (little-endian)   readers reject majors they do not know
//! 6       2     format minor version                    additive changes only
//! 8       4     body length in bytes
//! 12      4     CRC-32 (ISO-HDLC, as zlib) of the body
//! 16      16    reserved, zero
//! 32      ...   body: a sequence of sections
//! ```
//!
//! Each section is postcard-encoded as `(kind: u16 varint, bytes: length-prefixed)`;
//! see [`SectionKind`]. Readers skip section kinds they do not know, so a minor version can
//! add sections. The [`graph`] section is itself postcard-encoded ([`graph::GraphHeader`]
//! followed by the op records); constant tensor data lives in the [`SectionKind::Weights`]
//! section and is borrowed from the artifact bytes (flash), never copied.
//!
//! # Contract
//!
//! [`Artifact::parse`] checks the header, the length, the CRC and the section framing.
//! The op-level validation (every shape, offset and parameter a kernel relies on) is done
//! by `edgeflow-nn`'s `Model::parse`, which builds on this crate.
#![cfg_attr(not(feature = "std"), no_std)]
// The panic audit (issue 19), enforced by `cargo xtask test` (clippy on the no_std build):
// no unwrap/expect/panic anywhere; no unchecked indexing or arithmetic outside the modules
// that allow it below, each with its reason.
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

pub mod baseline;
pub mod decode;
pub mod graph;
pub mod labels;
pub mod tables;

use core::fmt;

/// First four bytes of every artifact.
pub const MAGIC: [u8; 4] = *b"EDGF";
/// Size of the fixed header in bytes.
pub const HEADER_LEN: usize = 32;
/// The format major version this crate writes.
pub const FORMAT_MAJOR: u16 = 1;
/// The format minor version this crate writes.
///
/// Minor versions: 0, the first release; 1 adds the ops LEAKY_RELU, HARD_SWISH, MAXIMUM,
/// MINIMUM, REDUCE_MAX and RESIZE_NEAREST_NEIGHBOR (op records appended to
/// [`graph::Op`]). A reader meeting an op record it cannot decode in an artifact of a
/// newer minor than its own says so (`edgeflow-nn`'s `Error::NewerOp`). 2: memory plans
/// give the int8 kernels their accumulator blocks as op scratch (3x3 depthwise, the
/// convolution's channel pairs, FULLY_CONNECTED, AVERAGE_POOL_2D), so an op's scratch
/// region is larger than a 1.1 plan made it; the records are unchanged, so a 1.1 reader
/// runs 1.2 artifacts, but a 1.2 reader refuses a 1.1 artifact whose plan is short of that
/// scratch, saying it was compiled by an older edgeflow (`edgeflow-nn`'s
/// `Error::OlderPlan`; see [`PLAN_SCRATCH_MINOR`]).
pub const FORMAT_MINOR: u16 = 2;
/// The first minor version (of major 1) whose memory plans give kernels their accumulator
/// blocks as scratch: artifacts of a lower minor were compiled for an older run-time.
pub const PLAN_SCRATCH_MINOR: u16 = 2;
/// Every format major version this crate reads.
pub const READABLE_MAJORS: &[u16] = &[1];

/// The CRC used over the artifact body (CRC-32/ISO-HDLC, the zlib/PNG CRC), with the
/// `crc` crate's 1 KiB byte table: what the host tools write artifacts with. The no_std
/// code of the run-time crates uses [`crc32`] / [`Crc32`] instead (same value; a 64-byte
/// table on devices).
pub const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// CRC-32/ISO-HDLC's reflected polynomial (0x04C11DB7 bit-reversed), as in zlib's
/// `crc32.c`.
const CRC32_POLY_REFLECTED: u32 = 0xEDB8_8320;

/// The CRC-32 of every 4-bit value: `CRC32_NIBBLE[i]` is the register after shifting the
/// nibble `i` through it four times (the 16-entry form of the table-driven CRC in
/// Williams, "A painless guide to CRC error detection algorithms", 1993, section 9).
// Evaluated at compile time: an index out of bounds would fail the build, not panic.
#[allow(clippy::indexing_slicing)]
const CRC32_NIBBLE: [u32; 16] = {
    let mut t = [0u32; 16];
    let mut i = 0;
    while i < 16 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 4 {
            c = if c & 1 != 0 {
                (c >> 1) ^ CRC32_POLY_REFLECTED
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// CRC-32/ISO-HDLC of `bytes` (the value [`CRC32`]`.checksum(bytes)` gives): [`Crc32`]
/// over one slice. On devices (no `std`) two lookups per byte in a 64-byte table instead of
/// one in a 1 KiB one; it is the one CRC-32 of the no_std crates (the artifact check here,
/// edgeflow-slots' slot headers and artifacts, edgeflow-telemetry's frames and commands),
/// so a firmware links 64 bytes of table, not the `crc` crate's 1,024. Host builds (`std`)
/// use [`CRC32`]'s table (same value, fewer instructions). Cost on the emulated
/// Cortex-M4F: BENCHMARKS.md, "Footprint: code size, fifth pass" (about 3 instructions
/// per byte more than the table CRC). Never panics.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut c = Crc32::new();
    c.update(bytes);
    c.finish()
}

/// CRC-32/ISO-HDLC computed piece by piece (for bytes that arrive in chunks: a slot read
/// from flash 256 bytes at a time, a telemetry frame byte by byte as it is serialised).
/// `new`, any number of `update`s, then `finish` gives [`crc32`] of the concatenation.
/// Device builds (no `std`) use the 64-byte nibble table, host builds (`std`) the `crc`
/// crate's byte table ([`CRC32`]); the values are equal (tests compare them on the
/// catalogue's check value, every length 0..=300 and every byte value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Crc32 {
    /// The register (reflected, before the final complement).
    reg: u32,
}

impl Default for Crc32 {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc32 {
    /// The CRC of no bytes yet (register all ones: the algorithm's `init`).
    pub const fn new() -> Self {
        Crc32 { reg: !0 }
    }

    /// Feeds `bytes`. Never panics.
    #[inline]
    pub fn update(&mut self, bytes: &[u8]) {
        #[cfg(feature = "std")]
        {
            self.reg = crc32_table_update(self.reg, bytes);
        }
        #[cfg(not(feature = "std"))]
        {
            self.reg = crc32_nibble_update(self.reg, bytes);
        }
    }

    /// The CRC-32 of every byte fed (the final complement, `xorout` = 0xFFFFFFFF).
    pub const fn finish(self) -> u32 {
        !self.reg
    }
}

/// [`Crc32::update`]'s device path, the 64-byte-table CRC (also compiled on the host, where
/// the tests compare it with the `crc` crate's table CRC).
#[cfg_attr(feature = "std", allow(dead_code))]
fn crc32_nibble_update(mut c: u32, bytes: &[u8]) -> u32 {
    // Eight bytes per call of `crc32_nibble_words`: each little-endian word XORed into
    // the register, then eight nibble steps (the same as four bytes of two steps each: the
    // steps are linear and shift right, so byte `k` of a word reaches the low nibbles
    // after `2k` steps). The steps are in functions of their own because LLVM's Cortex-M
    // unroller leaves loops with calls alone: a byte-at-a-time loop was unrolled ×8 at
    // O3, and a word loop with the steps inline ×4 (600 B more of `Model::parse`). Fewer
    // instructions per byte as well (one load per word). BENCHMARKS.md, "(l)".
    let mut pairs = bytes.chunks_exact(8);
    for p in &mut pairs {
        if let &[a0, a1, a2, a3, b0, b1, b2, b3] = p {
            let (a, b) = (
                u32::from_le_bytes([a0, a1, a2, a3]),
                u32::from_le_bytes([b0, b1, b2, b3]),
            );
            c = crc32_nibble_words(c, a, b);
        }
    }
    for &b in pairs.remainder() {
        c = crc32_nibble_byte(c ^ u32::from(b));
    }
    c
}

/// One nibble of the reflected CRC-32: four bit steps through [`CRC32_NIBBLE`].
#[inline(always)]
fn nibble_step(c: u32) -> u32 {
    // `c & 15` < 16: the lookup is always in bounds (`get` keeps the panic audit).
    (c >> 4) ^ CRC32_NIBBLE.get((c & 15) as usize).copied().unwrap_or(0)
}

/// The register after the words `a` then `b` (eight nibble steps each).
#[cfg_attr(feature = "std", allow(dead_code))]
#[inline(never)]
fn crc32_nibble_words(c: u32, a: u32, b: u32) -> u32 {
    eight_steps(eight_steps(c ^ a) ^ b)
}

/// Eight nibble steps, written out: at opt-level "s" LLVM keeps a `for _ in 0..8` loop
/// rolled (a counter and a branch per step; measured +16-19 % model-load instructions).
#[inline(always)]
fn eight_steps(c: u32) -> u32 {
    let c = nibble_step(nibble_step(c));
    let c = nibble_step(nibble_step(c));
    let c = nibble_step(nibble_step(c));
    nibble_step(nibble_step(c))
}

/// Two nibble steps: a byte already XORed into the register (the last bytes of a run
/// that is not a multiple of eight).
#[cfg_attr(feature = "std", allow(dead_code))]
#[inline(never)]
fn crc32_nibble_byte(c: u32) -> u32 {
    nibble_step(nibble_step(c))
}

/// [`Crc32::update`]'s host path: one lookup per byte in the `crc` crate's table for
/// [`CRC32`] (the reflected byte-wise algorithm; the crate's own loop, register in and out).
#[cfg(feature = "std")]
fn crc32_table_update(mut c: u32, bytes: &[u8]) -> u32 {
    let [table] = CRC32.table();
    for &b in bytes {
        // `(c ^ b) & 0xFF` < 256: always in bounds.
        c = (c >> 8)
            ^ table
                .get(((c ^ u32::from(b)) & 0xFF) as usize)
                .copied()
                .unwrap_or(0);
    }
    c
}

#[cfg(all(test, feature = "std"))]
fn crc32_nibble(bytes: &[u8]) -> u32 {
    !crc32_nibble_update(!0, bytes)
}

/// What a section of the body holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u16)]
pub enum SectionKind {
    /// The model graph: [`graph::GraphHeader`] then the op records. Required.
    Graph = 1,
    /// Constant tensor data (weights, biases), referenced by offset from the graph.
    Weights = 2,
    /// The feature pipeline description (edgeflow-dsp's postcard form).
    FeaturePipeline = 3,
    /// Class labels: see [`labels`].
    Labels = 4,
    /// The monitoring baseline (feature, class and score distributions): see [`baseline`].
    MonitoringBaseline = 5,
    /// Provenance and training metrics for tooling: one UTF-8 JSON object (host tools
    /// read it; devices ignore it).
    Metadata = 6,
    /// The feature pipeline's precomputed coefficient tables: see [`tables`]. Optional
    /// (without it the device computes them at start-up); only with a FeaturePipeline.
    PipelineTables = 7,
}

impl SectionKind {
    /// Maps a raw kind number to a known kind; `None` for kinds this reader does not know.
    pub fn from_u16(v: u16) -> Option<Self> {
        Some(match v {
            1 => Self::Graph,
            2 => Self::Weights,
            3 => Self::FeaturePipeline,
            4 => Self::Labels,
            5 => Self::MonitoringBaseline,
            6 => Self::Metadata,
            7 => Self::PipelineTables,
            _ => return None,
        })
    }
}

/// Why an artifact was rejected by [`Artifact::parse`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FormatError {
    /// Fewer bytes than the fixed header; `needed` is the header length.
    TooShort {
        /// Bytes required.
        needed: usize,
        /// Bytes given.
        got: usize,
    },
    /// The first four bytes are not `EDGF`.
    BadMagic,
    /// The major version is not one this reader knows (see [`READABLE_MAJORS`]).
    UnsupportedVersion {
        /// Major version found in the header.
        major: u16,
        /// Minor version found in the header.
        minor: u16,
    },
    /// The header announces more body bytes than were given.
    Truncated {
        /// Total bytes the header announces (header + body).
        needed: usize,
        /// Bytes given.
        got: usize,
    },
    /// The CRC-32 of the body does not match the header.
    BadChecksum {
        /// CRC stored in the header.
        stored: u32,
        /// CRC computed over the body.
        computed: u32,
    },
    /// A section header or length runs past the end of the body.
    BadSection {
        /// Byte offset of the section within the body.
        offset: usize,
    },
    /// A known section appears twice.
    DuplicateSection(SectionKind),
    /// A required section is absent.
    MissingSection(SectionKind),
    /// The PipelineTables section is malformed or belongs to another pipeline.
    BadTables(tables::TablesError),
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TooShort { needed, got } => write!(
                f,
                "artifact too short: {got} bytes, the header alone needs {needed}"
            ),
            Self::BadMagic => write!(f, "not an edgeflow artifact (magic is not EDGF)"),
            Self::UnsupportedVersion { major, minor } => {
                write!(
                    f,
                    "artifact format version {major}.{minor} is not supported; this reader reads major version"
                )?;
                for (i, m) in READABLE_MAJORS.iter().enumerate() {
                    write!(f, "{}{m}", if i == 0 { " " } else { ", " })?;
                }
                Ok(())
            }
            Self::Truncated { needed, got } => write!(
                f,
                "artifact truncated: header announces {needed} bytes, got {got}"
            ),
            Self::BadChecksum { stored, computed } => write!(
                f,
                "artifact body CRC mismatch: header says {stored:#010x}, body has {computed:#010x}"
            ),
            Self::BadSection { offset } => {
                write!(f, "malformed section at body offset {offset}")
            }
            Self::DuplicateSection(k) => write!(f, "section {k:?} appears more than once"),
            Self::MissingSection(k) => write!(f, "required section {k:?} is missing"),
            Self::BadTables(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for FormatError {}

/// A checked artifact: header, CRC and section framing validated; sections borrowed.
#[derive(Clone, Copy, Debug)]
pub struct Artifact<'a> {
    /// Format major version read from the header.
    pub major: u16,
    /// Format minor version read from the header.
    pub minor: u16,
    /// The graph section (required).
    pub graph: &'a [u8],
    /// The weights section (empty if absent).
    pub weights: &'a [u8],
    /// The feature pipeline section, if present.
    pub feature_pipeline: Option<&'a [u8]>,
    /// The labels section, if present.
    pub labels: Option<&'a [u8]>,
    /// The monitoring baseline section, if present.
    pub monitoring_baseline: Option<&'a [u8]>,
    /// The metadata section, if present.
    pub metadata: Option<&'a [u8]>,
    /// The precomputed pipeline tables, if present (checked, and bound to
    /// `feature_pipeline` by its CRC).
    pub pipeline_tables: Option<tables::PipelineTables<'a>>,
}

impl<'a> Artifact<'a> {
    /// Checks header, length, CRC and section framing; borrows every section from `bytes`.
    ///
    /// Bytes after the announced body are ignored (an artifact may sit in a larger flash
    /// partition). Never panics.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, FormatError> {
        if bytes.len() < HEADER_LEN {
            return Err(FormatError::TooShort {
                needed: HEADER_LEN,
                got: bytes.len(),
            });
        }
        let (header, rest) = bytes.split_at(HEADER_LEN);
        // Fixed fields of the (length-checked) header; a missing one reads as 0.
        let field = |at: usize| -> [u8; 4] {
            header
                .get(at..)
                .and_then(|b| b.first_chunk::<4>())
                .copied()
                .unwrap_or_default()
        };
        if field(0) != MAGIC {
            return Err(FormatError::BadMagic);
        }
        let [a, b, c, d] = field(4);
        let (major, minor) = (u16::from_le_bytes([a, b]), u16::from_le_bytes([c, d]));
        if !READABLE_MAJORS.contains(&major) {
            return Err(FormatError::UnsupportedVersion { major, minor });
        }
        let body_len = u32::from_le_bytes(field(8)) as usize;
        let stored = u32::from_le_bytes(field(12));
        let Some(body) = rest.get(..body_len) else {
            return Err(FormatError::Truncated {
                needed: HEADER_LEN.saturating_add(body_len),
                got: bytes.len(),
            });
        };
        let computed = crc32(body);
        if computed != stored {
            return Err(FormatError::BadChecksum { stored, computed });
        }

        let mut graph = None;
        let mut weights = None;
        let mut feature_pipeline = None;
        let mut labels = None;
        let mut monitoring_baseline = None;
        let mut metadata = None;
        let mut pipeline_tables = None;
        let mut cursor = body;
        while !cursor.is_empty() {
            let offset = body_len.saturating_sub(cursor.len());
            let (kind, data, next) =
                decode::section(cursor).map_err(|_| FormatError::BadSection { offset })?;
            cursor = next;
            let Some(kind) = SectionKind::from_u16(kind) else {
                continue; // a section from a newer minor version: skip it
            };
            let slot = match kind {
                SectionKind::Graph => &mut graph,
                SectionKind::Weights => &mut weights,
                SectionKind::FeaturePipeline => &mut feature_pipeline,
                SectionKind::Labels => &mut labels,
                SectionKind::MonitoringBaseline => &mut monitoring_baseline,
                SectionKind::Metadata => &mut metadata,
                SectionKind::PipelineTables => &mut pipeline_tables,
            };
            if slot.replace(data).is_some() {
                return Err(FormatError::DuplicateSection(kind));
            }
        }
        let pipeline_tables = match pipeline_tables {
            None => None,
            Some(bytes) => {
                let t = tables::PipelineTables::parse(bytes).map_err(FormatError::BadTables)?;
                let actual = feature_pipeline.map_or(0, crc32);
                if feature_pipeline.is_none() || t.pipeline_crc() != actual {
                    return Err(FormatError::BadTables(tables::TablesError::OtherPipeline {
                        stored: t.pipeline_crc(),
                        actual,
                    }));
                }
                Some(t)
            }
        };
        Ok(Self {
            major,
            minor,
            graph: graph.ok_or(FormatError::MissingSection(SectionKind::Graph))?,
            weights: weights.unwrap_or(&[]),
            feature_pipeline,
            labels,
            monitoring_baseline,
            metadata,
            pipeline_tables,
        })
    }
}

/// Writes artifacts (host side).
#[cfg(feature = "std")]
pub mod write {
    use super::*;

    /// Assembles an artifact from sections, in the order given.
    ///
    /// Fails only if the body would exceed `u32::MAX` bytes.
    pub fn assemble(sections: &[(SectionKind, &[u8])]) -> Result<Vec<u8>, postcard::Error> {
        let mut body = Vec::new();
        for (kind, data) in sections {
            let enc = postcard::to_stdvec(&(*kind as u16, serde_bytes(data)))?;
            body.extend_from_slice(&enc);
        }
        let body_len =
            u32::try_from(body.len()).map_err(|_| postcard::Error::SerializeBufferFull)?;
        let mut out = Vec::with_capacity(HEADER_LEN.saturating_add(body.len()));
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_MAJOR.to_le_bytes());
        out.extend_from_slice(&FORMAT_MINOR.to_le_bytes());
        out.extend_from_slice(&body_len.to_le_bytes());
        out.extend_from_slice(&CRC32.checksum(&body).to_le_bytes());
        out.extend_from_slice(&[0u8; 16]);
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// An artifact's sections, to edit and write back. Every tool that writes an artifact
    /// (the compiler, training, quantization, `convert --labels`, attaching a feature
    /// pipeline) goes through this one type, so the section order and the rule that binds
    /// the pipeline tables to one exact pipeline section live in one place.
    ///
    /// The written order is: graph, weights, feature pipeline, pipeline tables, labels,
    /// monitoring baseline, metadata (absent sections are skipped).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct Parts<'a> {
        /// The graph section (required by `Artifact::parse`).
        pub graph: &'a [u8],
        /// The weights section (may be empty).
        pub weights: &'a [u8],
        /// The feature pipeline section.
        pub feature_pipeline: Option<&'a [u8]>,
        /// The encoded `PipelineTables` section ([`crate::tables::encode`]); it carries the
        /// CRC of the pipeline section it was designed for.
        pub pipeline_tables: Option<&'a [u8]>,
        /// The labels section.
        pub labels: Option<&'a [u8]>,
        /// The monitoring baseline section.
        pub monitoring_baseline: Option<&'a [u8]>,
        /// The metadata (JSON) section.
        pub metadata: Option<&'a [u8]>,
    }

    impl<'a> Parts<'a> {
        /// Every section of a parsed artifact, borrowed.
        pub fn of(a: &Artifact<'a>) -> Self {
            Parts {
                graph: a.graph,
                weights: a.weights,
                feature_pipeline: a.feature_pipeline,
                pipeline_tables: a.pipeline_tables.as_ref().map(|t| t.section()),
                labels: a.labels,
                monitoring_baseline: a.monitoring_baseline,
                metadata: a.metadata,
            }
        }

        /// Replaces the feature pipeline. The stored tables were designed for the old
        /// pipeline section: they are kept when `pipeline` is byte-identical to it and
        /// dropped otherwise (the device then designs them at start-up; a caller that can
        /// design them sets [`Parts::pipeline_tables`] afterwards).
        pub fn set_feature_pipeline(&mut self, pipeline: Option<&'a [u8]>) {
            if pipeline != self.feature_pipeline {
                self.pipeline_tables = None;
            }
            self.feature_pipeline = pipeline;
        }

        /// Writes the artifact (see [`assemble`]). Errors: the body would exceed
        /// `u32::MAX` bytes.
        pub fn assemble(&self) -> Result<Vec<u8>, postcard::Error> {
            let mut sections: Vec<(SectionKind, &[u8])> = vec![
                (SectionKind::Graph, self.graph),
                (SectionKind::Weights, self.weights),
            ];
            for (kind, data) in [
                (SectionKind::FeaturePipeline, self.feature_pipeline),
                (SectionKind::PipelineTables, self.pipeline_tables),
                (SectionKind::Labels, self.labels),
                (SectionKind::MonitoringBaseline, self.monitoring_baseline),
                (SectionKind::Metadata, self.metadata),
            ] {
                if let Some(d) = data {
                    sections.push((kind, d));
                }
            }
            assemble(&sections)
        }
    }

    fn serde_bytes(data: &[u8]) -> crate::graph::Bytes<'_> {
        crate::graph::Bytes(data)
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    #[test]
    fn nibble_crc_equals_the_table_crc() {
        // The check value of CRC-32/ISO-HDLC (the catalogue's "123456789" check, which the
        // `crc` crate's parameters carry) and the empty input.
        assert_eq!(crc32_nibble(b"123456789"), crc::CRC_32_ISO_HDLC.check);
        assert_eq!(crc32_nibble(b""), CRC32.checksum(b""));
        // Every length 0..=300 of pseudo-random bytes (xorshift), against the crate's
        // table-driven CRC, and one byte of each value.
        let mut x = 0x2545_f491_u32;
        let bytes: Vec<u8> = (0..300)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        for n in 0..=bytes.len() {
            assert_eq!(
                crc32_nibble(&bytes[..n]),
                CRC32.checksum(&bytes[..n]),
                "length {n}"
            );
        }
        for b in 0..=255u8 {
            assert_eq!(crc32_nibble(&[b]), CRC32.checksum(&[b]), "byte {b}");
        }
    }

    #[test]
    fn piecewise_crc_equals_the_crate_crc_at_every_split() {
        // `Crc32` fed in two pieces, split at every position, on both paths (the table one
        // this `std` build uses and the nibble one devices use), against the crate.
        let bytes: Vec<u8> = (0..97u32).map(|i| (i * 37 + 11) as u8).collect();
        let want = CRC32.checksum(&bytes);
        assert_eq!(crc32(b"123456789"), crc::CRC_32_ISO_HDLC.check);
        for cut in 0..=bytes.len() {
            let (a, b) = bytes.split_at(cut);
            let mut c = Crc32::new();
            c.update(a);
            c.update(b);
            assert_eq!(c.finish(), want, "cut {cut}");
            let reg = crc32_nibble_update(crc32_nibble_update(!0, a), b);
            assert_eq!(!reg, want, "nibble, cut {cut}");
        }
        // Byte by byte, as the telemetry encoder feeds it.
        let mut c = Crc32::default();
        for b in &bytes {
            c.update(core::slice::from_ref(b));
        }
        assert_eq!(c.finish(), want);
    }

    #[test]
    fn parts_round_trip_and_bind_tables_to_their_pipeline() {
        let pipeline: &[u8] = b"pipeline bytes";
        let tables = tables::encode(pipeline, &[1.0, 2.0]);
        let parts = write::Parts {
            graph: b"g",
            weights: b"w",
            feature_pipeline: Some(pipeline),
            pipeline_tables: Some(&tables),
            labels: Some(b"l"),
            monitoring_baseline: None,
            metadata: Some(b"{}"),
        };
        let bytes = parts.assemble().expect("assemble");
        let a = Artifact::parse(&bytes).expect("parse");
        assert_eq!(write::Parts::of(&a), parts);

        let mut same = write::Parts::of(&a);
        same.set_feature_pipeline(Some(b"pipeline bytes"));
        assert_eq!(
            same.pipeline_tables,
            Some(&tables[..]),
            "same pipeline keeps tables"
        );
        let mut changed = write::Parts::of(&a);
        changed.set_feature_pipeline(Some(b"another pipeline"));
        assert_eq!(changed.pipeline_tables, None, "new pipeline drops tables");
        let rewritten = changed.assemble().expect("assemble");
        let re = Artifact::parse(&rewritten).expect("parse");
        assert_eq!(re.feature_pipeline, Some(&b"another pipeline"[..]));
        assert!(re.pipeline_tables.is_none());
    }

    #[test]
    fn roundtrip_and_errors() {
        let a = write::assemble(&[(SectionKind::Graph, b"g"), (SectionKind::Weights, b"wts")])
            .expect("assemble");
        let p = Artifact::parse(&a).expect("parse");
        assert_eq!(p.graph, b"g");
        assert_eq!(p.weights, b"wts");
        assert!(p.labels.is_none());

        let mut bad = a.clone();
        *bad.last_mut().expect("nonempty") ^= 1;
        assert!(matches!(
            Artifact::parse(&bad),
            Err(FormatError::BadChecksum { .. })
        ));

        let mut v2 = a.clone();
        v2[4] = 2;
        let e = Artifact::parse(&v2).expect_err("major 2");
        assert_eq!(
            e,
            FormatError::UnsupportedVersion {
                major: 2,
                minor: FORMAT_MINOR
            }
        );
        assert!(e.to_string().contains("reads major version 1"), "{e}");

        assert!(matches!(
            Artifact::parse(&a[..a.len() - 1]),
            Err(FormatError::Truncated { .. })
        ));
        assert!(matches!(
            Artifact::parse(&a[..5]),
            Err(FormatError::TooShort { needed: 32, got: 5 })
        ));
        let missing = write::assemble(&[(SectionKind::Weights, b"w")]).expect("assemble");
        assert_eq!(
            Artifact::parse(&missing).expect_err("no graph"),
            FormatError::MissingSection(SectionKind::Graph)
        );
        let dup = write::assemble(&[(SectionKind::Graph, b"a"), (SectionKind::Graph, b"b")])
            .expect("assemble");
        assert_eq!(
            Artifact::parse(&dup).expect_err("dup"),
            FormatError::DuplicateSection(SectionKind::Graph)
        );
    }

    #[test]
    fn unknown_sections_are_skipped() {
        let mut body = postcard::to_stdvec(&(1u16, graph::Bytes(b"g"))).expect("enc");
        body.extend(postcard::to_stdvec(&(999u16, graph::Bytes(b"future"))).expect("enc"));
        let mut a = Vec::new();
        a.extend_from_slice(&MAGIC);
        a.extend_from_slice(&1u16.to_le_bytes());
        a.extend_from_slice(&7u16.to_le_bytes());
        a.extend_from_slice(&(body.len() as u32).to_le_bytes());
        a.extend_from_slice(&CRC32.checksum(&body).to_le_bytes());
        a.extend_from_slice(&[0; 16]);
        a.extend_from_slice(&body);
        let p = Artifact::parse(&a).expect("parse");
        assert_eq!((p.major, p.minor, p.graph), (1, 7, &b"g"[..]));
    }
}
