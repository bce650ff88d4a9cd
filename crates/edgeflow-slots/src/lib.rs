//! A/B model slots on NOR flash: the model lives in its own flash partition, not in the
//! firmware image, and can be replaced without rebuilding or re-flashing the firmware.
//!
//! The partition is split into two equal slots, A (0) and B (1). Each slot holds a header
//! and one artifact:
//!
//! ```text
//! slot offset  size  field
//! 0            4     magic b"EFSL"
//! 4            2     header version (1), little-endian
//! 6            2     reserved, 0
//! 8            4     sequence: +1 per update; the valid slot with the larger one is active
//! 12           4     artifact length in bytes
//! 16           4     CRC-32/ISO-HDLC of the artifact bytes
//! 20           2     artifact format major (artifact bytes 4..6)
//! 22           2     artifact format minor (artifact bytes 6..8)
//! 24           4     CRC-32/ISO-HDLC of header bytes 0..24
//! 28           4     reserved, 0xFFFF_FFFF
//! DATA_OFFSET  len   the artifact
//! ```
//!
//! A slot is **valid** when its header's magic, version and CRC are right, its length fits
//! the slot, and the artifact bytes have the CRC the header names. At boot,
//! [`Slots::active`] returns the valid slot with the larger sequence number.
//!
//! An update ([`Slots::begin`], [`Slots::write`], [`Slots::commit`]) works only on the
//! inactive slot: it erases it (header sector first), writes the artifact, reads it back
//! and checks its CRC, and only then writes the header — the single step that makes the
//! new model active. Cut power anywhere in that sequence and the inactive slot is either
//! not valid (so the old model boots) or completely written and verified (so the new one
//! boots): never a torn model. The `torn_update` test cuts an update at every page boundary
//! and at random byte offsets on a fault-injecting flash and checks exactly that.
//!
//! `no_std`, no allocation, no panics; flash errors are returned, never unwrapped.
#![no_std]
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

use embedded_storage::nor_flash::{NorFlash, NorFlashError, NorFlashErrorKind};

/// First four bytes of a slot header.
pub const MAGIC: [u8; 4] = *b"EFSL";
/// The header version this crate writes and reads.
pub const HEADER_VERSION: u16 = 1;
/// Bytes of the encoded header.
pub const HEADER_LEN: usize = 32;
/// Offset of the artifact inside a slot (leaves room for any write granularity up to 256
/// bytes and keeps the artifact 256-byte aligned).
pub const DATA_OFFSET: u32 = 256;
/// Largest `READ_SIZE` / `WRITE_SIZE` supported (they must divide it).
pub const MAX_GRANULE: usize = 256;

/// The CRC used for headers and artifacts (CRC-32/ISO-HDLC, as the artifact format), with
/// the `crc` crate's 1 KiB table, for host tools. This crate computes the same value with
/// [`edgeflow_format::crc32`] / [`edgeflow_format::Crc32`], the one CRC-32 of the no_std
/// crates (a 64-byte table on devices).
pub use edgeflow_format::CRC32;

/// A decoded slot header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SlotHeader {
    /// Update sequence number; larger is newer.
    pub sequence: u32,
    /// Artifact bytes.
    pub len: u32,
    /// CRC-32 of the artifact bytes.
    pub crc: u32,
    /// Artifact format `(major, minor)`.
    pub artifact_version: (u16, u16),
}

impl SlotHeader {
    /// The header for `artifact` at update `sequence` (the version is read from artifact
    /// bytes 4..8, `(0, 0)` if it is shorter). Lengths above `u32::MAX` saturate (and are
    /// then rejected by every slot).
    pub fn for_artifact(artifact: &[u8], sequence: u32) -> Self {
        let u16_at = |i: usize| le_u16(artifact, i).unwrap_or(0);
        SlotHeader {
            sequence,
            len: u32::try_from(artifact.len()).unwrap_or(u32::MAX),
            crc: edgeflow_format::crc32(artifact),
            artifact_version: (u16_at(4), u16_at(6)),
        }
    }

