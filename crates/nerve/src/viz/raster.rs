//! Spike rasters: one mark per spike, time on the x axis, neuron index on the y axis
//! (neuron 0 at the bottom).
//!
//! [`write_raster_png`] draws `(time ms, neuron)` pairs; [`spikes_from_tensor`] and
//! [`spikes_from_slice`] turn a `[T, N]` spike record into such pairs, and
//! [`write_event_raster_png`] draws an event stream directly, ON and OFF events in two colours,
//! with pixel `(x, y)` as neuron `y·width + x`.

use std::path::Path;

use burn::tensor::Tensor;
use plotters::prelude::*;

use super::{draw_title, format_tick, left_aligned, Canvas, DrawResult, FONT, TITLE_HEIGHT};
use crate::data::events::Events;
use crate::error::{Error, Result};

/// Width of every raster image, in pixels.
pub const RASTER_IMAGE_WIDTH: u32 = 1000;
/// Colour of the marks drawn by [`write_raster_png`] (near black).
pub const RASTER_SPIKE_COLOR: [u8; 3] = [20, 20, 20];
/// Colour of ON events in [`write_event_raster_png`] (red).
pub const EVENT_ON_COLOR: [u8; 3] = [214, 39, 40];
/// Colour of OFF events in [`write_event_raster_png`] (blue).
pub const EVENT_OFF_COLOR: [u8; 3] = [31, 119, 180];

/// Margins around the plot area: left (tick labels and axis name), right, top, bottom.
const LEFT: u32 = 72;
const RIGHT: u32 = 24;
const TOP: u32 = 34;
const BOTTOM: u32 = 56;

/// The plot area height: a few pixels per neuron for small layers, bounded for big ones.
fn plot_height(neurons: u32) -> u32 {
    neurons.saturating_mul(6).clamp(160, 600)
}

/// The `(width, height)` in pixels of the image [`write_raster_png`] draws for `neurons`.
pub fn raster_image_size(neurons: u32) -> (u32, u32) {
    (
        RASTER_IMAGE_WIDTH,
        TITLE_HEIGHT + TOP + plot_height(neurons) + BOTTOM,
    )
}

/// Draws a spike raster of `spikes`, given as `(time in ms, neuron index)` pairs, for a layer
/// of `neurons` neurons recorded over `[0, duration_ms]`, and writes it to `path` as a PNG
/// (atomically).
///
/// Refuses (with [`Error::Invalid`]) zero neurons, a duration that is not finite and positive,
/// and any spike whose time is not finite or lies outside `[0, duration_ms]`, or whose neuron
/// is `>= neurons`.
pub fn write_raster_png(
    path: impl AsRef<Path>,
    title: &str,
    spikes: &[(f64, u32)],
    neurons: u32,
    duration_ms: f64,
) -> Result<()> {
    check_axes(neurons, duration_ms)?;
    if let Some((i, &(t, n))) = spikes
        .iter()
        .enumerate()
        .find(|(_, &(t, n))| !(t.is_finite() && (0.0..=duration_ms).contains(&t)) || n >= neurons)
    {
        return Err(Error::invalid(
            "spike raster",
            format!(
                "spike {i} at {t} ms on neuron {n} lies outside [0, {duration_ms}] ms x {neurons} \
                 neurons"
            ),
        ));
    }
    let caption = format!("{neurons} neurons, {} spikes", spikes.len());
    draw_raster(
        path.as_ref(),
        title,
        &caption,
        &[],
        neurons,
        duration_ms,
        spikes.iter().map(|&(t, n)| (t, n, RASTER_SPIKE_COLOR)),
    )
}

/// Turns a `[T, N]` spike record into `(time ms, neuron)` pairs, step `t` at `t·step_ms`
/// (see [`spikes_from_slice`]); draw it with `neurons = N`, `duration_ms = T·step_ms`.
pub fn spikes_from_tensor(spikes: Tensor<2>, step_ms: f64) -> Result<Vec<(f64, u32)>> {
    let [_, n] = spikes.dims();
    let values = spikes
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| Error::invalid("spike tensor", format!("{e:?}")))?;
    spikes_from_slice(&values, n, step_ms)
}

