//! Board descriptions (`boards/*.toml`), read through a strict schema: unknown fields are
//! rejected, and [`Board::validate`] checks the values, so a board is data, not code.

use std::path::Path;

use serde::Deserialize;

/// How firmware reaches a board.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Runner {
    /// `qemu` (emulated) or `probe-rs` (real hardware).
    pub kind: String,
    /// QEMU machine name (`qemu` runners).
    pub machine: Option<String>,
    /// QEMU `-cpu` value, when the machine needs one.
    pub qemu_cpu: Option<String>,
    /// probe-rs chip name (`probe-rs` runners).
    pub chip: Option<String>,
}

/// Where the board's figures come from.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// Datasheet, manual or emulator source the numbers were taken from.
    pub source: String,
}

/// A board: target, CPU, memory sizes and how to run firmware on it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Board {
    /// Short name (matches the file stem and the firmware app folder).
    pub name: String,
    /// One line for people.
    pub description: String,
    /// Rust target triple.
    pub target: String,
    /// CPU core.
    pub cpu: String,
    /// Whether the core has a hardware FPU.
    pub fpu: bool,
    /// Flash bytes.
    pub flash_bytes: u64,
    /// RAM bytes.
    pub ram_bytes: u64,
    /// Core clock in Hz.
    pub core_clock_hz: u64,
    /// How firmware runs.
    pub runner: Runner,
    /// Where the figures come from.
    pub provenance: Provenance,
}

/// A board file that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML does not match the schema.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// The parse error (names the field).
        source: toml::de::Error,
    },
    /// A value is out of range.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

impl Board {
    /// Parses a board description from TOML text and validates it.
    pub fn from_toml(text: &str, path: &str) -> Result<Board, BoardError> {
        let b: Board = toml::from_str(text).map_err(|source| BoardError::Parse {
            path: path.into(),
            source,
        })?;
        b.validate().map_err(|reason| BoardError::Invalid {
            path: path.into(),
            reason,
        })?;
        Ok(b)
    }

    /// Reads and validates `boards/NAME.toml`.
    pub fn load(path: &Path) -> Result<Board, BoardError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| BoardError::Io {
            path: p.clone(),
            source,
        })?;
        Self::from_toml(&text, &p)
    }

    /// Checks the values: non-zero sizes and clock, a known runner with its fields.
    pub fn validate(&self) -> Result<(), String> {
        if self.flash_bytes == 0 || self.ram_bytes == 0 || self.core_clock_hz == 0 {
            return Err("flash_bytes, ram_bytes and core_clock_hz must be non-zero".into());
        }
        if !self.target.starts_with("thumb") && !self.target.contains("linux") {
            return Err(format!(
                "target {} is not a Cortex-M or Linux target",
                self.target
            ));
        }
        match self.runner.kind.as_str() {
            "qemu" if self.runner.machine.is_none() => Err("a qemu runner needs `machine`".into()),
            "probe-rs" if self.runner.chip.is_none() => {
                Err("a probe-rs runner needs `chip`".into())
            }
            "qemu" | "probe-rs" => Ok(()),
            other => Err(format!("unknown runner kind {other:?} (qemu or probe-rs)")),
        }
    }

    /// The QEMU command line (program and arguments) that runs `elf` on this board with
    /// semihosting and deterministic instruction counting (`-icount shift=0`).
    pub fn qemu_command(&self, elf: &Path) -> Option<(String, Vec<String>)> {
        let machine = self.runner.machine.as_ref()?;
        let mut args = vec!["-machine".to_string(), machine.clone()];
        if let Some(cpu) = &self.runner.qemu_cpu {
            args.extend(["-cpu".to_string(), cpu.clone()]);
        }
        args.extend(
            [
                "-nographic",
                "-monitor",
                "none",
                "-serial",
                "none",
                "-semihosting-config",
                "enable=on,target=native",
                "-icount",
                "shift=0",
                "-kernel",
            ]
            .map(String::from),
        );
        args.push(elf.display().to_string());
        Some(("qemu-system-arm".into(), args))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_boards_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../boards");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).expect("boards dir") {
            let p = e.expect("entry").path();
            if p.extension().is_some_and(|x| x == "toml") {
                let b = Board::load(&p).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(
                    Some(b.name.as_str()),
                    p.file_stem().and_then(|s| s.to_str())
                );
                n += 1;
            }
        }
        assert!(n >= 2);
    }

    #[test]
    fn unknown_fields_and_bad_values_are_rejected() {
        let good = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../boards/mps2-an386.toml"),
        )
        .expect("board file");
        let e = Board::from_toml(&format!("{good}\nflash_kb = 3\n"), "x.toml")
            .expect_err("unknown field");
        assert!(e.to_string().contains("flash_kb"), "{e}");
        let e = Board::from_toml(
            &good.replace("ram_bytes = 4194304", "ram_bytes = 0"),
            "x.toml",
        )
        .expect_err("zero ram");
        assert!(e.to_string().contains("ram_bytes"), "{e}");
    }
}
