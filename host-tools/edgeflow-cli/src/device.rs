//! `edgeflow flash` and `edgeflow device …`: putting a model on a board and talking to the
//! application running there (`firmware/app-<board>`).
//!
//! Emulated boards: `flash` checks budgets, composes the model partition image (slot A =
//! header + artifact), builds the application once (or takes `--firmware`), and starts
//! QEMU in the background with the partition preloaded and the UART on a Unix socket
//! (`<board>.sock` in the device state directory, the same from every working directory:
//! see [`state_dir`]). Without `--firmware` the application is built from the edgeflow
//! source tree [`crate::sources::find`] finds (`EDGEFLOW_SOURCE_DIR`, else the nearest
//! ancestor of the artifact or of the working directory holding `firmware/app-<board>`). If the device is already running, `flash`
//! sends the model over the link instead: it is written to the inactive slot and the
//! device switches to it — no firmware rebuild, no re-flash. `device replay` streams a
//! dataset's samples over that socket and prints the predictions live (with `--telemetry
//! tcp://HOST:PORT` it also forwards the device's telemetry bytes, as they arrive, to a
//! monitor's `ingest --listen`); `device stop` ends
//! the emulator. `device collect` streams a recording through the device's sample path and
//! writes what comes back as a dataset (.csv or .npz). Real boards: `flash` (feature
//! `probe`) writes the model partition, and with `--firmware` the firmware, through probe-rs;
//! `device replay --port DEVICE` and `device collect --port DEVICE` speak the same protocol
//! (`edgeflow_telemetry::command`) over the board's serial port (collect then records the
//! board's own sensor: `--axes`, `--frames`). Bytes the host cannot decode are counted and
//! reported (replay's closing line; collect refuses to write a dataset with holes).
//!
//! Device logs are `defmt` frames: `flash` records the firmware ELF it started
//! (`<board>.firmware` in the state directory), and every command that reads the link
//! decodes them with that ELF's defmt table. Without the table a log frame is printed raw
//! with a note saying why; one the table cannot decode is counted and reported.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use edgeflow_compile::board::Board;
use edgeflow_telemetry::command::{Command, MAX_ENCODED, MAX_PAYLOAD};
use edgeflow_telemetry::{Body, Decoder, Event, Frame, LogResolver};

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
        /// Also forward every telemetry byte the device sends, as it arrives, to a TCP
        /// listener (`tcp://HOST:PORT` or `HOST:PORT`), e.g. `edgeflow monitor ingest
        /// --listen HOST:PORT`: the host acts as the device's serial-to-network gateway.
        #[arg(long, value_name = "tcp://HOST:PORT")]
        telemetry: Option<String>,
        /// The data is back-to-back recordings of this many time steps (sample frames)
        /// each: send a `Reset` before each recording, so that the device forgets the
        /// previous one and no inference spans two recordings (as the pipeline's monitor
        /// stage replays a test split). The data must hold a whole number of recordings.
        /// Default: one continuous stream.
        #[arg(long, value_name = "N")]
        recording_len: Option<usize>,
        #[command(flatten)]
        port: PortArgs,
    },
    /// Record labelled raw samples from the running device into a dataset file (.csv: one
    /// row per sample frame, one column per axis and a `label` column; .npz: `x` float32
    /// [1, frames, axes] and `y` int64 [1], the shape `edgeflow train` reads). On an emulated
    /// board the device's sensor is the link, so `--source` is streamed in and what the
    /// device's sample path sends back is recorded.
    Collect {
        /// Board name or file.
        #[arg(long)]
        board: String,
        /// The label written with every sample (for .npz: a class index, 0, 1, …).
        #[arg(long, default_value = "unlabelled")]
        label: String,
        /// What the emulated board's sensor produces: a .npy [frames, axes] or numeric CSV.
        #[arg(long)]
        source: Option<PathBuf>,
        /// The dataset file to write (.csv or .npz).
        #[arg(short, long)]
        output: PathBuf,
        /// Without --source (a board's own sensor on --port): values per sample frame.
        #[arg(long)]
        axes: Option<u16>,
        /// Without --source: how many sample frames to record.
        #[arg(long)]
        frames: Option<usize>,
        #[command(flatten)]
        port: PortArgs,
    },
    /// Stop the emulated device.
    Stop {
        /// Board name or file.
        #[arg(long)]
        board: String,
    },
}

/// What each board's application expects, all from its board file: the model partition
/// (`[layout]`, the table the firmware build generates its memory.x from), the buffers it
/// gives the run-time and its cargo profile (`[app]`, which the build generates its buffer
/// constants from).
struct AppLayout {
    partition: u64,
    slot_bytes: u64,
    arena_bytes: u64,
    workspace_words: u64,
    profile: String,
}

