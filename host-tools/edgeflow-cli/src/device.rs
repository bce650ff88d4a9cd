//! `edgeflow flash` and `edgeflow device …`: putting a model on a board and talking to the
//! application running there (`firmware/app-<board>`).
//!
//! Emulated boards: `flash` checks budgets, composes the model partition image (slot A =
//! header + artifact), builds the application once (or takes `--firmware`), and starts
//! QEMU in the background with the partition preloaded and the UART on a Unix socket
//! (`target/edgeflow-device/<board>.sock`). If the device is already running, `flash`
//! sends the model over the link instead: it is written to the inactive slot and the
//! device switches to it — no firmware rebuild, no re-flash. `device replay` streams a
//! dataset's samples over that socket and prints the predictions live; `device stop` ends
//! the emulator. Real boards (probe-rs) are not supported yet.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use edgeflow_compile::board::Board;
use edgeflow_telemetry::command::{Command, MAX_ENCODED, MAX_PAYLOAD};
use edgeflow_telemetry::{Body, Decoder, Event, Frame};

/// `edgeflow flash`.
#[derive(Args)]
pub struct FlashArgs {
    /// The artifact (with a feature pipeline).
    pub artifact: PathBuf,
    /// Board name (`boards/NAME.toml`) or a board file.
    #[arg(long)]
    pub board: String,
    /// A prebuilt application ELF (default: build `firmware/app-<board>` once).
    #[arg(long)]
    pub firmware: Option<PathBuf>,
}

/// `edgeflow device …`.
#[derive(Subcommand)]
pub enum DeviceCommand {
    /// Stream a dataset's samples (a .npy array [samples, axes] or a numeric CSV) into the
    /// running device and print its predictions as they arrive.
    Replay {
        /// Board name or file.
        #[arg(long)]
        board: String,
        /// The samples.
        #[arg(long)]
        data: PathBuf,
    },
    /// Stop the emulated device.
    Stop {
        /// Board name or file.
        #[arg(long)]
        board: String,
    },
}

/// What each board's application expects: partition address, slot bytes, the buffers it
/// gives the run-time, and its cargo profile (see `firmware/app-<board>/src/main.rs`).
struct AppLayout {
    partition: u32,
    slot_bytes: u64,
    arena_bytes: u64,
    workspace_words: u64,
    profile: &'static str,
}

fn layout(board: &str) -> Result<AppLayout> {
    Ok(match board {
        "mps2-an386" => AppLayout {
            partition: 0x0010_0000,
            slot_bytes: 0x0010_0000,
            arena_bytes: 256 * 1024,
            workspace_words: 64 * 1024,
            profile: "release",
        },
        "lm3s6965evb" => AppLayout {
            partition: 0x0003_0000,
            slot_bytes: 0x8000,
            arena_bytes: 16 * 1024,
            workspace_words: 2 * 1024,
            profile: "release-small",
        },
        other => {
            bail!("no edgeflow application for board {other} (known: mps2-an386, lm3s6965evb)")
        }
    })
}

pub(crate) fn load_board(b: &str) -> Result<Board> {
    if b.ends_with(".toml") {
        return Ok(Board::load(Path::new(b))?);
    }
    // A name: the board catalog (built-in boards and the user's), as `edgeflow boards`,
    // so flashing works outside the source tree too.
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    Ok(edgeflow_compile::board::Catalog::discover(None, &cwd)?.get(b)?)
}

fn work_dir() -> PathBuf {
    PathBuf::from("target/edgeflow-device")
}

pub(crate) fn socket(board: &str) -> PathBuf {
    work_dir().join(format!("{board}.sock"))
}

