//! Rasters of retina runs: ON cells below OFF cells, in two colours, so onset and offset
//! responses are told apart at a glance.

use std::path::Path;

use super::{draw_rasters, RasterPanel};
use crate::error::Result;
use crate::retina::RetinaOutput;

/// Colour of ON cells' spikes in [`write_retina_raster`] (matplotlib's tab10 blue).
pub const RETINA_ON_COLOR: [u8; 3] = [31, 119, 180];
/// Colour of OFF cells' spikes in [`write_retina_raster`] (matplotlib's tab10 orange).
pub const RETINA_OFF_COLOR: [u8; 3] = [255, 127, 14];

/// Draws the ganglion-cell spikes of `out` under `title` (time in ms on x, cell index on y,
/// a faint line between the ON and OFF halves) and writes the image to `path` as a PNG,
/// atomically.
pub fn write_retina_raster(path: impl AsRef<Path>, title: &str, out: &RetinaOutput) -> Result<()> {
    let cells = u32::try_from(out.num_cells().max(1)).unwrap_or(u32::MAX);
    let on_cells = u32::try_from(out.cells_per_type()).unwrap_or(u32::MAX);
    let (on, off) = out.counts();
    let panel = RasterPanel {
        caption: format!("{cells} cells, {} spikes", on + off),
        rows: cells,
        // A run without time still gets a visible time axis.
        duration: out.duration_ms.max(1e-9),
        y_desc: "cell (ON below, OFF above)",
        legend: vec![
            (format!("ON ({on})"), RETINA_ON_COLOR),
            (format!("OFF ({off})"), RETINA_OFF_COLOR),
        ],
        divider: Some(on_cells),
        marks: Box::new(out.spikes.iter().map(move |s| {
            let color = if s.cell < on_cells {
                RETINA_ON_COLOR
            } else {
                RETINA_OFF_COLOR
            };
            (s.t_ms, s.cell, color)
        })),
    };
    draw_rasters(path.as_ref(), title, "time (ms)", vec![panel])
}