fn layout(board: &Board) -> Result<AppLayout> {
    let app = board.app.as_ref().ok_or_else(|| {
        anyhow!(
            "board {} has no [app] table (no edgeflow application for it)",
            board.name
        )
    })?;
    app.validate(board.ram_bytes)
        .map_err(|e| anyhow!("board {}: {e}", board.name))?;
    let l = board.layout.ok_or_else(|| {
        anyhow!(
            "board {} has no [layout] table (where the firmware and the model slots go)",
            board.name
        )
    })?;
    Ok(AppLayout {
        partition: l.slots_origin,
        slot_bytes: l.slot_bytes,
        arena_bytes: app.arena_bytes,
        workspace_words: app.workspace_words,
        profile: app.profile.clone(),
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

/// The environment variable that sets where emulated devices keep their state.
pub(crate) const STATE_DIR_VAR: &str = "EDGEFLOW_DEVICE_DIR";

/// The longest Unix socket path the system takes (`sun_path` is 108 bytes on Linux, 104
/// on the BSDs and macOS, with the terminating NUL: unix(7), unix(4)).
const MAX_SOCKET_PATH: usize = if cfg!(target_os = "linux") { 107 } else { 103 };

/// Where the emulated devices that `edgeflow flash` starts keep their state (the UART
/// socket `<board>.sock`, the firmware record `<board>.firmware`, the partition image
/// `<board>-partition.bin`), the same from every working directory so that `device
/// replay|collect|stop` find the device `flash` started anywhere: `EDGEFLOW_DEVICE_DIR`
/// when set; else `$XDG_RUNTIME_DIR/edgeflow` (the per-user directory for sockets of the
/// XDG Base Directory Specification, when it is a private directory of this user); else
/// `edgeflow-<uid>` in the system temporary directory (created private, 0700; refused if
/// it is not a private directory of this user). Details: [`state_dir_with`].
pub(crate) fn state_dir() -> Result<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
    };
    state_dir_with(
        var(STATE_DIR_VAR),
        var("XDG_RUNTIME_DIR"),
        &std::env::temp_dir(),
        rustix::process::geteuid().as_raw(),
    )
}

/// [`state_dir`] with its inputs given: `EDGEFLOW_DEVICE_DIR`'s and `XDG_RUNTIME_DIR`'s
/// values, the system temporary directory and the effective user id.
///
/// `XDG_RUNTIME_DIR` is taken when it is an existing directory owned by `uid` and
/// writable by no one else (as the specification requires of it); otherwise the private
/// directory `edgeflow-<uid>` in `tmp` is used: created 0700, and refused (an error
/// naming it and the two variables) when it is a symlink, not a directory, owned by
/// another user or writable by others, so that no other user can plant the socket the
/// commands connect to. Errors: that refusal, and a directory that cannot be created
/// (the system's reason).
fn state_dir_with(
    env: Option<PathBuf>,
    xdg: Option<PathBuf>,
    tmp: &Path,
    uid: u32,
) -> Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    if let Some(d) = env {
        return Ok(d);
    }
    let private = |m: &std::fs::Metadata| m.is_dir() && m.uid() == uid && m.mode() & 0o022 == 0;
    if let Some(x) = xdg.filter(|x| x.is_absolute()) {
        if std::fs::symlink_metadata(&x).is_ok_and(|m| private(&m)) {
            return Ok(x.join("edgeflow"));
        }
    }
    let d = tmp.join(format!("edgeflow-{uid}"));
    match std::fs::DirBuilder::new().mode(0o700).create(&d) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(anyhow!(
                "cannot create the device state directory {}: {e} (set {STATE_DIR_VAR} to a directory of yours)",
                d.display()
            ))
        }
    }
    let m = std::fs::symlink_metadata(&d)
        .with_context(|| format!("cannot read the device state directory {}", d.display()))?;
    if !private(&m) {
        bail!(
            "{} is not a private directory of user {uid} (the device state directory: a directory owned by this user, writable by no one else); set {STATE_DIR_VAR} or XDG_RUNTIME_DIR to one",
            d.display()
        );
    }
    Ok(d)
}

/// The UART socket of the emulated `board` whose state is in `state` (a directory, see
/// [`state_dir`]). Errors: the path is longer than a Unix socket path can be.
pub(crate) fn socket(state: &Path, board: &str) -> Result<PathBuf> {
    let sock = state.join(format!("{board}.sock"));
    let len = sock.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        bail!(
            "the device socket path {} is {len} bytes, longer than a Unix socket path can be ({MAX_SOCKET_PATH}): set {STATE_DIR_VAR} to a shorter directory",
            sock.display()
        );
    }
    Ok(sock)
}

/// The file where `flash` records the ELF running behind the socket `sock` (its defmt
/// table decodes the device's logs).
fn firmware_record(sock: &Path) -> PathBuf {
    sock.with_extension("firmware")
}

/// The defmt log decoder for the device behind `sock`, from the ELF `flash` recorded.
fn log_resolver(sock: &Path) -> LogResolver {
    let elf = std::fs::read_to_string(firmware_record(sock))
        .ok()
        .map(|p| PathBuf::from(p.trim()));
    match elf {
        Some(elf) => LogResolver::for_elf(Some(elf.as_path())),
        None => LogResolver::new(
            None,
            Some(format!(
                "no firmware ELF recorded in {} (start the device with `edgeflow flash`)",
                firmware_record(sock).display()
            )),
        ),
    }
}

/// `edgeflow flash`: the device's state in [`state_dir`] (looked up only for an
/// emulated board, after the budget checks).
pub fn flash(args: FlashArgs) -> Result<()> {
    flash_in(args, state_dir)
}

