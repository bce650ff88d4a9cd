//! `edgeflow validate MODEL --board BOARD [--gates gates.toml] [--baseline DEPLOYED] [--hil]`:
//! the gate between a candidate model and the device.
//!
//! Gates (limits from `--gates`, defaults in [`Gates`]):
//! - `accuracy`, `class accuracy <label>`: top-1 accuracy of the int8 model, exactly as the
//!   device computes it, on `--test-data` rows with `--test-labels`;
//! - `float-int8 agreement`: top-1 agreement with the float model given by `--float`;
//! - `vs baseline`: accuracy not below the deployed model's (`--baseline`) minus a margin;
//! - `RAM`: arena + feature workspace + stack ≤ board RAM − reserve (stack measured
//!   with `--hil`, else the `stack_bytes` figure). The feature workspace is what the
//!   device's `edgeflow` facade takes (`edgeflow::Model::workspace_len` words): the
//!   pipeline's workspace plus, for an image pipeline, the buffer of one image's values;
//! - `flash`: artifact ≤ board flash − the firmware's own flash;
//! - `instructions / inference`: ≤ `max_instructions`, and ≤ the real-time deadline of a
//!   streaming pipeline (its hop `stride / rate_hz` × the board clock × `deadline_fraction`,
//!   counting one instruction per cycle, as QEMU's `-icount shift=0` does); measured on the
//!   emulated board with `--hil`, otherwise skipped;
//! - `HIL bit-exact`: with `--hil`, N test samples run on the board under QEMU and every
//!   output byte equals the host's.
//!
//! A gate without the data it needs is reported as skipped, with the reason. The command
//! prints a table (or `--json`) and exits non-zero when any gate fails.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use edgeflow_compile::board::Board;
use serde::Deserialize;

use crate::quantize::{argmax, decode, encode};

/// Arguments of `edgeflow validate`.
#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// The candidate model (an edgeflow artifact or a .tflite).
    pub(crate) model: PathBuf,
    /// The board: a name from `edgeflow boards`, or a path to a board TOML.
    #[arg(long)]
    board: String,
    #[command(flatten)]
    boards: crate::boards::BoardsDirArg,
    /// Gate limits (TOML; unknown keys are errors).
    #[arg(long)]
    gates: Option<PathBuf>,
    /// The deployed model the candidate must not be worse than.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// The float model the candidate was quantized from (for float-vs-int8 agreement).
    #[arg(long)]
    float: Option<PathBuf>,
    /// Test feature rows (.npy float32, `[N, …input shape]`).
    #[arg(long)]
    test_data: Option<PathBuf>,
    /// Test labels (.npy integer class indices, `[N]`).
    #[arg(long)]
    test_labels: Option<PathBuf>,
    /// Run test samples on the emulated board (QEMU) and require bit-equal outputs.
    #[arg(long)]
    hil: bool,
    /// How many test samples `--hil` runs.
    #[arg(long, default_value_t = 8)]
    hil_samples: usize,
    /// How to run without the hardware-in-the-loop check, for the error when it cannot
    /// run (default: "leave out --hil"; the pipeline names its project setting).
    #[arg(skip)]
    pub(crate) hil_off: Option<String>,
    /// Print the gates as JSON.
    #[arg(long)]
    json: bool,
    /// Also write an HTML report: each gate with value, limit and result, float-vs-int8
    /// agreement, and a chart of the budgets used (written also when a gate fails).
    #[arg(long, value_name = "OUT.html")]
    report: Option<PathBuf>,
}

/// Gate limits. Accuracies are fractions in `[0, 1]`.
#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Gates {
    /// Minimum overall top-1 accuracy.
    pub min_accuracy: f64,
    /// Minimum top-1 accuracy of every class.
    pub min_class_accuracy: f64,
    /// Minimum float-vs-int8 top-1 agreement.
    pub min_agreement: f64,
    /// Largest accuracy drop allowed against the deployed model (fraction, 0.005 = 0.5 points).
    pub max_accuracy_drop: f64,
    /// RAM kept free for the application (bytes).
    pub ram_reserve_bytes: u64,
    /// Stack figure used when the stack is not measured (bytes).
    pub stack_bytes: u64,
    /// Flash the firmware itself takes besides the artifact (bytes).
    pub firmware_flash_bytes: u64,
    /// Instruction budget per inference (0: none).
    pub max_instructions: u64,
    /// Share of a streaming pipeline's hop the inference may take.
    pub deadline_fraction: f64,
}

