//! Per-class spike counts of a classifier's output layer as a heat map: one row per true class,
//! one column per output neuron, each cell the mean spike count with its value written in it.
//! The cell of the true class's own neuron is outlined, so a correct classifier shows a
//! bright, outlined diagonal. [`write_eval_class_counts`] draws an evaluation's counts.

use std::path::Path;

use plotters::prelude::*;

use super::{centred, draw_title, left_aligned, right_aligned, Canvas, DrawResult, TITLE_HEIGHT};
use crate::error::{Error, Result};
use crate::train::trainer::EvalReport;

/// Most classes (rows) or output neurons (columns) drawn; more would not be readable.
pub const MAX_CLASS_COUNT_CELLS: usize = 200;

/// Colour of the outline around each true class's own neuron (orange).
pub const TRUE_CLASS_OUTLINE: [u8; 3] = [255, 127, 14];

/// Point size of the figure's title.
const TITLE_SIZE: u32 = 20;

/// Space left of the grid for the class names, and right of it.
const LABELS_W: u32 = 150;
const RIGHT_W: u32 = 30;
/// Space above the grid (axis name and column labels) and below it (colour bar).
const HEAD_H: u32 = 56;
const FOOT_H: u32 = 70;

/// The white → dark blue colour scale (matplotlib's "Blues" end points).
const LOW: [f64; 3] = [247.0, 251.0, 255.0];
const HIGH: [f64; 3] = [8.0, 48.0, 107.0];

/// Cell size in pixels for `classes` rows and `neurons` columns: large with numbers for the
/// usual 10 classes, shrinking to fit about 1200 × 900 pixels of grid for more.
fn cell_size(classes: usize, neurons: usize) -> (u32, u32) {
    let w = (1200 / neurons.max(1)).clamp(6, 72) as u32;
    let h = (900 / classes.max(1)).clamp(6, 44) as u32;
    (w, h)
}

/// The `(width, height)` in pixels of the image [`write_class_counts_png`] draws.
pub fn class_counts_image_size(classes: usize, neurons: usize) -> (u32, u32) {
    let (cw, ch) = cell_size(classes, neurons);
    (
        (LABELS_W + cw * neurons as u32 + RIGHT_W).max(420),
        TITLE_HEIGHT + HEAD_H + ch * classes as u32 + FOOT_H,
    )
}

/// Draws `counts[c][k]`, the mean spike count of output neuron `k` over the samples whose true
/// class is `c` (named `class_names[c]`), as a heat map and writes it to `path` as a PNG.
///
/// Rows are true classes, columns output neurons (labelled with the class names when there is
/// one neuron per class and they fit, else with indices); cell `(c, c)` is outlined in
/// [`TRUE_CLASS_OUTLINE`]. Colours run from white (0) to dark blue (the largest count); a NaN
/// count (a class without samples) is drawn grey and marked "–".
///
/// Refuses no classes, `counts.len() != class_names.len()`, rows of unequal or zero length,
/// more than [`MAX_CLASS_COUNT_CELLS`] rows or columns, and negative or infinite counts.
pub fn write_class_counts_png(
    path: impl AsRef<Path>,
    title: &str,
    class_names: &[String],
    counts: &[Vec<f64>],
) -> Result<()> {
    draw_class_counts(path.as_ref(), title, "output neuron", class_names, counts)
}

