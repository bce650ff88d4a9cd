//! The edgeflow application on ST NUCLEO-F411RE (STM32F411RE, Cortex-M4F at 84 MHz), a real
//! board: flashed once through its ST-LINK (probe-rs), then models are updated over the link.
//!
//! - Sensor: an InvenSense MPU-6050 on I2C1 (SCL PB8, SDA PB9) through [`edgeflow_imu`]
//!   (written against the embedded-hal 1.0 `I2c` trait), read at 50 Hz: 6 values per frame
//!   (acceleration m/s², angular rate rad/s). Its frames go through the application's one
//!   sample path: features + inference, or, while the host collects data
//!   (`edgeflow device collect`), back to the host as sample blocks.
//! - Link: USART2 (PA2 TX, PA3 RX) at 115200 baud, bridged to USB by the ST-LINK; samples
//!   may also come in as commands, as on the emulated boards.
//! - Model partition: flash sectors 6 and 7 (two 128 KiB slots), outside the firmware's
//!   FLASH region; both from `boards/nucleo-f411re.toml` [layout], which build.rs turns into
//!   memory.x and the slot constants. Written through the HAL's embedded-storage `NorFlash`.
//!
//! Built (not run) by the test suite: no board is attached in CI.
#![no_std]
#![no_main]

use core::cell::Cell;

use cortex_m::peripheral::DWT;
use cortex_m_rt::entry;
use edgeflow_app::{Config, Platform, Sensor};
use edgeflow_imu::Mpu6050;
use panic_halt as _;
use stm32f4xx_hal::flash::FlashExt;
use stm32f4xx_hal::i2c::{I2c, Mode};
use stm32f4xx_hal::pac::{self, I2C1, USART2};
use stm32f4xx_hal::prelude::*;
use stm32f4xx_hal::rcc::Config as RccConfig;
use stm32f4xx_hal::serial::{Rx, Tx};

/// The flash layout, generated from `boards/nucleo-f411re.toml` [layout] by build.rs.
mod layout {
    include!(concat!(env!("OUT_DIR"), "/layout.rs"));
}
/// Buffer sizes, generated from `boards/nucleo-f411re.toml` [app] by build.rs.
// STACK_BAND is unused: this board does not paint its stack (its `stack_peak` is 0).
#[allow(dead_code)]
mod app {
    include!(concat!(env!("OUT_DIR"), "/app.rs"));
}
use app::{ARENA_BYTES, FEATURE_WORDS, SUMMARY_WORDS, TX_BYTES, WORKSPACE_WORDS};

// The board file's page size is the erase unit the HAL's flash driver uses (its largest
// sector, 128 KiB): a disagreement is a build error.
const _: () = assert!(
    layout::PAGE_BYTES
        == <stm32f4xx_hal::flash::UnlockedFlash<'static> as embedded_storage::nor_flash::NorFlash>::ERASE_SIZE
);

const CLOCK_HZ: u32 = layout::CORE_CLOCK_HZ;
const SAMPLE_HZ: u32 = 50;

/// Core cycles since boot: the 32-bit DWT counter (wraps every 51 s at 84 MHz) extended to
/// 64 bits; correct as long as it is read at least once per wrap (the main loop does).
struct Clock {
    last: Cell<u32>,
    high: Cell<u64>,
}

impl Clock {
    fn cycles(&self) -> u64 {
        let now = DWT::cycle_count();
        if now < self.last.get() {
            self.high.set(self.high.get() + (1 << 32));
        }
        self.last.set(now);
        self.high.get() | u64::from(now)
    }
}

struct Board<'c> {
    clock: &'c Clock,
}

impl Platform for Board<'_> {
    fn now_us(&self) -> u64 {
        self.clock.cycles() / u64::from(CLOCK_HZ / 1_000_000)
    }
    fn cycles(&self) -> u64 {
        self.clock.cycles()
    }
    fn mapped(&self, offset: u32, len: u32) -> &'static [u8] {
        let flash_bytes = layout::SLOTS_ORIGIN + layout::PARTITION_BYTES - FLASH_BASE;
        match (offset as usize).checked_add(len as usize) {
            #[allow(unsafe_code)]
            // SAFETY: inside the on-chip flash (checked above), which is always mapped and
            // readable. The application reads only the active slot through this view and
            // erases/programs only the other slot while it is alive.
            Some(end) if end <= flash_bytes => unsafe {
                core::slice::from_raw_parts(
                    (FLASH_BASE + offset as usize) as *const u8,
                    len as usize,
                )
            },
            _ => &[],
        }
    }
    fn stack_peak(&self) -> u32 {
        0
    }
    fn exit(&self) -> ! {
        loop {
            cortex_m::asm::wfi();
        }
    }
}

/// Where the HAL's flash driver counts offsets from (RM0383: main memory at 0x0800_0000).
const FLASH_BASE: usize = 0x0800_0000;

/// The MPU-6050, read every 1/50 s.
struct Imu<'c> {
    mpu: Mpu6050<I2c<I2C1>>,
    clock: &'c Clock,
    next: u64,
    errors: u32,
}

