//! Rasters of a network's layers: one panel per layer, stacked, x in time steps.

use std::path::Path;

use burn::tensor::Device;
use plotters::style::RGBColor;
use rand::SeedableRng;

use super::{draw_rasters, stacked_size, RasterPanel};
use crate::data::{Encoding, Samples};
use crate::error::{Error, Result};
use crate::models::spiking_net::{NetOutput, SpikingNet};
use crate::viz::PALETTE;

/// One layer of a spike raster: which neuron fired at which time step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RasterLayer {
    /// Shown above the layer's panel.
    pub name: String,
    /// Neurons in the layer; every spike's neuron is below it.
    pub num_neurons: usize,
    /// Time steps simulated; every spike's step is below it.
    pub num_steps: usize,
    /// The spikes as `(step, neuron)` pairs.
    pub spikes: Vec<(usize, usize)>,
}

/// The pixel size of the image that [`spike_raster`] draws for `layers`.
pub fn raster_size(layers: &[RasterLayer]) -> (u32, u32) {
    let rows: Vec<u32> = layers.iter().map(|l| rows_of(l.num_neurons)).collect();
    stacked_size(&rows)
}

/// A layer's neuron count as a panel's rows (saturated: bigger layers are refused anyway).
fn rows_of(neurons: usize) -> u32 {
    u32::try_from(neurons).unwrap_or(u32::MAX)
}

/// Draws one stacked raster panel per layer, each in its own colour: x is the time step, y
/// the neuron index, and each spike a mark (1 pixel high for big layers).
///
/// Refuses no layers, a layer without neurons or steps, a spike outside its layer, and images
/// too large to draw.
pub fn spike_raster(path: &Path, title: &str, layers: &[RasterLayer]) -> Result<()> {
    if layers.is_empty() {
        return Err(Error::invalid(
            "spike raster",
            "at least one layer is needed",
        ));
    }
    for l in layers {
        check_layer(l)?;
    }
    let panels = layers
        .iter()
        .enumerate()
        .map(|(i, layer)| {
            let RGBColor(r, g, b) = PALETTE[i % PALETTE.len()];
            let color = [r, g, b];
            RasterPanel {
                caption: format!(
                    "{} — {} neurons, {} spikes",
                    layer.name,
                    layer.num_neurons,
                    layer.spikes.len()
                ),
                rows: rows_of(layer.num_neurons),
                duration: layer.num_steps as f64,
                y_desc: "neuron",
                legend: Vec::new(),
                divider: None,
                // A step's mark sits in the middle of its step.
                marks: Box::new(
                    layer
                        .spikes
                        .iter()
                        .map(move |&(s, n)| (s as f64 + 0.5, n as u32, color)),
                ),
            }
        })
        .collect();
    draw_rasters(path, title, "time step", panels)
}

/// Rejects empty layers and spikes outside the layer.
fn check_layer(l: &RasterLayer) -> Result<()> {
    let what = format!("spike raster layer '{}'", l.name);
    if l.num_neurons == 0 || l.num_steps == 0 {
        return Err(Error::invalid(
            what,
            format!(
                "needs at least one neuron and one step, got {} and {}",
                l.num_neurons, l.num_steps
            ),
        ));
    }
    if u32::try_from(l.num_neurons).is_err() {
        return Err(Error::invalid(
            what,
            format!("{} neurons are too many to draw", l.num_neurons),
        ));
    }
    if let Some(&(s, n)) = l
        .spikes
        .iter()
        .find(|&&(s, n)| s >= l.num_steps || n >= l.num_neurons)
    {
        return Err(Error::invalid(
            what,
            format!(
                "spike at step {s}, neuron {n} lies outside {} steps x {} neurons",
                l.num_steps, l.num_neurons
            ),
        ));
    }
    Ok(())
}

/// The spikes of the first sample of a forward pass run with recording on, one
/// [`RasterLayer`] per spiking layer. Refuses an output recorded without spikes.
pub fn raster_layers(out: &NetOutput) -> Result<Vec<RasterLayer>> {
    out.layers
        .iter()
        .map(|layer| {
            let spikes = layer.spikes.clone().ok_or_else(|| {
                Error::invalid(
                    format!("layer '{}'", layer.name),
                    "its spikes were not recorded; run the forward pass with recording on",
                )
            })?;
            let [steps, batch, neurons] = spikes.dims();
            let values: Vec<f32> = spikes.into_data().iter::<f32>().collect();
            // Values are `[T, B, N]`: sample 0's spikes are the first N of every step's B·N.
            let points = values
                .iter()
                .enumerate()
                .filter(|&(i, &v)| v != 0.0 && (i / neurons) % batch == 0)
                .map(|(i, _)| (i / (neurons * batch), i % neurons))
                .collect();
            Ok(RasterLayer {
                name: layer.name.clone(),
                num_neurons: neurons,
                num_steps: steps,
                spikes: points,
            })
        })
        .collect()
}

/// Runs sample `index` of the test set `test` through `net` (inputs encoded directly) and
/// draws the spikes of every layer with [`spike_raster`]; returns the sample's label.
pub fn write_sample_raster(
    path: &Path,
    net: &SpikingNet,
    test: &dyn Samples,
    index: usize,
    device: &Device,
) -> Result<usize> {
    // A fixed seed keeps the picture the same from run to run.
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let (x, y) = test.batch(&[index], net.steps, Encoding::Direct, &mut rng, device)?;
    let out = net.forward(x, None, true)?;
    let label = y.into_scalar::<i64>() as usize;
    spike_raster(
        path,
        &format!("Spike raster, test sample {index} (label {label})"),
        &raster_layers(&out)?,
    )?;
    Ok(label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raster_checks_spikes() {
        let layer = RasterLayer {
            name: "out".into(),
            num_neurons: 10,
            num_steps: 5,
            spikes: vec![(5, 0)],
        };
        let msg = check_layer(&layer).unwrap_err().to_string();
        assert!(
            msg.contains("step 5, neuron 0 lies outside 5 steps x 10 neurons"),
            "{msg}"
        );
    }
}
