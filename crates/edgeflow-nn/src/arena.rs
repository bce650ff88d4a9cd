//! An arena for host programs (`std` feature): heap memory whose usable part starts at the
//! alignment a model's memory plan requires, without `unsafe` views of wider words.

use std::collections::TryReserveError;
use std::vec::Vec;

use crate::Model;

/// Heap memory for a [`crate::Runtime`] on the host: `len` usable bytes starting at a
/// multiple of `align`. The buffer is over-allocated by `align - 1` bytes and the usable
/// part is a safe sub-slice, so any power-of-two alignment works on any host (wider
/// words such as `u128` are only 8-byte aligned on some 32-bit targets).
#[derive(Debug)]
pub struct HostArena {
    buf: Vec<u8>,
    start: usize,
    len: usize,
}

impl HostArena {
    /// `len` zeroed bytes aligned to `align` (a power of two; other values are treated
    /// as 1). Errors: the allocation failed (it is fallible so that callers can refuse
    /// oversized models with a message instead of aborting).
    pub fn try_new(len: usize, align: usize) -> Result<Self, TryReserveError> {
        let align = if align.is_power_of_two() { align } else { 1 };
        // align >= 1 here, so the mask never wraps.
        let mask = align.saturating_sub(1);
        let total = len.saturating_add(mask);
        let mut buf = Vec::new();
        buf.try_reserve_exact(total)?;
        buf.resize(total, 0);
        let addr = buf.as_ptr().addr();
        let start = addr.wrapping_neg() & mask;
        Ok(Self { buf, start, len })
    }

    /// An arena of the size and alignment `model`'s memory plan needs.
    pub fn for_model(model: &Model<'_>) -> Result<Self, TryReserveError> {
        Self::try_new(model.arena_bytes(), model.header().arena_align as usize)
    }

    /// The usable bytes, aligned as requested.
    pub fn as_mut_bytes(&mut self) -> &mut [u8] {
        let end = self.start.saturating_add(self.len);
        self.buf.get_mut(self.start..end).unwrap_or_default()
    }

    /// Usable bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no usable bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usable_part_is_aligned_and_sized() {
        for align in [1usize, 2, 4, 16, 64, 4096] {
            for len in [0usize, 1, 15, 16, 1000] {
                let mut a = HostArena::try_new(len, align).expect("alloc");
                let b = a.as_mut_bytes();
                assert_eq!(b.len(), len);
                assert_eq!(b.as_ptr().addr() % align, 0, "align {align} len {len}");
                assert!(b.iter().all(|&v| v == 0));
            }
        }
        // A non-power-of-two alignment is treated as 1.
        assert_eq!(HostArena::try_new(5, 3).expect("alloc").len(), 5);
    }
}
