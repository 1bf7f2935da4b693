//! Latency coding: each input fires once, larger values earlier.

use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{Error, Result};

/// Options of [`latency`] coding (snnTorch `spikegen.latency`).
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyConfig {
    /// Number of time steps; `None` lets the latest spike set it (needs `bypass`).
    pub num_steps: Option<usize>,
    /// RC time constant of the log code, or slope of the linear code.
    pub tau: f64,
    /// Inputs below this fire last (or never, with `clip`); must lie in (0, 1).
    pub threshold: f64,
    /// Linear rather than logarithmic code.
    pub linear: bool,
    /// Stretch the code so the latest spike lands on the last step.
    pub normalize: bool,
    /// Drop the spikes of inputs below `threshold`.
    pub clip: bool,
    /// Earliest spike step.
    pub first_spike_time: usize,
    /// Keeps the log code finite at the threshold.
    pub epsilon: f64,
    /// Drop spikes past the last step (or size the output) instead of failing.
    pub bypass: bool,
}

impl Default for LatencyConfig {
    fn default() -> Self {
        Self {
            num_steps: None,
            tau: 1.0,
            threshold: 0.01,
            linear: false,
            normalize: false,
            clip: false,
            first_spike_time: 0,
            epsilon: 1e-7,
            bypass: false,
        }
    }
}

impl LatencyConfig {
    /// `num_steps` steps with snnTorch's defaults for everything else.
    pub fn new(num_steps: usize) -> Self {
        Self {
            num_steps: Some(num_steps),
            ..Self::default()
        }
    }

    fn validate(&self) -> Result<()> {
        if !(self.threshold > 0.0 && self.threshold < 1.0) {
            return Err(Error::invalid(
                "latency threshold",
                format!("{} must lie strictly between 0 and 1", self.threshold),
            ));
        }
        if self.tau <= 0.0 || !self.tau.is_finite() {
            return Err(Error::invalid(
                "latency tau",
                format!("{} must be positive", self.tau),
            ));
        }
        match self.num_steps {
            Some(0) => return Err(Error::invalid("latency num_steps", "must be at least 1")),
            Some(t) if self.first_spike_time > t - 1 => {
                return Err(Error::invalid(
                    "latency first_spike_time",
                    format!(
                        "{} must be at most num_steps - 1 = {}",
                        self.first_spike_time,
                        t - 1
                    ),
                ));
            }
            None if self.normalize => {
                return Err(Error::invalid(
                    "latency num_steps",
                    "is required when normalize is set",
                ));
            }
            None if !self.bypass => {
                return Err(Error::invalid(
                    "latency num_steps",
                    "is required unless bypass is set (then the latest spike sets it)",
                ));
            }
            _ => {}
        }
        Ok(())
    }
}

/// Spike times (in steps, unrounded) of the latency code, snnTorch's `latency_code`; float32 math.
fn latency_code(data: &[f32], config: &LatencyConfig) -> Vec<f32> {
    let fst = config.first_spike_time as f32;
    let steps = config.num_steps.unwrap_or(1);
    if !config.linear {
        let thr = config.threshold as f32;
        let floor = (config.threshold + config.epsilon) as f32;
        let tau = config.tau as f32;
        let mut times: Vec<f32> = data
            .iter()
            .map(|&x| {
                let d = x.max(floor);
                tau * (d / (d - thr)).ln()
            })
            .collect();
        if config.first_spike_time > 0 {
            times.iter_mut().for_each(|t| *t += fst);
        }
        if config.normalize {
            let span = (steps - config.first_spike_time - 1) as f32;
            let max = times.iter().fold(f32::NEG_INFINITY, |m, &t| m.max(t - fst));
            times
                .iter_mut()
                .for_each(|t| *t = (*t - fst) * span / max + fst);
        }
        times
    } else {
        let tau = if config.normalize {
            (steps - 1 - config.first_spike_time) as f64
        } else {
            config.tau
        };
        let cap = (-tau * (config.threshold - 1.0)) as f32;
        let neg_tau = (-tau) as f32;
        let mut times: Vec<f32> = data
            .iter()
            .map(|&x| (neg_tau * (x - 1.0)).min(cap) + fst)
            .collect();
        let min = times.iter().fold(f32::INFINITY, |m, &t| m.min(t));
        if min < 0.0 && config.normalize {
            let max = times.iter().fold(f32::NEG_INFINITY, |m, &t| m.max(t));
            let last = (steps - 1) as f32;
            times
                .iter_mut()
                .for_each(|t| *t = (*t - min) * (1.0 / (max - min)) * last);
        }
        times
    }
}

