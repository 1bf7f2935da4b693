//! Rasters of `(time ms, neuron)` spike lists, and such lists from `[T, N]` spike records.

use std::path::Path;

use burn::tensor::Tensor;

use super::{draw_rasters, RasterPanel};
use crate::error::{Error, Result};

/// Colour of the marks drawn by [`write_raster_png`] (near black).
pub const RASTER_SPIKE_COLOR: [u8; 3] = [20, 20, 20];

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
    let panel = RasterPanel {
        caption: format!("{neurons} neurons, {} spikes", spikes.len()),
        rows: neurons,
        duration: duration_ms,
        y_desc: "neuron",
        legend: Vec::new(),
        divider: None,
        marks: Box::new(spikes.iter().map(|&(t, n)| (t, n, RASTER_SPIKE_COLOR))),
    };
    draw_rasters(path.as_ref(), title, "time (ms)", vec![panel])
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
}
