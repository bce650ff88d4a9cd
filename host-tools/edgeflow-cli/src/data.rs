//! `edgeflow data head|inspect|stats|schema|validate SOURCE`: the analysis stage and
//! data validation (a schema inferred from training data, new data checked against it).
//!
//! SOURCE is a `.csv`, `.tsv`, `.jsonl`, `.parquet`, `.tfrecord`, `.npy`, `.npz`, `.ts`,
//! `.wav` or `.txt` file, or a folder with one sub-folder of images per class.
//!
//! Bad records: by default a command fails (non-zero exit, naming the file, the first bad
//! record and its reason) when it meets any corrupt record; `--max-bad-records N` (a
//! count, a fraction such as `0.01`, or `1%`) lets it skip up to that many and say how
//! many it skipped and why. A source that cannot be read, or whose every record is bad,
//! always fails.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use edgeflow_data::analyze::{self, Tabular};
use edgeflow_data::schema;
use edgeflow_data::{BadRecordLimit, BadRecords, ReadTally};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The `data` subcommands.
#[derive(Subcommand)]
pub enum DataCommand {
    /// Print the first rows as an aligned table.
    Head {
        /// The file or image folder.
        source: PathBuf,
        /// Number of rows.
        #[arg(short = 'n', long, default_value_t = 10)]
        rows: usize,
        #[command(flatten)]
        open: OpenArgs,
    },
    /// Print the format's facts (size, shape, header fields) and the schema.
    Inspect {
        /// The file or image folder.
        source: PathBuf,
        #[command(flatten)]
        open: OpenArgs,
    },
    /// Per-column statistics, histograms, missing and invalid values, class balance.
    Stats {
        /// The file or image folder.
        source: PathBuf,
        /// Also write an HTML report with charts to this file.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Histogram bins.
        #[arg(long, default_value_t = 20)]
        bins: usize,
        /// Also print the pipeline's per-operator counters.
        #[arg(long)]
        counters: bool,
        /// The column holding the class (for the class balance); by default a column
        /// named label/class/target/y/category, or a last column with few values.
        #[arg(long, value_name = "COLUMN")]
        label: Option<String>,
        #[command(flatten)]
        open: OpenArgs,
    },
    /// Infer a schema (types, ranges, categories, missing-value rates, series shape) from
    /// a source, as TFX's schema inference does, and write it as JSON.
    Schema {
        /// The file or image folder (the training data).
        source: PathBuf,
        /// Where to write the schema (JSON).
        #[arg(short = 'o', long)]
        output: PathBuf,
        /// String columns with more distinct values get no categorical domain.
        #[arg(long, default_value_t = 100)]
        max_domain: usize,
        /// Histogram bins of numeric columns (the resolution of the skew check).
        #[arg(long, default_value_t = 10)]
        bins: usize,
        #[command(flatten)]
        open: StrictOpenArgs,
    },
    /// Check new data against a schema: new categories, out-of-range values, missing or
    /// unexpected columns, type changes, missing-value rates, and with `--against`
    /// training/serving skew. Prints one line per anomaly (column, expected, seen, file
    /// and record) and exits non-zero when there is any.
    Validate {
        /// The new data.
        source: PathBuf,
        /// The schema written by `edgeflow data schema`.
        #[arg(long)]
        schema: PathBuf,
        /// The training data, to measure training/serving skew against.
        #[arg(long, value_name = "TRAIN_SOURCE")]
        against: Option<PathBuf>,
        /// Print the anomalies as JSON.
        #[arg(long)]
        json: bool,
        /// Out of range: outside [min - t*span, max + t*span] of the schema's range.
        #[arg(long, default_value_t = 0.0, value_name = "T")]
        range_tolerance: f64,
        /// Allowed rise of a column's missing rate over the schema's (a column never
        /// missing must stay present).
        #[arg(long, default_value_t = 0.02)]
        missing_rate_tolerance: f64,
        /// Largest L-infinity distance of category shares (skew).
        #[arg(long, default_value_t = 0.1)]
        linf_threshold: f64,
        /// Largest Jensen-Shannon divergence of numeric histograms (skew, base 2).
        #[arg(long, default_value_t = 0.1)]
        js_threshold: f64,
        #[command(flatten)]
        open: StrictOpenArgs,
    },
}

/// Options for opening a source strictly (a corrupt record is an error).
#[derive(Args)]
pub struct StrictOpenArgs {
    /// Records read to infer column types (a value of another type after them is a
    /// corrupt record for a CSV reader, so this is large by default).
    #[arg(long, default_value_t = 100_000)]
    infer_rows: usize,
    /// CSV field delimiter: one character, or `tab` (default: detected from the first line).
    #[arg(long, value_parser = parse_delimiter)]
    delimiter: Option<u8>,
}

fn open_strict(source: &std::path::Path, o: &StrictOpenArgs) -> Result<Tabular> {
    Ok(Tabular::open_with(
        source,
        o.infer_rows,
        BadRecords::Error,
        o.delimiter,
    )?)
}

