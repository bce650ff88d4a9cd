//! Board descriptions (`boards/*.toml`), read through a strict schema: unknown fields are
//! rejected, and [`Board::validate`] checks the values, so a board is data, not code.
//!
//! [`Catalog`] is the one place that finds boards by name: the repository's `boards/*.toml`
//! are embedded in the binary at build time, and a user's own board files come from
//! directories given on the command line, in `EDGEFLOW_BOARDS_DIR`, or in the `boards/`
//! folder beside the nearest `edgeflow.toml` (a project). Every command that takes a board
//! (`inspect --board`, and later `flash`, `validate`) resolves it through [`Catalog`].

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// What runs firmware on a board: `kind = "qemu"` or `kind = "probe-rs"` in the TOML (any
/// other value is a parse error naming the file and line).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub enum RunnerKind {
    /// Emulated by `qemu-system-arm` (needs `machine`).
    #[serde(rename = "qemu")]
    Qemu,
    /// Real hardware through a debug probe (needs `chip`).
    #[serde(rename = "probe-rs")]
    ProbeRs,
}

impl RunnerKind {
    /// The name as the TOML spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            RunnerKind::Qemu => "qemu",
            RunnerKind::ProbeRs => "probe-rs",
        }
    }
}

impl std::fmt::Display for RunnerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How firmware reaches a board.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Runner {
    /// Emulated (`qemu`) or real hardware (`probe-rs`).
    pub kind: RunnerKind,
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

/// Where the edgeflow application (`firmware/app-<board>`) puts things in the board's
/// memory: the firmware image, RAM, and the model partition of two A/B slots.
///
/// This table is the one source of the layout: the application's build script generates its
/// `memory.x` and slot constants from it (`firmware/build-support`), and `edgeflow flash`
/// composes and loads the partition image at [`Layout::slots_origin`]. Addresses and sizes
/// are bytes (TOML accepts `0x…` integers).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    /// Address of the firmware image (its vector table): the linker's FLASH origin.
    pub firmware_origin: u64,
    /// Bytes the firmware image may use (the linker's FLASH length).
    pub firmware_bytes: u64,
    /// Address of RAM (the linker's RAM origin; its length is `ram_bytes`).
    pub ram_origin: u64,
    /// Address of slot A; slot B follows it at `slots_origin + slot_bytes`.
    pub slots_origin: u64,
    /// Bytes per slot (header pages + artifact), a multiple of `page_bytes`.
    pub slot_bytes: u64,
    /// Flash erase page (sector) bytes, a power of two.
    pub page_bytes: u64,
}

impl Layout {
    /// Bytes of the model partition (both slots).
    pub fn partition_bytes(&self) -> u64 {
        self.slot_bytes.saturating_mul(2)
    }

    /// Checks the layout against the board's flash size: page-aligned, non-overlapping
    /// regions, inside the flash that starts at `firmware_origin`.
    pub fn validate(&self, flash_bytes: u64) -> Result<(), String> {
        let p = self.page_bytes;
        if p == 0 || !p.is_power_of_two() {
            return Err(format!("layout.page_bytes {p} is not a power of two"));
        }
        if self.slot_bytes == 0 || self.slot_bytes % p != 0 || self.slots_origin % p != 0 {
            return Err(format!(
                "layout.slots_origin {:#x} and layout.slot_bytes {:#x} must be non-zero multiples of page_bytes {p:#x}",
                self.slots_origin, self.slot_bytes
            ));
        }
        let fw_end = self.firmware_origin.checked_add(self.firmware_bytes);
        let slots_end = self.slots_origin.checked_add(self.partition_bytes());
        let flash_end = self.firmware_origin.checked_add(flash_bytes);
        match (fw_end, slots_end, flash_end) {
            (Some(fe), Some(se), Some(end)) => {
                if self.firmware_bytes == 0 || fe > end {
                    return Err(format!(
                        "layout.firmware_bytes {:#x} is 0 or runs past the {flash_bytes:#x} bytes of flash",
                        self.firmware_bytes
                    ));
                }
                if self.slots_origin < fe && se > self.firmware_origin {
                    return Err(format!(
                        "the model slots {:#x}..{se:#x} overlap the firmware {:#x}..{fe:#x}",
                        self.slots_origin, self.firmware_origin
                    ));
                }
                if self.slots_origin < self.firmware_origin || se > end {
                    return Err(format!(
                        "the model slots {:#x}..{se:#x} are outside the flash {:#x}..{end:#x}",
                        self.slots_origin, self.firmware_origin
                    ));
                }
                Ok(())
            }
            _ => Err("layout addresses overflow".into()),
        }
    }
}