/// `edgeflow flash` with the emulated device's state in the directory `state` returns
/// (the pipeline keeps its device apart from the one `edgeflow flash` starts).
pub(crate) fn flash_in(args: FlashArgs, state: impl FnOnce() -> Result<PathBuf>) -> Result<()> {
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
    let app = layout(&board)?;
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
        return flash_real(&board, &app, args.firmware.as_deref(), &artifact);
    }
    let state = &state()?;
    let sock = socket(state, &board.name)?;
    if UnixStream::connect(&sock).is_ok() {
        println!(
            "device running on {}: updating the model slot over the link",
            sock.display()
        );
        return update_over_link(connect(&sock)?, &artifact);
    }
    let elf = match args.firmware {
        Some(f) => f,
        None => build_app(&board, &app, &args.artifact)?,
    };
    std::fs::create_dir_all(state).with_context(|| {
        format!(
            "cannot create the device state directory {}",
            state.display()
        )
    })?;
    let img = state.join(format!("{}-partition.bin", board.name));
    let mut image = edgeflow_slots::header_area(&artifact, 1).to_vec();
    image.extend_from_slice(&artifact);
    std::fs::write(&img, &image).with_context(|| format!("cannot write {}", img.display()))?;
    let _ = std::fs::remove_file(&sock);
    let elf_abs = std::fs::canonicalize(&elf).unwrap_or_else(|_| elf.clone());
    std::fs::write(firmware_record(&sock), elf_abs.display().to_string())
        .with_context(|| format!("cannot write {}", firmware_record(&sock).display()))?;
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
    let mut link = Link::new(link, &sock)?;
    link.send(&Command::Hello)?;
    let f = link.until(Duration::from_secs(30), |f| {
        matches!(f.body, Body::Hello(_))
    })?;
    print_frame(f.last().ok_or_else(|| anyhow!("no hello"))?);
    Ok(())
}

/// The whole model partition for a real board: slot A holds `artifact` at update sequence 1,
/// slot B is erased (0xFF), so the device boots this model whatever it ran before.
fn partition_both_slots(artifact: &[u8], slot_bytes: u64) -> Result<Vec<u8>> {
    let slot = usize::try_from(slot_bytes).context("slot size")?;
    let mut image = edgeflow_slots::header_area(artifact, 1).to_vec();
    image.extend_from_slice(artifact);
    if image.len() > slot {
        bail!("the artifact does not fit a {slot}-byte slot");
    }
    image.resize(2 * slot, 0xFF);
    Ok(image)
}

/// `edgeflow flash` for a real board (`runner.kind = "probe-rs"`): through the first debug
/// probe found, writes the firmware ELF when `--firmware` is given (once), and the model
/// partition (slot A = the artifact, slot B erased) at the board's `layout.slots_origin`;
/// then resets the core. A model update alone rewrites only the partition.
#[cfg(feature = "probe")]
fn flash_real(
    board: &Board,
    app: &AppLayout,
    firmware: Option<&Path>,
    artifact: &[u8],
) -> Result<()> {
    use probe_rs::flashing::{self, DownloadOptions, ElfLoader};
    use probe_rs::{Session, SessionConfig};
    let chip = board
        .runner
        .chip
        .as_deref()
        .ok_or_else(|| anyhow!("board {} has no runner.chip", board.name))?;
    let image = partition_both_slots(artifact, app.slot_bytes)?;
    let mut session = Session::auto_attach(chip, SessionConfig::default()).with_context(|| {
        format!("cannot attach to {chip} through a debug probe (is one connected?)")
    })?;
    if let Some(elf) = firmware {
        println!("flashing the firmware {} to {chip}", elf.display());
        flashing::download_file(&mut session, elf, ElfLoader(Default::default()))
            .with_context(|| format!("flashing {}", elf.display()))?;
    } else {
        println!(
            "keeping the firmware on {} (pass --firmware ELF to write it)",
            board.name
        );
    }
    println!(
        "writing the model partition ({} bytes) at {:#010x}",
        image.len(),
        app.partition
    );
    let mut loader = session.target().flash_loader();
    loader
        .add_data(app.partition, &image)
        .context("the model partition is outside the chip's flash")?;
    loader
        .commit(&mut session, DownloadOptions::default())
        .context("writing the model partition")?;
    session.core(0)?.reset().context("resetting the core")?;
    println!("{} reset: it boots the new model from slot A", board.name);
    Ok(())
}

/// Without the `probe` feature, a real board is refused with the way to get it.
#[cfg(not(feature = "probe"))]
fn flash_real(
    board: &Board,
    app: &AppLayout,
    _firmware: Option<&Path>,
    artifact: &[u8],
) -> Result<()> {
    partition_both_slots(artifact, app.slot_bytes)?;
    bail!(
        "{} is a real board (probe-rs chip {}): this edgeflow was built without the `probe` feature \
         (cargo build -p edgeflow-cli --features probe)",
        board.name,
        board.runner.chip.as_deref().unwrap_or("?")
    )
}

/// Builds `firmware/app-<board>` of the edgeflow source tree [`crate::sources::find`] finds
/// (near the artifact or the working directory); returns the application ELF.
fn build_app(board: &Board, app: &AppLayout, artifact: &Path) -> Result<PathBuf> {
    let name = format!("app-{}", board.name);
    let root = crate::sources::find(
        &name,
        artifact,
        &format!("flashing {} builds its device application", board.name),
        "pass --firmware ELF (a prebuilt application)",
    )?;
    let dir = root.join("firmware").join(&name);
    println!("building {} ({})", dir.display(), app.profile);
    let status = Process::new("cargo")
        .current_dir(&dir)
        .args(["build", "--quiet", "--profile", &app.profile])
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("building {} failed", dir.display());
    }
    Ok(root
        .join("firmware/target")
        .join(&board.target)
        .join(&app.profile)
        .join(format!("edgeflow-app-{}", board.name)))
}