    /// The 32 header bytes (see the crate docs).
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&MAGIC);
        b[4..6].copy_from_slice(&HEADER_VERSION.to_le_bytes());
        b[8..12].copy_from_slice(&self.sequence.to_le_bytes());
        b[12..16].copy_from_slice(&self.len.to_le_bytes());
        b[16..20].copy_from_slice(&self.crc.to_le_bytes());
        b[20..22].copy_from_slice(&self.artifact_version.0.to_le_bytes());
        b[22..24].copy_from_slice(&self.artifact_version.1.to_le_bytes());
        let hcrc = edgeflow_format::crc32(&b[..24]);
        b[24..28].copy_from_slice(&hcrc.to_le_bytes());
        b[28..32].copy_from_slice(&[0xFF; 4]);
        b
    }

    /// Decodes 32 header bytes; `None` unless magic, version and header CRC are right.
    pub fn decode(b: &[u8; HEADER_LEN]) -> Option<Self> {
        let u32_at = |i: usize| le_u32(b, i);
        let u16_at = |i: usize| le_u16(b, i);
        if b[0..4] != MAGIC || u16_at(4)? != HEADER_VERSION {
            return None;
        }
        if edgeflow_format::crc32(&b[..24]) != u32_at(24)? {
            return None;
        }
        Some(SlotHeader {
            sequence: u32_at(8)?,
            len: u32_at(12)?,
            crc: u32_at(16)?,
            artifact_version: (u16_at(20)?, u16_at(22)?),
        })
    }
}

/// The first [`DATA_OFFSET`] bytes of a slot holding `artifact` at update `sequence`: the
/// header, then erased bytes (0xFF). Followed by the artifact, this is the slot's content;
/// host tools use it to compose a flash image with a model already installed.
pub fn header_area(artifact: &[u8], sequence: u32) -> [u8; DATA_OFFSET as usize] {
    let mut area = [0xFF; DATA_OFFSET as usize];
    area[..HEADER_LEN].copy_from_slice(&SlotHeader::for_artifact(artifact, sequence).encode());
    area
}

/// The model a device should run: which slot, and where its artifact is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Active {
    /// 0 = A, 1 = B.
    pub slot: u8,
    /// Its header.
    pub header: SlotHeader,
    /// Offset of the artifact's first byte, relative to the start of the flash device
    /// (add the flash's memory-mapped base to read it in place).
    pub offset: u32,
}

/// Why a slot operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SlotError {
    /// The partition geometry does not suit the flash (`what` names the problem).
    Geometry {
        /// What is wrong.
        what: &'static str,
    },
    /// The flash driver failed.
    Flash(NorFlashErrorKind),
    /// The artifact does not fit a slot.
    TooLarge {
        /// Artifact bytes.
        len: u32,
        /// Bytes a slot can hold.
        capacity: u32,
    },
    /// More bytes were written than [`Slots::begin`] announced.
    Overrun {
        /// Bytes announced.
        len: u32,
    },
    /// [`Slots::commit`] before all announced bytes were written.
    Incomplete {
        /// Bytes written.
        written: u32,
        /// Bytes announced.
        len: u32,
    },
    /// The bytes read back do not have the announced CRC: the update was rejected and the
    /// old model stays active.
    Verify {
        /// CRC announced.
        expected: u32,
        /// CRC of the bytes in flash.
        found: u32,
    },
}

impl fmt::Display for SlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SlotError::Geometry { what } => write!(f, "model slot partition: {what}"),
            SlotError::Flash(k) => write!(f, "flash error: {k}"),
            SlotError::TooLarge { len, capacity } => write!(
                f,
                "artifact of {len} bytes does not fit a model slot ({capacity} bytes)"
            ),
            SlotError::Overrun { len } => {
                write!(f, "model update wrote more than the {len} bytes announced")
            }
            SlotError::Incomplete { written, len } => write!(
                f,
                "model update committed after {written} of {len} bytes"
            ),
            SlotError::Verify { expected, found } => write!(
                f,
                "model update verification failed: CRC {found:#010x} in flash, {expected:#010x} announced"
            ),
        }
    }
}