/// The edgeflow application's buffers and identity on the board (`[app]`): the board
/// crate's build script (`firmware/build-support`) generates `app.rs` with these as
/// constants, so the application crate holds none of them.
///
/// The five buffers are one static in `.bss` (`edgeflow_app::static_memory!`); the stack
/// grows down from the top of RAM into what they leave.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct App {
    /// The cargo profile the application is built with (`release`, or `release-small` where
    /// the image must be optimised for size to fit `[layout] firmware_bytes`); `edgeflow
    /// flash` and the test suite build it so.
    pub profile: String,
    /// Tensor arena, bytes.
    pub arena_bytes: u64,
    /// Feature-pipeline workspace, `f32` words.
    pub workspace_words: u64,
    /// Telemetry summary state, `u32` words.
    pub summary_words: u64,
    /// Feature vector, `f32` words.
    pub feature_words: u64,
    /// Telemetry transmit buffer, bytes.
    pub tx_bytes: u64,
    /// Emulated boards: bytes of stack painted at boot, below the stack pointer, to measure
    /// the peak stack; absent means all the RAM above the statics (a board with much RAM
    /// bounds it to keep the boot short).
    #[serde(default)]
    pub stack_band_bytes: Option<u64>,
    /// The device id the application reports, for a board without a unique id (QEMU);
    /// absent when the board reads its own (e.g. the STM32 unique ID).
    #[serde(default)]
    pub device_id: Option<u64>,
}

impl App {
    /// Bytes of RAM the five buffers take (words are 4 bytes), before alignment padding.
    pub fn buffer_bytes(&self) -> u64 {
        let words = self
            .workspace_words
            .saturating_add(self.summary_words)
            .saturating_add(self.feature_words);
        self.arena_bytes
            .saturating_add(words.saturating_mul(4))
            .saturating_add(self.tx_bytes)
    }

    /// Checks that the buffers, and the painted stack band if any, fit in `ram_bytes` (the
    /// board's RAM). Not part of [`Board::validate`]: a board file stays loadable for
    /// questions about other RAM sizes; `edgeflow flash` and the test suite
    /// (`tests/tests/board_layout.rs`) call it.
    pub fn validate(&self, ram_bytes: u64) -> Result<(), String> {
        let need = self
            .buffer_bytes()
            .saturating_add(self.stack_band_bytes.unwrap_or(0));
        if need > ram_bytes {
            return Err(format!(
                "app buffers ({} bytes) plus stack_band_bytes ({}) exceed the {ram_bytes} bytes of RAM",
                self.buffer_bytes(),
                self.stack_band_bytes.unwrap_or(0)
            ));
        }
        Ok(())
    }
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
    /// The edgeflow application's memory layout (boards with an application).
    #[serde(default)]
    pub layout: Option<Layout>,
    /// The edgeflow application's buffer sizes and device id (boards with an application).
    #[serde(default)]
    pub app: Option<App>,
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
    /// No board has this name.
    #[error("unknown board {name:?}; known boards: {known} (searched: {searched})")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The known names, comma separated.
        known: String,
        /// Where boards were looked for.
        searched: String,
    },
    /// A boards directory could not be listed.
    #[error("cannot list boards directory {path}: {source}")]
    Dir {
        /// The directory.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The environment variable naming extra board directories (separated as in `PATH`).
pub const BOARDS_DIR_ENV: &str = "EDGEFLOW_BOARDS_DIR";

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/boards.rs"));
}

/// Where a board description came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Embedded in the binary from the repository's `boards/` folder.
    Builtin,
    /// Read from this file.
    File(PathBuf),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Builtin => f.write_str("built in"),
            Origin::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// The boards a command can use, by name: built-in ones, overridden by a user's files.
///
/// Later sources override earlier ones with the same name: built in, then the project's
/// `boards/` folder, then `EDGEFLOW_BOARDS_DIR`, then `--boards-dir` (see [`Catalog::discover`]).
#[derive(Clone, Debug)]
pub struct Catalog {
    boards: std::collections::BTreeMap<String, (Board, Origin)>,
    searched: Vec<String>,
}

