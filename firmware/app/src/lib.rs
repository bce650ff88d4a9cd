//! The edgeflow device application, independent of the board.
//!
//! A board crate (`app-<board>`) provides a byte link (`embedded-io` `Read` + `Write`: a
//! UART on the emulated boards), the model partition as a NOR flash (`embedded-storage`),
//! a way to read that flash in place, a microsecond clock, and its buffers; [`run`] does
//! the rest, forever:
//!
//! 1. boot the newest valid model slot ([`edgeflow_slots::Slots::active`]); the artifact is
//!    parsed in place from flash (never copied, never compiled into the firmware);
//! 2. send a telemetry hello;
//! 3. read commands ([`edgeflow_telemetry::command`]) from the link: samples go through the
//!    artifact's feature pipeline and model ([`edgeflow::Engine`]), each prediction goes out
//!    as a telemetry prediction frame and into the [`SummaryAccumulator`] (when the artifact
//!    has a monitoring baseline), which goes out as a summary frame every
//!    [`Config::summary_every`] inferences or on request;
//! 4. a model update over the link is written to the inactive slot while the current model
//!    keeps serving; on commit the device switches to it (back to 1) without a reboot or a
//!    firmware rebuild.
//!
//! Data collection (`edgeflow device collect`): after a `Collect { axes }` command the
//! device streams the samples its sensor source produces back to the host as telemetry
//! [`SampleBlock`] frames (numbered by value, so a lost block shows), instead of
//! classifying them, until `Collect { axes: 0 }`. On the emulated boards the sensor source
//! is the link itself, so the host streams a recording in and records what the device's
//! sample path received.
//!
//! A damaged command is counted (summary `link_errors`), reported in a log frame, and
//! skipped; the link recovers at the next delimiter.
//!
//! Logs (boot, the slot chosen, model switches, errors) use `defmt`: the device sends the
//! format-string index and the arguments in a telemetry [`DefmtLog`] frame ([`logger`]),
//! and the host decodes them with the ELF's defmt table; the strings take no flash.
#![no_std]
#![deny(unsafe_code)]

use core::cell::RefCell;

use edgeflow::Engine;
use edgeflow_format::baseline::MonitoringBaseline;
use edgeflow_format::graph::DType;
use edgeflow_slots::{Active, Slots, Update};
use edgeflow_telemetry::command::{Command, CommandReader, LinkError, MAX_ENCODED};
use edgeflow_telemetry::{
    truncated, DefmtLog, Emitter, FrameBody, Hello, Prediction, SampleBlock, SummaryAccumulator,
    DEFMT_LEN,
};

mod buffers;
#[cfg(feature = "emulated")]
pub mod emulated;
mod logger;

/// Logs with `defmt` at `$level` and sends the frame on `$out`'s link at time `$now`.
macro_rules! dlog {
    ($out:expr, $now:expr, $level:ident, $($arg:tt)+) => {{
        defmt::$level!($($arg)+);
        $out.send_log($now);
    }};
}
use embedded_io::{Read, Write};
use embedded_storage::nor_flash::NorFlash;

/// What the application needs to know about its board.
pub struct Config {
    /// Written into every telemetry frame.
    pub device_id: u64,
    /// Board name (as in `boards/*.toml`).
    pub board: &'static str,
    /// Firmware name and version.
    pub firmware: &'static str,
    /// Send a summary every this many inferences (0: only on request).
    pub summary_every: u32,
}

/// The board's services.
pub trait Platform {
    /// Microseconds since boot.
    fn now_us(&self) -> u64;
    /// Core clock cycles since boot (for the cost figures in log frames; 0 if unknown).
    fn cycles(&self) -> u64;
    /// The model partition's bytes `[offset, offset + len)` (offsets as the flash driver
    /// uses them), readable in place. The application only reads the active slot through
    /// it, and only writes the other slot while such a view is alive.
    fn mapped(&self, offset: u32, len: u32) -> &'static [u8];
    /// Peak stack bytes so far (0 if not measured).
    fn stack_peak(&self) -> u32;
    /// Stops the device (emulators exit).
    fn exit(&self) -> !;
}