impl core::error::Error for SlotError {}

/// The little-endian `u16` at byte `i` of `b`, `None` past the end.
fn le_u16(b: &[u8], i: usize) -> Option<u16> {
    b.get(i..)?
        .first_chunk::<2>()
        .map(|c| u16::from_le_bytes(*c))
}

/// The little-endian `u32` at byte `i` of `b`, `None` past the end.
fn le_u32(b: &[u8], i: usize) -> Option<u32> {
    b.get(i..)?
        .first_chunk::<4>()
        .map(|c| u32::from_le_bytes(*c))
}

fn flash_err<E: NorFlashError>(e: E) -> SlotError {
    SlotError::Flash(e.kind())
}

/// An update in progress (see [`Slots::begin`]).
pub struct Update {
    slot: u8,
    header: SlotHeader,
    written: u32,
    pending: [u8; MAX_GRANULE],
    pending_len: usize,
}

impl Update {
    /// The slot being written.
    pub fn slot(&self) -> u8 {
        self.slot
    }

    /// Bytes accepted so far.
    pub fn written(&self) -> u32 {
        self.written
    }
}

/// Two model slots on a NOR flash, starting at flash offset `base`, each `slot_size`
/// bytes.
pub struct Slots<F> {
    flash: F,
    base: u32,
    slot_size: u32,
}

// Offset and granule arithmetic below rests on invariants that `new` and `begin` establish
// and the private fields keep: base + 2 x slot_size <= u32::MAX (so every slot start, data
// offset and artifact end fits in u32); the read and write sizes are non-zero and divide
// MAX_GRANULE (so every aligned span fits the granule buffers); an `Update`'s pending_len
// <= MAX_GRANULE and written <= header.len <= capacity (checked in `begin` and `write`).
// The torn-update and geometry tests exercise these bounds.
#[allow(clippy::arithmetic_side_effects, clippy::indexing_slicing)]
impl<F: NorFlash> Slots<F> {
    /// Slots over `flash[base .. base + 2 * slot_size]`. Errors ([`SlotError::Geometry`]):
    /// `base` or `slot_size` not a multiple of the erase size, the partition past the end
    /// of the flash, a slot not larger than [`DATA_OFFSET`], or a read/write granule that
    /// does not divide [`MAX_GRANULE`].
    pub fn new(flash: F, base: u32, slot_size: u32) -> Result<Self, SlotError> {
        let geo = |what| Err(SlotError::Geometry { what });
        let multiple = |x: usize, of: usize| x.checked_rem(of) == Some(0);
        if !multiple(base as usize, F::ERASE_SIZE) {
            return geo("base is not a multiple of the erase size");
        }
        if !multiple(slot_size as usize, F::ERASE_SIZE) || slot_size <= DATA_OFFSET {
            return geo(
                "slot size is not a multiple of the erase size larger than the header area",
            );
        }
        if !multiple(MAX_GRANULE, F::WRITE_SIZE) || !multiple(MAX_GRANULE, F::READ_SIZE) {
            return geo("flash read/write size does not divide 256");
        }
        let end = u64::from(base).saturating_add(u64::from(slot_size).saturating_mul(2));
        if end > flash.capacity() as u64 {
            return geo("the two slots extend past the end of the flash");
        }
        if end > u64::from(u32::MAX) {
            return geo("the two slots extend past the 32-bit flash address space");
        }
        Ok(Slots {
            flash,
            base,
            slot_size,
        })
    }

    /// The flash, back.
    pub fn release(self) -> F {
        self.flash
    }

    /// Bytes of artifact a slot holds.
    pub fn capacity(&self) -> u32 {
        self.slot_size - DATA_OFFSET
    }

    fn slot_start(&self, slot: u8) -> u32 {
        self.base + u32::from(slot) * self.slot_size
    }