/// Reads latency input to the host, rejecting values outside [0, 1] as snnTorch does.
fn latency_input<const D: usize>(data: Tensor<D>) -> Result<(Vec<f32>, Vec<usize>, Device)> {
    let dims = data.dims().to_vec();
    let device = data.device();
    let values: Vec<f32> = data.detach().into_data().iter::<f32>().collect();
    if let Some(bad) = values.iter().find(|v| !(0.0..=1.0).contains(*v)) {
        return Err(Error::invalid(
            "latency data",
            format!("values must lie in [0, 1]; found {bad}"),
        ));
    }
    Ok((values, dims, device))
}

/// Latency-code spike times of each input element (same shape as `data`, unrounded steps).
pub fn latency_times<const D: usize>(data: Tensor<D>, config: &LatencyConfig) -> Result<Tensor<D>> {
    config.validate()?;
    let (values, dims, device) = latency_input(data)?;
    let times = latency_code(&values, config);
    Ok(Tensor::from_data(TensorData::new(times, dims), &device))
}

/// Latency coding: each element of `data` `[B, ...]` (in [0, 1]) fires once, larger values
/// earlier; returns spikes `[T, B, ...]` (`D2` must be `D + 1`).
pub fn latency<const D: usize, const D2: usize>(
    data: Tensor<D>,
    config: &LatencyConfig,
) -> Result<Tensor<D2>> {
    if D2 != D + 1 {
        return Err(Error::Shape {
            what: "latency output".into(),
            expected: format!("rank {} (input rank + a time axis)", D + 1),
            got: format!("rank {D2}"),
        });
    }
    config.validate()?;
    let (values, dims, device) = latency_input(data)?;
    let times = latency_code(&values, config);
    // torch.round rounds half to even; f32::round would not.
    let latest = times
        .iter()
        .fold(f32::NEG_INFINITY, |m, &t| m.max(t.round_ties_even()));
    let steps = match config.num_steps {
        Some(t) => t,
        None => {
            let t = latest as i64 + 1;
            if t <= 0 {
                return Err(Error::invalid(
                    "latency num_steps",
                    "the derived number of steps is not positive",
                ));
            }
            t as usize
        }
    };
    if latest as i64 > steps as i64 - 1 && !config.bypass {
        return Err(Error::invalid(
            "latency spike times",
            format!(
                "the latest spike ({latest}) is past the last step ({}); set bypass, normalize, or lower tau",
                steps - 1
            ),
        ));
    }
    let numel = values.len();
    let last = (steps - 1) as f32;
    let mut out = vec![0.0f32; steps * numel];
    for (i, (&t, &x)) in times.iter().zip(&values).enumerate() {
        let past_end = t.round_ties_even() > last;
        let clipped = config.clip && x < config.threshold as f32;
        if !past_end && !clipped {
            let step = t.min(last).round_ties_even() as usize;
            out[step * numel + i] = 1.0;
        }
    }
    let mut shape = vec![steps];
    shape.extend_from_slice(&dims);
    Ok(Tensor::from_data(TensorData::new(out, shape), &device))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_code_matches_snntorch_docstrings() {
        let linear = LatencyConfig {
            linear: true,
            normalize: true,
            ..LatencyConfig::new(5)
        };
        let got = latency_code(&[0.02, 0.5, 1.0], &linear);
        for (g, w) in got.iter().zip([3.92, 2.0, 0.0]) {
            assert!((g - w).abs() < 1e-5, "{got:?}");
        }
        let log = LatencyConfig {
            normalize: true,
            ..LatencyConfig::new(5)
        };
        let got = latency_code(&[0.02, 0.5, 1.0], &log);
        for (g, w) in got.iter().zip([4.0, 0.1166, 0.0580]) {
            assert!((g - w).abs() < 1e-4, "{got:?}");
        }
    }
}
