//! Training curves: charts of named `(x, y)` series side by side ([`panels`]), and the
//! standard pictures of both trainers' logs: [`write_history_curves`] for the spiking-network
//! trainer's [`History`] and [`write_lm_curves`] for the language-model trainer's records
//! (kept up to date during training by [`LmCurves`]).

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::font::FONT;
use super::{draw_title, format_tick, Area, Canvas, DrawResult, PALETTE, TITLE_HEIGHT};
use crate::error::{Error, Result};
use crate::train::history::{EpochRecord, History};
use crate::train::lm_trainer::{LmEvent, LmRecord};

/// Width of one panel drawn by [`panels`], in pixels.
pub const PANEL_WIDTH: u32 = 640;
/// Height of one panel drawn by [`panels`], in pixels (title strip excluded).
pub const PANEL_HEIGHT: u32 = 440;

/// Point size of a curves figure's title.
const TITLE_SIZE: u32 = 24;

/// Series with at most this many points get a marker on each point.
const MAX_MARKED_POINTS: usize = 60;

/// A named curve of `(x, y)` points; non-finite points are skipped when drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The legend entry.
    pub name: String,
    /// The points, in drawing order.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// A series named `name` through `points`.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points,
        }
    }
}

/// One chart: a title, a y-axis label and the curves drawn on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Shown above the chart.
    pub title: String,
    /// The y-axis description, e.g. "loss" or "accuracy (%)".
    pub y_label: String,
    /// The curves; all share the panel's axes.
    pub series: Vec<Series>,
    /// A fixed y range (e.g. `(0.0, 100.0)` for accuracy); `None`, or a range that is not
    /// finite and increasing, fits the data.
    pub y_range: Option<(f64, f64)>,
}

impl Panel {
    /// A panel with a y range fitted to its data.
    pub fn new(title: impl Into<String>, y_label: impl Into<String>, series: Vec<Series>) -> Self {
        Self {
            title: title.into(),
            y_label: y_label.into(),
            series,
            y_range: None,
        }
    }

    /// The same panel with a fixed y range.
    pub fn with_y_range(mut self, min: f64, max: f64) -> Self {
        self.y_range = Some((min, max));
        self
    }
}

/// Draws `series` on one chart with x labelled "epoch" and a fitted y range.
pub fn training_curves(path: &Path, title: &str, series: &[Series]) -> Result<()> {
    let panel = Panel::new("", "", series.to_vec());
    panels(path, title, "epoch", std::slice::from_ref(&panel))
}

/// The pixel size of the image that [`panels`] draws for `num_panels` panels.
pub fn panels_size(num_panels: usize) -> (u32, u32) {
    let n = u32::try_from(num_panels).unwrap_or(u32::MAX);
    (PANEL_WIDTH.saturating_mul(n), TITLE_HEIGHT + PANEL_HEIGHT)
}

/// Draws `panels` side by side under `title`, sharing the x-axis description `x_label`, and
/// writes them to `path` as a PNG.
pub fn panels(path: &Path, title: &str, x_label: &str, panels: &[Panel]) -> Result<()> {
    if panels.is_empty() {
        return Err(Error::invalid(
            "plot panels",
            "at least one panel is needed",
        ));
    }
    if panels.len() > 16 {
        return Err(Error::invalid(
            "plot panels",
            format!("at most 16 panels fit side by side, got {}", panels.len()),
        ));
    }
    let (width, height) = panels_size(panels.len());
    let mut canvas = Canvas::new("plot panels", width, height)?;
    canvas.draw(path, |root| {
        let body = draw_title(root, title, TITLE_SIZE)?;
        for (area, panel) in body.split_evenly((1, panels.len())).iter().zip(panels) {
            draw_panel(area, x_label, panel)?;
        }
        Ok(())
    })?;
    canvas.write_png(path)
}

/// Exponential moving average with weight `alpha` on each new point, so per-batch noise does
/// not hide the trend; x values pass through unchanged.
pub fn smooth(points: impl Iterator<Item = (f64, f64)>, alpha: f64) -> Vec<(f64, f64)> {
    let mut avg = None;
    points
        .map(|(x, y)| {
            let a = avg.map_or(y, |a: f64| a + alpha * (y - a));
            avg = Some(a);
            (x, a)
        })
        .collect()
}

