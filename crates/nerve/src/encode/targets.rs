//! Class targets: checked class indices, one-hot rows and spike-train targets.

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::{Error, Result};

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
}
