//! Spike rasters: one mark per spike, time on the x axis, neuron index on the y axis (neuron 0
//! at the bottom). One writer draws them all, a panel per group of neurons stacked under a
//! title:
//!
//! - [`write_raster_png`] draws `(time ms, neuron)` pairs; [`spikes_from_tensor`] and
//!   [`spikes_from_slice`] turn a `[T, N]` spike record into such pairs;
//! - [`spike_raster`] draws the layers of a network, one panel each, x in time steps;
//!   [`raster_layers`] takes them from a recorded forward pass and [`write_sample_raster`]
//!   runs one sample through a [`SpikingNet`](crate::models::spiking_net::SpikingNet);
//! - [`write_event_raster_png`] draws an event stream, ON and OFF events in two colours, with
//!   pixel `(x, y)` as neuron `y·width + x`;
//! - [`write_retina_raster`] draws a retina run, ON cells below OFF cells in two colours.

mod events;
mod layers;
mod retina;
mod spikes;

pub use events::{event_spikes, write_event_raster_png, EVENT_OFF_COLOR, EVENT_ON_COLOR};
pub use layers::{raster_layers, raster_size, spike_raster, write_sample_raster, RasterLayer};
pub use retina::{write_retina_raster, RETINA_OFF_COLOR, RETINA_ON_COLOR};
pub use spikes::{spikes_from_slice, spikes_from_tensor, write_raster_png, RASTER_SPIKE_COLOR};

use std::path::Path;

use plotters::prelude::*;

use super::font::FONT;
use super::{draw_title, format_tick, left_aligned, Area, Canvas, DrawResult, TITLE_HEIGHT};
use crate::error::Result;

/// Width of every raster image, in pixels.
pub const RASTER_IMAGE_WIDTH: u32 = 1000;

/// Margins around each plot area: left (tick labels and axis name), right, top (caption and
/// legend), below (tick labels), and the extra room under the last panel for the x-axis name.
const LEFT: u32 = 72;
const RIGHT: u32 = 24;
const TOP: u32 = 34;
const TICKS: u32 = 36;
const X_DESC: u32 = 20;

/// Point size of a raster's title.
const TITLE_SIZE: u32 = 20;

/// A spike to draw: time (in the panel's x units), row (neuron) and colour.
type Mark = (f64, u32, [u8; 3]);

/// One panel of a raster: `rows` neurons over `[0, duration]`, with its marks.
struct RasterPanel<'a> {
    /// Shown above the plot area.
    caption: String,
    /// Neurons on the y axis; every mark's row is below it.
    rows: u32,
    /// The x axis runs over `[0, duration]`; every mark's time lies in it.
    duration: f64,
    /// The y-axis description.
    y_desc: &'a str,
    /// Colour swatches with labels, at the top right above the plot area.
    legend: Vec<(String, [u8; 3])>,
    /// A faint horizontal line below this row, separating two groups of neurons.
    divider: Option<u32>,
    /// The spikes, painted in order so later marks cover earlier ones.
    marks: Box<dyn Iterator<Item = Mark> + 'a>,
}

/// The plot area height: a few pixels per neuron for small panels, bounded for big ones (more
/// tightly when several panels are stacked, so the image stays a readable size).
fn plot_height(rows: u32, panels: usize) -> u32 {
    let (min, max) = if panels <= 1 { (160, 600) } else { (80, 360) };
    rows.saturating_mul(6).clamp(min, max)
}

/// The `(width, height)` in pixels of a raster of panels with these neuron counts.
fn stacked_size(rows: &[u32]) -> (u32, u32) {
    let body = rows
        .iter()
        .map(|&r| plot_height(r, rows.len()) + TOP + TICKS)
        .fold(0, u32::saturating_add);
    (
        RASTER_IMAGE_WIDTH,
        TITLE_HEIGHT.saturating_add(body).saturating_add(X_DESC),
    )
}

/// The `(width, height)` in pixels of the single-panel image [`write_raster_png`],
/// [`write_event_raster_png`] and [`write_retina_raster`] draw for `neurons` neurons.
pub fn raster_image_size(neurons: u32) -> (u32, u32) {
    stacked_size(&[neurons])
}