impl Default for Gates {
    fn default() -> Self {
        Self {
            min_accuracy: 0.0,
            min_class_accuracy: 0.0,
            min_agreement: 0.98,
            max_accuracy_drop: 0.005,
            ram_reserve_bytes: 8 * 1024,
            stack_bytes: 4 * 1024,
            firmware_flash_bytes: 64 * 1024,
            max_instructions: 0,
            deadline_fraction: 0.5,
        }
    }
}

/// Outcome of one gate.
#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    /// Within the limit.
    Pass,
    /// Outside the limit.
    Fail,
    /// Not evaluated, with the reason.
    Skip(String),
}

/// One row of the gate table.
#[derive(Clone, Debug)]
pub struct Gate {
    /// Gate name.
    pub name: String,
    /// The measured value.
    pub measured: String,
    /// The limit.
    pub limit: String,
    /// The outcome.
    pub status: Status,
}

fn gate(name: impl Into<String>, measured: String, limit: String, ok: bool) -> Gate {
    Gate {
        name: name.into(),
        measured,
        limit,
        status: if ok { Status::Pass } else { Status::Fail },
    }
}

fn skip(name: &str, why: &str) -> Gate {
    Gate {
        name: name.into(),
        measured: "-".into(),
        limit: "-".into(),
        status: Status::Skip(why.into()),
    }
}

/// Loads a gates file.
pub fn load_gates(path: &Path) -> Result<Gates> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let g: Gates =
        toml::from_str(&text).with_context(|| format!("{}: invalid gates", path.display()))?;
    for (k, v) in [
        ("min_accuracy", g.min_accuracy),
        ("min_class_accuracy", g.min_class_accuracy),
        ("min_agreement", g.min_agreement),
        ("max_accuracy_drop", g.max_accuracy_drop),
        ("deadline_fraction", g.deadline_fraction),
    ] {
        if !(0.0..=1.0).contains(&v) {
            bail!("{}: {k} = {v} is not a fraction in [0, 1]", path.display());
        }
    }
    Ok(g)
}

fn artifact_of(path: &Path) -> Result<Vec<u8>> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if edgeflow_compile::is_artifact(&bytes) {
        edgeflow_nn::Model::parse(&bytes)
            .with_context(|| format!("{} is not a valid artifact", path.display()))?;
        Ok(bytes)
    } else {
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
        Ok(edgeflow_compile::compile(&bytes, name)
            .with_context(|| format!("cannot convert {}", path.display()))?
            .artifact)
    }
}

/// Top-1 predictions of an artifact on float feature rows (inputs quantized with the
/// model's own input parameters, as the device's feature pipeline does).
fn predict(artifact: &[u8], rows: &[Vec<f32>]) -> Result<Vec<usize>> {
    let m = edgeflow_nn::Model::parse(artifact)?;
    let (i, o) = (m.header().inputs[0], m.header().outputs[0]);
    let mut arena = edgeflow_nn::HostArena::for_model(&m)?;
    let mut rt = edgeflow_nn::Runtime::new(&m, arena.as_mut_bytes())?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let slot = rt.input_mut(0)?;
        let x = encode(&i, r);
        if slot.len() != x.len() {
            bail!(
                "test rows have {} values, the model input needs {}",
                r.len(),
                slot.len() / i.dtype.size()
            );
        }
        slot.copy_from_slice(&x);
        rt.invoke()?;
        out.push(argmax(&decode(&o, rt.output(0)?)));
    }
    Ok(out)
}

fn read_labels(path: &Path) -> Result<Vec<usize>> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let npy = npyz::NpyFile::new(&bytes[..])
        .with_context(|| format!("{} is not a valid .npy file", path.display()))?;
    let descr = match npy.dtype() {
        npyz::DType::Plain(ts) => ts.to_string(),
        other => bail!("{}: unsupported .npy dtype {other:?}", path.display()),
    };
    let v: Vec<i64> = if descr.ends_with("i8") {
        npy.into_vec::<i64>()?
    } else if descr.ends_with("i4") {
        npy.into_vec::<i32>()?.into_iter().map(i64::from).collect()
    } else {
        bail!(
            "{}: dtype {descr}; labels must be int32 or int64 class indices",
            path.display()
        );
    };
    v.into_iter()
        .enumerate()
        .map(|(i, l)| {
            usize::try_from(l).with_context(|| format!("{}: label {i} is {l}", path.display()))
        })
        .collect()
}

