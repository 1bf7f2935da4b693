//! Regression pictures: the output membrane against its target over time
//! ([`write_regression_png`]), and a regression run's loss and error curves
//! ([`write_regression_curves`]).

use std::path::Path;

use super::curves::{panels, smooth, Panel, Series};
use crate::error::{Error, Result};
use crate::train::history::History;
use crate::train::regression::RegressionTrace;

/// At most this many output neurons are drawn per panel.
const MAX_OUTPUTS: usize = 10;

/// Draws, for each sample of `trace` (one panel each), the membrane of every output neuron
/// (up to 10) over time and its target where there is one (for labelled samples, the labelled
/// neuron's), and writes the PNG to `path`.
pub fn write_regression_png(path: &Path, title: &str, trace: &RegressionTrace) -> Result<()> {
    let [t, k, o] = trace.shape;
    if t == 0 || k == 0 || o == 0 || trace.membrane.len() != t * k * o {
        return Err(Error::invalid(
            "regression trace",
            format!(
                "{} membrane values for shape {:?}",
                trace.membrane.len(),
                trace.shape
            ),
        ));
    }
    if let Some(target) = &trace.target {
        if target.len() != t * k * o {
            return Err(Error::invalid(
                "regression trace",
                format!("{} target values for shape {:?}", target.len(), trace.shape),
            ));
        }
    }
    let series = |values: &[f32], s: usize, j: usize| -> Vec<(f64, f64)> {
        (0..t)
            .map(|step| (step as f64, f64::from(values[(step * k + s) * o + j])))
            .collect()
    };
    let shown = o.min(MAX_OUTPUTS);
    let charts: Vec<Panel> = (0..k)
        .map(|s| {
            let name = |what: &str, j: usize| {
                if o == 1 {
                    what.to_string()
                } else {
                    format!("{what} {j}")
                }
            };
            let mut curves = Vec::new();
            for j in 0..shown {
                // With labels, only the labelled neuron's target is drawn (the others share one).
                let own = trace.labels.get(s).is_none_or(|&l| l == j);
                if let (Some(target), true) = (&trace.target, own) {
                    curves.push(Series::new(name("target", j), series(target, s, j)));
                }
                curves.push(Series::new(
                    name("membrane", j),
                    series(&trace.membrane, s, j),
                ));
            }
            let label = trace
                .labels
                .get(s)
                .map_or(String::new(), |l| format!(" (label {l})"));
            Panel::new(format!("sample {s}{label}"), "membrane potential", curves)
        })
        .collect();
    panels(path, title, "time step", &charts)
}

/// Draws a regression run's training loss per batch (smoothed) and test loss per epoch, and
/// the relative error per epoch (or the test accuracy for labelled data), x in epochs.
pub fn write_regression_curves(path: &Path, title: &str, history: &History) -> Result<()> {
    let alpha = (20.0 / history.batches.len().max(1) as f64).clamp(0.02, 0.5);
    let train = smooth(history.batches.iter().map(|b| (b.epoch, b.loss)), alpha);
    let test: Vec<(f64, f64)> = history
        .records
        .iter()
        .map(|r| (r.epoch as f64, r.test_loss))
        .collect();
    let rel: Vec<(f64, f64)> = history
        .records
        .iter()
        .filter_map(|r| r.extra.get("relative_error").map(|&e| (r.epoch as f64, e)))
        .collect();
    let second = if rel.is_empty() {
        let acc = history
            .records
            .iter()
            .map(|r| (r.epoch as f64, 100.0 * r.test_accuracy))
            .collect();
        Panel::new(
            "Test accuracy",
            "accuracy (%)",
            vec![Series::new("test", acc)],
        )
    } else {
        Panel::new(
            "Relative error",
            "relative error",
            vec![Series::new("evaluation", rel)],
        )
    };
    let charts = [
        Panel::new(
            "Loss",
            "loss",
            vec![
                Series::new("train (per batch, smoothed)", train),
                Series::new("evaluation (per epoch)", test),
            ],
        ),
        second,
    ];
    panels(path, title, "epoch", &charts)
}