impl Sensor for Imu<'_> {
    fn poll(&mut self, out: &mut [f32]) -> usize {
        let now = self.clock.cycles();
        if now < self.next {
            return 0;
        }
        self.next = now + u64::from(CLOCK_HZ / SAMPLE_HZ);
        match self.mpu.read(out) {
            Ok(n) => n,
            Err(_) => {
                // A bus error loses this frame; the window simply waits for the next one.
                self.errors = self.errors.wrapping_add(1);
                0
            }
        }
    }
}

/// USART2 as an `embedded-io` link whose `read` does not block (the sensor is polled
/// between reads).
struct Link {
    tx: Tx<USART2>,
    rx: Rx<USART2>,
}

impl embedded_io::ErrorType for Link {
    type Error = stm32f4xx_hal::serial::Error;
}

impl embedded_io::Read for Link {
    /// Takes the bytes waiting now (0 if none).
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let mut n = 0;
        while n < buf.len() {
            match _embedded_hal_serial_nb_Read::read(&mut self.rx) {
                Ok(b) => {
                    buf[n] = b;
                    n += 1;
                }
                Err(nb::Error::WouldBlock) => break,
                // An overrun loses bytes: the command's CRC catches it and it is counted.
                Err(nb::Error::Other(_)) => break,
            }
        }
        Ok(n)
    }
}

impl embedded_io::Write for Link {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        embedded_io::Write::write(&mut self.tx, buf)
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        embedded_io::Write::flush(&mut self.tx)
    }
}

use stm32f4xx_hal::prelude::_embedded_hal_serial_nb_Read;

/// The device id: the STM32's 96-bit unique ID (RM0383 section 24.1, at 0x1FFF_7A10)
/// folded to 64 bits.
fn device_id() -> u64 {
    let mut w = [0u32; 3];
    for (k, x) in w.iter_mut().enumerate() {
        #[allow(unsafe_code)]
        // SAFETY: the unique-ID words are always readable system memory.
        {
            *x = unsafe { core::ptr::read_volatile((0x1FFF_7A10 + 4 * k) as *const u32) };
        }
    }
    (u64::from(w[0]) << 32 | u64::from(w[1])) ^ u64::from(w[2])
}

#[entry]
fn main() -> ! {
    let (Some(dp), Some(mut cp)) = (pac::Peripherals::take(), cortex_m::Peripherals::take()) else {
        loop {
            cortex_m::asm::wfi();
        }
    };
    cp.DCB.enable_trace();
    cp.DWT.enable_cycle_counter();
    let clock = Clock {
        last: Cell::new(0),
        high: Cell::new(0),
    };
    let mut rcc = dp.RCC.freeze(RccConfig::hsi().sysclk(CLOCK_HZ.Hz()));
    let gpioa = dp.GPIOA.split(&mut rcc);
    let gpiob = dp.GPIOB.split(&mut rcc);
    let Ok(serial) = dp
        .USART2
        .serial::<u8>((gpioa.pa2, gpioa.pa3), 115_200.bps(), &mut rcc)
    else {
        loop {
            cortex_m::asm::wfi();
        }
    };
    let (tx, rx) = serial.split();
    let mut link = Link { tx, rx };
    let i2c = I2c::new(
        dp.I2C1,
        (gpiob.pb8, gpiob.pb9),
        Mode::standard(100.kHz()),
        &mut rcc,
    );
    let mut flash = dp.FLASH;
    let base = (layout::SLOTS_ORIGIN - flash.address()) as u32;
    #[allow(unsafe_code)]
    // SAFETY: `main` runs once, and this is the only use of these buffers.
    let mem = unsafe {
        edgeflow_app::static_memory!(
            ARENA_BYTES,
            WORKSPACE_WORDS,
            SUMMARY_WORDS,
            FEATURE_WORDS,
            TX_BYTES
        )
    };
    let cfg = Config {
        device_id: device_id(),
        board: "nucleo-f411re",
        firmware: concat!("edgeflow-app ", env!("CARGO_PKG_VERSION")),
        summary_every: 32,
    };
    let board = Board { clock: &clock };
    match Mpu6050::new(i2c, edgeflow_imu::ADDRESS, edgeflow_imu::Config::default()) {
        Ok(mpu) => {
            let mut imu = Imu {
                mpu,
                clock: &clock,
                next: 0,
                errors: 0,
            };
            edgeflow_app::run(
                &mut link,
                &mut imu,
                flash.unlocked(),
                base,
                layout::SLOT_BYTES,
                &board,
                &cfg,
                mem,
            )
        }
        // No IMU answering: serve samples from the link only (the host sees no sensor data
        // and the hello still says which firmware and model run).
        Err(_) => edgeflow_app::run(
            &mut link,
            &mut edgeflow_app::NoSensor,
            flash.unlocked(),
            base,
            layout::SLOT_BYTES,
            &board,
            &cfg,
            mem,
        ),
    }
}