fn read_rows(path: &Path, n: usize) -> Result<Vec<Vec<f32>>> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let npy = npyz::NpyFile::new(&bytes[..])
        .with_context(|| format!("{} is not a valid .npy file", path.display()))?;
    let shape = npy.shape().to_vec();
    let per_row: u64 = shape.iter().skip(1).product();
    if per_row as usize != n {
        bail!(
            "{}: shape {shape:?} gives rows of {per_row} values; the model input needs {n}",
            path.display()
        );
    }
    let v: Vec<f32> = npy
        .into_vec()
        .with_context(|| format!("{}: test rows must be float32", path.display()))?;
    Ok(v.chunks(n).map(<[f32]>::to_vec).collect())
}

fn pct(x: f64) -> String {
    format!("{:.2} %", 100.0 * x)
}

/// One budget of the report's chart: `(name, used, limit)` in the budget's own unit
/// (bytes or instructions).
pub(crate) type Budget = (String, f64, f64);

/// Runs the subcommand.
pub fn run(a: ValidateArgs) -> Result<()> {
    let (board, rows_gates, budgets) = check(&a)?;
    let failed: Vec<&str> = rows_gates
        .iter()
        .filter(|g| g.status == Status::Fail)
        .map(|g| g.name.as_str())
        .collect();
    if a.json {
        println!("{}", json(&a.model, &board, &rows_gates));
    } else {
        print!("{}", table(&rows_gates));
    }
    if let Some(path) = &a.report {
        let html = report_html(&a.model, &board, &rows_gates, &budgets)?;
        fs::write(path, html).with_context(|| format!("cannot write {}", path.display()))?;
        if !a.json {
            println!("wrote {}", path.display());
        }
    }
    if !failed.is_empty() {
        bail!(
            "{} fails on {}: {}",
            a.model.display(),
            board,
            failed.join(", ")
        );
    }
    if !a.json {
        println!("all gates pass on {board}");
    }
    Ok(())
}