/// [`write_class_counts_png`] with the columns named `column_axis`.
fn draw_class_counts(
    path: &Path,
    title: &str,
    column_axis: &str,
    class_names: &[String],
    counts: &[Vec<f64>],
) -> Result<()> {
    let classes = class_names.len();
    if classes == 0 || counts.len() != classes {
        return Err(Error::invalid(
            "class counts",
            format!(
                "need one row of counts per class: {} names, {} rows",
                classes,
                counts.len()
            ),
        ));
    }
    let neurons = counts[0].len();
    if neurons == 0 || counts.iter().any(|r| r.len() != neurons) {
        return Err(Error::invalid(
            "class counts",
            "every row needs the same, non-zero number of output neurons",
        ));
    }
    if classes > MAX_CLASS_COUNT_CELLS || neurons > MAX_CLASS_COUNT_CELLS {
        return Err(Error::invalid(
            "class counts",
            format!(
                "{classes} classes x {neurons} neurons: at most {MAX_CLASS_COUNT_CELLS} of each \
                 can be drawn readably"
            ),
        ));
    }
    for (c, row) in counts.iter().enumerate() {
        if let Some(k) = row.iter().position(|&v| v < 0.0 || v.is_infinite()) {
            return Err(Error::invalid(
                "class counts",
                format!(
                    "class {c}, neuron {k}: count {} must be non-negative and finite",
                    row[k]
                ),
            ));
        }
    }
    let max = counts
        .iter()
        .flatten()
        .filter(|v| v.is_finite())
        .fold(0f64, |m, &v| m.max(v));
    let (width, height) = class_counts_image_size(classes, neurons);
    let (cw, ch) = cell_size(classes, neurons);
    let (cw, ch) = (cw as i32, ch as i32);
    let mut canvas = Canvas::new("class counts", width, height)?;
    let decimals = if max >= 100.0 {
        0
    } else if max >= 10.0 {
        1
    } else {
        2
    };
    // Numbers only where they fit: about 7 pixels per character at 12 points.
    let widest = format!("{max:.decimals$}").len() as i32;
    let numbers = cw >= 7 * widest + 6 && ch >= 16;
    let col_labels: Vec<String> = if neurons == classes
        && class_names
            .iter()
            .all(|n| n.chars().count() as i32 * 7 + 4 <= cw)
    {
        class_names.to_vec()
    } else {
        (0..neurons).map(|k| k.to_string()).collect()
    };
    let label_every = ((24 / cw).max(0) + 1) as usize;
    let row_every = ((14 / ch).max(0) + 1) as usize;
    canvas.draw(path, |root| -> DrawResult<()> {
        draw_title(root, title, TITLE_SIZE)?;
        let x0 = LABELS_W as i32;
        let y0 = (TITLE_HEIGHT + HEAD_H) as i32;
        let grid_w = cw * neurons as i32;
        let grid_h = ch * classes as i32;
        let err = |e: plotters::drawing::DrawingAreaErrorKind<_>| e.to_string();
        root.draw_text(
            column_axis,
            &centred(14, &BLACK),
            (x0 + grid_w / 2, y0 - 40),
        )
        .map_err(err)?;
        root.draw_text("true class", &right_aligned(14, &BLACK), (x0 - 8, y0 - 14))
            .map_err(err)?;
        for (k, label) in col_labels.iter().enumerate().step_by(label_every) {
            root.draw_text(
                label,
                &centred(12, &BLACK),
                (x0 + cw * k as i32 + cw / 2, y0 - 14),
            )
            .map_err(err)?;
        }
        for (c, row) in counts.iter().enumerate() {
            let y = y0 + ch * c as i32;
            if c % row_every == 0 {
                let name: String = class_names[c].chars().take(18).collect();
                root.draw_text(&name, &right_aligned(13, &BLACK), (x0 - 8, y + ch / 2))
                    .map_err(err)?;
            }
            for (k, &v) in row.iter().enumerate() {
                let x = x0 + cw * k as i32;
                let fill = if v.is_nan() {
                    RGBColor(200, 200, 200)
                } else {
                    ramp(if max > 0.0 { v / max } else { 0.0 })
                };
                root.draw(&Rectangle::new([(x, y), (x + cw, y + ch)], fill.filled()))
                    .map_err(err)?;
                if numbers {
                    let text = if v.is_nan() {
                        "–".to_string()
                    } else {
                        format!("{v:.decimals$}")
                    };
                    let ink: &'static RGBColor = if luminance(fill) < 0.5 {
                        &WHITE
                    } else {
                        &BLACK
                    };
                    root.draw_text(&text, &centred(12, ink), (x + cw / 2, y + ch / 2))
                        .map_err(err)?;
                }
            }
        }
        // Outlines last, so neighbouring cells do not paint over them.
        let [r, g, b] = TRUE_CLASS_OUTLINE;
        let outline = RGBColor(r, g, b);
        for c in 0..classes.min(neurons) {
            let (x, y) = (x0 + cw * c as i32, y0 + ch * c as i32);
            let t = if cw >= 12 && ch >= 12 { 3 } else { 1 };
            for i in 0..t {
                root.draw(&Rectangle::new(
                    [(x + i, y + i), (x + cw - 1 - i, y + ch - 1 - i)],
                    outline.stroke_width(1),
                ))
                .map_err(err)?;
            }
        }
        root.draw(&Rectangle::new(
            [(x0, y0), (x0 + grid_w, y0 + grid_h)],
            RGBColor(120, 120, 120).stroke_width(1),
        ))
        .map_err(err)?;
        // The colour bar: 0 on the left, the largest count on the right.
        let (bx, by, bw, bh) = (x0, y0 + grid_h + 22, 200, 12);
        for i in 0..bw {
            let c = ramp(f64::from(i) / f64::from(bw - 1));
            root.draw(&Rectangle::new(
                [(bx + i, by), (bx + i + 1, by + bh)],
                c.filled(),
            ))
            .map_err(err)?;
        }
        root.draw(&Rectangle::new(
            [(bx, by), (bx + bw, by + bh)],
            RGBColor(120, 120, 120).stroke_width(1),
        ))
        .map_err(err)?;
        root.draw_text("0", &centred(12, &BLACK), (bx, by + bh + 12))
            .map_err(err)?;
        root.draw_text(
            &format!("{max:.decimals$}"),
            &centred(12, &BLACK),
            (bx + bw, by + bh + 12),
        )
        .map_err(err)?;
        root.draw_text(
            "mean spikes per sample",
            &left_aligned(13, &BLACK),
            (bx + bw + 26, by + bh / 2),
        )
        .map_err(err)?;
        Ok(())
    })?;
    canvas.write_png(path)
}