/// A sample source on the device itself (a real board's IMU). The emulated boards have
/// none ([`NoSensor`]): their samples arrive over the link as commands.
pub trait Sensor {
    /// Writes the sample values that are due now (whole frames, interleaved by axis) into
    /// the front of `out` and returns how many; 0 when none is due. The board paces the
    /// sample rate. Must not block: the application polls it between link reads (so a
    /// board with a sensor gives a link whose `read` returns 0 when no byte is waiting).
    fn poll(&mut self, out: &mut [f32]) -> usize;
}

/// No sensor: every sample comes over the link.
pub struct NoSensor;

impl Sensor for NoSensor {
    fn poll(&mut self, _out: &mut [f32]) -> usize {
        0
    }
}

/// Buffers the board gives the application.
pub struct Memory<'m> {
    /// Feature workspace (`f32` words, at least the model's `workspace_len`).
    pub workspace: &'m mut [f32],
    /// Tensor arena (16-byte aligned, at least the model's `arena_bytes`).
    pub arena: &'m mut [u8],
    /// Summary counters (at least `SummaryAccumulator::words_needed` words).
    pub summary: &'m mut [u32],
    /// Model input as real numbers, for the summary (at least the input's element count).
    pub features: &'m mut [f32],
    /// Telemetry frame buffer (a summary frame must fit).
    pub tx: &'m mut [u8],
}

enum Outcome {
    Switch,
    Exit,
}

/// Telemetry output: the link, the emitter and the frame buffer.
struct Out<'x, L> {
    link: &'x mut L,
    em: &'x mut Emitter,
    tx: &'x mut [u8],
    /// Bytes and core cycles of the last frame encoded by `send_timed` (encoding only).
    last_cost: (usize, u64),
}

impl<L: Write> Out<'_, L> {
    fn send<B: FrameBody>(&mut self, now: u64, body: &B) {
        // On error the sequence number advanced anyway: the host sees the gap.
        if let Ok(n) = self.em.frame(now, body, self.tx) {
            let _ = self.link.write_all(&self.tx[..n]);
        }
    }

    fn send_timed<B: FrameBody>(&mut self, now: u64, body: &B, cycles: &dyn Fn() -> u64) {
        let c0 = cycles();
        let r = self.em.frame(now, body, self.tx);
        let c1 = cycles();
        // On error the sequence number advanced anyway: the host sees the gap.
        if let Ok(n) = r {
            self.last_cost = (n, c1.saturating_sub(c0));
            let _ = self.link.write_all(&self.tx[..n]);
        }
    }

    /// Sends the defmt frame the last log call left in the logger, if any.
    fn send_log(&mut self, now: u64) {
        let mut frame = [0u8; DEFMT_LEN];
        if let Some(n) = logger::take(&mut frame) {
            self.send(
                now,
                &DefmtLog {
                    frame: frame.get(..n).unwrap_or(&[]),
                },
            );
        }
    }
}

/// The running state shared by the feature and prediction callbacks.
struct Serving<'x, 'b, 's, L> {
    out: Out<'x, L>,
    acc: Option<SummaryAccumulator<'b, 's>>,
    features: &'x mut [f32],
    input: (DType, f32, i32),
    arena_bytes: u32,
    since: u64,
    inferences: u32,
    link_errors: u32,
}

