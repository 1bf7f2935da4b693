//! Spike encoders, after snnTorch 1.0's `snntorch.spikegen`: rate (Bernoulli), latency, delta,
//! and spike-coded targets. Layout is time-first: a `[B, ...]` input becomes `[T, B, ...]`.
//!
//! Random encoders draw from a seeded [`StdRng`] of their own rather than the backend's
//! generator, so the same seed gives the same spikes on every backend and in every run.

use burn::tensor::{Device, Int, Tensor, TensorData};
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

/// Options of [`delta`] modulation (snnTorch `spikegen.delta`).
#[derive(Debug, Clone, PartialEq)]
pub struct DeltaConfig {
    /// Smallest change between consecutive steps that fires.
    pub threshold: f64,
    /// Compare the first step with itself (no spike) rather than with zero.
    pub padding: bool,
    /// Also emit `-1` for drops of at least `threshold`.
    pub off_spike: bool,
}

impl Default for DeltaConfig {
    fn default() -> Self {
        Self {
            threshold: 0.1,
            padding: false,
            off_spike: false,
        }
    }
}

/// Delta modulation of time-varying data `[T, ...]`: a spike where the value rose by at least
/// `threshold` since the previous step (and `-1` where it fell as much, with `off_spike`).
pub fn delta<const D: usize>(data: Tensor<D>, config: &DeltaConfig) -> Result<Tensor<D>> {
    let steps = data.dims()[0];
    if steps == 0 {
        return Err(Error::invalid("delta data", "needs at least one time step"));
    }
    let data = data.detach();
    let first = data.clone().narrow(0, 0, 1);
    let head = if config.padding {
        first
    } else {
        first.zeros_like()
    };
    let previous = if steps > 1 {
        Tensor::cat(vec![head, data.clone().narrow(0, 0, steps - 1)], 0)
    } else {
        head
    };
    let change = data - previous;
    let on = change.clone().greater_equal_elem(config.threshold).float();
    if config.off_spike {
        Ok(on - change.lower_equal_elem(-config.threshold).float())
    } else {
        Ok(on)
    }
}

/// Reads class indices to the host and checks them against the batch size and class count.
pub(crate) fn class_indices(
    targets: &Tensor<1, Int>,
    batch: Option<usize>,
    num_classes: usize,
) -> Result<Vec<usize>> {
    let len = targets.dims()[0];
    if let Some(b) = batch {
        if len != b {
            return Err(Error::Shape {
                what: "targets".into(),
                expected: format!("[{b}] (one class index per batch element)"),
                got: format!("[{len}]"),
            });
        }
    }
    targets
        .to_data()
        .iter::<i64>()
        .map(|c| {
            if c < 0 || c as usize >= num_classes {
                Err(Error::invalid(
                    "targets",
                    format!("class index {c} is outside 0..{num_classes}"),
                ))
            } else {
                Ok(c as usize)
            }
        })
        .collect()
}

/// `[B, C]` rows holding `on` at each class index and `off` elsewhere.
pub(crate) fn one_hot_rows(
    classes: &[usize],
    num_classes: usize,
    on: f64,
    off: f64,
    device: &Device,
) -> Tensor<2> {
    let mut values = vec![off as f32; classes.len() * num_classes];
    for (row, &c) in classes.iter().enumerate() {
        values[row * num_classes + c] = on as f32;
    }
    Tensor::from_data(
        TensorData::new(values, [classes.len(), num_classes]),
        device,
    )
}

/// One-hot encoding `[B, C]` of class indices `[B]` (snnTorch `spikegen.to_one_hot`).
pub fn to_one_hot(targets: Tensor<1, Int>, num_classes: usize) -> Result<Tensor<2>> {
    if num_classes == 0 {
        return Err(Error::invalid("num_classes", "must be at least 1"));
    }
    let classes = class_indices(&targets, None, num_classes)?;
    Ok(one_hot_rows(
        &classes,
        num_classes,
        1.0,
        0.0,
        &targets.device(),
    ))
}

/// How the spikes of a target spike train are placed in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FiringPattern {
    /// Periodic: every `1/rate` steps from the first spike time.
    Regular,
    /// As many spikes as `Regular`, at uniformly drawn steps (duplicates merge).
    Uniform {
        /// Seed of the draw.
        seed: u64,
    },
    /// An independent Bernoulli draw with probability `rate` at each step.
    Poisson {
        /// Seed of the draw.
        seed: u64,
    },
}