/// Draws the mean output spike counts per true class of an evaluation of `dataset`, whose
/// classes are named `class_names`, titled with the data set and the accuracy; with a
/// population code, one column per class's population (its neurons' counts summed).
pub fn write_eval_class_counts(
    path: impl AsRef<Path>,
    report: &EvalReport,
    class_names: &[String],
    dataset: &str,
) -> Result<()> {
    let accuracy = 100.0 * report.accuracy;
    match report.population {
        Some(p) => draw_class_counts(
            path.as_ref(),
            &format!(
                "Population spikes per test sample by true class ({dataset}, {p} neurons per \
                 class, {accuracy:.2}% correct)"
            ),
            &format!("output population ({p} neurons each)"),
            class_names,
            &report.class_counts,
        ),
        None => write_class_counts_png(
            path,
            &format!(
                "Output spikes per test sample by true class ({dataset}, {accuracy:.2}% correct)"
            ),
            class_names,
            &report.class_counts,
        ),
    }
}

/// The colour of a value scaled to `[0, 1]`.
fn ramp(f: f64) -> RGBColor {
    let f = f.clamp(0.0, 1.0);
    let c = |i: usize| (LOW[i] + (HIGH[i] - LOW[i]) * f).round() as u8;
    RGBColor(c(0), c(1), c(2))
}

/// Relative luminance in `[0, 1]`, to pick black or white text.
fn luminance(c: RGBColor) -> f64 {
    (0.299 * f64::from(c.0) + 0.587 * f64::from(c.1) + 0.114 * f64::from(c.2)) / 255.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_classes_get_big_cells_with_room_for_numbers() {
        assert_eq!(cell_size(10, 10), (72, 44));
        let (w, h) = class_counts_image_size(10, 10);
        assert_eq!(w, LABELS_W + 720 + RIGHT_W);
        assert_eq!(h, TITLE_HEIGHT + HEAD_H + 440 + FOOT_H);
        assert_eq!(cell_size(200, 200), (6, 6));
    }

    #[test]
    fn ramp_runs_light_to_dark() {
        assert!(luminance(ramp(0.0)) > 0.9);
        assert!(luminance(ramp(1.0)) < 0.3);
    }
}