    /// Reads `buf.len()` bytes at flash offset `offset` (any alignment).
    pub fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), SlotError> {
        let g = F::READ_SIZE as u32;
        let mut chunk = [0u8; MAX_GRANULE];
        let mut done = 0usize;
        while done < buf.len() {
            let at = u32::try_from(done)
                .ok()
                .and_then(|d| offset.checked_add(d))
                .ok_or(SlotError::Flash(NorFlashErrorKind::OutOfBounds))?;
            let aligned = at - at % g;
            let skip = (at - aligned) as usize;
            let want = (buf.len() - done).min(MAX_GRANULE - skip);
            let span = (skip + want).div_ceil(g as usize) * g as usize;
            let span = span.min(MAX_GRANULE);
            self.flash
                .read(aligned, &mut chunk[..span])
                .map_err(flash_err)?;
            buf[done..done + want].copy_from_slice(&chunk[skip..skip + want]);
            done += want;
        }
        Ok(())
    }

    fn crc_of(&mut self, offset: u32, len: u32) -> Result<u32, SlotError> {
        let mut digest = edgeflow_format::Crc32::new();
        let mut buf = [0u8; MAX_GRANULE];
        let mut done = 0u32;
        while done < len {
            let n = (len - done).min(MAX_GRANULE as u32);
            self.read(offset + done, &mut buf[..n as usize])?;
            digest.update(&buf[..n as usize]);
            done += n;
        }
        Ok(digest.finish())
    }

    /// The header of `slot` (0 or 1) if the slot is valid: header intact, length within
    /// the slot, artifact CRC right. Reads the whole artifact.
    pub fn valid(&mut self, slot: u8) -> Result<Option<SlotHeader>, SlotError> {
        if slot > 1 {
            return Ok(None);
        }
        let start = self.slot_start(slot);
        let mut hb = [0u8; HEADER_LEN];
        self.read(start, &mut hb)?;
        let Some(h) = SlotHeader::decode(&hb) else {
            return Ok(None);
        };
        if h.len > self.capacity() {
            return Ok(None);
        }
        if self.crc_of(start + DATA_OFFSET, h.len)? != h.crc {
            return Ok(None);
        }
        Ok(Some(h))
    }

    /// The model to boot: the valid slot with the larger sequence number (slot A on a
    /// tie), or `None` when neither slot is valid.
    pub fn active(&mut self) -> Result<Option<Active>, SlotError> {
        let a = self.valid(0)?;
        let b = self.valid(1)?;
        let pick = match (a, b) {
            (Some(a), Some(b)) if b.sequence > a.sequence => Some((1, b)),
            (Some(a), _) => Some((0, a)),
            (None, Some(b)) => Some((1, b)),
            (None, None) => None,
        };
        Ok(pick.map(|(slot, header)| Active {
            slot,
            header,
            offset: self.slot_start(slot) + DATA_OFFSET,
        }))
    }

    /// Starts replacing the model: picks the slot that is not active, erases it (its
    /// header sector first, so a cut erase leaves no stale valid header over erased data),
    /// and returns the update to feed with [`Slots::write`]. `len` and `crc` describe the
    /// whole artifact; the artifact version stored in the header is read from artifact
    /// bytes 4..8 as they are written.
    pub fn begin(&mut self, len: u32, crc: u32) -> Result<Update, SlotError> {
        if len > self.capacity() {
            return Err(SlotError::TooLarge {
                len,
                capacity: self.capacity(),
            });
        }
        let active = self.active()?;
        let slot = match active {
            Some(a) => 1 - a.slot,
            None => 0,
        };
        let sequence = active.map_or(1, |a| a.header.sequence.wrapping_add(1));
        let start = self.slot_start(slot);
        let erase = F::ERASE_SIZE as u32;
        self.flash.erase(start, start + erase).map_err(flash_err)?;
        if self.slot_size > erase {
            self.flash
                .erase(start + erase, start + self.slot_size)
                .map_err(flash_err)?;
        }
        Ok(Update {
            slot,
            header: SlotHeader {
                sequence,
                len,
                crc,
                artifact_version: (0, 0),
            },
            written: 0,
            pending: [0xFF; MAX_GRANULE],
            pending_len: 0,
        })
    }

    fn flush(&mut self, up: &mut Update, pad: bool) -> Result<(), SlotError> {
        let g = F::WRITE_SIZE;
        let n = if pad {
            up.pending_len.div_ceil(g) * g
        } else {
            up.pending_len / g * g
        };
        if n == 0 {
            return Ok(());
        }
        let at = self.slot_start(up.slot) + DATA_OFFSET + up.written - up.pending_len as u32;
        self.flash.write(at, &up.pending[..n]).map_err(flash_err)?;
        up.pending
            .copy_within(n.min(up.pending_len)..up.pending_len, 0);
        up.pending_len -= n.min(up.pending_len);
        up.pending[up.pending_len..].fill(0xFF);
        Ok(())
    }

    /// Appends artifact bytes (any chunk size) to the update.
    pub fn write(&mut self, up: &mut Update, mut data: &[u8]) -> Result<(), SlotError> {
        let room = up.header.len - up.written;
        if data.len() as u64 > u64::from(room) {
            return Err(SlotError::Overrun { len: up.header.len });
        }
        for (k, &b) in data
            .iter()
            .enumerate()
            .take(8usize.saturating_sub(up.written as usize))
        {
            let (mut major, mut minor) = up.header.artifact_version;
            let at = up.written as usize + k;
            let shift = 8 * (at % 2);
            match at {
                4 | 5 => major |= u16::from(b) << shift,
                6 | 7 => minor |= u16::from(b) << shift,
                _ => {}
            }
            up.header.artifact_version = (major, minor);
        }
        while !data.is_empty() {
            let take = data.len().min(MAX_GRANULE - up.pending_len);
            up.pending[up.pending_len..up.pending_len + take].copy_from_slice(&data[..take]);
            up.pending_len += take;
            up.written += take as u32;
            data = &data[take..];
            self.flush(up, false)?;
        }
        Ok(())
    }

    /// Finishes the update: writes what is buffered, reads the artifact back and checks
    /// its CRC, then writes the header, which makes the new slot active. Returns the new
    /// active model. On [`SlotError::Verify`] (or any error) the previous model stays
    /// active.
    pub fn commit(&mut self, mut up: Update) -> Result<Active, SlotError> {
        if up.written != up.header.len {
            return Err(SlotError::Incomplete {
                written: up.written,
                len: up.header.len,
            });
        }
        self.flush(&mut up, true)?;
        let start = self.slot_start(up.slot);
        let found = self.crc_of(start + DATA_OFFSET, up.header.len)?;
        if found != up.header.crc {
            return Err(SlotError::Verify {
                expected: up.header.crc,
                found,
            });
        }
        let mut hb = [0xFFu8; MAX_GRANULE];
        hb[..HEADER_LEN].copy_from_slice(&up.header.encode());
        let n = HEADER_LEN.div_ceil(F::WRITE_SIZE) * F::WRITE_SIZE;
        self.flash.write(start, &hb[..n]).map_err(flash_err)?;
        match self.valid(up.slot)? {
            Some(header) => Ok(Active {
                slot: up.slot,
                header,
                offset: start + DATA_OFFSET,
            }),
            None => Err(SlotError::Verify {
                expected: up.header.crc,
                found,
            }),
        }
    }

    /// Replaces the model with `artifact` in one call ([`Slots::begin`], [`Slots::write`],
    /// [`Slots::commit`]).
    pub fn install(&mut self, artifact: &[u8]) -> Result<Active, SlotError> {
        let h = SlotHeader::for_artifact(artifact, 0);
        if artifact.len() as u64 > u64::from(self.capacity()) {
            return Err(SlotError::TooLarge {
                len: h.len,
                capacity: self.capacity(),
            });
        }
        let mut up = self.begin(h.len, h.crc)?;
        self.write(&mut up, artifact)?;
        self.commit(up)
    }
}
