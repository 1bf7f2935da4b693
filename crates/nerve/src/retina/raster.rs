//! A raster plot of a retina run: time on x, cell index on y, ON cells in blue and OFF cells
//! in orange, so onset and offset responses are told apart at a glance.
//!
//! Drawn like the crate's other plots (plotters into an RGB buffer, embedded DejaVu Sans), and
//! written atomically.

use std::path::Path;

use plotters::prelude::*;

use super::output::RetinaOutput;
use crate::error::{Error, Result};

use crate::plot::ensure_font;

/// The family `crate::plot` registers its embedded font under.
const FONT: &str = "sans-serif";

/// Image width, pixels.
const WIDTH: u32 = 1000;
/// Matplotlib's tab10 blue and orange.
const ON_COLOR: RGBColor = RGBColor(31, 119, 180);
const OFF_COLOR: RGBColor = RGBColor(255, 127, 14);

/// Height of the plot area: a few pixels per cell for small grids, bounded for big ones
/// (cells then share pixel rows).
fn plot_height(cells: usize) -> u32 {
    u32::try_from(cells.saturating_mul(4))
        .unwrap_or(u32::MAX)
        .clamp(200, 800)
}

/// Draws the raster of `out` under `title` and writes it to `path` as a PNG.
pub fn write_retina_raster(path: impl AsRef<Path>, title: &str, out: &RetinaOutput) -> Result<()> {
    let path = path.as_ref();
    ensure_font()?;
    let cells = out.num_cells().max(1);
    let on_cells = out.cells_per_type() as f64;
    let height = plot_height(cells) + 110;
    let mut rgb = vec![255u8; WIDTH as usize * height as usize * 3];
    let render = |e: &dyn std::fmt::Display| {
        Error::io(
            path,
            std::io::Error::other(format!("cannot render plot: {e}")),
        )
    };
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (WIDTH, height)).into_drawing_area();
        let (on, off) = out.counts();
        let caption = format!("{title} — ON (blue) {on} spikes, OFF (orange) {off} spikes");
        let duration = out.duration_ms.max(1e-9);
        let n = cells as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, (FONT, 18))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..duration, 0.0..n)
            .map_err(|e| render(&e))?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("time (ms)")
            .y_desc("cell (ON below, OFF above)")
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 14))
            .x_labels(10)
            .x_label_formatter(&|x| {
                if duration >= 20.0 {
                    format!("{x:.0}")
                } else {
                    format!("{x:.1}")
                }
            })
            .y_labels(6)
            .y_label_formatter(&|y| format!("{}", y.round()))
            .draw()
            .map_err(|e| render(&e))?;
        // A faint line between the ON and OFF halves.
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(0.0, on_cells), (duration, on_cells)],
                RGBColor(200, 200, 200),
            )))
            .map_err(|e| render(&e))?;
        let (left, top) = chart.backend_coord(&(0.0, n));
        let (right, bottom) = chart.backend_coord(&(duration, 0.0));
        let cell_h = f64::from(bottom - top) / n;
        let mark_h = (cell_h * 0.8).clamp(1.0, 6.0) as i32;
        let scale_x = f64::from(right - left) / duration;
        for s in &out.spikes {
            let color = if f64::from(s.cell) < on_cells {
                ON_COLOR
            } else {
                OFF_COLOR
            };
            let x = left + (s.t_ms * scale_x).round() as i32;
            let cy = f64::from(bottom) - (f64::from(s.cell) + 0.5) * cell_h;
            let y0 = (cy - f64::from(mark_h) / 2.0).round() as i32;
            for y in y0..y0 + mark_h {
                root.draw_pixel((x, y), &color).map_err(|e| render(&e))?;
            }
        }
        root.present().map_err(|e| render(&e))?;
    }
    crate::fsutil::write_atomic_with(path, |w| {
        let mut encoder = png::Encoder::new(w, WIDTH, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(std::io::Error::other)?;
        writer
            .write_image_data(&rgb)
            .map_err(std::io::Error::other)?;
        writer.finish().map_err(std::io::Error::other)
    })
}