/// Options of [`targets_rate`] (snnTorch `spikegen.targets_rate`).
#[derive(Debug, Clone, PartialEq)]
pub struct TargetsRateConfig {
    /// Number of time steps.
    pub num_steps: usize,
    /// Steps before this one hold `off_target`.
    pub first_spike_time: usize,
    /// Firing rate of the correct class, in [0, 1].
    pub correct_rate: f64,
    /// Firing rate of the other classes, in [0, correct_rate].
    pub incorrect_rate: f64,
    /// Value at spike times.
    pub on_target: f64,
    /// Value between spikes.
    pub off_target: f64,
    /// Placement of the spikes.
    pub firing_pattern: FiringPattern,
    /// Ramp linearly from `off_target` up to `on_target` before each spike (a membrane target).
    pub interpolate: bool,
}

impl TargetsRateConfig {
    /// `num_steps` steps with snnTorch's defaults (correct class always on, others off).
    pub fn new(num_steps: usize) -> Self {
        Self {
            num_steps,
            first_spike_time: 0,
            correct_rate: 1.0,
            incorrect_rate: 0.0,
            on_target: 1.0,
            off_target: 0.0,
            firing_pattern: FiringPattern::Regular,
            interpolate: false,
        }
    }
}

/// One neuron's target train of length `num_steps` (0/1) and its spike steps (snnTorch
/// `target_rate_code`).
fn target_rate_code(
    num_steps: usize,
    first: usize,
    rate: f64,
    pattern: FiringPattern,
    salt: u64,
) -> (Vec<f32>, Vec<usize>) {
    let mut train = vec![0.0f32; num_steps];
    if rate == 0.0 || first >= num_steps {
        return (train, Vec::new());
    }
    let period = 1.0 / rate;
    // torch.arange(first, num_steps, 1/rate) has ceil((end - start) / step) elements.
    let count = ((num_steps - first) as f64 / period).ceil() as usize;
    let mut times: Vec<usize> = match pattern {
        FiringPattern::Regular => (0..count)
            .map(|i| (first as f64 + i as f64 * period) as f32 as usize)
            .filter(|&t| t < num_steps)
            .collect(),
        FiringPattern::Uniform { seed } => {
            let mut rng = StdRng::seed_from_u64(seed ^ salt);
            (0..count)
                .map(|_| (rng.random::<f32>() * (num_steps - first) as f32 + first as f32) as usize)
                .map(|t| t.min(num_steps - 1))
                .collect()
        }
        FiringPattern::Poisson { seed } => {
            let mut rng = StdRng::seed_from_u64(seed ^ salt);
            (first..num_steps)
                .filter(|_| rng.random::<f64>() < rate)
                .collect()
        }
    };
    times.sort_unstable();
    times.dedup();
    for &t in &times {
        train[t] = 1.0;
    }
    (train, times)
}

/// Linear ramps from `off` to `on` ending at each spike step (snnTorch `rate_interpolate`).
fn rate_interpolate(times: &[usize], num_steps: usize, on: f64, off: f64) -> Vec<f32> {
    let mut out = vec![off as f32; num_steps];
    let mut previous: i64 = -1;
    for &t in times {
        let gap = t as i64 - previous;
        if gap == 1 {
            out[t] = on as f32;
        } else {
            let slope = (on - off) / (gap - 1) as f64;
            for k in 0..gap {
                out[(previous + 1 + k) as usize] = (off + slope * k as f64) as f32;
            }
        }
        previous = t as i64;
    }
    out
}

