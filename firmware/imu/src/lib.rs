//! A driver for the InvenSense MPU-6050 6-axis IMU (3-axis accelerometer + 3-axis gyroscope)
//! written against the `embedded-hal` 1.0 [`I2c`] trait, so it runs on any MCU whose HAL
//! implements that trait (the edgeflow application on `nucleo-f411re` uses it).
//!
//! Register addresses, reset values and scale factors are those of the InvenSense
//! "MPU-6000 and MPU-6050 Register Map and Descriptions" (RM-MPU-6000A-00, revision 4.2)
//! and the product specification (PS-MPU-6000A-00, revision 3.4):
//!
//! | register | address | use here |
//! |---|---|---|
//! | SMPLRT_DIV | 0x19 | sample rate = 1 kHz / (1 + div) with the DLPF on |
//! | CONFIG | 0x1A | DLPF_CFG |
//! | GYRO_CONFIG | 0x1B | FS_SEL (±250/500/1000/2000 °/s: 131/65.5/32.8/16.4 LSB per °/s) |
//! | ACCEL_CONFIG | 0x1C | AFS_SEL (±2/4/8/16 g: 16384/8192/4096/2048 LSB per g) |
//! | ACCEL_XOUT_H | 0x3B | 14 bytes: accel X/Y/Z, temperature, gyro X/Y/Z, big-endian `i16` |
//! | PWR_MGMT_1 | 0x6B | wake from sleep, clock from the X gyro PLL |
//! | WHO_AM_I | 0x75 | reads 0x68 |
//!
//! Samples come out as 6 `f32` per frame, in SI units: acceleration in m/s² (×9.80665 per
//! g, the standard gravity) for X, Y, Z, then angular rate in rad/s for X, Y, Z. Every
//! bus error is returned, nothing panics.
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

use embedded_hal::i2c::I2c;

/// The 7-bit address with AD0 low (0x69 with AD0 high).
pub const ADDRESS: u8 = 0x68;
/// What WHO_AM_I reads on an MPU-6050.
pub const WHO_AM_I_VALUE: u8 = 0x68;
/// Values per sample frame: accel X, Y, Z (m/s²), gyro X, Y, Z (rad/s).
pub const AXES: usize = 6;

/// Register addresses (RM-MPU-6000A-00).
pub mod reg {
    /// Sample rate divider.
    pub const SMPLRT_DIV: u8 = 0x19;
    /// Digital low-pass filter configuration.
    pub const CONFIG: u8 = 0x1A;
    /// Gyroscope full scale.
    pub const GYRO_CONFIG: u8 = 0x1B;
    /// Accelerometer full scale.
    pub const ACCEL_CONFIG: u8 = 0x1C;
    /// First of the 14 measurement bytes.
    pub const ACCEL_XOUT_H: u8 = 0x3B;
    /// Power management 1.
    pub const PWR_MGMT_1: u8 = 0x6B;
    /// Device identity.
    pub const WHO_AM_I: u8 = 0x75;
}

/// Accelerometer full-scale range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccelRange {
    /// ±2 g (16384 LSB/g).
    G2 = 0,
    /// ±4 g (8192 LSB/g).
    G4 = 1,
    /// ±8 g (4096 LSB/g).
    G8 = 2,
    /// ±16 g (2048 LSB/g).
    G16 = 3,
}

/// Gyroscope full-scale range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GyroRange {
    /// ±250 °/s (131 LSB per °/s).
    Dps250 = 0,
    /// ±500 °/s (65.5 LSB per °/s).
    Dps500 = 1,
    /// ±1000 °/s (32.8 LSB per °/s).
    Dps1000 = 2,
    /// ±2000 °/s (16.4 LSB per °/s).
    Dps2000 = 3,
}

/// How to set the sensor up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Accelerometer range.
    pub accel: AccelRange,
    /// Gyroscope range.
    pub gyro: GyroRange,
    /// Sample rate divider: 1 kHz / (1 + div) with the low-pass filter on.
    pub rate_div: u8,
    /// DLPF_CFG (0..=6; 3 = 44 Hz accel / 42 Hz gyro bandwidth).
    pub dlpf: u8,
}

