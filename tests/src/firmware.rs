//! Building the board firmware with embedded cases and running it under QEMU.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use edgeflow_compile::board::Board;

use crate::root;

/// One case for the firmware: a name, an artifact and the bytes of input 0.
#[derive(Clone, Debug)]
pub struct Case {
    /// Name (no whitespace).
    pub name: String,
    /// Artifact bytes.
    pub artifact: Vec<u8>,
    /// Input bytes.
    pub input: Vec<u8>,
}

/// What the firmware reported for one case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// SysTick ticks (core clock cycles; 40 instructions each on mps2-an386 with icount 0).
    pub ticks: u64,
    /// Peak stack bytes during the inference (painting method).
    pub stack: usize,
    /// SysTick ticks of `Model::parse` (the model load: CRC, every check), before the
    /// inference; 0 when the firmware does not report it.
    pub load_ticks: u64,
    /// Output bytes, or the error message.
    pub output: Result<Vec<u8>, String>,
    /// Ticks per op (op name, ticks), when profiling was requested.
    pub per_op: Vec<(String, u64)>,
}

/// Loads `boards/NAME.toml`.
pub fn board(name: &str) -> Board {
    let p = root().join("boards").join(format!("{name}.toml"));
    Board::load(&p).unwrap_or_else(|e| panic!("{e}"))
}

/// Why the emulated-board tests for `b` cannot run, if they cannot — and only when the
/// user asked to skip them: a missing QEMU or Rust target fails the calling test with the
/// reason, unless `EDGEFLOW_SKIP_QEMU=1` is set (then the reason is returned and the test
/// prints it and returns). `.ci/run` installs both and never sets the variable, so a CI
/// run cannot pass by skipping the device tests.
///
/// # Panics
/// When QEMU or the board's target is missing and `EDGEFLOW_SKIP_QEMU` is not `1`.
pub fn toolchain_missing(b: &Board) -> Option<String> {
    let why = missing(b)?;
    if std::env::var("EDGEFLOW_SKIP_QEMU").as_deref() == Ok("1") {
        return Some(format!("{why} (EDGEFLOW_SKIP_QEMU=1)"));
    }
    panic!("{why}; set EDGEFLOW_SKIP_QEMU=1 to skip the emulated-hardware tests");
}

/// Whether QEMU and the board's Rust target are installed (`.ci/run` installs both).
fn missing(b: &Board) -> Option<String> {
    let qemu = Command::new("qemu-system-arm").arg("--version").output();
    if !qemu.is_ok_and(|o| o.status.success()) {
        return Some("qemu-system-arm is not installed (apt-get install qemu-system-arm)".into());
    }
    let targets = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    match targets {
        Ok(o)
            if String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == b.target) =>
        {
            None
        }
        _ => Some(format!(
            "Rust target {} is not installed (rustup target add {})",
            b.target, b.target
        )),
    }
}

/// Builds the firmware app for `board` with `cases` embedded and an arena of `arena` bytes,
/// runs it under QEMU, and returns one report per case name.
pub fn run(
    board: &Board,
    cases: &[Case],
    arena: usize,
    timeout: Duration,
) -> Result<BTreeMap<String, Report>, String> {
    run_with(board, cases, arena, timeout, false)
}

/// Like [`run`]; with `profile`, the firmware also reports ticks per op.
pub fn run_with(
    board: &Board,
    cases: &[Case],
    arena: usize,
    timeout: Duration,
    profile: bool,
) -> Result<BTreeMap<String, Report>, String> {
    run_in(&root(), board, cases, arena, timeout, profile)
}

/// Like [`run_with`], with the harness built from the edgeflow source tree `source`
/// (`source/firmware/<board>`; the case files go to `source/target/edgeflow-firmware`)
/// instead of the tree this crate was compiled in: an installed `edgeflow validate --hil`
/// finds its sources at run time.
pub fn run_in(
    source: &Path,
    board: &Board,
    cases: &[Case],
    arena: usize,
    timeout: Duration,
    profile: bool,
) -> Result<BTreeMap<String, Report>, String> {
    let elf = build_in(source, board, cases, arena, profile, None)?;
    let stdout = run_qemu(board, &elf, timeout)?;
    parse_report(&stdout)
}

/// Builds the model firmware for `board` (`firmware/<board>`, release) with `cases`
/// embedded and returns the ELF path. `kernels`: the kernels linked (`None`: every
/// kernel).
pub fn build(
    board: &Board,
    cases: &[Case],
    arena: usize,
    profile: bool,
    kernels: Option<&KernelSet>,
) -> Result<PathBuf, String> {
    build_in(&root(), board, cases, arena, profile, kernels)
}

