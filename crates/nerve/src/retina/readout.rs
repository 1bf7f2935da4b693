//! Spike-rate read-out per region of the visual field: the signal that drove the prosthesis.
//!
//! The ganglion grid is cut into `rows`×`cols` regions of (nearly) equal size; a region's rate
//! is the mean firing rate of its ON cells and, separately, of its OFF cells over a window.

use serde::Serialize;

use super::output::RetinaOutput;
use crate::error::{Error, Result};

/// Mean firing rates per region, row-major (region `r·cols + c`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegionRates {
    /// Region rows.
    pub rows: usize,
    /// Region columns.
    pub cols: usize,
    /// Start of the window, ms.
    pub t_start_ms: f64,
    /// End of the window, ms.
    pub t_end_ms: f64,
    /// ON cells per region.
    pub cells_per_region: Vec<usize>,
    /// Mean ON rate per region, Hz.
    pub on_hz: Vec<f64>,
    /// Mean OFF rate per region, Hz.
    pub off_hz: Vec<f64>,
}

impl RegionRates {
    /// The region with the highest ON rate (first one on ties).
    pub fn peak_on(&self) -> usize {
        argmax(&self.on_hz)
    }

    /// The region with the highest OFF rate (first one on ties).
    pub fn peak_off(&self) -> usize {
        argmax(&self.off_hz)
    }

    /// The rates as a table: one line per region row, `ON/OFF` pairs in Hz.
    pub fn table(&self) -> String {
        let mut s = String::new();
        for r in 0..self.rows {
            let cells: Vec<String> = (0..self.cols)
                .map(|c| {
                    let i = r * self.cols + c;
                    format!("{:>7.1}/{:<7.1}", self.on_hz[i], self.off_hz[i])
                })
                .collect();
            s.push_str(cells.join(" ").trim_end());
            s.push('\n');
        }
        s
    }
}

fn argmax(v: &[f64]) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |(bi, bv), (i, &x)| {
            if x > bv {
                (i, x)
            } else {
                (bi, bv)
            }
        })
        .0
}

/// The region (row, column) of grid cell `(x, y)` on a `gw`×`gh` grid cut into `rows`×`cols`.
fn region_of(x: usize, y: usize, gw: usize, gh: usize, rows: usize, cols: usize) -> usize {
    (y * rows / gh) * cols + x * cols / gw
}

/// Mean ON and OFF rates per region of a `rows`×`cols` grid over `[t_start_ms, t_end_ms)`.
/// Every region must hold at least one ganglion cell.
pub fn region_rates(
    out: &RetinaOutput,
    rows: usize,
    cols: usize,
    t_start_ms: f64,
    t_end_ms: f64,
) -> Result<RegionRates> {
    let (gw, gh) = (out.grid_width, out.grid_height);
    if rows == 0 || cols == 0 || rows > gh || cols > gw {
        return Err(Error::invalid(
            "regions",
            format!("{rows}x{cols} regions need between 1x1 and {gh}x{gw} (the ganglion grid)"),
        ));
    }
    if !(t_start_ms.is_finite() && t_end_ms.is_finite() && t_end_ms > t_start_ms) {
        return Err(Error::invalid(
            "read-out window",
            format!("[{t_start_ms}, {t_end_ms}) ms is empty or not finite"),
        ));
    }
    let n_regions = rows * cols;
    let mut cells = vec![0usize; n_regions];
    for y in 0..gh {
        for x in 0..gw {
            cells[region_of(x, y, gw, gh, rows, cols)] += 1;
        }
    }
    let (mut on, mut off) = (vec![0usize; n_regions], vec![0usize; n_regions]);
    for s in out
        .spikes
        .iter()
        .filter(|s| s.t_ms >= t_start_ms && s.t_ms < t_end_ms)
    {
        let (kind, x, y) = out.cell(s.cell);
        let r = region_of(x, y, gw, gh, rows, cols);
        match kind {
            super::CellType::On => on[r] += 1,
            super::CellType::Off => off[r] += 1,
        }
    }
    let seconds = (t_end_ms - t_start_ms) / 1000.0;
    let rate = |counts: Vec<usize>| -> Vec<f64> {
        counts
            .iter()
            .zip(&cells)
            .map(|(&k, &c)| k as f64 / (c as f64 * seconds))
            .collect()
    };
    Ok(RegionRates {
        rows,
        cols,
        t_start_ms,
        t_end_ms,
        on_hz: rate(on),
        off_hz: rate(off),
        cells_per_region: cells,
    })
}