impl Default for Config {
    /// ±4 g, ±500 °/s, 1 kHz / 20 = 50 Hz, 44 Hz low-pass.
    fn default() -> Self {
        Config {
            accel: AccelRange::G4,
            gyro: GyroRange::Dps500,
            rate_div: 19,
            dlpf: 3,
        }
    }
}

/// What went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error<E> {
    /// The I2C bus failed.
    Bus(E),
    /// WHO_AM_I read this instead of 0x68: not an MPU-6050 (or a wrong address).
    WrongDevice(u8),
    /// A configuration value is out of range (`dlpf` over 6).
    BadConfig,
}

impl<E: core::fmt::Debug> core::fmt::Display for Error<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Bus(e) => write!(f, "MPU-6050: I2C error {e:?}"),
            Error::WrongDevice(w) => write!(
                f,
                "MPU-6050: WHO_AM_I reads {w:#04x}, expected {WHO_AM_I_VALUE:#04x}"
            ),
            Error::BadConfig => f.write_str("MPU-6050: DLPF_CFG must be 0..=6"),
        }
    }
}

/// Standard gravity, m/s² per g.
const G: f32 = 9.806_65;
/// Radians per degree.
const RAD: f32 = core::f32::consts::PI / 180.0;

/// An MPU-6050 on an I2C bus.
pub struct Mpu6050<I> {
    i2c: I,
    address: u8,
    accel_scale: f32,
    gyro_scale: f32,
}

impl<I: I2c> Mpu6050<I> {
    /// Checks WHO_AM_I, wakes the sensor (clock from the X gyro PLL) and applies `cfg`.
    /// Errors: [`Error::WrongDevice`], [`Error::BadConfig`], [`Error::Bus`].
    pub fn new(i2c: I, address: u8, cfg: Config) -> Result<Self, Error<I::Error>> {
        if cfg.dlpf > 6 {
            return Err(Error::BadConfig);
        }
        let mut s = Mpu6050 {
            i2c,
            address,
            accel_scale: 0.0,
            gyro_scale: 0.0,
        };
        let mut who = [0u8];
        s.i2c
            .write_read(address, &[reg::WHO_AM_I], &mut who)
            .map_err(Error::Bus)?;
        if who[0] != WHO_AM_I_VALUE {
            return Err(Error::WrongDevice(who[0]));
        }
        for (r, v) in [
            (reg::PWR_MGMT_1, 0x01),
            (reg::SMPLRT_DIV, cfg.rate_div),
            (reg::CONFIG, cfg.dlpf),
            (reg::GYRO_CONFIG, (cfg.gyro as u8) << 3),
            (reg::ACCEL_CONFIG, (cfg.accel as u8) << 3),
        ] {
            s.i2c.write(address, &[r, v]).map_err(Error::Bus)?;
        }
        // LSB per unit halves with each range step: 16384 >> AFS_SEL LSB/g;
        // 131 / 2^FS_SEL LSB per °/s (the sheet rounds 32.75 and 16.375 to 32.8 and 16.4).
        s.accel_scale = G / (16384u32 >> (cfg.accel as u32)) as f32;
        s.gyro_scale = RAD / (131.0 / (1u32 << (cfg.gyro as u32)) as f32);
        Ok(s)
    }

    /// Reads one frame of [`AXES`] values into `out[..6]`: acceleration X, Y, Z in m/s²,
    /// angular rate X, Y, Z in rad/s (one 14-byte burst read, so the six come from one
    /// sample instant). Returns the values written (0 if `out` is shorter than 6).
    pub fn read(&mut self, out: &mut [f32]) -> Result<usize, Error<I::Error>> {
        let Some(out) = out.get_mut(..AXES) else {
            return Ok(0);
        };
        let mut b = [0u8; 14];
        self.i2c
            .write_read(self.address, &[reg::ACCEL_XOUT_H], &mut b)
            .map_err(Error::Bus)?;
        let v = |i: usize| f32::from(i16::from_be_bytes([b[2 * i], b[2 * i + 1]]));
        // Words 0..3 accel, 3 temperature (skipped), 4..7 gyro.
        for (k, o) in out.iter_mut().enumerate() {
            *o = if k < 3 {
                v(k) * self.accel_scale
            } else {
                v(k + 1) * self.gyro_scale
            };
        }
        Ok(AXES)
    }

    /// Gives the bus back.
    pub fn release(self) -> I {
        self.i2c
    }
}