/// Evaluates every gate (the work of `run`, without printing): the board's name and the
/// gate rows. `edgeflow pipeline run` calls this in-process.
///
/// The third element is the budgets as `(name, used, limit)` for the report's chart.
pub(crate) fn check(a: &ValidateArgs) -> Result<(String, Vec<Gate>, Vec<Budget>)> {
    let board: Board = a.boards.catalog()?.get(&a.board)?;
    let gates = match &a.gates {
        Some(p) => load_gates(p)?,
        None => Gates::default(),
    };
    let artifact = artifact_of(&a.model)?;
    let model = edgeflow_nn::Model::parse(&artifact)?;
    let input = model.header().inputs[0];
    let n_in = input.shape.num_elements().unwrap_or(0);
    let mut rows_gates = Vec::new();
    // (budget, used, limit) for the report's chart.
    let mut budgets: Vec<Budget> = Vec::new();

    // Accuracy, agreement, baseline.
    let data = match (&a.test_data, &a.test_labels) {
        (Some(d), Some(l)) => {
            let rows = read_rows(d, n_in)?;
            let labels = read_labels(l)?;
            if rows.len() != labels.len() {
                bail!(
                    "{} has {} rows but {} has {} labels",
                    d.display(),
                    rows.len(),
                    l.display(),
                    labels.len()
                );
            }
            if rows.is_empty() {
                bail!("{}: the test set is empty", d.display());
            }
            Some((rows, labels))
        }
        (None, None) => None,
        _ => bail!("--test-data and --test-labels go together"),
    };
    let mut hil_rows: Vec<Vec<f32>> = Vec::new();
    if let Some((rows, labels)) = &data {
        let pred = predict(&artifact, rows)?;
        let acc = accuracy(&pred, labels);
        rows_gates.push(gate(
            "accuracy",
            pct(acc),
            format!(">= {}", pct(gates.min_accuracy)),
            acc >= gates.min_accuracy,
        ));
        let names = model
            .artifact()
            .labels
            .and_then(|l| edgeflow_format::labels::Labels::parse(l).ok());
        let classes = labels.iter().copied().max().unwrap_or(0) + 1;
        for c in 0..classes {
            let idx: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == c).collect();
            if idx.is_empty() {
                continue;
            }
            let ok = idx.iter().filter(|&&i| pred[i] == c).count() as f64 / idx.len() as f64;
            let name = names
                .as_ref()
                .and_then(|n| n.get(c))
                .map_or(c.to_string(), str::to_string);
            rows_gates.push(gate(
                format!("class accuracy {name}"),
                pct(ok),
                format!(">= {}", pct(gates.min_class_accuracy)),
                ok >= gates.min_class_accuracy,
            ));
        }
        match &a.float {
            Some(f) => {
                let fp = predict(&artifact_of(f)?, rows)?;
                let agree = accuracy(&fp, &pred);
                rows_gates.push(gate(
                    "float-int8 agreement",
                    pct(agree),
                    format!(">= {}", pct(gates.min_agreement)),
                    agree >= gates.min_agreement,
                ));
            }
            None => rows_gates.push(skip("float-int8 agreement", "no --float model")),
        }
        match &a.baseline {
            Some(b) => {
                let bacc = accuracy(&predict(&artifact_of(b)?, rows)?, labels);
                rows_gates.push(gate(
                    "vs baseline",
                    pct(acc),
                    format!(">= {} - {}", pct(bacc), pct(gates.max_accuracy_drop)),
                    acc + 1e-12 >= bacc - gates.max_accuracy_drop,
                ));
            }
            None => rows_gates.push(skip("vs baseline", "no --baseline model")),
        }
        hil_rows = rows.iter().take(a.hil_samples).cloned().collect();
    } else {
        rows_gates.push(skip("accuracy", "no --test-data / --test-labels"));
    }

    // Hardware in the loop.
    let mut measured_stack = None;
    let mut measured_instr = None;
    if a.hil {
        if hil_rows.is_empty() {
            bail!("--hil needs test samples (--test-data / --test-labels)");
        }
        let (equal, instr, stack) = hil(&board, a, &artifact, &hil_rows)?;
        rows_gates.push(gate(
            "HIL bit-exact",
            format!("{equal}/{} outputs equal", hil_rows.len()),
            format!("{0}/{0}", hil_rows.len()),
            equal == hil_rows.len(),
        ));
        measured_stack = Some(stack);
        measured_instr = Some(instr);
    }

    // Memory.
    let pipeline =
        match model.artifact().feature_pipeline {
            Some(s) => Some(edgeflow_dsp::Pipeline::from_bytes(s).with_context(|| {
                format!("{}: invalid feature pipeline section", a.model.display())
            })?),
            None => None,
        };
    // The facade's workspace (pipeline workspace + one image's values for an image
    // pipeline), as the device application sizes it; an artifact whose pipeline does not
    // match its model (the facade refuses it) counts the pipeline's workspace alone.
    let (pipeline_ram, image_ram) = match (&pipeline, edgeflow::Model::parse(&artifact)) {
        (Some(p), Ok(f)) => {
            let all = f.workspace_len() as u64 * 4;
            (all, all.saturating_sub(p.ram_bytes() as u64))
        }
        (Some(p), Err(_)) => (p.ram_bytes() as u64, 0),
        (None, _) => (0, 0),
    };
    // The feature pipeline's cost per window on the board (streaming pipelines only):
    // the device runs it once per hop, beside the inference.
    let pipeline_instr = match (&pipeline, model.artifact().feature_pipeline) {
        (Some(p), Some(bytes))
            if a.hil && matches!(p.desc().input, edgeflow_dsp::Input::Signal { .. }) =>
        {
            Some(hil_pipeline(&board, a, bytes, p)?)
        }
        _ => None,
    };
    let stack = measured_stack.unwrap_or(gates.stack_bytes);
    let need = model.arena_bytes() as u64 + pipeline_ram + stack;
    let have = board.ram_bytes.saturating_sub(gates.ram_reserve_bytes);
    budgets.push(("RAM".into(), need as f64, have as f64));
    rows_gates.push(gate(
        "RAM",
        format!(
            "{need} B (arena {} + features {pipeline_ram}{} + stack {stack}{})",
            model.arena_bytes(),
            if image_ram > 0 {
                format!(" incl. image buffer {image_ram}")
            } else {
                String::new()
            },
            if measured_stack.is_some() {
                " measured"
            } else {
                " assumed"
            }
        ),
        format!(
            "<= {have} B (RAM {} - reserve {})",
            board.ram_bytes, gates.ram_reserve_bytes
        ),
        need <= have,
    ));
    let flash = board.flash_bytes.saturating_sub(gates.firmware_flash_bytes);
    budgets.push(("flash".into(), artifact.len() as f64, flash as f64));
    rows_gates.push(gate(
        "flash",
        format!("{} B artifact", artifact.len()),
        format!(
            "<= {flash} B (flash {} - firmware {})",
            board.flash_bytes, gates.firmware_flash_bytes
        ),
        artifact.len() as u64 <= flash,
    ));

    // Latency.
    let deadline = pipeline.as_ref().and_then(|p| match p.desc().input {
        edgeflow_dsp::Input::Signal {
            rate_hz, stride, ..
        } if rate_hz > 0.0 => Some(stride as f64 / rate_hz as f64),
        _ => None,
    });
    match measured_instr {
        Some(instr) => {
            if gates.max_instructions > 0 {
                budgets.push((
                    "instructions".into(),
                    instr as f64,
                    gates.max_instructions as f64,
                ));
                rows_gates.push(gate(
                    "instructions / inference",
                    instr.to_string(),
                    format!("<= {}", gates.max_instructions),
                    instr <= gates.max_instructions,
                ));
            }
            if let Some(hop) = deadline {
                let limit = (hop * board.core_clock_hz as f64 * gates.deadline_fraction) as u64;
                // Per hop the device pushes `stride` samples, runs the pipeline on one
                // window and the model on its output.
                let (total, measured) = match pipeline_instr {
                    Some(f) => (
                        instr.saturating_add(f),
                        format!("{} instructions (model {instr} + features {f} per window)", instr.saturating_add(f)),
                    ),
                    None => (instr, format!("{instr} instructions (model only)")),
                };
                budgets.push(("real-time deadline".into(), total as f64, limit as f64));
                rows_gates.push(gate(
                    "real-time deadline",
                    measured,
                    format!(
                        "<= {limit} ({:.1} ms hop x {} MHz x {})",
                        hop * 1e3,
                        board.core_clock_hz as f64 / 1e6,
                        gates.deadline_fraction
                    ),
                    total <= limit,
                ));
            } else if gates.max_instructions == 0 {
                rows_gates.push(gate(
                    "instructions / inference",
                    instr.to_string(),
                    "no budget, no streaming pipeline".into(),
                    true,
                ));
            }
        }
        None => match estimate(&model, &board) {
            Some(e) => {
                let limit = if gates.max_instructions > 0 {
                    Some((gates.max_instructions, format!("<= {}", gates.max_instructions)))
                } else {
                    deadline.map(|hop| {
                        let l = (hop * board.core_clock_hz as f64 * gates.deadline_fraction) as u64;
                        (l, format!("<= {l} (real-time deadline; model only: the feature pipeline is measured with --hil)"))
                    })
                };
                if let Some((l, _)) = &limit {
                    budgets.push(("instructions (estimated)".into(), e as f64, *l as f64));
                }
                match limit {
                    Some((l, text)) => rows_gates.push(gate(
                        "instructions / inference",
                        format!("{e} estimated (cost model)"),
                        text,
                        e <= l,
                    )),
                    None => rows_gates.push(gate(
                        "instructions / inference",
                        format!("{e} estimated (cost model)"),
                        "no budget, no streaming pipeline".into(),
                        true,
                    )),
                }
            }
            None => rows_gates.push(skip(
                "instructions / inference",
                "not measured (run with --hil on an emulated board) and no cost table for this core",
            )),
        },
    }

    Ok((board.name.clone(), rows_gates, budgets))
}

