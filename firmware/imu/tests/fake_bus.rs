//! The driver against a simulated MPU-6050 register file on a fake embedded-hal 1.0 bus:
//! setup writes the documented registers, a burst read converts to SI units, a wrong chip
//! and bus errors are errors.

use edgeflow_imu::{reg, AccelRange, Config, Error, GyroRange, Mpu6050, ADDRESS};
use embedded_hal::i2c::{ErrorKind, ErrorType, I2c, Operation};

/// 128 registers with an auto-incrementing pointer, as the MPU-6050's I2C interface works.
struct FakeMpu {
    regs: [u8; 128],
    writes: Vec<(u8, u8)>,
    fail: std::rc::Rc<std::cell::Cell<bool>>,
}

impl ErrorType for FakeMpu {
    type Error = ErrorKind;
}

impl I2c for FakeMpu {
    fn transaction(&mut self, addr: u8, ops: &mut [Operation<'_>]) -> Result<(), ErrorKind> {
        if self.fail.get() || addr != ADDRESS {
            return Err(ErrorKind::Other);
        }
        let mut ptr = 0usize;
        for op in ops {
            match op {
                Operation::Write(b) => {
                    ptr = usize::from(b[0]);
                    for &v in &b[1..] {
                        self.regs[ptr] = v;
                        self.writes.push((ptr as u8, v));
                        ptr += 1;
                    }
                }
                Operation::Read(buf) => {
                    for x in buf.iter_mut() {
                        *x = self.regs[ptr];
                        ptr += 1;
                    }
                }
            }
        }
        Ok(())
    }
}

fn fake() -> FakeMpu {
    let mut regs = [0u8; 128];
    regs[usize::from(reg::WHO_AM_I)] = 0x68;
    regs[usize::from(reg::PWR_MGMT_1)] = 0x40; // reset value: asleep
    FakeMpu {
        regs,
        writes: Vec::new(),
        fail: Default::default(),
    }
}

#[test]
fn setup_writes_the_documented_registers_and_reads_convert_to_si_units() {
    let cfg = Config {
        accel: AccelRange::G4,
        gyro: GyroRange::Dps500,
        rate_div: 19,
        dlpf: 3,
    };
    let mut bus = fake();
    // accel X = +1 g at ±4 g (8192 LSB), Y = -0.5 g, Z = 0; temperature; gyro X = 65.5 LSB
    // = 1 °/s at ±500 °/s, Y = -131 LSB = -2 °/s, Z = 0.
    let words: [i16; 7] = [8192, -4096, 0, 1234, 65, -131, 0];
    for (i, w) in words.iter().enumerate() {
        let b = w.to_be_bytes();
        bus.regs[usize::from(reg::ACCEL_XOUT_H) + 2 * i] = b[0];
        bus.regs[usize::from(reg::ACCEL_XOUT_H) + 2 * i + 1] = b[1];
    }
    let mut imu = Mpu6050::new(bus, ADDRESS, cfg).expect("setup");
    let mut out = [0f32; 6];
    assert_eq!(imu.read(&mut out), Ok(6));
    let g = 9.806_65f32;
    let rad = std::f32::consts::PI / 180.0;
    let want = [
        g,
        -0.5 * g,
        0.0,
        65.0 / 65.5 * rad,
        -2.0 * rad,
        0.0,
    ];
    for (o, w) in out.iter().zip(want) {
        assert!((o - w).abs() <= 1e-6 * w.abs().max(1.0), "{out:?} vs {want:?}");
    }
    assert_eq!(imu.read(&mut [0f32; 5]), Ok(0));
    let bus = imu.release();
    assert_eq!(
        bus.writes,
        vec![
            (reg::PWR_MGMT_1, 0x01),
            (reg::SMPLRT_DIV, 19),
            (reg::CONFIG, 3),
            (reg::GYRO_CONFIG, 1 << 3),
            (reg::ACCEL_CONFIG, 1 << 3),
        ]
    );
}

#[test]
fn wrong_chip_bad_config_and_bus_errors_are_errors() {
    let mut bus = fake();
    bus.regs[usize::from(reg::WHO_AM_I)] = 0x70;
    assert!(matches!(
        Mpu6050::new(bus, ADDRESS, Config::default()),
        Err(Error::WrongDevice(0x70))
    ));
    let cfg = Config {
        dlpf: 7,
        ..Config::default()
    };
    assert!(matches!(
        Mpu6050::new(fake(), ADDRESS, cfg),
        Err(Error::BadConfig)
    ));
    assert!(matches!(
        Mpu6050::new(fake(), 0x69, Config::default()),
        Err(Error::Bus(ErrorKind::Other))
    ));
    let bus = fake();
    let fail = bus.fail.clone();
    let mut imu = Mpu6050::new(bus, ADDRESS, Config::default()).expect("setup");
    fail.set(true);
    assert_eq!(
        imu.read(&mut [0f32; 6]),
        Err(Error::Bus(ErrorKind::Other))
    );
}