/// Draws `panels` stacked under `title`, with the x axis named `x_desc` under the last, and
/// writes the image to `path` as a PNG (atomically). The axes are drawn with plotters; the
/// marks go straight into the pixel buffer (millions of spikes would be slow through
/// plotters' per-pixel calls). Marks must already be checked to lie inside their panel.
fn draw_rasters(
    path: &Path,
    title: &str,
    x_desc: &str,
    panels: Vec<RasterPanel<'_>>,
) -> Result<()> {
    let rows: Vec<u32> = panels.iter().map(|p| p.rows).collect();
    let (width, height) = stacked_size(&rows);
    let mut canvas = Canvas::new("spike raster", width, height)?;
    let frames = canvas.draw(path, |root| {
        let mut rest = draw_title(root, title, TITLE_SIZE)?;
        let mut frames = Vec::with_capacity(panels.len());
        for (i, panel) in panels.iter().enumerate() {
            let last = i + 1 == panels.len();
            let h =
                TOP + plot_height(panel.rows, panels.len()) + TICKS + if last { X_DESC } else { 0 };
            let (area, below) = rest.split_vertically(h);
            frames.push(draw_axes(root, &area, panel, last.then_some(x_desc))?);
            rest = below;
        }
        Ok(frames)
    })?;
    for (panel, (left, top, right, bottom)) in panels.into_iter().zip(frames) {
        let (plot_w, plot_h) = (f64::from(right - left), f64::from(bottom - top));
        let cell_h = plot_h / f64::from(panel.rows);
        // Small panels get tall ticks that fill most of a neuron's row; big ones single pixels.
        let mark_h = (cell_h * 0.8).clamp(1.0, 10.0) as i64;
        let mark_w = 2i64;
        for (t, row, color) in panel.marks {
            let x = (f64::from(left) + t / panel.duration * plot_w) as i64;
            let x = x.min(i64::from(right) - mark_w);
            let cy = f64::from(bottom) - (f64::from(row) + 0.5) * cell_h;
            let y0 = (cy - mark_h as f64 / 2.0).round() as i64;
            for y in y0..y0 + mark_h {
                for dx in 0..mark_w {
                    canvas.put(x + dx, y, color);
                }
            }
        }
    }
    canvas.write_png(path)
}

/// Draws one panel's caption, axes, divider and legend into `area` (the legend goes to
/// `root`, above the plot area), with the x-axis name where given; returns the plot area's
/// `(left, top, right, bottom)` pixels.
fn draw_axes(
    root: &Area<'_>,
    area: &Area<'_>,
    panel: &RasterPanel<'_>,
    x_desc: Option<&str>,
) -> DrawResult<(i32, i32, i32, i32)> {
    let n = f64::from(panel.rows);
    let duration = panel.duration;
    let mut chart = ChartBuilder::on(area)
        .margin_top(TOP - 24)
        .margin_left(12)
        .margin_right(RIGHT)
        .margin_bottom(6)
        .caption(&panel.caption, (FONT, 15))
        .x_label_area_size(TICKS - 6 + x_desc.map_or(0, |_| X_DESC))
        .y_label_area_size(LEFT)
        .build_cartesian_2d(0.0..duration, 0.0..n)
        .map_err(|e| e.to_string())?;
    let mut mesh = chart.configure_mesh();
    mesh.disable_mesh()
        .y_desc(panel.y_desc)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .x_labels(10)
        .y_labels(6)
        .x_label_formatter(&|x| format_tick(*x, x.fract() == 0.0))
        .y_label_formatter(&|y| format_tick(*y, y.fract() == 0.0));
    if let Some(desc) = x_desc {
        mesh.x_desc(desc);
    }
    mesh.draw().map_err(|e| e.to_string())?;
    if let Some(row) = panel.divider {
        let y = f64::from(row);
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(0.0, y), (duration, y)],
                RGBColor(200, 200, 200),
            )))
            .map_err(|e| e.to_string())?;
    }
    let (l, t) = chart.backend_coord(&(0.0, n));
    let (r, b) = chart.backend_coord(&(duration, 0.0));
    let mut x = r - 10;
    for (label, color) in panel.legend.iter().rev() {
        let style = left_aligned(13, &BLACK);
        let (tw, _) = root.estimate_text_size(label, &style).unwrap_or((60, 13));
        x -= tw as i32 + 20;
        let y = t - 10;
        let rgb = RGBColor(color[0], color[1], color[2]);
        root.draw(&Rectangle::new([(x, y - 5), (x + 10, y + 5)], rgb.filled()))
            .map_err(|e| e.to_string())?;
        root.draw_text(label, &style, (x + 14, y))
            .map_err(|e| e.to_string())?;
    }
    Ok((l, t, r, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything below the last panel's plot area.
    const BOTTOM: u32 = TICKS + X_DESC;

    #[test]
    fn small_layers_get_the_minimum_height() {
        let (w, h) = raster_image_size(10);
        assert_eq!(w, RASTER_IMAGE_WIDTH);
        assert_eq!(h, TITLE_HEIGHT + TOP + 160 + BOTTOM);
        assert_eq!(
            raster_image_size(100_000).1,
            TITLE_HEIGHT + TOP + 600 + BOTTOM
        );
    }

    #[test]
    fn stacked_panels_are_shorter() {
        let (w, h) = stacked_size(&[10, 1728]);
        assert_eq!(w, RASTER_IMAGE_WIDTH);
        assert_eq!(h, TITLE_HEIGHT + 80 + 360 + 2 * (TOP + TICKS) + X_DESC);
    }
}
