//! `edgeflow evaluate CONFIG.toml`: metrics of the trained float artifact (and optionally an
//! int8 artifact) on the config's test split, computed through edgeflow-nn — the device's
//! arithmetic — with the threshold of binary models chosen on the validation split.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use edgeflow_train::TrainConfig;

/// Arguments of `edgeflow evaluate`.
#[derive(Args, Debug)]
pub struct EvaluateArgs {
    /// The training config (TOML) that defines data, splits and pipeline.
    config: PathBuf,
    /// The float artifact (default: `model.edgeflow` in the config's output directory).
    #[arg(long)]
    model: Option<PathBuf>,
    /// An int8 artifact of the same model: evaluated too, with float-vs-int8 agreement.
    #[arg(long)]
    int8: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Also write an HTML report: metrics, per-class table and bars, confusion matrix,
    /// reliability diagram (ECE), ROC and PR curves for binary models.
    #[arg(long, value_name = "OUT.html")]
    report: Option<PathBuf>,
}

/// Runs the subcommand.
pub fn run(a: EvaluateArgs) -> Result<()> {
    let cfg = TrainConfig::load(&a.config)?;
    let model = a
        .model
        .clone()
        .unwrap_or_else(|| cfg.output.dir.join("model.edgeflow"));
    let read = |p: &PathBuf| {
        std::fs::read(p).with_context(|| {
            format!(
                "cannot read {} (train first: edgeflow train {})",
                p.display(),
                a.config.display()
            )
        })
    };
    let float = read(&model)?;
    let int8 = a.int8.as_ref().map(read).transpose()?;
    let fname = model.display().to_string();
    let qname = a.int8.as_ref().map(|p| p.display().to_string());
    let e = edgeflow_train::evaluate(
        &cfg,
        (&fname, &float),
        match (&qname, &int8) {
            (Some(n), Some(b)) => Some((n.as_str(), b.as_slice())),
            _ => None,
        },
    )
    .with_context(|| format!("evaluating {}", model.display()))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&e)?);
    } else {
        print!("{}", e.table());
    }
    if let Some(path) = &a.report {
        std::fs::write(path, report_html(&e, &a.config)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        if !a.json {
            println!("wrote {}", path.display());
        }
    }
    Ok(())
}

const REPORT: &str = r#"
<p>Config <code>{{ config }}</code> · classes: {{ classes|join(", ") }}</p>
<h2>Metrics (test split)</h2>
<table id="metrics"><tr><th>model</th><th>artifact</th><th>input</th><th>examples</th><th>accuracy</th><th>balanced accuracy</th><th>ECE (10 bins)</th><th>ROC-AUC</th><th>PR-AUC</th><th>threshold (validation)</th></tr>
{% for m in models %}<tr><td>{{ m.name }}</td><td><code>{{ m.artifact }}</code></td><td>{{ m.input }}</td><td class="num">{{ m.n }}</td><td class="num">{{ m.accuracy }}</td><td class="num">{{ m.balanced }}</td><td class="num">{{ m.ece }}</td><td class="num">{{ m.roc_auc }}</td><td class="num">{{ m.pr_auc }}</td><td class="num">{{ m.threshold }}</td></tr>{% endfor %}
</table>
{% if agreement %}<h2>Float vs int8 agreement</h2>
<table id="agreement"><tr><th>examples</th><th>top-1 agreement</th><th>largest score difference</th></tr>
<tr><td class="num">{{ agreement.n }}</td><td class="num">{{ agreement.top1 }}</td><td class="num">{{ agreement.max_diff }}</td></tr></table>{% endif %}
{% for m in models %}
<h2 id="model-{{ m.name }}">{{ m.name }} model</h2>
<table class="per-class"><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>
{% for c in m.per_class %}<tr><td>{{ c.name }}</td><td class="num">{{ c.precision }}</td><td class="num">{{ c.recall }}</td><td class="num">{{ c.f1 }}</td><td class="num">{{ c.support }}</td></tr>{% endfor %}
</table>
<div class="charts">
<div id="confusion-{{ m.name }}">{{ m.confusion_svg|safe }}</div>
<div id="per-class-{{ m.name }}">{{ m.bars_svg|safe }}</div>
{% if m.reliability_svg %}<div id="reliability-{{ m.name }}">{{ m.reliability_svg|safe }}</div>{% endif %}
{% if m.roc_svg %}<div id="roc-{{ m.name }}">{{ m.roc_svg|safe }}</div><div id="pr-{{ m.name }}">{{ m.pr_svg|safe }}</div>{% endif %}
</div>
{% endfor %}
"#;