/// Draws the loss and accuracy curves of a spiking-network run under `title`: training per
/// batch (smoothed with [`smooth`]), test per epoch, x in epochs.
pub fn write_history_curves(path: &Path, title: &str, history: &History) -> Result<()> {
    let per_epoch = |f: &dyn Fn(&EpochRecord) -> f64| -> Vec<(f64, f64)> {
        history
            .records
            .iter()
            .map(|r| (r.epoch as f64, f(r)))
            .collect()
    };
    // About 20 batches of memory, whatever the run's length.
    let alpha = (20.0 / history.batches.len().max(1) as f64).clamp(0.02, 0.5);
    let train_loss = smooth(history.batches.iter().map(|b| (b.epoch, b.loss)), alpha);
    let train_acc = smooth(
        history
            .batches
            .iter()
            .map(|b| (b.epoch, 100.0 * b.accuracy)),
        alpha,
    );
    let charts = [
        Panel::new(
            "Loss",
            "loss",
            vec![
                Series::new("train (per batch, smoothed)", train_loss),
                Series::new("test (per epoch)", per_epoch(&|r| r.test_loss)),
            ],
        ),
        Panel::new(
            "Accuracy",
            "accuracy (%)",
            vec![
                Series::new("train (per batch, smoothed)", train_acc),
                Series::new("test (per epoch)", per_epoch(&|r| 100.0 * r.test_accuracy)),
            ],
        ),
    ];
    panels(path, title, "epoch", &charts)
}

/// Draws a language-model run's curves: training bits per token and held-out bits per
/// character in one chart, the learning rate in another, x in optimizer steps.
pub fn write_lm_curves(path: &Path, history: &[LmRecord]) -> Result<()> {
    let train: Vec<(f64, f64)> = history
        .iter()
        .map(|r| (r.step as f64, r.loss / std::f64::consts::LN_2))
        .collect();
    let eval: Vec<(f64, f64)> = history
        .iter()
        .filter_map(|r| r.eval_bpc.map(|b| (r.step as f64, b)))
        .collect();
    let lr: Vec<(f64, f64)> = history.iter().map(|r| (r.step as f64, r.lr)).collect();
    let charts = [
        Panel::new(
            "bits per token (train) / per character (held-out)",
            "bits",
            vec![Series::new("train", train), Series::new("held-out", eval)],
        ),
        Panel::new("learning rate", "lr", vec![Series::new("lr", lr)]),
    ];
    panels(path, "language model training", "step", &charts)
}

/// Keeps a language-model run's curves picture current while
/// [`train_lm`](crate::train::lm_trainer::train_lm) runs: it collects the records of the trainer's
/// events and redraws [`write_lm_curves`] whenever a checkpoint is saved, so the picture
/// always matches the saved log.
#[derive(Debug, Clone)]
pub struct LmCurves {
    path: PathBuf,
    history: Vec<LmRecord>,
}

impl LmCurves {
    /// Draws to `path`, starting from `history`, the log of earlier processes of the run
    /// (empty for a new run, the session's history for a resumed one).
    pub fn new(path: impl Into<PathBuf>, history: &[LmRecord]) -> Self {
        Self {
            path: path.into(),
            history: history.to_vec(),
        }
    }

    /// Records a step's log entry, or redraws the picture after a checkpoint.
    pub fn observe(&mut self, event: &LmEvent) -> Result<()> {
        match event {
            LmEvent::Step(record) => self.history.push(record.clone()),
            LmEvent::Saved { .. } => write_lm_curves(&self.path, &self.history)?,
            LmEvent::Start { .. } | LmEvent::Eval { .. } => {}
        }
        Ok(())
    }
}

/// A `(min, max)` range around `values` with a little padding; `(0, 1)` when there are none.
fn fitted_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return (0.0, 1.0);
    }
    let span = hi - lo;
    let pad = if span > 0.0 {
        span * 0.05
    } else {
        lo.abs().max(1.0) * 0.1
    };
    (lo - pad, hi + pad)
}