/// The byte stream of a device link: the emulator's Unix socket or a serial port. Reads
/// return within about 100 ms when nothing arrives (`WouldBlock`/`TimedOut`).
pub(crate) trait LinkIo: Read + Write + Send {}
impl<T: Read + Write + Send> LinkIo for T {}

/// How long a device may take no bytes of a command before `send` gives up.
const LINK_STALL: Duration = Duration::from_secs(30);

/// The host end of a device link: commands out, decoded telemetry in.
pub(crate) struct Link {
    stream: Box<dyn LinkIo>,
    decoder: Decoder,
    /// Decodes the device's defmt log frames.
    logs: LogResolver,
    pending: Vec<Frame>,
    /// When set, every byte read from the device is appended here (the raw telemetry
    /// stream, for `monitor ingest` by `pipeline run`).
    pub(crate) tap: Option<Vec<u8>>,
}

impl Link {
    fn new(stream: UnixStream, sock: &Path) -> Result<Link> {
        stream.set_read_timeout(Some(Duration::from_millis(100)))?;
        // Writes time out too, so that `send` can read the device's output while the
        // device is not reading (see `send`).
        stream.set_write_timeout(Some(Duration::from_millis(100)))?;
        Ok(Link::over(Box::new(stream), log_resolver(sock)))
    }

    fn over(stream: Box<dyn LinkIo>, logs: LogResolver) -> Link {
        Link {
            stream,
            decoder: Decoder::new(),
            logs,
            pending: Vec::new(),
            tap: None,
        }
    }

    /// Sends one command. While the device does not take the bytes, what it sent is read
    /// (into the frames the next [`Link::poll`] returns): a device whose UART cannot
    /// transmit stops reading its input, and a host that only wrote would wait for it
    /// forever. (QEMU writes the emulated UART's output one byte per socket write, so a
    /// few hundred unread bytes fill its socket buffer.) Errors: the link fails, or the
    /// device reads nothing for [`LINK_STALL`].
    pub(crate) fn send(&mut self, c: &Command<'_>) -> Result<()> {
        let mut buf = vec![0u8; MAX_ENCODED];
        let n = c.encode(&mut buf).map_err(|e| anyhow!("{e}"))?;
        let mut rest = buf.get(..n).unwrap_or_default();
        let mut stalled_since = Instant::now();
        while !rest.is_empty() {
            match self.stream.write(rest) {
                Ok(0) => bail!("the device closed the link"),
                Ok(k) => {
                    rest = rest.get(k..).unwrap_or_default();
                    stalled_since = Instant::now();
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) =>
                {
                    if stalled_since.elapsed() > LINK_STALL {
                        bail!(
                            "the device has not read from its link for {} s (it may have stopped)",
                            LINK_STALL.as_secs()
                        );
                    }
                    self.read_available()?;
                }
                Err(e) => return Err(e).context("device link"),
            }
        }
        Ok(())
    }

    /// Reads what is there now (waiting at most the read timeout).
    pub(crate) fn poll(&mut self) -> Result<Vec<Frame>> {
        self.read_available()?;
        Ok(std::mem::take(&mut self.pending))
    }