/// Cost-model estimate of instructions per inference, for Cortex-M4 boards (the core
/// the committed table was measured on); `None` for other cores or uncovered ops.
pub(crate) fn estimate(model: &edgeflow_nn::Model<'_>, board: &Board) -> Option<u64> {
    if !board.cpu.starts_with("cortex-m4") {
        return None;
    }
    let t = edgeflow_compile::cost::CostTable::cortex_m4f().ok()?;
    t.estimate(model).ok()
}

/// Prints the cost-model estimate for `inspect --board`.
pub(crate) fn print_estimate(model: &edgeflow_nn::Model<'_>, board: &Board) {
    let Ok(t) = edgeflow_compile::cost::CostTable::cortex_m4f() else {
        return;
    };
    if !board.cpu.starts_with("cortex-m4") {
        println!(
            "instructions no cost table for {} (the table is measured on the Cortex-M4F)",
            board.cpu
        );
        return;
    }
    match t.estimate(model) {
        Ok(e) => println!(
            "instructions ~{e} per inference (cost model, mean error {:.1} % on the measured models; {:.2} ms at {} MHz)",
            t.mean_abs_error * 100.0,
            e as f64 / board.core_clock_hz as f64 * 1e3,
            board.core_clock_hz / 1_000_000
        ),
        Err(op) => println!("instructions no estimate: {op} is not in the cost table"),
    }
}