impl Catalog {
    /// The boards embedded in the binary. Errors only if an embedded file is invalid
    /// (the crate's tests load every one).
    pub fn builtin() -> Result<Catalog, BoardError> {
        let mut c = Catalog {
            boards: Default::default(),
            searched: vec!["built-in boards".into()],
        };
        for (stem, text) in embedded::EMBEDDED {
            let b = Board::from_toml(text, &format!("built-in board {stem}.toml"))?;
            c.boards.insert(b.name.clone(), (b, Origin::Builtin));
        }
        Ok(c)
    }

    /// Adds every `*.toml` in `dir` (a board's `name` must equal its file stem); a file
    /// overrides a board of the same name already in the catalog. A missing directory,
    /// an unreadable or invalid file is an error naming it.
    pub fn add_dir(&mut self, dir: &Path) -> Result<(), BoardError> {
        let dir_err = |source| BoardError::Dir {
            path: dir.display().to_string(),
            source,
        };
        let mut files = Vec::new();
        for e in std::fs::read_dir(dir).map_err(dir_err)? {
            let p = e.map_err(dir_err)?.path();
            if p.extension().is_some_and(|x| x == "toml") {
                files.push(p);
            }
        }
        files.sort();
        for p in files {
            let b = Board::load(&p)?;
            let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            if b.name != stem {
                return Err(BoardError::Invalid {
                    path: p.display().to_string(),
                    reason: format!(
                        "name {:?} differs from the file name {stem:?} (boards are found by file name)",
                        b.name
                    ),
                });
            }
            self.boards.insert(b.name.clone(), (b, Origin::File(p)));
        }
        self.searched.push(dir.display().to_string());
        Ok(())
    }

    /// Built-in boards, then the `boards/` folder beside the nearest `edgeflow.toml` found
    /// from `cwd` upwards (if that folder exists), then each directory in
    /// `EDGEFLOW_BOARDS_DIR`, then `boards_dir` (a `--boards-dir` option).
    pub fn discover(boards_dir: Option<&Path>, cwd: &Path) -> Result<Catalog, BoardError> {
        let mut c = Catalog::builtin()?;
        if let Some(project) = cwd.ancestors().find(|d| d.join("edgeflow.toml").is_file()) {
            let dir = project.join("boards");
            if dir.is_dir() {
                c.add_dir(&dir)?;
            }
        }
        if let Some(v) = std::env::var_os(BOARDS_DIR_ENV) {
            for dir in std::env::split_paths(&v).filter(|d| !d.as_os_str().is_empty()) {
                c.add_dir(&dir)?;
            }
        }
        if let Some(dir) = boards_dir {
            c.add_dir(dir)?;
        }
        Ok(c)
    }

    /// The board called `name`, or, when `name` ends in `.toml` or contains a path
    /// separator, the board file at that path. An unknown name is an error listing the
    /// known ones.
    pub fn get(&self, name: &str) -> Result<Board, BoardError> {
        if name.ends_with(".toml") || name.contains('/') || name.contains('\\') {
            return Board::load(Path::new(name));
        }
        match self.boards.get(name) {
            Some((b, _)) => Ok(b.clone()),
            None => Err(BoardError::Unknown {
                name: name.into(),
                known: self.boards.keys().cloned().collect::<Vec<_>>().join(", "),
                searched: self.searched.join(", "),
            }),
        }
    }