/// Options for opening a source.
#[derive(Args)]
pub struct OpenArgs {
    /// Records read to infer a schema.
    #[arg(long, default_value_t = 1000)]
    infer_rows: usize,
    /// Bad records allowed before the command fails: a count (`10`), a fraction of the
    /// records read (`0.01`) or a percentage (`1%`). Skipped records are counted and the
    /// first reasons printed. Default: 0 (strict).
    #[arg(long, default_value = "0", value_name = "N|FRACTION")]
    max_bad_records: BadRecordLimit,
    /// CSV field delimiter: one character, or `tab` (default: detected from the first line).
    #[arg(long, value_parser = parse_delimiter)]
    delimiter: Option<u8>,
    /// Largest record (line) of a CSV, JSON Lines or text file, in bytes; a longer one
    /// is an error naming it (default: EDGEFLOW_MAX_RECORD_BYTES, else 64 MiB).
    #[arg(long, value_name = "BYTES")]
    max_record_bytes: Option<usize>,
}

fn parse_delimiter(s: &str) -> Result<u8, String> {
    match s {
        "tab" | "\\t" | "\t" => Ok(b'\t'),
        _ if s.len() == 1 && s.is_ascii() => Ok(s.as_bytes()[0]),
        _ => Err(format!("{s:?} is not one ASCII character or `tab`")),
    }
}

fn open(source: &PathBuf, o: &OpenArgs) -> Result<Tabular> {
    if o.max_record_bytes.is_some() {
        edgeflow_data::sources::text::set_max_record_bytes(o.max_record_bytes);
    }
    // Bad records stay error items so that they are counted with their reasons.
    // The error names the file already.
    Ok(Tabular::open_with(
        source,
        o.infer_rows,
        BadRecords::Error,
        o.delimiter,
    )?)
}

/// Applies the bad-record policy: a note on stderr when records were skipped, an error
/// (non-zero exit) when the read failed.
fn check(source: &std::path::Path, tally: &ReadTally, o: &OpenArgs) -> Result<()> {
    if let Some(note) = tally.check(source, o.max_bad_records)? {
        eprintln!("warning: {note}");
    }
    Ok(())
}

/// Runs one `data` subcommand, printing to stdout (progress to stderr, on a terminal).
pub fn run(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Head {
            source,
            rows,
            open: o,
        } => {
            let t = open(&source, &o)?;
            let (text, tally) = analyze::head_tally(&t, rows);
            crate::out!("{text}")?;
            check(&source, &tally, &o)?;
        }
        DataCommand::Inspect { source, open: o } => {
            let t = open(&source, &o)?;
            crate::out!("{}", analyze::inspect(&t))?;
            // The schema alone can hide an unreadable body: check the first records.
            let mut tally = ReadTally::default();
            for item in t.rows.iter().take(o.infer_rows.max(1)) {
                tally.add(&item);
            }
            check(&source, &tally, &o)?;
        }
        DataCommand::Stats {
            source,
            report,
            bins,
            counters,
            label,
            open: o,
        } => {
            let t = open(&source, &o)?;
            let bar = match t.known_rows {
                Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr())
                    .with_style(
                        ProgressStyle::with_template(
                            "{bar:40} {human_pos}/{human_len} rows, eta {eta}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    ),
                None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
                    .with_style(
                        ProgressStyle::with_template("{spinner} {human_pos} rows, {elapsed}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    ),
            };
            let mut summary = analyze::summarize(&t, bins, &mut |n| bar.set_position(n));
            bar.finish_and_clear();
            if let Some(l) = &label {
                summary.set_label(l).map_err(anyhow::Error::msg)?;
            }
            crate::out!("{}", summary.text())?;
            if counters {
                crate::outln!("\npipeline counters:\n{}", t.rows.stats().table())?;
            }
            if let Some(path) = report {
                std::fs::write(&path, stats_html(&summary)?)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                crate::outln!("\nwrote {}", path.display())?;
            }
            check(&source, &summary.tally(), &o)?;
        }
        DataCommand::Schema {
            source,
            output,
            max_domain,
            bins,
            open: o,
        } => {
            let t = open_strict(&source, &o)?;
            let opts = schema::InferOptions {
                max_domain,
                bins: bins.max(1),
            };
            let s = schema::infer(&t, &opts)
                .with_context(|| format!("inferring a schema from {}", source.display()))?;
            s.save(&output)?;
            crate::outln!(
                "{} records, {} columns{}; wrote {}",
                s.records,
                s.features.len(),
                s.series
                    .as_ref()
                    .map(|x| format!(
                        ", series of {} axes, length {}..={}",
                        x.axes, x.min_length, x.max_length
                    ))
                    .unwrap_or_default(),
                output.display()
            )?;
        }
        DataCommand::Validate {
            source,
            schema: schema_path,
            against,
            json,
            range_tolerance,
            missing_rate_tolerance,
            linf_threshold,
            js_threshold,
            open: o,
        } => {
            let s = schema::Schema::load(&schema_path)?;
            let t = open_strict(&source, &o)?;
            let train = against.as_ref().map(|p| open_strict(p, &o)).transpose()?;
            let opts = schema::ValidateOptions {
                range_tolerance,
                missing_rate_tolerance,
                linf_threshold,
                js_threshold,
            };
            let anomalies = schema::validate(&s, &t, train.as_ref(), &opts)
                .with_context(|| format!("validating {}", source.display()))?;
            if json {
                crate::outln!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "source": source.display().to_string(),
                        "schema": schema_path.display().to_string(),
                        "against": against.as_ref().map(|p| p.display().to_string()),
                        "anomalies": anomalies,
                    }))?
                )?;
            } else if anomalies.is_empty() {
                crate::outln!(
                    "{}: no anomalies against {}",
                    source.display(),
                    schema_path.display()
                )?;
            } else {
                for a in &anomalies {
                    crate::outln!("{a}")?;
                }
            }
            if !anomalies.is_empty() {
                anyhow::bail!(
                    "{}: {} anomal{} against {}",
                    source.display(),
                    anomalies.len(),
                    if anomalies.len() == 1 { "y" } else { "ies" },
                    schema_path.display()
                );
            }
        }
    }
    Ok(())
}

