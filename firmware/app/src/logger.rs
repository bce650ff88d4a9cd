//! The `defmt` global logger: each log call's raw defmt frame (format-string index and
//! encoded arguments, no timestamp) is kept in one buffer until the application sends it
//! as a telemetry [`edgeflow_telemetry::DefmtLog`] frame on the link ([`take`]). The format
//! strings stay in the ELF's `.defmt` section, which is not loaded into flash; the host
//! decodes the frames with that table (`edgeflow_telemetry::DefmtTable`).
//!
//! The application logs only from thread mode (no interrupt handler logs) and sends each
//! frame right after the log call, so one buffer is enough; a second frame arriving before
//! the first was taken replaces it and is counted ([`dropped`]), and a frame longer than
//! [`DEFMT_LEN`] is not sent (counted the same way). Never panics.

use core::cell::RefCell;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use critical_section::Mutex;
use edgeflow_telemetry::DEFMT_LEN;

struct Buf {
    data: [u8; DEFMT_LEN],
    len: usize,
    /// The frame being written did not fit.
    overflow: bool,
    /// A complete frame is waiting in `data[..len]`.
    ready: bool,
}

static BUF: Mutex<RefCell<Buf>> = Mutex::new(RefCell::new(Buf {
    data: [0; DEFMT_LEN],
    len: 0,
    overflow: false,
    ready: false,
}));
static TAKEN: AtomicBool = AtomicBool::new(false);
static DROPPED: AtomicU32 = AtomicU32::new(0);

#[defmt::global_logger]
struct Logger;

// SAFETY: defmt requires `acquire`/`release` to exclude concurrent loggers. `TAKEN` makes a
// nested or concurrent `acquire` (an interrupt logging while thread mode logs; this
// firmware has none) write nothing instead of interleaving bytes, and every access to the
// buffer is inside a critical section.
#[allow(unsafe_code)]
unsafe impl defmt::Logger for Logger {
    fn acquire() {
        if TAKEN.swap(true, Ordering::Acquire) {
            return;
        }
        critical_section::with(|cs| {
            let mut b = BUF.borrow_ref_mut(cs);
            if b.ready {
                // The previous frame was never taken.
                DROPPED.fetch_add(1, Ordering::Relaxed);
            }
            b.len = 0;
            b.overflow = false;
            b.ready = false;
        });
    }

    unsafe fn flush() {}

    unsafe fn release() {
        critical_section::with(|cs| {
            let mut b = BUF.borrow_ref_mut(cs);
            if b.overflow {
                DROPPED.fetch_add(1, Ordering::Relaxed);
                b.len = 0;
            } else {
                b.ready = true;
            }
        });
        TAKEN.store(false, Ordering::Release);
    }

    unsafe fn write(bytes: &[u8]) {
        critical_section::with(|cs| {
            let mut b = BUF.borrow_ref_mut(cs);
            let Buf {
                data,
                len,
                overflow,
                ..
            } = &mut *b;
            let end = len.saturating_add(bytes.len());
            match data.get_mut(*len..end) {
                Some(dst) if !*overflow => {
                    dst.copy_from_slice(bytes);
                    *len = end;
                }
                _ => *overflow = true,
            }
        });
    }
}

/// Moves the waiting frame, if any, into `out` and returns its length.
pub fn take(out: &mut [u8; DEFMT_LEN]) -> Option<usize> {
    critical_section::with(|cs| {
        let mut b = BUF.borrow_ref_mut(cs);
        if !b.ready {
            return None;
        }
        b.ready = false;
        let n = b.len.min(DEFMT_LEN);
        out[..n].copy_from_slice(&b.data[..n]);
        Some(n)
    })
}

/// Frames lost so far (too long, or replaced before they were sent).
pub fn dropped() -> u32 {
    DROPPED.load(Ordering::Relaxed)
}