#[derive(serde::Serialize)]
struct ClassRow {
    name: String,
    precision: String,
    recall: String,
    f1: String,
    support: usize,
}

#[derive(serde::Serialize)]
struct ModelView {
    name: &'static str,
    artifact: String,
    input: String,
    n: usize,
    accuracy: String,
    balanced: String,
    ece: String,
    roc_auc: String,
    pr_auc: String,
    threshold: String,
    per_class: Vec<ClassRow>,
    confusion_svg: String,
    bars_svg: String,
    reliability_svg: Option<String>,
    roc_svg: Option<String>,
    pr_svg: Option<String>,
}

fn f4(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_string(), |v| format!("{v:.4}"))
}

/// The evaluation report page: the test-split metrics of each model, float-vs-int8
/// agreement, and per model the per-class table and bars, the confusion matrix, the
/// reliability diagram (when scores are probabilities) and ROC/PR curves (binary models).
pub(crate) fn report_html(
    e: &edgeflow_train::Evaluation,
    config: &std::path::Path,
) -> Result<String> {
    use crate::report;
    let mut models = Vec::new();
    let both = std::iter::once(("float", &e.float)).chain(e.int8.as_ref().map(|q| ("int8", q)));
    for (name, m) in both {
        let r = &m.test;
        let per_class = e
            .classes
            .iter()
            .enumerate()
            .map(|(i, c)| ClassRow {
                name: c.clone(),
                precision: f4(r.precision.get(i).copied()),
                recall: f4(r.recall.get(i).copied()),
                f1: f4(r.f1.get(i).copied()),
                support: r.support.get(i).copied().unwrap_or(0),
            })
            .collect();
        let bars_svg = report::grouped_bars(
            &format!("Per-class metrics ({name})"),
            "score",
            &e.classes,
            &[
                ("precision".into(), r.precision.clone()),
                ("recall".into(), r.recall.clone()),
                ("F1".into(), r.f1.clone()),
            ],
            Some(1.0),
        )?;
        let confusion_svg = report::confusion_heatmap(
            &format!("Confusion matrix ({name})"),
            &e.classes,
            &r.confusion,
        )?;
        let reliability_svg = match &r.reliability {
            Some(bins) => Some(report::reliability_diagram(
                &format!("Reliability ({name}, ECE {})", f4(r.ece)),
                &bins
                    .iter()
                    .map(|b| (b.lo, b.hi, b.confidence, b.accuracy, b.count))
                    .collect::<Vec<_>>(),
            )?),
            None => None,
        };
        let roc_svg = match &r.roc_curve {
            Some(c) => Some(report::line_chart(
                &format!("ROC ({name}, AUC {})", f4(r.roc_auc)),
                "false-positive rate",
                "true-positive rate",
                &[
                    ("ROC".into(), c.clone()),
                    ("chance".into(), vec![(0.0, 0.0), (1.0, 1.0)]),
                ],
                None,
            )?),
            None => None,
        };
        let pr_svg = match &r.pr_curve {
            Some(c) => Some(report::line_chart(
                &format!("Precision-recall ({name}, AP {})", f4(r.pr_auc)),
                "recall",
                "precision",
                &[("PR".into(), c.clone())],
                None,
            )?),
            None => None,
        };
        models.push(ModelView {
            name,
            artifact: m.artifact.clone(),
            input: m.input_type.clone(),
            n: r.n,
            accuracy: f4(Some(r.accuracy)),
            balanced: f4(Some(r.balanced_accuracy)),
            ece: f4(r.ece),
            roc_auc: f4(r.roc_auc),
            pr_auc: f4(r.pr_auc),
            threshold: f4(r.threshold),
            per_class,
            confusion_svg,
            bars_svg,
            reliability_svg,
            roc_svg,
            pr_svg,
        });
    }
    let agreement = e.agreement.as_ref().map(|a| {
        minijinja::context! {
            n => a.n,
            top1 => format!("{:.2} %", 100.0 * a.top1),
            max_diff => format!("{:.6}", a.max_score_diff),
        }
    });
    report::render(
        "edgeflow evaluation report",
        "",
        REPORT,
        minijinja::context! {
            config => config.display().to_string(),
            classes => e.classes,
            models => models,
            agreement => agreement,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgeflow_train::evaluate::{Agreement, ModelEval};
    use edgeflow_train::metrics;

    fn eval(
        classes: &[&str],
        y: &[usize],
        scores: &[Vec<f32>],
        threshold: Option<f64>,
    ) -> ModelEval {
        let r = metrics::report(y, scores, classes.len(), true, threshold);
        ModelEval {
            artifact: "m.edgeflow".into(),
            input_type: "float32".into(),
            test: r.clone(),
            validation: r,
        }
    }

    fn count(html: &str, what: &str) -> usize {
        html.matches(what).count()
    }

    #[test]
    fn multiclass_report_has_metrics_confusion_bars_and_reliability() {
        let classes = ["walk", "run", "idle"];
        let y = [0, 1, 2, 0, 1, 2];
        let s: Vec<Vec<f32>> = vec![
            vec![0.8, 0.1, 0.1],
            vec![0.2, 0.7, 0.1],
            vec![0.1, 0.1, 0.8],
            vec![0.3, 0.6, 0.1],
            vec![0.1, 0.85, 0.05],
            vec![0.5, 0.1, 0.4],
        ];
        let f = eval(&classes, &y, &s, None);
        let e = edgeflow_train::Evaluation {
            classes: classes.iter().map(|c| c.to_string()).collect(),
            float: f.clone(),
            int8: Some(f),
            agreement: Some(Agreement {
                n: 6,
                top1: 5.0 / 6.0,
                max_score_diff: 0.125,
            }),
        };
        let html = report_html(&e, std::path::Path::new("cfg.toml")).unwrap();
        assert!(html.starts_with("<!doctype html>"));
        // 4 of 6 right: the metric is in the table, for both models.
        let row = r#"<td class="num">6</td><td class="num">0.6667</td><td class="num">0.6667</td>"#;
        assert_eq!(
            count(&html, row),
            2,
            "examples, accuracy, balanced accuracy of both models"
        );
        for m in ["float", "int8"] {
            for chart in ["confusion", "per-class", "reliability"] {
                let id = format!(r#"<div id="{chart}-{m}"><svg"#);
                assert!(html.contains(&id), "missing {id}");
            }
            assert!(!html.contains(&format!(r#"id="roc-{m}""#)));
        }
        assert!(html.contains("83.33 %") && html.contains("0.125000"));
        assert!(html.contains("<td>idle</td>"));
        assert!(!html.contains("<script"));
    }

    #[test]
    fn binary_report_has_roc_and_pr_curves() {
        let classes = ["normal", "anomaly"];
        let y = [0, 0, 1, 1, 0, 1];
        let s: Vec<Vec<f32>> = [0.1f32, 0.4, 0.35, 0.8, 0.2, 0.9]
            .iter()
            .map(|&p| vec![1.0 - p, p])
            .collect();
        let e = edgeflow_train::Evaluation {
            classes: classes.iter().map(|c| c.to_string()).collect(),
            float: eval(&classes, &y, &s, Some(0.5)),
            int8: None,
            agreement: None,
        };
        let html = report_html(&e, std::path::Path::new("cfg.toml")).unwrap();
        assert!(html.contains(r#"<div id="roc-float"><svg"#));
        assert!(html.contains(r#"<div id="pr-float"><svg"#));
        // 8 of the 9 positive/negative pairs are ranked right.
        assert!(html.contains("AUC 0.8889"), "ROC-AUC in the chart title");
        assert!(!html.contains(r#"id="agreement""#));
    }
}