/// `edgeflow data stats --report`: the summary on the report layout every stage of the
/// flow uses ([`crate::report`]): the column table, one histogram per column that has
/// one (numbers, or lengths of text, bytes and lists) and the class balance.
fn stats_html(s: &analyze::Summary) -> Result<String> {
    let mut charts = Vec::new();
    for c in s.columns.iter().filter(|c| !c.histogram.is_empty()) {
        let what = if c.column.ty.is_numeric() {
            "value"
        } else {
            "length"
        };
        charts.push(crate::report::histogram(
            &c.column.name,
            what,
            c.min.unwrap_or(0.0),
            c.max.unwrap_or(0.0),
            &c.histogram,
        )?);
    }
    let balance = match s.label.and_then(|l| s.columns.get(l)) {
        Some(c) => Some((
            c.column.name.clone(),
            crate::report::grouped_bars(
                "rows per class",
                "rows",
                &c.top.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
                &[(
                    "rows".to_string(),
                    c.top.iter().map(|&(_, n)| n as f64).collect(),
                )],
                None,
            )?,
        )),
        None => None,
    };
    const BODY: &str = r#"<p>format <b>{{ format }}</b> · <b>{{ rows }}</b> rows · <b>{{ columns }}</b> columns · <b>{{ errors }}</b> bad records</p>
<h2>Columns</h2>
<table><tr>{% for h in headers %}<th>{{ h }}</th>{% endfor %}</tr>
{% for r in cells %}<tr>{% for v in r %}<td>{{ v }}</td>{% endfor %}</tr>
{% endfor %}</table>
<h2>Distributions</h2>
<div class="charts">{% for c in charts %}<div>{{ c|safe }}</div>{% endfor %}</div>
{% if balance %}<h2>Class balance: {{ balance[0] }}</h2>
<div class="charts"><div>{{ balance[1]|safe }}</div></div>{% endif %}
{% if first_errors %}<h2>First bad records</h2>
{% for e in first_errors %}<pre>{{ e }}</pre>{% endfor %}{% endif %}"#;
    crate::report::render(
        &s.path.display().to_string(),
        "",
        BODY,
        minijinja::context! {
            format => s.format,
            rows => s.rows,
            columns => s.columns.len(),
            errors => s.errors,
            headers => analyze::COLUMN_HEADERS,
            cells => s.column_cells(),
            charts => charts,
            balance => balance,
            first_errors => s.first_errors,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../crates/edgeflow-data/tests/fixtures")
            .join(name)
    }

    fn args() -> OpenArgs {
        OpenArgs {
            infer_rows: 100,
            max_bad_records: BadRecordLimit::default(),
            delimiter: None,
            max_record_bytes: None,
        }
    }

    #[test]
    fn stats_writes_an_html_report_with_charts() {
        let out =
            std::env::temp_dir().join(format!("edgeflow-cli-report-{}.html", std::process::id()));
        run(DataCommand::Stats {
            source: fixture("table_snappy.parquet"),
            report: Some(out.clone()),
            bins: 10,
            counters: true,
            label: None,
            open: args(),
        })
        .unwrap();
        let html = std::fs::read_to_string(&out).unwrap();
        std::fs::remove_file(&out).unwrap();
        assert!(
            html.starts_with("<!doctype html>"),
            "the shared report layout"
        );
        assert!(html.contains("<svg") && html.contains("table_snappy.parquet"));
        assert!(!html.contains("<script"));
    }

    #[test]
    fn head_and_inspect_run_and_missing_files_are_errors() {
        run(DataCommand::Head {
            source: fixture("f32.npy"),
            rows: 2,
            open: args(),
        })
        .unwrap();
        run(DataCommand::Inspect {
            source: fixture("examples.tfrecord"),
            open: args(),
        })
        .unwrap();
        let e = run(DataCommand::Inspect {
            source: fixture("missing.csv"),
            open: args(),
        })
        .unwrap_err();
        assert!(format!("{e:#}").contains("missing.csv"));
    }
}