fn accuracy(pred: &[usize], truth: &[usize]) -> f64 {
    let ok = pred.iter().zip(truth).filter(|(p, t)| p == t).count();
    ok as f64 / truth.len().max(1) as f64
}

/// Instructions per SysTick tick on an emulated board: QEMU runs with `-icount shift=0`
/// (one instruction per nanosecond of virtual time) and the SysTick counts core clock
/// cycles, so a tick is `1e9 / core_clock_hz` instructions (40 on mps2-an386 at 25 MHz,
/// the board every instruction figure in BENCHMARKS.md is measured on; on lm3s6965evb the
/// emulated SysTick rate follows QEMU's model of the clock tree, so treat its figure as
/// approximate).
fn instructions_per_tick(board: &Board) -> u64 {
    (1_000_000_000u64 / board.core_clock_hz.max(1)).max(1)
}

/// Instructions the feature pipeline `bytes` costs per window on the emulated board: the
/// slowest `process` call over the first 64 windows plus the average `push` cost of a
/// hop, measured by the pipeline firmware (`firmware/dsp-<board>`) on a deterministic
/// multi-tone signal of the pipeline's axes and rate (eight hops past the first window;
/// the cost of these blocks does not depend on the sample values).
fn hil_pipeline(
    board: &Board,
    a: &ValidateArgs,
    bytes: &[u8],
    p: &edgeflow_dsp::Pipeline,
) -> Result<u64> {
    use edgeflow_tests::dsp_firmware::{self, DspCase, Feed};
    let edgeflow_dsp::Input::Signal {
        axes,
        rate_hz,
        window,
        stride,
    } = p.desc().input
    else {
        bail!("the feature pipeline does not take a signal");
    };
    let steps = (window as usize).saturating_add((stride as usize).saturating_mul(8));
    let input: Vec<u8> = (0..steps)
        .flat_map(|i| {
            let t = i as f32 / rate_hz.max(1.0);
            (0..axes).map(move |k| {
                let f = 1.0 + 2.5 * k as f32;
                (0.5 * (2.0 * std::f32::consts::PI * f * t).sin() + 0.1 * k as f32).to_le_bytes()
            })
        })
        .flatten()
        .collect();
    let case = DspCase {
        name: "validate_pipeline".into(),
        pipeline: bytes.to_vec(),
        input,
        feed: Feed::F32,
        chunk: 64usize.min(axes.max(1) as usize * 16),
    };
    let source = hil_sources(board, a, &format!("dsp-{}", board.name))?;
    let reports =
        dsp_firmware::run_in(&source, board, &[case], Duration::from_secs(300)).map_err(|e| {
            anyhow::anyhow!(
                "running the feature pipeline on {} under QEMU: {e}",
                board.name
            )
        })?;
    let r = reports
        .get("validate_pipeline")
        .context("the pipeline firmware did not report the case")?;
    if let Err(e) = &r.output {
        bail!("the feature pipeline failed on the board: {e}");
    }
    if r.windows == 0 {
        bail!("the feature pipeline produced no window on the board");
    }
    let ticks = r.process_spread[2].saturating_add(r.push_ticks / r.windows);
    Ok(ticks.saturating_mul(instructions_per_tick(board)))
}

/// The edgeflow source tree that `--hil` builds its test firmware (`firmware/<app>`) in,
/// found as `edgeflow flash` and `edgeflow pipeline run`'s deploy stage find theirs
/// ([`crate::sources::find`]: `EDGEFLOW_SOURCE_DIR`, else the first ancestor of the model
/// file or of the working directory that holds `firmware/<app>`). The test firmware is
/// compiled with the test samples inside it, so there is no prebuilt one to point at;
/// without a source tree the error names the ways out: leaving out `--hil`, or what
/// `hil_off` says (the pipeline's `[validate] hil = false`).
fn hil_sources(board: &Board, a: &ValidateArgs, app: &str) -> Result<PathBuf> {
    crate::sources::find(
        app,
        &a.model,
        &format!(
            "--hil builds its test firmware for {} (with the test samples compiled in)",
            board.name
        ),
        a.hil_off.as_deref().unwrap_or("leave out --hil"),
    )
}

