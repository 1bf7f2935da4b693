//! Rasters of event streams: neuron `y·width + x`, time in ms since the first event.

use std::path::Path;

use super::{draw_rasters, RasterPanel};
use crate::data::events::Events;
use crate::error::{Error, Result};

/// Colour of ON events in [`write_event_raster_png`] (red).
pub const EVENT_ON_COLOR: [u8; 3] = [214, 39, 40];
/// Colour of OFF events in [`write_event_raster_png`] (blue).
pub const EVENT_OFF_COLOR: [u8; 3] = [31, 119, 180];

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
    let w = u32::from(events.sensor.0);
    let panel = RasterPanel {
        caption: format!(
            "{}x{} sensor, neuron = y·{} + x; {} events",
            events.sensor.0,
            events.sensor.1,
            events.sensor.0,
            events.len()
        ),
        rows: neurons,
        duration: duration_ms,
        y_desc: "neuron",
        legend: vec![
            (format!("ON ({on})"), EVENT_ON_COLOR),
            (format!("OFF ({off})"), EVENT_OFF_COLOR),
        ],
        divider: None,
        marks: Box::new((0..events.len()).map(move |i| {
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
        })),
    };
    draw_rasters(path.as_ref(), title, "time (ms)", vec![panel])
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