    /// Reads what is there now (waiting at most the read timeout) into `pending`.
    fn read_available(&mut self) -> Result<()> {
        let mut buf = [0u8; 4096];
        match self.stream.read(&mut buf) {
            Ok(0) => bail!("the device closed the link"),
            Ok(n) => {
                if let Some(t) = self.tap.as_mut() {
                    t.extend_from_slice(&buf[..n]);
                }
                for e in self.decoder.push(&buf[..n]) {
                    match e {
                        Event::Frame(mut f) => {
                            if let Some(note) = self.logs.resolve(&mut f) {
                                eprintln!("telemetry: {note}");
                            }
                            self.pending.push(f)
                        }
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
        Ok(())
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
        let mut link = Link::new(stream, sock)?;
        link.send(&Command::Hello)?;
        match link.until(Duration::from_secs(2), |f| matches!(f.body, Body::Hello(_))) {
            Ok(_) => return Ok(link),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow!("no answer"))).with_context(|| {
        format!(
            "no device answering on {} (start one with `edgeflow flash`)",
            sock.display()
        )
    })
}

/// Opens the serial port `path` at `baud` (8N1, raw) and checks that a device answers
/// there (a hello), as [`connect`] does for an emulator's socket. `elf`: the firmware
/// running on the device, whose defmt table decodes its logs (without it they are printed
/// raw with a note).
pub(crate) fn connect_serial(path: &str, baud: u32, elf: Option<&Path>) -> Result<Link> {
    let port = serialport::new(path, baud)
        .timeout(Duration::from_millis(100))
        .open()
        .with_context(|| format!("opening serial port {path}"))?;
    let logs = match elf {
        Some(elf) => LogResolver::for_elf(Some(elf)),
        None => LogResolver::new(
            None,
            Some("no firmware ELF given (--elf): defmt logs are printed undecoded".into()),
        ),
    };
    let mut link = Link::over(Box::new(port), logs);
    let mut last = None;
    // The first hello may be lost while the device still boots or the port settles.
    for _ in 0..3 {
        link.send(&Command::Hello)?;
        match link.until(Duration::from_secs(2), |f| matches!(f.body, Body::Hello(_))) {
            Ok(_) => return Ok(link),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow!("no answer")))
        .with_context(|| format!("no device answering on serial port {path} at {baud} baud"))
}

/// Where `device replay`/`collect` reach the device: the serial port when one is given,
/// else the emulator `flash` started for `board`.
fn open_link(board: &Board, port: &PortArgs) -> Result<Link> {
    match &port.port {
        Some(p) => connect_serial(p, port.baud, port.elf.as_deref()),
        None => connect(&socket(&state_dir()?, &board.name)?).with_context(|| {
            format!(
                "no device running for {} (start one with `edgeflow flash`, or give --port for a board on a serial port)",
                board.name
            )
        }),
    }
}

/// The serial-port options of `device replay` and `device collect`.
#[derive(Args, Clone, Debug, Default)]
pub struct PortArgs {
    /// Talk to the device on this serial port (e.g. /dev/ttyACM0) instead of the emulator
    /// started by `edgeflow flash`.
    #[arg(long, value_name = "DEVICE")]
    pub port: Option<String>,
    /// Baud rate of --port (8 data bits, no parity, 1 stop bit).
    #[arg(long, default_value_t = 115_200)]
    pub baud: u32,
    /// The firmware ELF running on the device behind --port (decodes its defmt logs).
    #[arg(long)]
    pub elf: Option<PathBuf>,
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
        Body::Samples(s) => println!(
            "samples #{} from value {}: {} values of {} axes",
            h.seq,
            s.first,
            s.samples.len(),
            s.axes
        ),
        // Only when the firmware's defmt table was not available (see `Link::poll`).
        Body::Defmt(b) => println!("defmt  #{} {} bytes, not decoded", h.seq, b.len()),
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

/// A recording read for the device: values interleaved by axis, values per frame, and the
/// axis names when the file has them (a CSV header).
pub(crate) struct Recording {
    values: Vec<f32>,
    axes: usize,
    names: Option<Vec<String>>,
}

fn read_recording(path: &Path) -> Result<Recording> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if path.extension().is_some_and(|e| e == "npy") {
        let npy = npyz::NpyFile::new(&bytes[..])
            .with_context(|| format!("{}: not a .npy file", path.display()))?;
        let axes = match npy.shape() {
            [_] => 1,
            [_, 0] => bail!("{}: samples of 0 axes ({:?})", path.display(), npy.shape()),
            [_, a] => *a as usize,
            s => bail!(
                "{}: samples must be [frames] or [frames, axes], not {s:?}",
                path.display()
            ),
        };
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
        return Ok(Recording {
            values: v,
            axes,
            names: None,
        });
    }
    let text =
        String::from_utf8(bytes).with_context(|| format!("{}: not UTF-8 text", path.display()))?;
    let mut out = Vec::new();
    let (mut axes, mut names) = (0, None);
    for (i, line) in text.lines().enumerate() {
        let cells: Vec<&str> = line
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        let nums: Result<Vec<f32>, _> = cells.iter().map(|c| c.parse::<f32>()).collect();
        match nums {
            Ok(n) => {
                if axes == 0 {
                    axes = n.len();
                }
                out.extend(n)
            }
            Err(_) if i == 0 => names = Some(cells.iter().map(|c| c.to_string()).collect()),
            Err(e) => bail!("{}:{}: {e}", path.display(), i + 1),
        }
    }
    Ok(Recording {
        values: out,
        axes: axes.max(1),
        names,
    })
}

/// `edgeflow device …`.
pub fn device(cmd: DeviceCommand) -> Result<()> {
    match cmd {
        DeviceCommand::Replay {
            board,
            data,
            telemetry,
            recording_len,
            port,
        } => {
            let board = load_board(&board)?;
            let rec = read_recording(&data)?;
            let samples = rec.values;
            // Values per recording (all of them: one continuous stream).
            let per_recording = match recording_len {
                None => samples.len().max(1),
                Some(0) => bail!("--recording-len must be at least 1 time step"),
                Some(n) => {
                    let values = n.saturating_mul(rec.axes).max(1);
                    if samples.len() % values != 0 {
                        bail!(
                            "{}: {} time steps of {} axes are not a whole number of recordings of {n} time steps (--recording-len)",
                            data.display(),
                            samples.len() / rec.axes.max(1),
                            rec.axes
                        );
                    }
                    values
                }
            };
            let mut forward = telemetry.as_deref().map(Forward::connect).transpose()?;
            let mut link = open_link(&board, &port)?;
            if forward.is_some() {
                link.tap = Some(Vec::new());
            }
            let mut predictions = 0usize;
            for recording in samples.chunks(per_recording) {
                if recording_len.is_some() {
                    link.send(&Command::Reset)?;
                }
                for chunk in recording.chunks(MAX_PAYLOAD / 4) {
                    let bytes: Vec<u8> = chunk.iter().flat_map(|x| x.to_le_bytes()).collect();
                    link.send(&Command::Samples(&bytes))?;
                    for f in link.poll()? {
                        predictions += usize::from(matches!(f.body, Body::Prediction(_)));
                        print_frame(&f);
                    }
                    if let Some(fw) = forward.as_mut() {
                        fw.send(&mut link)?;
                    }
                }
            }
            // The device handles commands in order: the hello it answers last comes after
            // every prediction of the samples sent and the summary of the last window. (A
            // summary alone cannot mark the end: the device also sends one every
            // `summary_every` inferences, possibly while it still works through samples.)
            link.send(&Command::Summary)?;
            link.send(&Command::Hello)?;
            let mut last = Instant::now();
            'drain: loop {
                let frames = link.poll()?;
                if !frames.is_empty() {
                    last = Instant::now();
                }
                for f in frames {
                    predictions += usize::from(matches!(f.body, Body::Prediction(_)));
                    print_frame(&f);
                    if matches!(f.body, Body::Hello(_)) {
                        break 'drain;
                    }
                }
                if last.elapsed() > Duration::from_secs(30) {
                    bail!(
                        "the device sent nothing for 30 s before answering the end-of-replay hello"
                    );
                }
            }
            let s = link.decoder.stats();
            println!(
                "{} samples sent, {predictions} predictions; link: {} frames, {} lost, {} bytes discarded",
                samples.len(),
                s.frames,
                s.missing_frames,
                s.discarded_bytes
            );
            if let Some(mut fw) = forward {
                fw.send(&mut link)?;
                fw.finish()?;
            }
        }
        DeviceCommand::Collect {
            board,
            label,
            source,
            output,
            axes,
            frames,
            port,
        } => collect(
            &board,
            &label,
            source.as_deref(),
            (axes, frames),
            &port,
            &output,
        )?,
        DeviceCommand::Stop { board } => stop_in(&board, &state_dir()?)?,
    }
    Ok(())
}

/// `edgeflow device stop` for the emulated device whose state is in `state`: sends the
/// exit command over its link and waits until the emulator has closed it. Errors: an
/// unknown board, a socket path too long ([`socket`]), no device answering on the socket
/// (none was started, or it is gone), and a device that did not stop within 10 s.
pub(crate) fn stop_in(board: &str, state: &Path) -> Result<()> {
    let board = load_board(board)?;
    let sock = socket(state, &board.name)?;
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
    Ok(())
}

/// `device replay --telemetry`: the device's telemetry bytes, forwarded unchanged to a
/// TCP listener (a monitor's `ingest --listen`).
struct Forward {
    to: String,
    stream: std::net::TcpStream,
    sent: u64,
}

impl Forward {
    fn connect(target: &str) -> Result<Forward> {
        let to = target.strip_prefix("tcp://").unwrap_or(target).to_string();
        if target.contains("://") && !target.starts_with("tcp://") {
            bail!("--telemetry {target}: only tcp://HOST:PORT is supported");
        }
        let stream = std::net::TcpStream::connect(&to)
            .with_context(|| format!("--telemetry: cannot connect to {to}"))?;
        Ok(Forward {
            to,
            stream,
            sent: 0,
        })
    }

    /// Sends what the link has read since the last call.
    fn send(&mut self, link: &mut Link) -> Result<()> {
        let Some(tap) = link.tap.as_mut() else {
            return Ok(());
        };
        if tap.is_empty() {
            return Ok(());
        }
        self.stream
            .write_all(tap)
            .with_context(|| format!("--telemetry: forwarding to {}", self.to))?;
        self.sent += tap.len() as u64;
        tap.clear();
        Ok(())
    }

    /// Flushes and closes the connection (the listener sees the end of the stream).
    fn finish(self) -> Result<()> {
        let mut s = self.stream;
        s.flush()
            .and_then(|()| s.shutdown(std::net::Shutdown::Write))
            .with_context(|| format!("--telemetry: closing the connection to {}", self.to))?;
        println!("telemetry: {} bytes forwarded to {}", self.sent, self.to);
        Ok(())
    }
}

/// `edgeflow device collect`: with `source`, the recording is streamed into the device's
/// sample path and what comes back is recorded (an emulated board's sensor is the link);
/// without it, `frames` sample frames of `axes` values from the board's own sensor, over
/// `port`.
fn collect(
    board: &str,
    label: &str,
    source: Option<&Path>,
    (axes_arg, frames_arg): (Option<u16>, Option<usize>),
    port: &PortArgs,
    output: &Path,
) -> Result<()> {
    let board = load_board(board)?;
    let kind = match output.extension().and_then(|e| e.to_str()) {
        Some("csv") => DatasetKind::Csv,
        Some("npz") => DatasetKind::Npz(label.parse::<i64>().ok().filter(|&c| c >= 0).ok_or_else(
            || anyhow!("--label {label:?}: an .npz dataset stores the class index (0, 1, …); write a .csv to keep a text label"),
        )?),
        _ => bail!("{}: the dataset must be a .csv or an .npz file", output.display()),
    };
    if label.is_empty() || label.contains(['\n', '\r']) {
        bail!("--label must be one line of text, not {label:?}");
    }
    let emulated = board.runner.machine.is_some();
    if !emulated && port.port.is_none() {
        bail!(
            "{} is a real board: give --port DEVICE, the serial port its application talks on",
            board.name
        );
    }
    let rec = match source {
        Some(source) => {
            let rec = read_recording(source)?;
            if rec.values.is_empty() {
                bail!("{}: no samples", source.display());
            }
            if rec.values.len() % rec.axes != 0 {
                bail!(
                    "{}: {} values are not whole frames of {} axes",
                    source.display(),
                    rec.values.len(),
                    rec.axes
                );
            }
            rec
        }
        None if emulated && port.port.is_none() => bail!(
            "{} is emulated: its sensor is the link, so give --source RECORDING (the samples to stream in)",
            board.name
        ),
        None => {
            let (Some(axes), Some(frames)) = (axes_arg, frames_arg) else {
                bail!("without --source, give --axes (values per sample frame) and --frames (how many to record)");
            };
            if axes == 0 || frames == 0 {
                bail!("--axes and --frames must be at least 1");
            }
            Recording {
                values: Vec::new(),
                axes: usize::from(axes),
                names: None,
            }
        }
    };
    let what = source.map_or_else(|| "--axes".to_string(), |s| s.display().to_string());
    let axes = u16::try_from(rec.axes)
        .ok()
        .filter(|&a| usize::from(a) <= edgeflow_telemetry::MAX_BLOCK_VALUES)
        .ok_or_else(|| anyhow!("{what}: {} axes is too many", rec.axes))?;
    let total = match source {
        Some(_) => rec.values.len(),
        None => frames_arg
            .and_then(|f| f.checked_mul(rec.axes))
            .ok_or_else(|| anyhow!("--frames × --axes is too large"))?,
    };
    let mut link = open_link(&board, port)?;
    link.send(&Command::Collect { axes })?;
    // Grown as blocks arrive: `total` comes from the command line (--frames) and must not
    // decide an allocation up front.
    let mut got: Vec<f32> = Vec::new();
    let take = |frames: Vec<Frame>, got: &mut Vec<f32>| -> Result<()> {
        for f in frames {
            match &f.body {
                Body::Samples(s) => {
                    if s.first as usize != got.len() || s.axes != axes {
                        bail!(
                            "the device sent values from {} ({} axes) where {} ({axes} axes) were expected: samples were lost on the link",
                            s.first,
                            s.axes,
                            got.len()
                        );
                    }
                    got.extend_from_slice(&s.samples);
                }
                Body::Log(l) if l.level <= edgeflow_telemetry::Level::Warn => {
                    print_frame(&f);
                }
                _ => {}
            }
        }
        Ok(())
    };
    // Whole frames per command, so no frame is split between two blocks.
    let per = (MAX_PAYLOAD / 4) / rec.axes * rec.axes;
    let streamed = (|| -> Result<()> {
        for chunk in rec.values.chunks(per) {
            let bytes: Vec<u8> = chunk.iter().flat_map(|x| x.to_le_bytes()).collect();
            link.send(&Command::Samples(&bytes))?;
            let f = link.poll()?;
            take(f, &mut got)?;
        }
        // A sensor may be slow: give up only after 60 s without a new value.
        let (mut last, mut seen) = (Instant::now(), got.len());
        while got.len() < total {
            if last.elapsed() > Duration::from_secs(60) {
                bail!(
                    "the device sent back {} of {} values, then nothing for 60 s",
                    got.len(),
                    total
                );
            }
            let f = link.poll()?;
            take(f, &mut got)?;
            if got.len() != seen {
                (last, seen) = (Instant::now(), got.len());
            }
        }
        Ok(())
    })();
    // Back to classifying, whether or not the collection succeeded.
    let stopped = link.send(&Command::Collect { axes: 0 });
    streamed?;
    stopped?;
    // A sensor keeps sending until the stop arrives: keep the frames asked for.
    if source.is_none() {
        got.truncate(total);
    }
    let s = link.decoder.stats();
    if s.missing_frames > 0 || s.discarded_bytes > 0 {
        bail!(
            "the link lost {} frames ({} bytes discarded): not writing a dataset with holes",
            s.missing_frames,
            s.discarded_bytes
        );
    }
    let names: Vec<String> = match rec.names {
        Some(n) if n.len() == rec.axes && !n.iter().any(|c| c == "label") => n,
        _ => (0..rec.axes).map(|a| format!("axis{a}")).collect(),
    };
    write_dataset(output, kind, &names, label, &got, rec.axes)?;
    println!(
        "collected {} frames of {} axes from {} into {} (label {label:?}); link: {} frames, 0 lost",
        got.len() / rec.axes,
        rec.axes,
        board.name,
        output.display(),
        s.frames
    );
    Ok(())
}

#[derive(Clone, Copy)]
enum DatasetKind {
    Csv,
    /// With the class index.
    Npz(i64),
}

/// Writes collected samples as a dataset edgeflow-data reads: a CSV with one row per
/// frame (axis columns, then `label`; numbers in Rust's shortest round-trip form, so they
/// read back to the same `f32`), or an .npz with `x` float32 [1, frames, axes] and `y`
/// int64 [1].
fn write_dataset(
    path: &Path,
    kind: DatasetKind,
    names: &[String],
    label: &str,
    values: &[f32],
    axes: usize,
) -> Result<()> {
    let bytes = match kind {
        DatasetKind::Csv => {
            let quote = |c: &str| {
                if c.contains([',', '"']) || c.trim() != c {
                    format!("\"{}\"", c.replace('"', "\"\""))
                } else {
                    c.to_string()
                }
            };
            let mut t = names.iter().map(|n| quote(n)).collect::<Vec<_>>().join(",");
            t += ",label\n";
            let label = quote(label);
            for frame in values.chunks(axes) {
                for v in frame {
                    t += &format!("{v},");
                }
                t += &label;
                t.push('\n');
            }
            t.into_bytes()
        }
        DatasetKind::Npz(class) => {
            let frames = (values.len() / axes) as u64;
            let x = npy_bytes(&[1, frames, axes as u64], values.iter().copied())?;
            let y = npy_bytes(&[1], [class].into_iter())?;
            let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored);
            for (name, data) in [("x.npy", x), ("y.npy", y)] {
                zip.start_file(name, opts)?;
                zip.write_all(&data)?;
            }
            zip.finish()?.into_inner()
        }
    };
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

fn npy_bytes<T: npyz::Serialize + npyz::AutoSerialize>(
    shape: &[u64],
    data: impl Iterator<Item = T>,
) -> Result<Vec<u8>> {
    use npyz::WriterBuilder;
    let mut out = Vec::new();
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .writer(&mut out)
        .begin_nd()?;
    w.extend(data)?;
    w.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A device that, like the emulated board, stops reading its input while its own
    /// output is not taken (its UART cannot transmit): `send` must read that output
    /// instead of waiting for the device forever. The emulated board's UART writes one
    /// byte per socket write, so a few hundred unread bytes fill the buffer; the fake
    /// device does the same. Before the fix this deadlocked (found as a hung CI run).
    #[test]
    fn send_reads_the_device_output_while_the_device_is_not_reading() {
        let (host, mut device) = UnixStream::pair().expect("socket pair");
        const OUTPUT: usize = 4000;
        let dev = std::thread::spawn(move || {
            // Output first, one byte per write, blocking while the host does not read.
            for i in 0..OUTPUT {
                device.write_all(&[(i % 251) as u8]).expect("device write");
            }
            // Only then read the input, until the host closes.
            let mut got = 0usize;
            let mut buf = [0u8; 4096];
            loop {
                match device.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got += n,
                }
            }
            got
        });
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let sender = std::thread::spawn(move || {
            let mut link =
                Link::new(host, Path::new("/nonexistent/edgeflow-test.sock")).expect("link");
            link.tap = Some(Vec::new());
            let samples = vec![0u8; 1024];
            let mut sent = 0usize;
            // 1 MB of sample commands: far more than the socket buffers hold.
            for _ in 0..1024 {
                link.send(&Command::Samples(&samples)).expect("send");
                sent += samples.len();
            }
            // Whatever the device wrote after the last send.
            let until = Instant::now() + Duration::from_secs(10);
            while link.tap.as_ref().map_or(0, Vec::len) < OUTPUT && Instant::now() < until {
                link.poll().expect("poll");
            }
            let read = link.tap.take().map_or(0, |t| t.len());
            let _ = done_tx.send((sent, read));
        });
        let (sent, read) = done_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("send deadlocked with a device that waits for its output to be read");
        sender.join().expect("sender");
        assert_eq!(sent, 1024 * 1024);
        assert_eq!(read, OUTPUT, "every byte the device wrote was read");
        let got = dev.join().expect("device");
        assert!(
            got >= sent,
            "the device received {got} of {sent} sample bytes"
        );
    }

    /// The device state directory: the override as given; `XDG_RUNTIME_DIR` only when
    /// it is a private directory of this user; else `edgeflow-<uid>` in the temporary
    /// directory, created 0700, and refused when it is a symlink, a file, writable by
    /// others or another user's (the uid passed in differs from the owner's).
    #[test]
    fn the_state_directory_is_private_or_refused() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let base = std::env::temp_dir().join(format!("edgeflow-state-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).expect("base");
        let uid = std::fs::metadata(&base).expect("base").uid();
        let mode = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod")
        };
        let own = base.join("own");
        assert_eq!(
            state_dir_with(Some(own.clone()), None, &base, uid).expect("override"),
            own
        );
        let xdg = base.join("xdg");
        std::fs::create_dir(&xdg).expect("xdg");
        mode(&xdg, 0o700);
        let got = state_dir_with(None, Some(xdg.clone()), &base, uid).expect("xdg");
        assert_eq!(got, xdg.join("edgeflow"));
        // A shared XDG_RUNTIME_DIR is passed over for the private temporary directory.
        mode(&xdg, 0o777);
        let tmp = base.join(format!("edgeflow-{uid}"));
        assert_eq!(
            state_dir_with(None, Some(xdg.clone()), &base, uid).expect("tmp"),
            tmp
        );
        assert_eq!(std::fs::metadata(&tmp).expect("made").mode() & 0o777, 0o700);
        let refused = |why: &str| {
            let e = state_dir_with(None, None, &base, uid)
                .expect_err(why)
                .to_string();
            assert!(
                e.contains("not a private directory") && e.contains(STATE_DIR_VAR),
                "{why}: {e}"
            );
        };
        mode(&tmp, 0o777);
        refused("writable by others");
        mode(&tmp, 0o700);
        let e = state_dir_with(None, None, &base, uid + 1).expect_err("another user's");
        assert!(e.to_string().contains(&format!("user {}", uid + 1)), "{e}");
        std::fs::remove_dir(&tmp).expect("rm");
        // A link to a private directory of this user: refused for being a link.
        mode(&xdg, 0o700);
        std::os::unix::fs::symlink(&xdg, &tmp).expect("symlink");
        refused("a symlink");
        std::fs::remove_file(&tmp).expect("rm");
        std::fs::write(&tmp, b"").expect("file");
        refused("a file");
        let _ = std::fs::remove_dir_all(&base);
    }
}
