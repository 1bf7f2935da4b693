//! The spikes a retina run produces, and their conversions: event streams (so every event tool
//! of the crate reads them) and CSV.

use std::io::Write;
use std::path::Path;

use crate::data::events::Events;
use crate::error::{Error, Result};

/// ON ganglion cells fire for light increments, OFF cells for decrements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CellType {
    /// ON cell.
    On,
    /// OFF cell.
    Off,
}

impl CellType {
    /// `"on"` or `"off"`.
    pub fn name(self) -> &'static str {
        match self {
            CellType::On => "on",
            CellType::Off => "off",
        }
    }
}

/// One spike: when and which cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spike {
    /// Time, ms from the start of the stimulus.
    pub t_ms: f64,
    /// Cell index: ON cells are `0..n`, OFF cells `n..2n`, each row-major on the grid.
    pub cell: u32,
}

/// The result of [`super::Retina::run`].
#[derive(Debug, Clone, PartialEq)]
pub struct RetinaOutput {
    /// Image width, pixels.
    pub width: usize,
    /// Image height, pixels.
    pub height: usize,
    /// Ganglion grid columns (per cell type).
    pub grid_width: usize,
    /// Ganglion grid rows (per cell type).
    pub grid_height: usize,
    /// Pixels per ganglion cell along each axis.
    pub grid_step: usize,
    /// Simulated time, ms.
    pub duration_ms: f64,
    /// Every spike, sorted by time then cell.
    pub spikes: Vec<Spike>,
}

impl RetinaOutput {
    /// Cells of each type (`grid_width · grid_height`).
    pub fn cells_per_type(&self) -> usize {
        self.grid_width * self.grid_height
    }

    /// Cells of both types.
    pub fn num_cells(&self) -> usize {
        2 * self.cells_per_type()
    }

    /// Type and grid position `(x, y)` of a cell index.
    pub fn cell(&self, cell: u32) -> (CellType, usize, usize) {
        let n = self.cells_per_type();
        let (kind, i) = if (cell as usize) < n {
            (CellType::On, cell as usize)
        } else {
            (CellType::Off, cell as usize - n)
        };
        (kind, i % self.grid_width, i / self.grid_width)
    }

    /// Number of `(ON, OFF)` spikes.
    pub fn counts(&self) -> (usize, usize) {
        let n = self.cells_per_type() as u32;
        let on = self.spikes.iter().filter(|s| s.cell < n).count();
        (on, self.spikes.len() - on)
    }

    /// Spike counts per cell.
    pub fn counts_per_cell(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_cells()];
        for s in &self.spikes {
            counts[s.cell as usize] += 1;
        }
        counts
    }

    /// The spikes as events on the ganglion grid: polarity +1 for ON cells, −1 for OFF cells,
    /// times rounded to whole microseconds.
    pub fn to_events(&self) -> Result<Events> {
        let too_big = |v: usize| v > u16::MAX as usize;
        if too_big(self.grid_width) || too_big(self.grid_height) {
            return Err(Error::invalid(
                "retina output",
                format!(
                    "a {}x{} ganglion grid does not fit an event sensor (65535 max)",
                    self.grid_width, self.grid_height
                ),
            ));
        }
        let n = self.spikes.len();
        let (mut x, mut y, mut t, mut p) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for s in &self.spikes {
            let (kind, cx, cy) = self.cell(s.cell);
            x.push(cx as u16);
            y.push(cy as u16);
            t.push((s.t_ms * 1000.0).round() as i64);
            p.push(if kind == CellType::On { 1 } else { -1 });
        }
        Events::new(
            x,
            y,
            t,
            p,
            (self.grid_width as u16, self.grid_height as u16),
        )
    }

    /// Writes one row per spike, `t_us,cell,type,x,y`, after that header, atomically.
    pub fn write_csv(&self, path: impl AsRef<Path>) -> Result<()> {
        crate::fsutil::write_atomic_with(path, |w| {
            writeln!(w, "t_us,cell,type,x,y")?;
            for s in &self.spikes {
                let (kind, x, y) = self.cell(s.cell);
                let t_us = (s.t_ms * 1000.0).round() as i64;
                writeln!(w, "{t_us},{},{},{x},{y}", s.cell, kind.name())?;
            }
            Ok(())
        })
    }
}
