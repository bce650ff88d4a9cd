//! What the emulated boards' applications (`firmware/app-lm3s6965evb`,
//! `firmware/app-mps2-an386`) share, so that such a board crate is only its UART's register
//! map ([`UartMap`]) and its [`Config`] (its buffer sizes, stack band and device id come from
//! `boards/<board>.toml` `[app]`): the polled UART link ([`PolledUart`]), the model
//! partition as a NOR flash over memory that QEMU maps ([`MappedNor`]), peak-stack
//! measurement by painting ([`stack`]), the [`Platform`] of a QEMU board ([`Emulated`]:
//! SysTick clock, semihosting exit), and the boot and the run loop ([`boot`], [`run`]).
//!
//! Everything is parameterised by constants (the board's `layout.rs`, generated from
//! `boards/<board>.toml` `[layout]`), so each board's code is what it was when written out
//! per board: nothing is looked up at run time.
#![allow(unsafe_code)]

use core::sync::atomic::{AtomicUsize, Ordering};

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

use crate::{Config, Memory, Platform};

/// An access outside the partition.
#[derive(Debug)]
pub struct OutOfBounds;

impl NorFlashError for OutOfBounds {
    fn kind(&self) -> NorFlashErrorKind {
        NorFlashErrorKind::OutOfBounds
    }
}

/// The model partition, `BYTES` bytes at address `ORIGIN`, with NOR flash semantics: erase
/// sets `PAGE`-byte pages to 0xFF, a write only clears bits (4-byte write unit), reads are
/// byte reads in place.
///
/// On mps2-an386 the partition is SSRAM1, which QEMU emulates as RAM, so this gives it the
/// semantics of flash. On lm3s6965evb it is flash that QEMU maps read-only (it does not
/// emulate the Stellaris flash controller): erase and write then have no effect, the update
/// is rejected at verification and the old model keeps running, which the device reports.
/// A real board uses its flash controller's driver instead.
pub struct MappedNor<const ORIGIN: usize, const BYTES: usize, const PAGE: usize>;

/// The address of partition bytes `[offset, offset + len)` of the `BYTES` bytes at
/// `ORIGIN`, or `OutOfBounds`.
fn check<const ORIGIN: usize, const BYTES: usize>(
    offset: u32,
    len: usize,
) -> Result<usize, OutOfBounds> {
    let o = offset as usize;
    if o.checked_add(len).is_some_and(|e| e <= BYTES) {
        Ok(ORIGIN + o)
    } else {
        Err(OutOfBounds)
    }
}

/// The partition bytes `[offset, offset + len)` of the `BYTES` bytes at `ORIGIN`, read in
/// place (empty if outside).
pub fn mapped<const ORIGIN: usize, const BYTES: usize>(offset: u32, len: u32) -> &'static [u8] {
    match check::<ORIGIN, BYTES>(offset, len as usize) {
        // SAFETY: inside the partition (checked), memory that is always mapped. The
        // application reads only the active slot through this view and writes only the
        // other slot while it is alive (the two slots do not overlap); it drops the view
        // before that slot is rewritten.
        Ok(a) => unsafe { core::slice::from_raw_parts(a as *const u8, len as usize) },
        Err(_) => &[],
    }
}

impl<const ORIGIN: usize, const BYTES: usize, const PAGE: usize> ErrorType
    for MappedNor<ORIGIN, BYTES, PAGE>
{
    type Error = OutOfBounds;
}

impl<const ORIGIN: usize, const BYTES: usize, const PAGE: usize> ReadNorFlash
    for MappedNor<ORIGIN, BYTES, PAGE>
{
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), OutOfBounds> {
        let a = check::<ORIGIN, BYTES>(offset, bytes.len())?;
        for (k, b) in bytes.iter_mut().enumerate() {
            // SAFETY: inside the partition (checked), mapped memory.
            *b = unsafe { core::ptr::read_volatile((a + k) as *const u8) };
        }
        Ok(())
    }
    fn capacity(&self) -> usize {
        BYTES
    }
}

impl<const ORIGIN: usize, const BYTES: usize, const PAGE: usize> NorFlash
    for MappedNor<ORIGIN, BYTES, PAGE>
{
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = PAGE;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), OutOfBounds> {
        let len = to.checked_sub(from).ok_or(OutOfBounds)? as usize;
        let a = check::<ORIGIN, BYTES>(from, len)?;
        for k in 0..len {
            // SAFETY: inside the partition (checked); the application never erases the
            // slot it is reading in place.
            unsafe { core::ptr::write_volatile((a + k) as *mut u8, 0xFF) };
        }
        Ok(())
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), OutOfBounds> {
        let a = check::<ORIGIN, BYTES>(offset, bytes.len())?;
        for (k, &b) in bytes.iter().enumerate() {
            let p = (a + k) as *mut u8;
            // SAFETY: as in `erase`; NOR programming only clears bits.
            unsafe { core::ptr::write_volatile(p, core::ptr::read_volatile(p) & b) };
        }
        Ok(())
    }
}

