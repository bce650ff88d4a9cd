//! Driving the device application (`firmware/app-<board>`) under QEMU over its UART link:
//! build it once, compose a model partition image, start it, send commands, read
//! telemetry.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use edgeflow_compile::board::Board;
use edgeflow_telemetry::command::{Command as Cmd, MAX_ENCODED};
use edgeflow_telemetry::{Decoder, Event, LogResolver, LogStats, Stats};

use crate::root;

/// Where each board's app keeps its model partition (flash address, from the board file's
/// `[layout]`, as the firmware build reads it) and the cargo profile it is built with (the
/// board file's `[app] profile`); `None` for a board without both tables.
pub fn app_layout(board: &Board) -> Option<(u32, String)> {
    let profile = board.app.as_ref()?.profile.clone();
    let origin = u32::try_from(board.layout?.slots_origin).ok()?;
    Some((origin, profile))
}

/// Builds the application for `board` and returns the ELF path.
pub fn build_app(board: &Board) -> Result<PathBuf, String> {
    let (_, profile) = app_layout(board).ok_or("no application for this board")?;
    let app = root().join("firmware").join(format!("app-{}", board.name));
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(&app)
        .args(["build", "--quiet", "--profile", &profile]);
    for (k, _) in std::env::vars() {
        if k.starts_with("CARGO_") && k != "CARGO_HOME" || k == "RUSTFLAGS" || k == "RUSTC_WRAPPER"
        {
            cmd.env_remove(&k);
        }
    }
    let out = cmd.output().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "app build failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(root()
        .join("firmware/target")
        .join(&board.target)
        .join(&profile)
        .join(format!("edgeflow-app-{}", board.name)))
}

/// A partition image with `artifact` installed in slot A at update sequence 1.
pub fn partition_image(artifact: &[u8]) -> Vec<u8> {
    let mut img = edgeflow_slots::header_area(artifact, 1).to_vec();
    img.extend_from_slice(artifact);
    img
}

enum Msg {
    Event(Event),
    Closed(Stats, LogStats),
}

/// A running device: commands in, telemetry events out.
pub struct Device {
    child: Child,
    stdin: ChildStdin,
    rx: mpsc::Receiver<Msg>,
    /// Link statistics, once the device has stopped.
    pub stats: Option<Stats>,
    /// Defmt log statistics (decoded, corrupt, undecoded), once the device has stopped.
    pub logs: Option<LogStats>,
    /// Bytes sent to the device.
    pub sent: usize,
}

impl Device {
    /// Starts `elf` on `board` under QEMU with the UART on stdin/stdout and, if given, the
    /// partition image loaded at `partition_addr`. The device's defmt log frames arrive
    /// decoded with `elf`'s table (as `Body::Log`).
    pub fn start(
        board: &Board,
        elf: &Path,
        partition: Option<(&Path, u32)>,
    ) -> Result<Device, String> {
        Self::start_with(board, elf, partition, LogResolver::for_elf(Some(elf)))
    }

    /// As [`Device::start`], with the defmt frames resolved by `logs` (e.g. one without a
    /// table, to see the raw frames).
    pub fn start_with(
        board: &Board,
        elf: &Path,
        partition: Option<(&Path, u32)>,
        mut logs: LogResolver,
    ) -> Result<Device, String> {
        let machine = board
            .runner
            .machine
            .as_ref()
            .ok_or("board has no QEMU machine")?;
        let mut cmd = Command::new("qemu-system-arm");
        cmd.args(["-machine", machine]);
        if let Some(cpu) = &board.runner.qemu_cpu {
            cmd.args(["-cpu", cpu]);
        }
        cmd.args([
            "-nographic",
            "-monitor",
            "none",
            "-serial",
            "stdio",
            "-semihosting-config",
            "enable=on,target=native",
            "-icount",
            "shift=0",
            "-kernel",
        ])
        .arg(elf);
        if let Some((img, addr)) = partition {
            cmd.arg("-device").arg(format!(
                "loader,file={},addr={addr:#x},force-raw=on",
                img.display()
            ));
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start qemu: {e}"))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let mut stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut d = Decoder::new();
            let mut buf = [0u8; 4096];
            loop {
                match stdout.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        for mut e in d.push(&buf[..n]) {
                            if let Event::Frame(f) = &mut e {
                                if let Some(note) = logs.resolve(f) {
                                    eprintln!("{note}");
                                }
                            }
                            if tx.send(Msg::Event(e)).is_err() {
                                return;
                            }
                        }
                    }
                }
            }
            if let Some(e) = d.finish() {
                let _ = tx.send(Msg::Event(e));
            }
            let _ = tx.send(Msg::Closed(*d.stats(), *logs.stats()));
        });
        Ok(Device {
            child,
            stdin,
            rx,
            stats: None,
            logs: None,
            sent: 0,
        })
    }

    /// Sends one command.
    pub fn send(&mut self, c: &Cmd<'_>) -> Result<(), String> {
        let mut buf = vec![0u8; MAX_ENCODED];
        let n = c.encode(&mut buf).map_err(|e| e.to_string())?;
        self.send_raw(&buf[..n])
    }

    /// Sends bytes as they are (for corrupting the link on purpose).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.sent += bytes.len();
        self.stdin
            .write_all(bytes)
            .and_then(|_| self.stdin.flush())
            .map_err(|e| format!("device link: {e}"))
    }

    /// Collects events until `done` says so (inclusive) or `timeout` passes.
    pub fn until(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&Event) -> bool,
    ) -> Result<Vec<Event>, String> {
        let start = Instant::now();
        let mut got = Vec::new();
        loop {
            let left = timeout
                .checked_sub(start.elapsed())
                .ok_or_else(|| format!("device: timeout after {} events: {got:?}", got.len()))?;
            match self.rx.recv_timeout(left) {
                Ok(Msg::Event(e)) => {
                    let stop = done(&e);
                    got.push(e);
                    if stop {
                        return Ok(got);
                    }
                }
                Ok(Msg::Closed(s, l)) => {
                    self.stats = Some(s);
                    self.logs = Some(l);
                    return Err(format!("device stopped; events: {got:?}"));
                }
                Err(_) => {
                    return Err(format!(
                        "device: timeout after {} events: {got:?}",
                        got.len()
                    ))
                }
            }
        }
    }

    /// Sends `Exit`, waits for QEMU to stop, and returns the remaining events and the link
    /// statistics.
    pub fn stop(self, timeout: Duration) -> Result<(Vec<Event>, Stats), String> {
        self.stop_with_logs(timeout).map(|(e, s, _)| (e, s))
    }

    /// As [`Device::stop`], with the defmt log statistics too.
    pub fn stop_with_logs(
        mut self,
        timeout: Duration,
    ) -> Result<(Vec<Event>, Stats, LogStats), String> {
        self.send(&Cmd::Exit)?;
        let start = Instant::now();
        let mut rest = Vec::new();
        loop {
            let left = timeout.saturating_sub(start.elapsed());
            match self.rx.recv_timeout(left) {
                Ok(Msg::Event(e)) => rest.push(e),
                Ok(Msg::Closed(s, l)) => {
                    let _ = self.child.wait();
                    return Ok((rest, s, l));
                }
                Err(_) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err("device did not stop".into());
                }
            }
        }
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