/// Turns a row-major `T × neurons` record (one row per time step) into `(time ms, neuron)`
/// pairs: every non-zero value is a spike at `t·step_ms`, in time order.
///
/// Refuses zero neurons, a length that is not a multiple of `neurons`, a `step_ms` that is not
/// finite and positive, and non-finite values.
pub fn spikes_from_slice(values: &[f32], neurons: usize, step_ms: f64) -> Result<Vec<(f64, u32)>> {
    if neurons == 0 || !values.len().is_multiple_of(neurons) {
        return Err(Error::invalid(
            "spike record",
            format!(
                "{} values do not form rows of {neurons} neurons",
                values.len()
            ),
        ));
    }
    if u32::try_from(neurons).is_err() {
        return Err(Error::invalid(
            "spike record",
            format!("{neurons} neurons do not fit a u32 index"),
        ));
    }
    if !(step_ms.is_finite() && step_ms > 0.0) {
        return Err(Error::invalid(
            "step_ms",
            format!("{step_ms} must be finite and positive"),
        ));
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::invalid(
            "spike record",
            format!(
                "value {} at step {}, neuron {} is not finite",
                values[i],
                i / neurons,
                i % neurons
            ),
        ));
    }
    Ok(values
        .chunks_exact(neurons)
        .enumerate()
        .flat_map(|(t, row)| {
            row.iter()
                .enumerate()
                .filter(|(_, &v)| v != 0.0)
                .map(move |(n, _)| (t as f64 * step_ms, n as u32))
        })
        .collect())
}

/// The events as `(time ms since the first event, neuron y·width + x)` pairs, in stored
/// order; draw them with `neurons = width·height` and `duration_ms` = the time span in ms.
pub fn event_spikes(events: &Events) -> Result<Vec<(f64, u32)>> {
    let (t0, _) = check_events(events)?;
    let w = u32::from(events.sensor.0);
    Ok((0..events.len())
        .map(|i| {
            (
                (events.t[i] - t0) as f64 / 1000.0,
                u32::from(events.y[i]) * w + u32::from(events.x[i]),
            )
        })
        .collect())
}

/// Draws an event stream as a raster (neuron `y·width + x`, time in ms since the first event),
/// ON events in [`EVENT_ON_COLOR`] and OFF events in [`EVENT_OFF_COLOR`], drawn in stored
/// order so later events cover earlier ones. Refuses an empty stream, arrays of unequal
/// length and pixels outside the sensor.
pub fn write_event_raster_png(path: impl AsRef<Path>, title: &str, events: &Events) -> Result<()> {
    let (t0, t1) = check_events(events)?;
    let neurons = u32::from(events.sensor.0) * u32::from(events.sensor.1);
    // A single instant still gets a visible (1 µs) time axis.
    let duration_ms = ((t1 - t0) as f64 / 1000.0).max(0.001);
    let (on, off) = events.polarity_counts();
    let caption = format!(
        "{}x{} sensor, neuron = y·{} + x; {} events",
        events.sensor.0,
        events.sensor.1,
        events.sensor.0,
        events.len()
    );
    let legend = [
        (format!("ON ({on})"), EVENT_ON_COLOR),
        (format!("OFF ({off})"), EVENT_OFF_COLOR),
    ];
    let w = u32::from(events.sensor.0);
    draw_raster(
        path.as_ref(),
        title,
        &caption,
        &legend,
        neurons,
        duration_ms,
        (0..events.len()).map(|i| {
            let color = if events.p[i] > 0 {
                EVENT_ON_COLOR
            } else {
                EVENT_OFF_COLOR
            };
            (
                (events.t[i] - t0) as f64 / 1000.0,
                u32::from(events.y[i]) * w + u32::from(events.x[i]),
                color,
            )
        }),
    )
}