/// Peak stack by painting at boot the RAM the stack can grow into, below the stack
/// pointer, with a pattern, then finding the deepest word overwritten.
pub mod stack {
    use super::*;

    /// Bytes left unpainted just below the stack pointer at [`paint`] (the caller's frame);
    /// counted in [`peak`].
    const MARGIN: usize = 256;
    const PATTERN: u32 = 0xC5C5_C5C5;
    static LOW: AtomicUsize = AtomicUsize::new(0);
    static HIGH: AtomicUsize = AtomicUsize::new(0);

    extern "C" {
        static mut __sheap: u8;
    }

    /// Paints the free stack below `SP - 256`, word by word, with a pattern.
    ///
    /// `BAND = usize::MAX` paints all the RAM the stack can grow into: from the end of the
    /// statics (cortex-m-rt's `__sheap`, where its linker script ends `.bss`/`.uninit`) up.
    /// Another `BAND` paints that many bytes below `SP - 256`, which bounds the boot time
    /// on a board with much RAM (mps2-an386: 4 MiB); the board promises that its statics
    /// end below that band. Call it first thing in `main`: frames above the painting point
    /// are not measured.
    pub fn paint<const BAND: usize>() {
        let sp = cortex_m::register::msp::read() as usize;
        // `top`: the end of the painted band for `peak`, never below its start.
        let (low, high, top) = if BAND == usize::MAX {
            let high = sp.saturating_sub(MARGIN) & !3;
            // Taking the address of a linker symbol does not read it.
            let low = (core::ptr::addr_of!(__sheap) as usize + 3) & !3;
            (low, high, high.max(low))
        } else {
            let high = (sp - MARGIN) & !3;
            (high - BAND, high, high)
        };
        let mut a = low;
        while a < high {
            // SAFETY: [low, SP - 256) lies between the end of the statics and the live
            // stack (cortex-m-rt puts the stack at the top of RAM growing down; nothing
            // uses a heap; a band ends above the statics, as its board promises), below
            // every live frame: writing it aliases no Rust object.
            unsafe { core::ptr::write_volatile(a as *mut u32, PATTERN) };
            a += 4;
        }
        LOW.store(low, Ordering::Relaxed);
        HIGH.store(top, Ordering::Relaxed);
    }

    /// Peak stack bytes below the painting point since [`paint`], plus the margin.
    pub fn peak() -> u32 {
        let (low, high) = (LOW.load(Ordering::Relaxed), HIGH.load(Ordering::Relaxed));
        let mut a = low;
        // SAFETY: reads of the band painted above (plain RAM).
        while a < high && unsafe { core::ptr::read_volatile(a as *const u32) } == PATTERN {
            a += 4;
        }
        (high - a + MARGIN) as u32
    }
}

/// The [`Platform`] of a QEMU board: a core clock of `CLOCK_HZ` counted by SysTick
/// ([`edgeflow_firmware_support::now`]), the partition `[ORIGIN, ORIGIN + BYTES)` read in
/// place, the painted stack's peak, and exit through semihosting.
pub struct Emulated<const CLOCK_HZ: u32, const ORIGIN: usize, const BYTES: usize>;

impl<const CLOCK_HZ: u32, const ORIGIN: usize, const BYTES: usize> Platform
    for Emulated<CLOCK_HZ, ORIGIN, BYTES>
{
    fn now_us(&self) -> u64 {
        edgeflow_firmware_support::now() / (CLOCK_HZ as u64 / 1_000_000)
    }
    fn cycles(&self) -> u64 {
        edgeflow_firmware_support::now()
    }
    fn mapped(&self, offset: u32, len: u32) -> &'static [u8] {
        mapped::<ORIGIN, BYTES>(offset, len)
    }
    fn stack_peak(&self) -> u32 {
        stack::peak()
    }
    fn exit(&self) -> ! {
        cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_SUCCESS);
        #[allow(clippy::empty_loop)]
        loop {}
    }
}