/// Draws one chart of curves into `area`.
fn draw_panel(area: &Area<'_>, x_label: &str, panel: &Panel) -> DrawResult<()> {
    let finite = |s: &Series| -> Vec<(f64, f64)> {
        s.points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect()
    };
    let curves: Vec<(String, Vec<(f64, f64)>)> = panel
        .series
        .iter()
        .map(|s| (s.name.clone(), finite(s)))
        .collect();
    let (x0, x1) = fitted_range(curves.iter().flat_map(|(_, p)| p.iter().map(|p| p.0)));
    let (y0, y1) = match panel.y_range {
        Some((lo, hi)) if lo.is_finite() && hi.is_finite() && lo < hi => (lo, hi),
        _ => fitted_range(curves.iter().flat_map(|(_, p)| p.iter().map(|p| p.1))),
    };
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(12)
        .x_label_area_size(46)
        .y_label_area_size(64);
    if !panel.title.is_empty() {
        builder.caption(&panel.title, (FONT, 20));
    }
    let mut chart = builder
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| e.to_string())?;
    let whole_x = curves
        .iter()
        .all(|(_, p)| p.iter().all(|&(x, _)| x.fract() == 0.0));
    // Whole-number axes (epochs) get one tick per value so no label repeats after rounding.
    let x_ticks = if whole_x {
        ((x1 - x0).floor() as usize + 1).clamp(2, 12)
    } else {
        10
    };
    // Plotters draws about ten labelled ticks per axis by default.
    let y_decimals = decimals_for_step((y1 - y0) / 10.0);
    chart
        .configure_mesh()
        .light_line_style(RGBColor(245, 245, 245))
        .bold_line_style(RGBColor(215, 215, 215))
        .x_desc(x_label)
        .y_desc(&panel.y_label)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .x_labels(x_ticks)
        .x_label_formatter(&|x| format_tick(*x, whole_x))
        .y_label_formatter(&|y| format_tick_decimals(*y, y_decimals))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (name, points)) in curves.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let line = color.stroke_width(2);
        chart
            .draw_series(LineSeries::new(points.iter().copied(), line))
            .map_err(|e| e.to_string())?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], line));
        if points.len() <= MAX_MARKED_POINTS {
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(|e| e.to_string())?;
        }
    }
    if curves.iter().any(|(name, _)| !name.is_empty()) {
        chart
            .configure_series_labels()
            .position(legend_position(&curves, y0, y1))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(160, 160, 160))
            .label_font((FONT, 14))
            .draw()
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Puts the legend in the corner the curves' right ends stay away from.
fn legend_position(curves: &[(String, Vec<(f64, f64)>)], y0: f64, y1: f64) -> SeriesLabelPosition {
    let ends: Vec<f64> = curves
        .iter()
        .filter_map(|(_, p)| p.last())
        .map(|&(_, y)| (y - y0) / (y1 - y0))
        .collect();
    let mean_end = ends.iter().sum::<f64>() / ends.len().max(1) as f64;
    if mean_end > 0.5 {
        SeriesLabelPosition::LowerRight
    } else {
        SeriesLabelPosition::UpperRight
    }
}

/// Decimals needed so ticks `step` apart print differently (at least 0, at most 6).
fn decimals_for_step(step: f64) -> usize {
    if !(step.is_finite() && step > 0.0) {
        return 2;
    }
    (-step.log10()).ceil().clamp(0.0, 6.0) as usize
}

/// A tick label with a fixed number of decimals (scientific for very large or small values).
fn format_tick_decimals(v: f64, decimals: usize) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-4..1e6).contains(&a) {
        return format!("{v:.1e}");
    }
    format!("{v:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_padded_and_never_empty() {
        assert_eq!(fitted_range([].into_iter()), (0.0, 1.0));
        let (lo, hi) = fitted_range([2.0, 2.0].into_iter());
        assert!(lo < 2.0 && hi > 2.0);
        let (lo, hi) = fitted_range([0.0, f64::NAN, 10.0].into_iter());
        assert!(lo < 0.0 && hi > 10.0 && hi < 11.0);
    }

    #[test]
    fn panel_sizes_follow_the_layout() {
        assert_eq!(
            panels_size(2),
            (2 * PANEL_WIDTH, TITLE_HEIGHT + PANEL_HEIGHT)
        );
    }

    #[test]
    fn close_ticks_stay_distinct() {
        let d = decimals_for_step(0.009);
        assert_eq!(d, 3);
        assert_ne!(
            format_tick_decimals(1.505, d),
            format_tick_decimals(1.514, d)
        );
        assert_eq!(format_tick_decimals(98.5, decimals_for_step(0.1)), "98.5");
    }

    #[test]
    fn smoothing_follows_the_trend() {
        let s = smooth([(0.0, 0.0), (1.0, 10.0), (2.0, 10.0)].into_iter(), 0.5);
        assert_eq!(s, vec![(0.0, 0.0), (1.0, 5.0), (2.0, 7.5)]);
    }

    #[test]
    fn lm_curves_redraw_on_save_with_every_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curves.png");
        let record = |step| LmRecord {
            step,
            loss: 2.0,
            lr: 1e-3,
            seconds: 0.0,
            eval_nats: None,
            eval_bpc: None,
        };
        let mut curves = LmCurves::new(&path, &[record(1)]);
        curves.observe(&LmEvent::Step(record(2))).unwrap();
        assert!(!path.exists());
        curves.observe(&LmEvent::Saved { step: 2 }).unwrap();
        assert!(path.exists());
        assert_eq!(curves.history.len(), 2);
    }
}