/// Runs `rows` on the emulated board; returns (outputs equal to the host's, max
/// instructions per inference, max stack bytes).
fn hil(
    board: &Board,
    a: &ValidateArgs,
    artifact: &[u8],
    rows: &[Vec<f32>],
) -> Result<(usize, u64, u64)> {
    use edgeflow_tests::firmware;
    if board.runner.kind != edgeflow_compile::board::RunnerKind::Qemu {
        bail!(
            "--hil needs a board with a QEMU runner; {} uses {}",
            board.name,
            board.runner.kind
        );
    }
    if let Some(why) = firmware::toolchain_missing(board) {
        bail!("--hil cannot run: {why}");
    }
    let m = edgeflow_nn::Model::parse(artifact)?;
    let input = m.header().inputs[0];
    let cases: Vec<firmware::Case> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| firmware::Case {
            name: format!("validate{i}"),
            artifact: artifact.to_vec(),
            input: encode(&input, r),
        })
        .collect();
    let source = hil_sources(board, a, &board.name)?;
    let reports = firmware::run_in(
        &source,
        board,
        &cases,
        m.arena_bytes() + 64,
        Duration::from_secs(300),
        false,
    )
    .map_err(|e| anyhow::anyhow!("running on {} under QEMU: {e}", board.name))?;
    let (mut equal, mut instr, mut stack) = (0, 0u64, 0u64);
    for c in &cases {
        let host = edgeflow_tests::run_host(artifact, &c.input)?;
        let r = reports
            .get(&c.name)
            .with_context(|| format!("the firmware did not report case {}", c.name))?;
        match &r.output {
            Ok(out) if *out == host => equal += 1,
            Ok(_) => {}
            Err(e) => bail!("case {} failed on the board: {e}", c.name),
        }
        instr = instr.max(r.ticks.saturating_mul(instructions_per_tick(board)));
        stack = stack.max(r.stack as u64);
    }
    Ok((equal, instr, stack))
}

const REPORT: &str = r#"
<p>Model <code>{{ model }}</code> on board <code>{{ board }}</code></p>
{% if pass %}<p id="status" class="ok">All gates pass</p>{% else %}<p id="status" class="bad">Failed: {{ failed|join(", ") }}</p>{% endif %}
<h2>Gates</h2>
<table id="gates"><tr><th>gate</th><th>measured</th><th>limit</th><th>result</th></tr>
{% for g in gates %}<tr><td>{{ g.name }}</td><td>{{ g.measured }}</td><td>{{ g.limit }}</td><td class="{{ g.class }}">{{ g.result }}</td></tr>{% endfor %}
</table>
<h2>Float vs int8 agreement</h2>
{% if agreement %}<table id="agreement"><tr><th>measured</th><th>limit</th><th>result</th></tr>
<tr><td>{{ agreement.measured }}</td><td>{{ agreement.limit }}</td><td class="{{ agreement.class }}">{{ agreement.result }}</td></tr></table>
{% else %}<p>Not measured.</p>{% endif %}
<h2>Budgets</h2>
{% if budgets %}<table id="budgets"><tr><th>budget</th><th>used</th><th>limit</th><th>share</th></tr>
{% for b in budgets %}<tr><td>{{ b.name }}</td><td class="num">{{ b.used }}</td><td class="num">{{ b.limit }}</td><td class="num">{{ b.share }}</td></tr>{% endfor %}
</table>
<div class="charts"><div id="budget-chart">{{ budget_svg|safe }}</div></div>{% else %}<p>None measured.</p>{% endif %}
"#;

#[derive(serde::Serialize)]
struct GateView {
    name: String,
    measured: String,
    limit: String,
    result: String,
    class: &'static str,
}