/// The boot of an emulated board, first thing in its `main`: starts the SysTick clock and
/// paints the stack ([`stack::paint`]`::<BAND>`).
pub fn boot<const BAND: usize>() {
    edgeflow_firmware_support::start_clock();
    stack::paint::<BAND>();
}

/// The application on an emulated board, forever ([`crate::run`]): samples and commands
/// from `link` (no sensor), the two model slots of `slot_bytes` each in
/// [`MappedNor`]`<ORIGIN, BYTES, PAGE>`, the [`Emulated`] platform. Call [`boot`] first.
pub fn run<L, const CLOCK_HZ: u32, const ORIGIN: usize, const BYTES: usize, const PAGE: usize>(
    link: &mut L,
    slot_bytes: u32,
    cfg: &Config,
    mem: Memory<'_>,
) -> !
where
    L: embedded_io::Read + embedded_io::Write,
{
    crate::run(
        link,
        &mut crate::NoSensor,
        MappedNor::<ORIGIN, BYTES, PAGE>,
        0,
        slot_bytes,
        &Emulated::<CLOCK_HZ, ORIGIN, BYTES>,
        cfg,
        mem,
    )
}

/// A UART's register map, as a board gives it to [`PolledUart`]: where the UART is, which
/// registers hold the data and the status, how the status says "a byte has come in" and
/// "the transmitter is full", and the register writes that enable it. Offsets are bytes from
/// [`UartMap::BASE`]; every register is a 32-bit word.
pub trait UartMap {
    /// Address of the UART's register block.
    const BASE: usize;
    /// Offset of the data register: a read pops a received byte, a write sends one.
    const DATA: usize;
    /// Offset of the status (flag) register.
    const STATUS: usize;
    /// A byte has come in when `status & RX_READY.0 == RX_READY.1` (mask, value).
    const RX_READY: (u32, u32);
    /// The transmitter takes no byte now when `status & TX_FULL != 0`.
    const TX_FULL: u32;
    /// The writes, in order, that configure and enable the UART: (offset, value).
    const INIT: &'static [(usize, u32)];
}

/// A UART polled through its registers as an `embedded-io` link, for any [`UartMap`]:
/// `read` blocks until at least one byte is there, then takes what is there; `write`
/// waits while the transmitter is full. Never fails.
pub struct PolledUart<M: UartMap> {
    /// `M::BASE`, kept as a field: the link is used through a reference, so the register
    /// addresses are then offsets from one loaded pointer rather than a constant built at
    /// every inlined access (which cost 680 bytes of .text on mps2-an386; with the field the
    /// images are as large as with the per-board drivers they replace).
    base: usize,
    _map: core::marker::PhantomData<M>,
}

impl<M: UartMap> PolledUart<M> {
    /// Enables the UART at `M::BASE` with `M::INIT` and returns it.
    ///
    /// # Safety
    /// `M` must describe a UART that is mapped at `M::BASE`, and nothing else in the
    /// program may use it (call this once).
    pub unsafe fn take() -> Self {
        for &(off, value) in M::INIT {
            // SAFETY: a register of the UART the caller hands over (see above).
            unsafe { core::ptr::write_volatile((M::BASE + off) as *mut u32, value) };
        }
        PolledUart {
            base: M::BASE,
            _map: core::marker::PhantomData,
        }
    }

    fn status(&self) -> u32 {
        // SAFETY: the status register of the UART owned since `take`; reading it has no
        // side effect.
        unsafe { core::ptr::read_volatile((self.base + M::STATUS) as *const u32) }
    }
}

impl<M: UartMap> embedded_io::ErrorType for PolledUart<M> {
    type Error = core::convert::Infallible;
}

impl<M: UartMap> embedded_io::Read for PolledUart<M> {
    /// Blocks until at least one byte is there, then takes what is there.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let mut n = 0;
        while n < buf.len() {
            if self.status() & M::RX_READY.0 != M::RX_READY.1 {
                if n > 0 {
                    break;
                }
                continue;
            }
            // SAFETY: the data register of the UART owned since `take`; the status said a
            // byte is there, and reading pops it.
            buf[n] = unsafe { core::ptr::read_volatile((self.base + M::DATA) as *const u32) } as u8;
            n += 1;
        }
        Ok(n)
    }
}

impl<M: UartMap> embedded_io::Write for PolledUart<M> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        for &b in buf {
            while self.status() & M::TX_FULL != 0 {}
            // SAFETY: the data register of the UART owned since `take`; the transmitter has
            // room.
            unsafe { core::ptr::write_volatile((self.base + M::DATA) as *mut u32, u32::from(b)) };
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}