/// Runs the application forever (until an `Exit` command).
#[allow(clippy::too_many_arguments)]
pub fn run<L, F, P, S>(
    link: &mut L,
    sensor: &mut S,
    flash: F,
    base: u32,
    slot_size: u32,
    platform: &P,
    cfg: &Config,
    mem: Memory<'_>,
) -> !
where
    L: Read + Write,
    F: NorFlash,
    P: Platform,
    S: Sensor,
{
    let Memory {
        workspace,
        arena,
        summary,
        features,
        tx,
    } = mem;
    let mut reader = CommandReader::<{ MAX_ENCODED }>::new();
    let mut slots = match Slots::new(flash, base, slot_size) {
        Ok(s) => s,
        Err(e) => {
            let mut em = Emitter::new(cfg.device_id, 0);
            let mut out = Out {
                link: &mut *link,
                em: &mut em,
                tx: &mut *tx,
                last_cost: (0, 0),
            };
            dlog!(out, platform.now_us(), error, "model slots: {}", e);
            platform.exit()
        }
    };
    // One emitter for the device's life: sequence numbers stay in order across model
    // switches.
    let mut em = Emitter::new(cfg.device_id, 0);
    {
        let mut out = Out {
            link: &mut *link,
            em: &mut em,
            tx: &mut *tx,
            last_cost: (0, 0),
        };
        dlog!(
            out,
            platform.now_us(),
            info,
            "boot: {=str} on {=str}",
            cfg.firmware,
            cfg.board
        );
    }
    loop {
        let active = slots.active().ok().flatten();
        let outcome = serve(
            &mut *link,
            &mut *sensor,
            &mut slots,
            &mut reader,
            platform,
            cfg,
            active,
            &mut em,
            workspace,
            arena,
            summary,
            features,
            tx,
        );
        if let Outcome::Exit = outcome {
            platform.exit()
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn serve<L, F, P, S>(
    link: &mut L,
    sensor: &mut S,
    slots: &mut Slots<F>,
    reader: &mut CommandReader<{ MAX_ENCODED }>,
    platform: &P,
    cfg: &Config,
    active: Option<Active>,
    em: &mut Emitter,
    workspace: &mut [f32],
    arena: &mut [u8],
    summary: &mut [u32],
    features: &mut [f32],
    tx: &mut [u8],
) -> Outcome
where
    L: Read + Write,
    F: NorFlash,
    P: Platform,
    S: Sensor,
{
    let bytes: &'static [u8] = active.map_or(&[], |a| platform.mapped(a.offset, a.header.len));
    let model_hash = bytes
        .get(12..16)
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    em.model_hash = model_hash;
    let mut out = Out {
        link,
        em,
        tx,
        last_cost: (0, 0),
    };
    let now = platform.now_us();
    let model = match active.map(|_| edgeflow::Model::parse(bytes)) {
        Some(Ok(m)) => Some(m),
        Some(Err(e)) => {
            dlog!(out, now, error, "model: {}", e);
            None
        }
        None => None,
    };
    match active {
        Some(a) => dlog!(
            out,
            now,
            info,
            "model slot {=u8} chosen: update {=u32}, {=u32} bytes, model {=u32:#010x}",
            a.slot,
            a.header.sequence,
            a.header.len,
            model_hash
        ),
        None => dlog!(out, now, warn, "no valid model slot: waiting for an update"),
    }
    let mut engine = match &model {
        Some(m) => match Engine::new(m, workspace, arena) {
            Ok(e) => Some(e),
            Err(e) => {
                dlog!(out, now, error, "engine: {}", e);
                None
            }
        },
        None => None,
    };
    let arena_bytes = model.as_ref().map_or(0, |m| m.arena_bytes() as u32);
    let hello = Hello {
        firmware: truncated(cfg.firmware),
        board: truncated(cfg.board),
        model: truncated(""),
        artifact_version: active.map_or((0, 0), |a| a.header.artifact_version),
        slot: active.map_or(255, |a| a.slot),
        slot_sequence: active.map_or(0, |a| a.header.sequence),
        arena_bytes,
    };
    out.send(now, &hello);
    let baseline = model
        .as_ref()
        .and_then(|m| m.nn().artifact().monitoring_baseline)
        .and_then(|b| MonitoringBaseline::parse(b).ok());
    let acc = baseline.and_then(|b| SummaryAccumulator::new(b, summary, now).ok());
    let input = model
        .as_ref()
        .and_then(|m| m.nn().header().inputs.first().copied())
        .map_or((DType::F32, 1.0, 0), |d| match d.quant {
            Some(q) => (d.dtype, q.scale, q.zero_point),
            None => (d.dtype, 1.0, 0),
        });
    let st = RefCell::new(Serving {
        out,
        acc,
        features,
        input,
        arena_bytes,
        since: now,
        inferences: 0,
        link_errors: 0,
    });
    let mut update: Option<Update> = None;
    // Data collection: values per sample frame (0: off) and values sent so far.
    let mut collect: (u16, u32) = (0, 0);
    let mut rx = [0u8; 64];
    let mut samples = [0f32; 256];
    // Samples from either source (the link's samples command, or the board's sensor) take
    // one path: streamed back while collecting, else features + inference.
    macro_rules! feed {
        ($k:expr, $now:expr) => {{
            let now = $now;
            if collect.0 > 0 {
                let block = SampleBlock {
                    first: collect.1,
                    axes: collect.0,
                    samples: &samples[..$k],
                };
                collect.1 = collect.1.wrapping_add($k as u32);
                st.borrow_mut().out.send(now, &block);
                continue;
            }
            let Some(engine) = engine.as_mut() else {
                let mut s = st.borrow_mut();
                dlog!(s.out, now, warn, "samples dropped: no model");
                continue;
            };
            st.borrow_mut().since = now;
            // Frames of the model input new since the last inference (summary counts).
            let new_frames = core::cell::Cell::new(0u32);
            let r = engine.push_observed_frames(
                &samples[..$k],
                |input, n| {
                    new_frames.set(n);
                    let mut s = st.borrow_mut();
                    let (dtype, scale, zp) = s.input;
                    let feats = &mut *s.features;
                    match dtype {
                        DType::I8 => {
                            for (d, &q) in feats.iter_mut().zip(input) {
                                *d = scale * ((q as i8 as i32 - zp) as f32);
                            }
                        }
                        _ => {
                            for (d, c) in feats.iter_mut().zip(input.chunks_exact(4)) {
                                *d = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                            }
                        }
                    }
                },
                |p| {
                    let t = platform.now_us();
                    let mut s = st.borrow_mut();
                    let latency = t.saturating_sub(s.since);
                    s.since = t;
                    s.inferences += 1;
                    let Serving { acc, features, .. } = &mut *s;
                    if let Some(a) = acc.as_mut() {
                        a.record_frames(features, new_frames.get(), p.class, p.score);
                    }
                    s.out.send_timed(
                        t,
                        &Prediction {
                            class: p.class as u16,
                            score: p.score,
                            latency_us: latency.min(u64::from(u32::MAX)) as u32,
                        },
                        &|| platform.cycles(),
                    );
                    if cfg.summary_every > 0 && s.inferences % cfg.summary_every == 0 {
                        send_summary(&mut s, t, platform);
                    }
                },
            );
            if let Err(e) = r {
                dlog!(st.borrow_mut().out, now, error, "inference: {}", e);
            }
        }};
    }
    loop {
        let got = sensor.poll(&mut samples);
        if got > 0 {
            feed!(got.min(samples.len()), platform.now_us());
        }
        let n = {
            let mut s = st.borrow_mut();
            match s.out.link.read(&mut rx) {
                Ok(n) => n,
                Err(_) => 0,
            }
        };
        for &b in &rx[..n] {
            let Some(frame) = reader.push(b) else {
                continue;
            };
            let now = platform.now_us();
            let cmd = match frame {
                Ok(c) => c,
                Err(e) => {
                    let mut s = st.borrow_mut();
                    s.link_errors += 1;
                    if let Some(a) = s.acc.as_mut() {
                        a.record_link_errors(1);
                    }
                    log_link(&mut s.out, now, e);
                    continue;
                }
            };
            match cmd {
                Command::Samples(raw) => {
                    let k = (raw.len() / 4).min(samples.len());
                    for (d, c) in samples[..k].iter_mut().zip(raw.chunks_exact(4)) {
                        *d = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                    }
                    feed!(k, now);
                }
                Command::UpdateBegin { len, crc } => {
                    let mut s = st.borrow_mut();
                    match slots.begin(len, crc) {
                        Ok(u) => {
                            dlog!(
                                s.out,
                                now,
                                info,
                                "update begin slot={=u8} len={=u32}",
                                u.slot(),
                                len
                            );
                            update = Some(u);
                        }
                        Err(e) => {
                            update = None;
                            dlog!(s.out, now, error, "update: {}", e);
                        }
                    }
                }
                Command::UpdateData { offset, data } => {
                    let mut s = st.borrow_mut();
                    let r = match update.as_mut() {
                        None => Err("no update in progress"),
                        Some(u) if u.written() != offset => Err("data out of order"),
                        Some(u) => slots.write(u, data).map_err(|_| "flash write failed"),
                    };
                    if let Err(e) = r {
                        let expected = update.as_ref().map_or(0, |u| u.written());
                        update = None;
                        dlog!(
                            s.out,
                            now,
                            error,
                            "update: {=str} (offset {=u32}, expected {=u32}); aborted",
                            e,
                            offset,
                            expected
                        );
                    }
                }
                Command::UpdateCommit => {
                    let mut s = st.borrow_mut();
                    match update.take().map(|u| slots.commit(u)) {
                        Some(Ok(a)) => {
                            dlog!(
                                s.out,
                                now,
                                info,
                                "update ok slot={=u8} seq={=u32}",
                                a.slot,
                                a.header.sequence
                            );
                            return Outcome::Switch;
                        }
                        Some(Err(e)) => dlog!(s.out, now, error, "update: {}", e),
                        None => {
                            dlog!(s.out, now, error, "update: nothing to commit")
                        }
                    }
                }
                Command::Summary => send_summary(&mut st.borrow_mut(), now, platform),
                Command::Hello => st.borrow_mut().out.send(now, &hello),
                Command::Reset => {
                    if let Some(e) = engine.as_mut() {
                        e.reset();
                    }
                }
                Command::Collect { axes } => {
                    collect = (axes, 0);
                    let mut s = st.borrow_mut();
                    match axes {
                        0 => dlog!(s.out, now, info, "collect off"),
                        a => dlog!(s.out, now, info, "collect on axes={=u16}", a),
                    }
                }
                Command::Exit => {
                    let _ = st.borrow_mut().out.link.flush();
                    return Outcome::Exit;
                }
            }
        }
    }
}

fn log_link<L: Write>(out: &mut Out<'_, L>, now: u64, e: LinkError) {
    dlog!(out, now, warn, "link: {}", e);
}

fn send_summary<L: Write, P: Platform>(s: &mut Serving<'_, '_, '_, L>, now: u64, platform: &P) {
    let Serving {
        out,
        acc,
        arena_bytes,
        ..
    } = s;
    match acc.as_mut() {
        Some(a) => {
            a.note_high_water(platform.stack_peak(), *arena_bytes);
            let prediction = out.last_cost;
            let c0 = platform.cycles();
            let r = out.em.summary(now, a, out.tx);
            let c1 = platform.cycles();
            if let Ok(n) = r {
                let _ = out.link.write_all(&out.tx[..n]);
                // What telemetry costs the device: encoding (postcard + COBS + CRC) only.
                dlog!(
                    out,
                    now,
                    debug,
                    "cost: summary {=usize} B {=u64} cycles; prediction {=usize} B {=u64} cycles",
                    n,
                    c1.saturating_sub(c0),
                    prediction.0,
                    prediction.1
                );
            }
            let lost = logger::dropped();
            if lost > 0 {
                dlog!(out, now, warn, "log frames lost so far: {=u32}", lost);
            }
            a.reset(now);
        }
        None => dlog!(
            out,
            now,
            info,
            "no summary: the artifact has no monitoring baseline"
        ),
    }
}
