//! Bernoulli rate coding: each step fires with a probability given by the input.

use burn::tensor::{Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::{Error, Result};

/// Options of [`rate`] coding (snnTorch `spikegen.rate`).
#[derive(Debug, Clone, PartialEq)]
pub struct RateConfig {
    /// Number of time steps to generate.
    pub num_steps: usize,
    /// Scale applied to the input before it is used as a firing probability.
    pub gain: f64,
    /// Shift applied after the gain.
    pub offset: f64,
    /// Steps before this one are silent.
    pub first_spike_time: usize,
}

impl RateConfig {
    /// `num_steps` steps with snnTorch's defaults (gain 1, offset 0, first spike time 0).
    pub fn new(num_steps: usize) -> Self {
        Self {
            num_steps,
            gain: 1.0,
            offset: 0.0,
            first_spike_time: 0,
        }
    }
}

/// Bernoulli rate coding of static data `[B, ...]` into spikes `[T, B, ...]`, seeded.
///
/// Each step fires with probability `clamp(data·gain + offset, 0, 1)`; `D2` must be `D + 1`.
pub fn rate<const D: usize, const D2: usize>(
    data: Tensor<D>,
    config: &RateConfig,
    seed: u64,
) -> Result<Tensor<D2>> {
    rate_with_rng(data, config, &mut StdRng::seed_from_u64(seed))
}

/// [`rate`] drawing from a caller-held generator, so a training loop can keep one stream.
pub fn rate_with_rng<const D: usize, const D2: usize, R: Rng + ?Sized>(
    data: Tensor<D>,
    config: &RateConfig,
    rng: &mut R,
) -> Result<Tensor<D2>> {
    if D2 != D + 1 {
        return Err(Error::Shape {
            what: "rate output".into(),
            expected: format!("rank {} (input rank + a time axis)", D + 1),
            got: format!("rank {D2}"),
        });
    }
    if config.num_steps == 0 {
        return Err(Error::invalid("rate num_steps", "must be at least 1"));
    }
    if config.first_spike_time >= config.num_steps {
        return Err(Error::invalid(
            "rate first_spike_time",
            format!(
                "{} must be at most num_steps - 1 = {}",
                config.first_spike_time,
                config.num_steps - 1
            ),
        ));
    }
    let dims = data.dims();
    let numel: usize = dims.iter().product();
    let prob: Tensor<D2> = (data.detach() * config.gain + config.offset)
        .clamp(0.0, 1.0)
        .unsqueeze_dim::<D2>(0)
        .repeat_dim(0, config.num_steps);
    // A uniform draw of 2 can never be below a probability, which silences the leading steps.
    let silent = config.first_spike_time * numel;
    let noise: Vec<f32> = (0..config.num_steps * numel)
        .map(|i| {
            let u = rng.random::<f32>();
            if i < silent {
                2.0
            } else {
                u
            }
        })
        .collect();
    let mut shape = vec![config.num_steps];
    shape.extend_from_slice(&dims);
    let noise: Tensor<D2> = Tensor::from_data(TensorData::new(noise, shape), &prob.device());
    Ok(noise.lower(prob).float())
}

/// Bernoulli spikes with the data itself (clamped to [0, 1]) as probability; no time axis added.
pub fn rate_conv<const D: usize>(data: Tensor<D>, seed: u64) -> Tensor<D> {
    rate_conv_with_rng(data, &mut StdRng::seed_from_u64(seed))
}

/// [`rate_conv`] drawing from a caller-held generator.
pub fn rate_conv_with_rng<const D: usize, R: Rng + ?Sized>(
    data: Tensor<D>,
    rng: &mut R,
) -> Tensor<D> {
    let dims = data.dims();
    let numel: usize = dims.iter().product();
    let noise: Vec<f32> = (0..numel).map(|_| rng.random::<f32>()).collect();
    let prob = data.detach().clamp(0.0, 1.0);
    let noise: Tensor<D> = Tensor::from_data(TensorData::new(noise, dims.to_vec()), &prob.device());
    noise.lower(prob).float()
}