/// [`build`] with the cargo profile `cargo_profile` of the firmware workspace (`release`:
/// O3, fat LTO, the speed class; `release-small`: opt-level "s", the size class, whose
/// build also selects edgeflow-nn's size-class kernel paths, `crates/edgeflow-nn/build.rs`).
pub fn build_with_profile(
    board: &Board,
    cases: &[Case],
    arena: usize,
    profile: bool,
    kernels: Option<&KernelSet>,
    cargo_profile: &str,
) -> Result<PathBuf, String> {
    build_profile_in(
        &root(),
        board,
        cases,
        arena,
        profile,
        kernels,
        cargo_profile,
    )
}

/// [`build`] from the edgeflow source tree `source` (see [`run_in`]).
pub fn build_in(
    source: &Path,
    board: &Board,
    cases: &[Case],
    arena: usize,
    profile: bool,
    kernels: Option<&KernelSet>,
) -> Result<PathBuf, String> {
    build_profile_in(source, board, cases, arena, profile, kernels, "release")
}

fn build_profile_in(
    source: &Path,
    board: &Board,
    cases: &[Case],
    arena: usize,
    profile: bool,
    kernels: Option<&KernelSet>,
    cargo_profile: &str,
) -> Result<PathBuf, String> {
    // One case directory per board and profile: the parity tests build the same board at
    // two profiles at once.
    let work = source
        .join("target/edgeflow-firmware")
        .join(match cargo_profile {
            "release" => board.name.clone(),
            p => format!("{}-{p}", board.name),
        });
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let mut list = String::new();
    for c in cases {
        let a = work.join(format!("{}.edgeflow", c.name));
        let i = work.join(format!("{}.input", c.name));
        write_if_changed(&a, &c.artifact)?;
        write_if_changed(&i, &c.input)?;
        list += &format!("{}\t{}\t{}\n", c.name, a.display(), i.display());
    }
    let list_path = work.join("cases.txt");
    write_if_changed(&list_path, list.as_bytes())?;

    let app = source.join("firmware").join(&board.name);
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(&app)
        .args(["build", "--profile", cargo_profile, "--quiet"])
        .env("EDGEFLOW_CASES", &list_path)
        .env("EDGEFLOW_ARENA", arena.to_string())
        .env("EDGEFLOW_PROFILE", if profile { "1" } else { "0" });
    for (k, _) in std::env::vars() {
        // A plain build, not with the variables of the cargo that runs this (a host
        // build's `CARGO_PROFILE_RELEASE_*` must not change the firmware); only overrides
        // of the size profile (`CARGO_PROFILE_RELEASE_SMALL_OPT_LEVEL=z`, for
        // `cargo xtask footprint` experiments) are kept.
        if k.starts_with("CARGO_")
            && k != "CARGO_HOME"
            && !k.starts_with("CARGO_PROFILE_RELEASE_SMALL_")
            || k == "RUSTFLAGS"
            || k == "RUSTC_WRAPPER"
        {
            cmd.env_remove(&k);
        }
    }
    for (var, value) in KernelSet::env(kernels) {
        match value {
            Some(v) => cmd.env(var, v),
            None => cmd.env_remove(var),
        };
    }
    let out = cmd.output().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "firmware build failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    // cargo's output directory of a profile (`dev` and `test` build into `debug`).
    let out_dir = match cargo_profile {
        "dev" | "test" => "debug",
        "bench" => "release",
        p => p,
    };
    Ok(source
        .join("firmware/target")
        .join(&board.target)
        .join(out_dir)
        .join(format!("edgeflow-fw-{}", board.name)))
}

/// Runs a firmware ELF built by [`build`] under QEMU and returns one report per case.
pub fn run_elf(
    board: &Board,
    elf: &Path,
    timeout: Duration,
) -> Result<BTreeMap<String, Report>, String> {
    parse_report(&run_qemu(board, elf, timeout)?)
}

/// The kernels a firmware image links for the models it runs (see
/// crates/edgeflow-nn/build.rs): the ops the models use and the three kernel variants the
/// op names cannot select.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelSet {
    /// The op names (`Op::name`, the `EDGEFLOW_NN_OPS` spelling) used, each once, in
    /// first-use order, comma-separated.
    pub ops: String,
    /// A grouped CONV_2D is used (input depth a multiple > 1 of the filter's):
    /// `EDGEFLOW_NN_GROUPED_CONV`.
    pub grouped_conv: bool,
    /// A DEPTHWISE_CONV_2D other than 3x3 with depth multiplier 1 and a multiple of 4
    /// channels is used: `EDGEFLOW_NN_DW_GENERAL`.
    pub dw_general: bool,
    /// An ADD other than int8 of two inputs with the output's shape is used (the
    /// broadcasting path): `EDGEFLOW_NN_ADD_BROADCAST`.
    pub add_broadcast: bool,
}