/// The validation report page: every gate (value, limit, result), the float-vs-int8
/// agreement gate, and the budgets as used/limit shares.
pub(crate) fn report_html(
    model: &Path,
    board: &str,
    gates: &[Gate],
    budgets: &[Budget],
) -> Result<String> {
    let views: Vec<GateView> = gates
        .iter()
        .map(|g| {
            let (result, class) = match &g.status {
                Status::Pass => ("PASS".to_string(), "ok"),
                Status::Fail => ("FAIL".to_string(), "bad"),
                Status::Skip(why) => (format!("skipped: {why}"), "skip"),
            };
            GateView {
                name: g.name.clone(),
                measured: g.measured.clone(),
                limit: g.limit.clone(),
                result,
                class,
            }
        })
        .collect();
    let agreement = views
        .iter()
        .find(|g| g.name == "float-int8 agreement" && g.class != "skip");
    let failed: Vec<&str> = views
        .iter()
        .filter(|g| g.class == "bad")
        .map(|g| g.name.as_str())
        .collect();
    let share = |used: f64, limit: f64| if limit > 0.0 { used / limit } else { f64::NAN };
    let names: Vec<String> = budgets.iter().map(|b| b.0.clone()).collect();
    let budget_svg = crate::report::grouped_bars(
        "Budget used (share of the limit; above 1 fails)",
        "used / limit",
        &names,
        &[(
            "used / limit".to_string(),
            budgets.iter().map(|b| share(b.1, b.2)).collect(),
        )],
        None,
    )?;
    let budget_rows: Vec<minijinja::Value> = budgets
        .iter()
        .map(|(n, u, l)| {
            minijinja::context! {
                name => n,
                used => format!("{u:.0}"),
                limit => format!("{l:.0}"),
                share => format!("{:.1} %", 100.0 * share(*u, *l)),
            }
        })
        .collect();
    crate::report::render(
        "edgeflow validation report",
        "",
        REPORT,
        minijinja::context! {
            model => model.display().to_string(),
            board => board,
            pass => failed.is_empty(),
            failed => failed,
            gates => views,
            agreement => agreement,
            budgets => budget_rows,
            budget_svg => budget_svg,
        },
    )
}

pub(crate) fn table(gates: &[Gate]) -> String {
    let w0 = gates.iter().map(|g| g.name.len()).max().unwrap_or(4).max(4);
    let w1 = gates
        .iter()
        .map(|g| g.measured.len())
        .max()
        .unwrap_or(8)
        .max(8);
    let w2 = gates
        .iter()
        .map(|g| g.limit.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:w0$}  {:w1$}  {:w2$}  result",
        "gate", "measured", "limit"
    );
    for g in gates {
        let r = match &g.status {
            Status::Pass => "PASS".to_string(),
            Status::Fail => "FAIL".to_string(),
            Status::Skip(why) => format!("skipped: {why}"),
        };
        let _ = writeln!(
            s,
            "{:w0$}  {:w1$}  {:w2$}  {r}",
            g.name, g.measured, g.limit
        );
    }
    s
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn json(model: &Path, board: &str, gates: &[Gate]) -> String {
    let items: Vec<String> = gates
        .iter()
        .map(|g| {
            let (status, reason) = match &g.status {
                Status::Pass => ("pass", None),
                Status::Fail => ("fail", None),
                Status::Skip(w) => ("skip", Some(w.as_str())),
            };
            format!(
                "{{\"gate\":{},\"measured\":{},\"limit\":{},\"status\":\"{status}\"{}}}",
                esc(&g.name),
                esc(&g.measured),
                esc(&g.limit),
                reason.map_or(String::new(), |r| format!(",\"reason\":{}", esc(r)))
            )
        })
        .collect();
    let pass = gates.iter().all(|g| g.status != Status::Fail);
    format!(
        "{{\"model\":{},\"board\":{},\"pass\":{pass},\"gates\":[{}]}}",
        esc(&model.display().to_string()),
        esc(board),
        items.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_gate_keys_are_named() {
        let d = std::env::temp_dir().join(format!("edgeflow-gates-{}", std::process::id()));
        fs::create_dir_all(&d).expect("tmp");
        let p = d.join("g.toml");
        fs::write(&p, "min_accuracy = 0.9\nmin_acuracy = 0.8\n").expect("write");
        let e = format!("{:#}", load_gates(&p).expect_err("unknown key"));
        assert!(e.contains("min_acuracy"), "{e}");
        fs::write(&p, "min_accuracy = 90\n").expect("write");
        let e = format!("{:#}", load_gates(&p).expect_err("out of range"));
        assert!(e.contains("min_accuracy = 90"), "{e}");
        fs::write(&p, "min_accuracy = 0.9\n").expect("write");
        assert_eq!(load_gates(&p).expect("ok").min_accuracy, 0.9);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn json_is_escaped() {
        let g = [
            gate("a\"b", "1".into(), "2".into(), false),
            skip("c", "no\ndata"),
        ];
        let j = json(Path::new("m"), "b", &g);
        assert!(j.contains("\"a\\\"b\""), "{j}");
        assert!(j.contains("no\\u000adata"), "{j}");
        assert!(j.contains("\"pass\":false"), "{j}");
    }
}