    /// Every board with where it came from, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&Board, &Origin)> {
        self.boards.values().map(|(b, o)| (b, o))
    }

    /// Where boards were looked for, in order.
    pub fn searched(&self) -> &[String] {
        &self.searched
    }
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

    /// Checks the values: non-zero sizes and clock, a known runner with its fields, and a
    /// layout that fits the flash ([`Layout::validate`]).
    pub fn validate(&self) -> Result<(), String> {
        if self.flash_bytes == 0 || self.ram_bytes == 0 || self.core_clock_hz == 0 {
            return Err("flash_bytes, ram_bytes and core_clock_hz must be non-zero".into());
        }
        if let Some(l) = &self.layout {
            l.validate(self.flash_bytes)?;
        }
        if !self.target.starts_with("thumb") && !self.target.contains("linux") {
            return Err(format!(
                "target {} is not a Cortex-M or Linux target",
                self.target
            ));
        }
        match self.runner.kind {
            RunnerKind::Qemu if self.runner.machine.is_none() => {
                Err("a qemu runner needs `machine`".into())
            }
            RunnerKind::ProbeRs if self.runner.chip.is_none() => {
                Err("a probe-rs runner needs `chip`".into())
            }
            RunnerKind::Qemu | RunnerKind::ProbeRs => Ok(()),
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
    fn every_repository_board_is_built_in() {
        let c = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../boards");
        for e in std::fs::read_dir(&dir).expect("boards dir") {
            let p = e.expect("entry").path();
            if p.extension().is_some_and(|x| x == "toml") {
                let from_file = Board::load(&p).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(c.get(&from_file.name).ok(), Some(from_file));
            }
        }
        let e = c.get("no-such-board").expect_err("unknown");
        let msg = e.to_string();
        assert!(
            msg.contains("mps2-an386") && msg.contains("lm3s6965evb"),
            "{msg}"
        );
    }

    #[test]
    fn app_buffers_must_fit_the_ram() {
        let good = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../boards/lm3s6965evb.toml"),
        )
        .expect("board file");
        let b = Board::from_toml(&good, "x.toml").expect("good");
        let app = b.app.expect("lm3s6965evb has an [app]");
        // 16 KiB arena + 4 x (2048 + 1024 + 512) words + 4 KiB tx buffer.
        assert_eq!(app.buffer_bytes(), 16384 + 4 * 3584 + 4096);
        app.validate(b.ram_bytes).expect("fits 64 KiB");
        let e = app.validate(app.buffer_bytes() - 1).expect_err("too small");
        assert!(e.contains("exceed"), "{e}");
        let banded = App {
            stack_band_bytes: Some(b.ram_bytes),
            ..app
        };
        let e = banded.validate(b.ram_bytes).expect_err("band too large");
        assert!(e.contains("stack_band_bytes"), "{e}");
    }

    #[test]
    fn a_user_directory_overrides_and_adds_boards() {
        let dir = std::env::temp_dir().join(format!("edgeflow-boards-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let good = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../boards/mps2-an386.toml"),
        )
        .expect("board file");
        let mine = good
            .replace("name = \"mps2-an386\"", "name = \"mine\"")
            .replace("ram_bytes = 4194304", "ram_bytes = 1024");
        std::fs::write(dir.join("mine.toml"), &mine).expect("write");
        let mut c = Catalog::builtin().expect("builtin");
        c.add_dir(&dir).expect("add");
        assert_eq!(c.get("mine").expect("mine").ram_bytes, 1024);
        assert!(c.get("mps2-an386").is_ok());
        // A file whose name disagrees with its `name` is refused, naming the file.
        std::fs::write(dir.join("other.toml"), &mine).expect("write");
        let e = Catalog::builtin()
            .expect("builtin")
            .add_dir(&dir)
            .expect_err("mismatch");
        assert!(e.to_string().contains("other.toml"), "{e}");
        std::fs::remove_dir_all(&dir).expect("cleanup");
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

    #[test]
    fn layouts_that_overlap_or_do_not_fit_are_rejected() {
        let good = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../boards/lm3s6965evb.toml"),
        )
        .expect("board file");
        let b = Board::from_toml(&good, "x.toml").expect("good");
        let l = b.layout.expect("lm3s6965evb has a layout");
        assert_eq!(l.slots_origin + l.partition_bytes(), b.flash_bytes);
        for (from, to, says) in [
            (
                "firmware_bytes = 0x30800",
                "firmware_bytes = 0x31000",
                "overlap",
            ),
            (
                "slots_origin = 0x30800",
                "slots_origin = 0x31000",
                "outside",
            ),
            ("page_bytes = 1024", "page_bytes = 1000", "power of two"),
            ("slot_bytes = 0x7c00", "slot_bytes = 0x7e00", "multiples"),
        ] {
            assert!(good.contains(from), "{from}");
            let e = Board::from_toml(&good.replace(from, to), "x.toml").expect_err(to);
            assert!(e.to_string().contains(says), "{to}: {e}");
        }
    }
}