impl KernelSet {
    /// The kernels `artifact`'s model needs; an error if it does not parse.
    pub fn of(artifact: &[u8]) -> Result<Self, String> {
        use edgeflow_nn::format::graph::{DType, Op};
        let m = edgeflow_nn::Model::parse(artifact).map_err(|e| e.to_string())?;
        let mut set = KernelSet::default();
        let mut names: Vec<&str> = Vec::new();
        for d in m.ops() {
            let n = d.op.name();
            if !names.contains(&n) {
                names.push(n);
            }
            let (x, w) = (d.inputs.first(), d.inputs.get(1));
            match (&d.op, x, w) {
                (Op::Conv2d(_), Some(x), Some(w)) => {
                    set.grouped_conv |= x.shape.dim(3) != w.shape.dim(3);
                }
                (Op::DepthwiseConv2d(_), Some(x), Some(w)) => {
                    set.dw_general |= w.shape.dim(1) != 3
                        || w.shape.dim(2) != 3
                        || x.shape.dim(3) != w.shape.dim(3)
                        || x.shape.dim(3) % 4 != 0;
                }
                (Op::Add(_), _, _) => {
                    set.add_broadcast |= d.outputs.first().is_none_or(|y| {
                        y.dtype != DType::I8
                            || d.inputs.iter().any(|x| x.shape.dims() != y.shape.dims())
                    });
                }
                _ => {}
            }
        }
        set.ops = names.join(",");
        Ok(set)
    }

    /// The build environment that selects `set` (`None`: every kernel): each variable
    /// with its value, or `None` to remove it (the build's default: linked).
    pub fn env(set: Option<&KernelSet>) -> [(&'static str, Option<&str>); 4] {
        let off = |needed: bool| (!needed).then_some("0");
        match set {
            Some(k) => [
                ("EDGEFLOW_NN_OPS", Some(k.ops.as_str())),
                ("EDGEFLOW_NN_GROUPED_CONV", off(k.grouped_conv)),
                ("EDGEFLOW_NN_DW_GENERAL", off(k.dw_general)),
                ("EDGEFLOW_NN_ADD_BROADCAST", off(k.add_broadcast)),
            ],
            None => [
                ("EDGEFLOW_NN_OPS", None),
                ("EDGEFLOW_NN_GROUPED_CONV", None),
                ("EDGEFLOW_NN_DW_GENERAL", None),
                ("EDGEFLOW_NN_ADD_BROADCAST", None),
            ],
        }
    }
}

/// Bytes of an ELF's read-only loaded sections (vector table, code, read-only data): the
/// `text` column of `arm-none-eabi-size`, what the image takes in flash besides `.data`.
pub fn flash_text_bytes(elf: &Path) -> Result<u64, String> {
    use object::{Object, ObjectSection, SectionFlags, SectionKind};
    let bytes = std::fs::read(elf).map_err(|e| format!("{}: {e}", elf.display()))?;
    let file = object::File::parse(&*bytes).map_err(|e| format!("{}: {e}", elf.display()))?;
    let mut total = 0;
    for s in file.sections() {
        let alloc = match s.flags() {
            SectionFlags::Elf { sh_flags } => sh_flags & u64::from(object::elf::SHF_ALLOC) != 0,
            _ => false,
        };
        let read_only = matches!(
            s.kind(),
            SectionKind::Text | SectionKind::ReadOnlyData | SectionKind::ReadOnlyString
        );
        if alloc && read_only {
            total += s.size();
        }
    }
    Ok(total)
}

/// Flash bytes of an ELF's symbols (code and read-only data) by origin, largest first:
/// `edgeflow-nn`, `edgeflow-format`, `libm`, `compiler-builtins` (memcpy, division),
/// `formatting` (`core::fmt` and every `Display`/`Debug` impl, which only the harness's
/// result lines use), `harness` (firmware harness, support, cortex-m-rt),
/// `unnamed read-only data` (constants and strings whose users the symbol table does not
/// name), and `other`. The embedded cases are left out: the artifacts (`CASES`) and one
/// unnamed read-only block of `input_len` bytes (a case's input, which the compiler
/// emits as an anonymous constant). Names are matched in their mangled form (legacy
/// `_ZN` and v0 `_R` both spell each path segment out).
pub fn code_by_origin(elf: &Path, input_len: u64) -> Result<Vec<(&'static str, u64)>, String> {
    use object::{Object, ObjectSection, ObjectSymbol, SectionKind};
    let bytes = std::fs::read(elf).map_err(|e| format!("{}: {e}", elf.display()))?;
    let file = object::File::parse(&*bytes).map_err(|e| format!("{}: {e}", elf.display()))?;
    let mut by: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut input_seen = false;
    for sym in file.symbols() {
        let Some(idx) = sym.section_index() else {
            continue;
        };
        let Ok(sec) = file.section_by_index(idx) else {
            continue;
        };
        if !matches!(
            sec.kind(),
            SectionKind::Text | SectionKind::ReadOnlyData | SectionKind::ReadOnlyString
        ) || sym.size() == 0
        {
            continue;
        }
        let n = sym.name().unwrap_or_default();
        let origin = if n.contains("CASES") {
            continue;
        } else if n.contains("fmt") {
            "formatting"
        } else if n.contains("edgeflow_nn") {
            "edgeflow-nn"
        } else if n.contains("edgeflow_format") {
            "edgeflow-format"
        } else if n.contains("libm") {
            "libm"
        } else if n.contains("compiler_builtins")
            || n.starts_with("__aeabi")
            || n.starts_with("__udiv")
        {
            "compiler-builtins"
        } else if n.contains("edgeflow_f")
            || n.contains("cortex_m")
            || n.contains("INTERRUPTS")
            || n.contains("semihosting")
        {
            "harness"
        } else if n.starts_with(".L") {
            if !input_seen && sym.size() == input_len {
                input_seen = true;
                continue;
            }
            "unnamed read-only data"
        } else {
            "other"
        };
        *by.entry(origin).or_default() += sym.size();
    }
    let mut v: Vec<_> = by.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1));
    Ok(v)
}