/// Checks an event stream for drawing and returns its time span (µs).
fn check_events(events: &Events) -> Result<(i64, i64)> {
    let (t0, t1) = events
        .validate()?
        .ok_or_else(|| Error::invalid("events", "there are no events to draw"))?;
    if t1.checked_sub(t0).is_none() {
        return Err(Error::invalid(
            "events",
            format!("the time span {t0} .. {t1} us is too long"),
        ));
    }
    Ok((t0, t1))
}

fn check_axes(neurons: u32, duration_ms: f64) -> Result<()> {
    if neurons == 0 {
        return Err(Error::invalid("spike raster", "needs at least one neuron"));
    }
    if !(duration_ms.is_finite() && duration_ms > 0.0) {
        return Err(Error::invalid(
            "duration_ms",
            format!("{duration_ms} must be finite and positive"),
        ));
    }
    Ok(())
}

/// Draws the axes with plotters, then paints the marks straight into the pixel buffer
/// (millions of events would be slow through plotters' per-pixel calls). Marks must already
/// be checked to lie inside the axes.
fn draw_raster(
    path: &Path,
    title: &str,
    caption: &str,
    legend: &[(String, [u8; 3])],
    neurons: u32,
    duration_ms: f64,
    marks: impl Iterator<Item = (f64, u32, [u8; 3])>,
) -> Result<()> {
    let (width, height) = raster_image_size(neurons);
    let mut canvas = Canvas::new("spike raster", width, height)?;
    let n = f64::from(neurons);
    let (left, top, right, bottom) = canvas.draw(path, |root| -> DrawResult<_> {
        let body = draw_title(root, title)?;
        let mut chart = ChartBuilder::on(&body)
            .margin_top(TOP - 24)
            .margin_left(12)
            .margin_right(RIGHT)
            .margin_bottom(6)
            .caption(caption, (FONT, 15))
            .x_label_area_size(BOTTOM - 6)
            .y_label_area_size(LEFT)
            .build_cartesian_2d(0.0..duration_ms, 0.0..n)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("time (ms)")
            .y_desc("neuron")
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 14))
            .x_labels(10)
            .y_labels(6)
            .x_label_formatter(&|x| format_tick(*x))
            .y_label_formatter(&|y| format_tick(*y))
            .draw()
            .map_err(|e| e.to_string())?;
        let (l, t) = chart.backend_coord(&(0.0, n));
        let (r, b) = chart.backend_coord(&(duration_ms, 0.0));
        // The legend sits at the top right, above the plot area.
        let mut x = r - 10;
        for (label, color) in legend.iter().rev() {
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
    })?;
    let (plot_w, plot_h) = (f64::from(right - left), f64::from(bottom - top));
    let cell_h = plot_h / n;
    // Small layers get tall ticks that fill most of a neuron's row; big ones single pixels.
    let mark_h = (cell_h * 0.8).clamp(1.0, 10.0) as i64;
    let mark_w = 2i64;
    for (t, neuron, color) in marks {
        let x = (f64::from(left) + t / duration_ms * plot_w) as i64;
        let x = x.min(i64::from(right) - mark_w);
        let cy = f64::from(bottom) - (f64::from(neuron) + 0.5) * cell_h;
        let y0 = (cy - mark_h as f64 / 2.0).round() as i64;
        for y in y0..y0 + mark_h {
            for dx in 0..mark_w {
                canvas.put(x + dx, y, color);
            }
        }
    }
    canvas.write_png(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_become_time_ordered_pairs() {
        let v = [0.0, 1.0, 0.0, 1.0, 0.0, 2.0];
        let s = spikes_from_slice(&v, 3, 0.5).unwrap();
        assert_eq!(s, vec![(0.0, 1), (0.5, 0), (0.5, 2)]);
        assert!(spikes_from_slice(&v, 4, 1.0).is_err());
        assert!(spikes_from_slice(&v, 3, 0.0).is_err());
        assert!(spikes_from_slice(&[f32::NAN], 1, 1.0).is_err());
    }

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
}
