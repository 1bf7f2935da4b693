//! The energy of one inference per layer, the spiking network beside its ANN twin, as grouped
//! bars on a logarithmic axis (the two differ by orders of magnitude layer by layer).

use std::path::Path;

use plotters::prelude::*;

use super::{centred, draw_title, left_aligned, right_aligned, Canvas, PALETTE};
use crate::error::{Error, Result};
use crate::hw::energy::{format_pj as pj, EnergyCosts, EnergyReport};

/// Width of one layer's pair of bars, and the margins around the plot.
const GROUP_W: u32 = 120;
const LEFT: u32 = 90;
const RIGHT: u32 = 30;
const TOP: u32 = 40;
const BOTTOM: u32 = 60;
const PLOT_H: u32 = 360;

/// `1 pJ`, `10 nJ`, ... for a power of ten of picojoules.
fn decade_label(exp: i32) -> String {
    let units = ["pJ", "nJ", "µJ", "mJ", "J"];
    let unit = exp.div_euclid(3).clamp(0, 4);
    let rest = exp - 3 * unit;
    let scale = 10f64.powi(rest);
    format!("{scale} {}", units[unit as usize])
}

/// Draws `report` priced with `costs` to `path` as a PNG: per layer, the network's energy per
/// inference (blue) and the ANN twin's (orange), and the totals in the title.
pub fn write_energy_png(
    path: impl AsRef<Path>,
    title: &str,
    report: &EnergyReport,
    costs: &EnergyCosts,
) -> Result<()> {
    let path = path.as_ref();
    let snn: Vec<f64> = report
        .snn
        .layers
        .iter()
        .map(|l| l.energy_pj(report.snn.precision, costs))
        .collect();
    let ann: Vec<f64> = report
        .ann
        .layers
        .iter()
        .map(|l| l.energy_pj(report.ann.precision, costs))
        .collect();
    if snn.is_empty() || snn.len() != ann.len() {
        return Err(Error::invalid("energy plot", "no layers to draw"));
    }
    let positive = snn.iter().chain(&ann).filter(|v| **v > 0.0);
    let lo = positive.clone().fold(f64::INFINITY, |m, v| m.min(*v));
    let hi = positive.fold(0.0f64, |m, v| m.max(*v));
    if !(lo.is_finite() && hi.is_finite() && hi > 0.0) {
        return Err(Error::invalid("energy plot", "every layer costs nothing"));
    }
    // The floor sits below the smallest bar, so every bar has a height.
    let e0 = (lo.log10() - 1e-9).floor() as i32;
    let e1 = (hi.log10().ceil() as i32).max(e0 + 1);
    let n = snn.len() as u32;
    let width = (LEFT + GROUP_W * n + RIGHT).max(520);
    let height = super::TITLE_HEIGHT + TOP + PLOT_H + BOTTOM;
    let mut canvas = Canvas::new("energy plot", width, height)?;
    let names: Vec<String> = report.snn.layers.iter().map(|l| l.name.clone()).collect();
    let (snn_total, ann_total) = (report.snn.energy_pj(costs), report.ann.energy_pj(costs));
    canvas.draw(path, |root| {
        let err = |e: DrawingAreaErrorKind<_>| e.to_string();
        let body = draw_title(root, title, 18)?;
        let y0 = TOP as i32;
        let y_of = |v: f64| {
            let f = (v.log10() - f64::from(e0)) / f64::from(e1 - e0);
            y0 + PLOT_H as i32 - (f * f64::from(PLOT_H)).round() as i32
        };
        for exp in e0..=e1 {
            let y = y_of(10f64.powi(exp));
            body.draw(&PathElement::new(
                vec![(LEFT as i32, y), ((LEFT + GROUP_W * n) as i32, y)],
                RGBColor(220, 220, 220),
            ))
            .map_err(err)?;
            body.draw_text(
                &decade_label(exp),
                &right_aligned(12, &BLACK),
                (LEFT as i32 - 8, y),
            )
            .map_err(err)?;
        }
        let bar_w = (GROUP_W as i32 - 30) / 2;
        for (i, name) in names.iter().enumerate() {
            let gx = (LEFT + GROUP_W * i as u32) as i32 + 15;
            for (k, v) in [snn[i], ann[i]].into_iter().enumerate() {
                if v <= 0.0 {
                    continue;
                }
                let x = gx + k as i32 * bar_w;
                let y = y_of(v.max(10f64.powi(e0)));
                body.draw(&Rectangle::new(
                    [(x, y), (x + bar_w - 2, y0 + PLOT_H as i32)],
                    PALETTE[k].filled(),
                ))
                .map_err(err)?;
            }
            body.draw_text(
                name,
                &centred(12, &BLACK),
                (gx + bar_w, y0 + PLOT_H as i32 + 16),
            )
            .map_err(err)?;
        }
        let legend_y = y0 + PLOT_H as i32 + 42;
        for (k, label) in [
            format!("spiking network: {}", pj(snn_total)),
            format!("ANN twin: {}", pj(ann_total)),
        ]
        .iter()
        .enumerate()
        {
            let x = LEFT as i32 + k as i32 * 260;
            body.draw(&Rectangle::new(
                [(x, legend_y - 6), (x + 12, legend_y + 6)],
                PALETTE[k].filled(),
            ))
            .map_err(err)?;
            body.draw_text(label, &left_aligned(13, &BLACK), (x + 18, legend_y))
                .map_err(err)?;
        }
        Ok(())
    })?;
    canvas.write_png(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_read_in_the_right_unit() {
        assert_eq!(decade_label(0), "1 pJ");
        assert_eq!(decade_label(4), "10 nJ");
        assert_eq!(decade_label(8), "100 µJ");
        assert_eq!(pj(1234.0), "1.234 nJ");
        assert_eq!(pj(12.0), "12.0 pJ");
    }
}