pub(crate) fn write_if_changed(p: &Path, data: &[u8]) -> Result<(), String> {
    if std::fs::read(p).ok().as_deref() == Some(data) {
        return Ok(());
    }
    std::fs::write(p, data).map_err(|e| format!("{}: {e}", p.display()))
}

/// Runs an ELF under QEMU with a wall-clock limit; returns its stdout. Output is read
/// while QEMU runs, so firmware may print any amount; the run must end with a `done` line.
pub fn run_qemu(board: &Board, elf: &Path, timeout: Duration) -> Result<String, String> {
    let (prog, args) = board
        .qemu_command(&elf.to_path_buf())
        .ok_or("board has no QEMU runner")?;
    let mut child = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start qemu: {e}"))?;
    let mut pipe = child.stdout.take().ok_or("no stdout pipe")?;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = pipe.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("qemu did not finish within {timeout:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(e.to_string()),
        }
    };
    let stdout = reader.join().unwrap_or_default();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    if !status.success() || !stdout.lines().any(|l| l == "done") {
        let tail: String = stdout
            .chars()
            .rev()
            .take(2000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        return Err(format!("qemu failed ({status}):\n{tail}\n{stderr}"));
    }
    Ok(stdout)
}

fn parse_report(stdout: &str) -> Result<BTreeMap<String, Report>, String> {
    let mut m = BTreeMap::new();
    for line in stdout.lines().filter(|l| l.starts_with("case ")) {
        let mut it = line.splitn(4, ' ');
        let (_, name, status) = (it.next(), it.next().unwrap_or(""), it.next().unwrap_or(""));
        let rest = it.next().unwrap_or("");
        let report = if status == "ok" {
            let mut ticks = 0;
            let mut stack = 0;
            let mut load_ticks = 0;
            let mut output = Vec::new();
            for kv in rest.split(' ') {
                if let Some(v) = kv.strip_prefix("ticks=") {
                    ticks = v.parse().map_err(|_| format!("bad ticks in {line}"))?;
                } else if let Some(v) = kv.strip_prefix("load=") {
                    load_ticks = v.parse().map_err(|_| format!("bad load in {line}"))?;
                } else if let Some(v) = kv.strip_prefix("stack=") {
                    stack = v.parse().map_err(|_| format!("bad stack in {line}"))?;
                } else if let Some(v) = kv.strip_prefix("out=") {
                    output = (0..v.len() / 2)
                        .map(|i| u8::from_str_radix(&v[2 * i..2 * i + 2], 16))
                        .collect::<Result<_, _>>()
                        .map_err(|_| format!("bad hex in {line}"))?;
                }
            }
            Report {
                ticks,
                stack,
                load_ticks,
                output: Ok(output),
                per_op: Vec::new(),
            }
        } else {
            Report {
                ticks: 0,
                stack: 0,
                load_ticks: 0,
                output: Err(rest.to_string()),
                per_op: Vec::new(),
            }
        };
        m.insert(name.to_string(), report);
    }
    // `prof <case> <op#> <OP_NAME> <ticks>` lines, in op order.
    for line in stdout.lines().filter(|l| l.starts_with("prof ")) {
        let f: Vec<&str> = line.split(' ').collect();
        let ticks: u64 = f
            .get(4)
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| format!("bad profile line {line}"))?;
        if let (Some(r), Some(op)) = (m.get_mut(f.get(1).copied().unwrap_or("")), f.get(3)) {
            r.per_op.push((op.to_string(), ticks));
        }
    }
    Ok(m)
}