/// Spike-train targets `[T, B, C]` for class indices `[B]`: the correct class fires at
/// `correct_rate`, the others at `incorrect_rate` (snnTorch `spikegen.targets_rate`).
///
/// snnTorch drops the time axis when every step is the same; here it is always present.
pub fn targets_rate(
    targets: Tensor<1, Int>,
    num_classes: usize,
    config: &TargetsRateConfig,
) -> Result<Tensor<3>> {
    let c = config;
    if num_classes == 0 {
        return Err(Error::invalid("num_classes", "must be at least 1"));
    }
    if c.num_steps == 0 {
        return Err(Error::invalid(
            "targets_rate num_steps",
            "must be at least 1",
        ));
    }
    if !(0.0..=1.0).contains(&c.correct_rate) || !(0.0..=1.0).contains(&c.incorrect_rate) {
        return Err(Error::invalid(
            "targets_rate rates",
            format!(
                "correct_rate {} and incorrect_rate {} must lie in [0, 1]",
                c.correct_rate, c.incorrect_rate
            ),
        ));
    }
    if c.incorrect_rate > c.correct_rate {
        return Err(Error::invalid(
            "targets_rate rates",
            "correct_rate must be at least incorrect_rate",
        ));
    }
    if c.first_spike_time > c.num_steps {
        return Err(Error::invalid(
            "targets_rate first_spike_time",
            format!(
                "{} must not exceed num_steps {}",
                c.first_spike_time, c.num_steps
            ),
        ));
    }
    let classes = class_indices(&targets, None, num_classes)?;
    let steps = c.num_steps;
    // Per-step values for the correct class and for the others.
    let (correct, incorrect): (Vec<f32>, Vec<f32>) =
        if c.correct_rate == 1.0 && c.incorrect_rate == 0.0 {
            let on: Vec<f32> = (0..steps)
            .map(|t| if t < c.first_spike_time { c.off_target } else { c.on_target } as f32)
            .collect();
            (on, vec![c.off_target as f32; steps])
        } else {
            let (train_on, times_on) = target_rate_code(
                steps,
                c.first_spike_time,
                c.correct_rate,
                c.firing_pattern,
                0,
            );
            let (train_off, times_off) = target_rate_code(
                steps,
                c.first_spike_time,
                c.incorrect_rate,
                c.firing_pattern,
                0x9E37_79B9_7F4A_7C15,
            );
            if c.interpolate {
                (
                    rate_interpolate(&times_on, steps, c.on_target, c.off_target),
                    rate_interpolate(&times_off, steps, c.on_target, c.off_target),
                )
            } else {
                let level = |s: f32| if s > 0.0 { c.on_target } else { c.off_target } as f32;
                (
                    train_on.into_iter().map(level).collect(),
                    train_off.into_iter().map(level).collect(),
                )
            }
        };
    let batch = classes.len();
    let mut values = Vec::with_capacity(steps * batch * num_classes);
    for t in 0..steps {
        for &class in &classes {
            for k in 0..num_classes {
                values.push(if k == class { correct[t] } else { incorrect[t] });
            }
        }
    }
    Ok(Tensor::from_data(
        TensorData::new(values, [steps, batch, num_classes]),
        &targets.device(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().iter::<f32>().collect()
    }

    #[test]
    fn rate_interpolate_ramps_up_to_each_spike() {
        let got = rate_interpolate(&[0, 4], 5, 1.0, 0.0);
        let want = [1.0, 0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{got:?}");
        }
        let got = rate_interpolate(&[0, 4], 5, 1.25, 0.25);
        assert!((got[2] - 0.5833).abs() < 1e-4, "{got:?}");
    }

    #[test]
    fn regular_target_code_matches_snntorch_examples() {
        assert_eq!(
            target_rate_code(5, 0, 1.0, FiringPattern::Regular, 0).1,
            vec![0, 1, 2, 3, 4]
        );
        assert_eq!(
            target_rate_code(5, 3, 1.0, FiringPattern::Regular, 0).1,
            vec![3, 4]
        );
        assert_eq!(
            target_rate_code(5, 0, 0.3, FiringPattern::Regular, 0).1,
            vec![0, 3]
        );
        assert!(target_rate_code(5, 0, 0.0, FiringPattern::Regular, 0)
            .1
            .is_empty());
    }

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

    #[test]
    fn delta_matches_snntorch_docstrings() {
        let device = Device::flex();
        let a: Tensor<1> = Tensor::from_floats([1.0, 2.0, 2.9, 3.0, 3.9], &device);
        let cfg = DeltaConfig {
            threshold: 1.0,
            ..DeltaConfig::default()
        };
        // The docstring shows a spike at step 3, but 3 - 2.9 is below the threshold; snnTorch's
        // code (which this follows) does not fire there either.
        assert_eq!(
            values(delta(a.clone(), &cfg).unwrap()),
            vec![1.0, 1.0, 0.0, 0.0, 0.0]
        );
        let padded = DeltaConfig {
            padding: true,
            ..cfg.clone()
        };
        assert_eq!(
            values(delta(a, &padded).unwrap()),
            vec![0.0, 1.0, 0.0, 0.0, 0.0]
        );
        let b: Tensor<1> = Tensor::from_floats([1.0, 2.0, 0.0, 2.0, 2.9], &device);
        let off = DeltaConfig {
            off_spike: true,
            ..cfg
        };
        assert_eq!(
            values(delta(b.clone(), &off).unwrap()),
            vec![1.0, 1.0, -1.0, 1.0, 0.0]
        );
        let both = DeltaConfig {
            padding: true,
            ..off
        };
        assert_eq!(
            values(delta(b, &both).unwrap()),
            vec![0.0, 1.0, -1.0, 1.0, 0.0]
        );
    }
}