/// `edgeflow flash`.
pub fn flash(args: FlashArgs) -> Result<()> {
    let board = load_board(&args.board)?;
    let artifact = std::fs::read(&args.artifact)
        .with_context(|| format!("cannot read {}", args.artifact.display()))?;
    let model = edgeflow::Model::parse(&artifact)
        .map_err(|e| anyhow!("{}: {e}", args.artifact.display()))?;
    // Budgets first: the board's, then what the application gives the run-time.
    let budget = edgeflow_compile::budget::Budget::new(model.nn(), artifact.len(), &board)
        .with_pipeline_ram(model.pipeline().ram_bytes());
    print!("{budget}");
    if !budget.fits() {
        bail!("{} does not fit on {}", args.artifact.display(), board.name);
    }
    let app = layout(&board.name)?;
    let slot_capacity = app.slot_bytes - u64::from(edgeflow_slots::DATA_OFFSET);
    let checks = [
        (
            "artifact bytes",
            artifact.len() as u64,
            slot_capacity,
            "model slot",
        ),
        (
            "arena bytes",
            model.arena_bytes() as u64,
            app.arena_bytes,
            "application arena",
        ),
        (
            "feature workspace words",
            model.workspace_len() as u64,
            app.workspace_words,
            "application workspace",
        ),
    ];
    for (what, need, have, whose) in checks {
        if need > have {
            bail!(
                "{}: {what} {need} exceed the {whose} on {} ({have})",
                args.artifact.display(),
                board.name
            );
        }
    }
    if board.runner.machine.is_none() {
        bail!(
            "{} is a real board: flashing through probe-rs is not implemented yet",
            board.name
        );
    }
    let sock = socket(&board.name);
    if UnixStream::connect(&sock).is_ok() {
        println!(
            "device running on {}: updating the model slot over the link",
            sock.display()
        );
        return update_over_link(connect(&sock)?, &artifact);
    }
    let elf = match args.firmware {
        Some(f) => f,
        None => build_app(&board, &app)?,
    };
    std::fs::create_dir_all(work_dir())?;
    let img = work_dir().join(format!("{}-partition.bin", board.name));
    let mut image = edgeflow_slots::header_area(&artifact, 1).to_vec();
    image.extend_from_slice(&artifact);
    std::fs::write(&img, &image).with_context(|| format!("cannot write {}", img.display()))?;
    let _ = std::fs::remove_file(&sock);
    let machine = board.runner.machine.clone().unwrap_or_default();
    let mut qemu = Process::new("qemu-system-arm");
    qemu.args(["-machine", &machine]);
    if let Some(cpu) = &board.runner.qemu_cpu {
        qemu.args(["-cpu", cpu]);
    }
    qemu.args(["-nographic", "-monitor", "none", "-serial"])
        .arg(format!("unix:{},server=on,wait=off", sock.display()))
        .args([
            "-semihosting-config",
            "enable=on,target=native",
            "-icount",
            "shift=0",
            "-kernel",
        ])
        .arg(&elf)
        .arg("-device")
        .arg(format!(
            "loader,file={},addr={:#x},force-raw=on",
            img.display(),
            app.partition
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = qemu.spawn().context("cannot start qemu-system-arm")?;
    let start = Instant::now();
    let link = loop {
        match UnixStream::connect(&sock) {
            Ok(s) => break s,
            Err(_) if start.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => bail!("the emulator did not open {}: {e}", sock.display()),
        }
    };
    println!(
        "started {} (qemu pid {}) with {} in slot A; link: {}",
        board.name,
        child.id(),
        args.artifact.display(),
        sock.display()
    );
    let mut link = Link::new(link)?;
    link.send(&Command::Hello)?;
    let f = link.until(Duration::from_secs(30), |f| {
        matches!(f.body, Body::Hello(_))
    })?;
    print_frame(f.last().ok_or_else(|| anyhow!("no hello"))?);
    Ok(())
}

fn build_app(board: &Board, app: &AppLayout) -> Result<PathBuf> {
    let dir = Path::new("firmware").join(format!("app-{}", board.name));
    if !dir.is_dir() {
        bail!(
            "{} not found (run from the repository root, or pass --firmware ELF)",
            dir.display()
        );
    }
    println!("building {} ({})", dir.display(), app.profile);
    let status = Process::new("cargo")
        .current_dir(&dir)
        .args(["build", "--quiet", "--profile", app.profile])
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("building {} failed", dir.display());
    }
    Ok(Path::new("firmware/target")
        .join(&board.target)
        .join(app.profile)
        .join(format!("edgeflow-app-{}", board.name)))
}

/// The host end of a device link: commands out, decoded telemetry in.
pub(crate) struct Link {
    stream: UnixStream,
    decoder: Decoder,
    pending: Vec<Frame>,
    /// When set, every byte read from the device is appended here (the raw telemetry
    /// stream, for `monitor ingest` by `pipeline run`).
    pub(crate) tap: Option<Vec<u8>>,
}

impl Link {
    fn new(stream: UnixStream) -> Result<Link> {
        stream.set_read_timeout(Some(Duration::from_millis(100)))?;
        Ok(Link {
            stream,
            decoder: Decoder::new(),
            pending: Vec::new(),
            tap: None,
        })
    }

    pub(crate) fn send(&mut self, c: &Command<'_>) -> Result<()> {
        let mut buf = vec![0u8; MAX_ENCODED];
        let n = c.encode(&mut buf).map_err(|e| anyhow!("{e}"))?;
        self.stream.write_all(&buf[..n]).context("device link")?;
        Ok(())
    }

    /// Reads what is there now (waiting at most the read timeout).
    pub(crate) fn poll(&mut self) -> Result<Vec<Frame>> {
        let mut buf = [0u8; 4096];
        match self.stream.read(&mut buf) {
            Ok(0) => bail!("the device closed the link"),
            Ok(n) => {
                if let Some(t) = self.tap.as_mut() {
                    t.extend_from_slice(&buf[..n]);
                }
                for e in self.decoder.push(&buf[..n]) {
                    match e {
                        Event::Frame(f) => self.pending.push(f),
                        Event::Error(e) => eprintln!("telemetry: {e}"),
                    }
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e).context("device link"),
        }
        Ok(std::mem::take(&mut self.pending))
    }

    /// Frames until one satisfies `done` (inclusive).
    pub(crate) fn until(
        &mut self,
        timeout: Duration,
        done: impl Fn(&Frame) -> bool,
    ) -> Result<Vec<Frame>> {
        let start = Instant::now();
        let mut got = Vec::new();
        while start.elapsed() < timeout {
            for f in self.poll()? {
                let stop = done(&f);
                got.push(f);
                if stop {
                    return Ok(got);
                }
            }
        }
        bail!("the device did not answer within {timeout:?}")
    }
}

/// Connects to a running device and checks that it answers (a hello), reconnecting if
/// the emulator had not yet taken the connection (it serves one client at a time and can
/// lose the bytes of a client that connected while the previous one was closing).
pub(crate) fn connect(sock: &Path) -> Result<Link> {
    let mut last = None;
    for _ in 0..5 {
        let stream = match UnixStream::connect(sock) {
            Ok(s) => s,
            Err(e) => {
                last = Some(anyhow!(e));
                std::thread::sleep(Duration::from_millis(300));
                continue;
            }
        };
        let mut link = Link::new(stream)?;
        link.send(&Command::Hello)?;
        match link.until(Duration::from_secs(2), |f| matches!(f.body, Body::Hello(_))) {
            Ok(_) => return Ok(link),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow!("no answer")))
        .with_context(|| format!("no device answering on {}", sock.display()))
}

pub(crate) fn print_frame(f: &Frame) {
    let h = &f.header;
    match &f.body {
        Body::Hello(x) => println!(
            "hello  #{} {} on {}: model slot {} (update {}), artifact {}.{}, arena {} B, model {:#010x}",
            h.seq, x.firmware, x.board, x.slot, x.slot_sequence, x.artifact_version.0,
            x.artifact_version.1, x.arena_bytes, h.model_hash
        ),
        Body::Prediction(p) => println!(
            "pred   #{} t={} us class {} score {} latency {} us",
            h.seq, h.timestamp_us, p.class, p.score, p.latency_us
        ),
        Body::Log(l) => println!("log    #{} {:?} {}", h.seq, l.level, l.message),
        Body::Summary(s) => println!(
            "summary #{} {} inferences, classes {:?}, link errors {:?}, stack {} B",
            h.seq, s.inferences, s.classes, s.link_errors, s.stack_high_water
        ),
        Body::Unknown(b) => println!("frame  #{} kind {:?} ({} bytes)", h.seq, h.kind, b.len()),
    }
    if f.gap > 0 {
        println!("       ({} frames lost before this one)", f.gap);
    }
}

fn update_over_link(mut link: Link, artifact: &[u8]) -> Result<()> {
    let len = u32::try_from(artifact.len()).context("artifact over 4 GiB")?;
    link.send(&Command::UpdateBegin {
        len,
        crc: edgeflow_slots::CRC32.checksum(artifact),
    })?;
    let step = MAX_PAYLOAD - 4;
    for (k, c) in artifact.chunks(step).enumerate() {
        link.send(&Command::UpdateData {
            offset: (k * step) as u32,
            data: c,
        })?;
    }
    link.send(&Command::UpdateCommit)?;
    let frames = link.until(Duration::from_secs(60), |f| {
        matches!(&f.body, Body::Hello(_))
            || matches!(&f.body, Body::Log(l) if l.message.starts_with("update:"))
    })?;
    for f in &frames {
        print_frame(f);
    }
    match frames.last().map(|f| &f.body) {
        Some(Body::Hello(_)) => Ok(()),
        _ => bail!("the device rejected the update"),
    }
}

fn read_samples(path: &Path) -> Result<Vec<f32>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if path.extension().is_some_and(|e| e == "npy") {
        let npy = npyz::NpyFile::new(&bytes[..])
            .with_context(|| format!("{}: not a .npy file", path.display()))?;
        let descr = match npy.dtype() {
            npyz::DType::Plain(ts) => ts.to_string(),
            other => bail!("{}: unsupported dtype {other:?}", path.display()),
        };
        let v: Vec<f32> = match descr.trim_start_matches(['<', '|', '=']) {
            "f4" => npy.into_vec::<f32>()?,
            "f8" => npy
                .into_vec::<f64>()?
                .into_iter()
                .map(|x| x as f32)
                .collect(),
            d => bail!(
                "{}: samples must be float32 or float64, not {d}",
                path.display()
            ),
        };
        return Ok(v);
    }
    let text =
        String::from_utf8(bytes).with_context(|| format!("{}: not UTF-8 text", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let cells: Vec<&str> = line
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        let nums: Result<Vec<f32>, _> = cells.iter().map(|c| c.parse::<f32>()).collect();
        match nums {
            Ok(n) => out.extend(n),
            Err(_) if i == 0 => {} // header
            Err(e) => bail!("{}:{}: {e}", path.display(), i + 1),
        }
    }
    Ok(out)
}

/// `edgeflow device …`.
pub fn device(cmd: DeviceCommand) -> Result<()> {
    match cmd {
        DeviceCommand::Replay { board, data } => {
            let board = load_board(&board)?;
            let sock = socket(&board.name);
            let samples = read_samples(&data)?;
            let mut link = connect(&sock).with_context(|| {
                format!(
                    "no device running for {} (start one with `edgeflow flash`)",
                    board.name
                )
            })?;
            let mut predictions = 0usize;
            for chunk in samples.chunks(MAX_PAYLOAD / 4) {
                let bytes: Vec<u8> = chunk.iter().flat_map(|x| x.to_le_bytes()).collect();
                link.send(&Command::Samples(&bytes))?;
                for f in link.poll()? {
                    predictions += usize::from(matches!(f.body, Body::Prediction(_)));
                    print_frame(&f);
                }
            }
            link.send(&Command::Summary)?;
            for f in link.until(Duration::from_secs(30), |f| {
                matches!(f.body, Body::Summary(_))
                    || matches!(&f.body, Body::Log(l) if l.message.starts_with("no summary"))
            })? {
                predictions += usize::from(matches!(f.body, Body::Prediction(_)));
                print_frame(&f);
            }
            let s = link.decoder.stats();
            println!(
                "{} samples sent, {predictions} predictions; link: {} frames, {} lost, {} bytes discarded",
                samples.len(),
                s.frames,
                s.missing_frames,
                s.discarded_bytes
            );
        }
        DeviceCommand::Stop { board } => {
            let board = load_board(&board)?;
            let sock = socket(&board.name);
            let mut link = connect(&sock)?;
            link.send(&Command::Exit)?;
            // The emulator reads the link only as fast as the device does: wait until it
            // has exited (the link closes), or the command would be lost with the socket.
            let start = Instant::now();
            loop {
                match link.poll() {
                    Err(_) => break,
                    Ok(_) if start.elapsed() > Duration::from_secs(10) => {
                        bail!("{} did not stop within 10 s", board.name)
                    }
                    Ok(_) => {}
                }
            }
            let _ = std::fs::remove_file(&sock);
            println!("stopped {}", board.name);
        }
    }
    Ok(())
}
