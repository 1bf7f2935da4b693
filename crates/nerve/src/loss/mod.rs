//! Losses over spike and membrane recordings, after snnTorch 1.0's `snntorch.functional`.
//!
//! Recordings are time-first `[T, B, N]`; targets are class indices `Tensor<1, Int>` of length
//! `B`. Every loss returns a differentiable scalar `[1]` with snnTorch's "mean" reduction.
//! With a population code of `C` classes, output neuron `n` votes for class `n / (N / C)`.
//! [`latency`] holds the losses on first-spike latencies (BPLC + NOSO).

pub mod latency;

use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::encode::{class_indices, one_hot_rows};
use crate::error::{Error, Result};

/// The `[T, B, N]` dimensions of a recording, rejecting empty axes.
fn dims3(what: &str, t: &Tensor<3>) -> Result<[usize; 3]> {
    let dims = t.dims();
    if dims.contains(&0) {
        return Err(Error::Shape {
            what: what.into(),
            expected: "[T, B, N] with no empty axis".into(),
            got: format!("{dims:?}"),
        });
    }
    Ok(dims)
}

/// Sums each class's group of neurons at every step: `[T, B, N]` → `[T, B, num_classes]`.
pub fn population_sum(spk: Tensor<3>, num_classes: usize) -> Result<Tensor<3>> {
    let [t, b, n] = dims3("spikes", &spk)?;
    if num_classes == 0 || n % num_classes != 0 {
        return Err(Error::Shape {
            what: "population code".into(),
            expected: format!("a neuron count divisible by {num_classes} classes"),
            got: format!("{n} output neurons"),
        });
    }
    let group = n / num_classes;
    Ok(spk
        .reshape([t, b, num_classes, group])
        .sum_dim(3)
        .reshape([t, b, num_classes]))
}

/// The recording grouped by class when a population code is given, with the class count.
fn by_class(spk: Tensor<3>, population_code: Option<usize>) -> Result<(Tensor<3>, usize)> {
    match population_code {
        Some(classes) => Ok((population_sum(spk, classes)?, classes)),
        None => {
            let n = dims3("spikes", &spk)?[2];
            Ok((spk, n))
        }
    }
}

/// Log-probability of each target token: logits `[B, T, V]`, target ids `[B, T]` → `[B, T]`.
pub fn token_log_probs(logits: Tensor<3>, targets: Tensor<2, Int>) -> Tensor<2> {
    let [b, t, _] = logits.dims();
    log_softmax(logits, 2)
        .gather(2, targets.reshape([b, t, 1]))
        .reshape([b, t])
}

/// Mean next-token cross-entropy in nats of logits `[B, T, V]` against target ids `[B, T]`.
pub fn next_token_ce(logits: Tensor<3>, targets: Tensor<2, Int>) -> Tensor<1> {
    token_log_probs(logits, targets).mean().neg()
}

/// Mean cross entropy of logits `[B, C]` against one-hot rows `[B, C]`.
fn cross_entropy(logits: Tensor<2>, one_hot: Tensor<2>) -> Tensor<1> {
    let batch = logits.dims()[0];
    (log_softmax(logits, 1) * one_hot)
        .sum()
        .neg()
        .div_scalar(batch as f64)
}

/// One-hot rows for checked targets.
fn one_hot_for(
    targets: &Tensor<1, Int>,
    batch: usize,
    classes: usize,
    device: &Device,
) -> Result<Tensor<2>> {
    let idx = class_indices(targets, Some(batch), classes)?;
    Ok(one_hot_rows(&idx, classes, 1.0, 0.0, device))
}

/// Cross entropy of the spikes at every step, averaged over steps (snnTorch `ce_rate_loss`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CeRateLoss {
    /// Number of classes when several neurons vote for each (population code).
    pub population_code: Option<usize>,
}

impl CeRateLoss {
    /// The loss with snnTorch's defaults (one neuron per class).
    pub fn new() -> Self {
        Self::default()
    }

    /// Loss of spikes `[T, B, N]` against class indices `[B]`.
    pub fn forward(&self, spk: Tensor<3>, targets: Tensor<1, Int>) -> Result<Tensor<1>> {
        let (spk, classes) = by_class(spk, self.population_code)?;
        let [t, b, _] = spk.dims();
        let one_hot = one_hot_for(&targets, b, classes, &spk.device())?.unsqueeze_dim::<3>(0);
        Ok((log_softmax(spk, 2) * one_hot)
            .sum()
            .neg()
            .div_scalar((t * b) as f64))
    }
}

/// Cross entropy of the spike counts (snnTorch `ce_count_loss`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CeCountLoss {
    /// Number of classes when several neurons vote for each (population code).
    pub population_code: Option<usize>,
}

impl CeCountLoss {
    /// The loss with snnTorch's defaults (one neuron per class).
    pub fn new() -> Self {
        Self::default()
    }

    /// Loss of spikes `[T, B, N]` against class indices `[B]`.
    pub fn forward(&self, spk: Tensor<3>, targets: Tensor<1, Int>) -> Result<Tensor<1>> {
        let (spk, classes) = by_class(spk, self.population_code)?;
        let [_, b, _] = spk.dims();
        let counts: Tensor<2> = spk.sum_dim(0).reshape([b, classes]);
        let one_hot = one_hot_for(&targets, b, classes, &counts.device())?;
        Ok(cross_entropy(counts, one_hot))
    }
}

/// Mean square error between spike counts and target counts, divided by the number of steps
/// (snnTorch `mse_count_loss`).
///
/// The target count of the correct class is `int(T·correct_rate·N/C)` and of the others
/// `int(T·incorrect_rate·N/C)`, truncated as snnTorch does.
#[derive(Debug, Clone, PartialEq)]
pub struct MseCountLoss {
    /// Firing rate asked of the correct class.
    pub correct_rate: f64,
    /// Firing rate asked of the other classes.
    pub incorrect_rate: f64,
    /// Number of classes when several neurons vote for each (population code).
    pub population_code: Option<usize>,
}

impl Default for MseCountLoss {
    fn default() -> Self {
        Self {
            correct_rate: 1.0,
            incorrect_rate: 0.0,
            population_code: None,
        }
    }
}

impl MseCountLoss {
    /// The loss with the given target rates and one neuron per class.
    pub fn new(correct_rate: f64, incorrect_rate: f64) -> Self {
        Self {
            correct_rate,
            incorrect_rate,
            population_code: None,
        }
    }

    /// Loss of spikes `[T, B, N]` against class indices `[B]`.
    pub fn forward(&self, spk: Tensor<3>, targets: Tensor<1, Int>) -> Result<Tensor<1>> {
        let [t, _, n] = dims3("spikes", &spk)?;
        let (spk, classes) = by_class(spk, self.population_code)?;
        let [_, b, _] = spk.dims();
        // Same float64 expression and truncation as snnTorch's int(num_steps * rate * (N / C)).
        let per_class = n as f64 / classes as f64;
        let on = (t as f64 * self.correct_rate * per_class).trunc();
        let off = (t as f64 * self.incorrect_rate * per_class).trunc();
        let idx = class_indices(&targets, Some(b), classes)?;
        let counts: Tensor<2> = spk.sum_dim(0).reshape([b, classes]);
        let goal = one_hot_rows(&idx, classes, on, off, &counts.device());
        Ok((counts - goal).square().mean().div_scalar(t as f64))
    }
}

/// Mean square error between the membrane and a target level at every step
/// (snnTorch `mse_membrane_loss`).
#[derive(Debug, Clone, PartialEq)]
pub struct MseMembraneLoss {
    /// Target membrane of the correct class.
    pub on_target: f64,
    /// Target membrane of the other classes.
    pub off_target: f64,
}

impl Default for MseMembraneLoss {
    fn default() -> Self {
        Self {
            on_target: 1.0,
            off_target: 0.0,
        }
    }
}

impl MseMembraneLoss {
    /// The loss with the given target levels.
    pub fn new(on_target: f64, off_target: f64) -> Self {
        Self {
            on_target,
            off_target,
        }
    }

    /// Loss of membranes `[T, B, N]` against class indices `[B]` (the same target at every step).
    pub fn forward(&self, mem: Tensor<3>, targets: Tensor<1, Int>) -> Result<Tensor<1>> {
        let [_, b, n] = dims3("membrane", &mem)?;
        let idx = class_indices(&targets, Some(b), n)?;
        let goal = one_hot_rows(&idx, n, self.on_target, self.off_target, &mem.device())
            .unsqueeze_dim::<3>(0);
        Ok((mem - goal).square().mean())
    }

    /// Loss of membranes `[T, B, N]` against a time-varying target membrane of the same shape
    /// (e.g. from [`crate::encode::targets_rate`]).
    pub fn forward_time_varying(&self, mem: Tensor<3>, target: Tensor<3>) -> Result<Tensor<1>> {
        let dims = dims3("membrane", &mem)?;
        if target.dims() != dims {
            return Err(Error::Shape {
                what: "membrane target".into(),
                expected: format!("{dims:?} (the membrane's shape)"),
                got: format!("{:?}", target.dims()),
            });
        }
        Ok((mem - target.detach()).square().mean())
    }
}

/// Cross entropy of each neuron's largest membrane over time (snnTorch `ce_max_membrane_loss`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CeMaxMembraneLoss;

impl CeMaxMembraneLoss {
    /// The loss.
    pub fn new() -> Self {
        Self
    }

    /// Loss of membranes `[T, B, N]` against class indices `[B]`.
    pub fn forward(&self, mem: Tensor<3>, targets: Tensor<1, Int>) -> Result<Tensor<1>> {
        let [_, b, n] = dims3("membrane", &mem)?;
        let peak: Tensor<2> = mem.max_dim(0).reshape([b, n]);
        let one_hot = one_hot_for(&targets, b, n, &peak.device())?;
        Ok(cross_entropy(peak, one_hot))
    }
}

/// The first `num_spikes` spike times of every neuron, `[T, B, N]` → `[F, B, N]`, in steps.
///
/// A neuron without an `f`-th spike gets the last step `T - 1`. The value is not differentiable,
/// so, as snnTorch's `SpikeTime`, the gradient is a sign estimator: `-1` with respect to the spike
/// at that time (at `T - 1` for a missing spike), so more drive means an earlier spike. Any
/// non-zero value counts as a spike.
pub fn spike_times(spk: Tensor<3>, num_spikes: usize) -> Result<Tensor<3>> {
    let [t, _, _] = dims3("spikes", &spk)?;
    if num_spikes == 0 {
        return Err(Error::invalid("num_spikes", "must be at least 1"));
    }
    let device = spk.device();
    let fired = spk.clone().detach().not_equal_elem(0.0).float();
    let order = fired.clone().cumsum(0);
    let steps: Tensor<3> = Tensor::<1, Int>::arange(0..t as i64, &device)
        .float()
        .reshape([t, 1, 1]);
    let mut last = vec![0.0f32; t];
    last[t - 1] = 1.0;
    let last: Tensor<3> = Tensor::from_data(TensorData::new(last, [t, 1, 1]), &device);
    // Zero in value, identity in gradient: carries d(loss)/d(spike) through the masks below.
    let live = spk.clone() - spk.detach();
    let times = (1..=num_spikes)
        .map(|k| {
            let at = fired.clone() * order.clone().equal_elem(k as f64).float();
            let missing = at.clone().sum_dim(0).neg().add_scalar(1.0);
            let value = (at.clone() * steps.clone()).sum_dim(0) + missing.clone() * (t - 1) as f64;
            let pick = at + missing * last.clone();
            value - (live.clone() * pick).sum_dim(0)
        })
        .collect::<Vec<_>>();
    Ok(Tensor::cat(times, 0))
}

/// Mean square error between spike times and target times, both divided by `T`
/// (snnTorch `mse_temporal_loss`).
///
/// `on_target[f]` / `off_target[f]` are the target times of the `f`-th spike of the correct and
/// other classes; one entry means first-spike timing, several mean multi-spike timing. Negative
/// times count back from the end (`-1` is the last step). Spike times within `tolerance` of
/// their target count as exact.
#[derive(Debug, Clone, PartialEq)]
pub struct MseTemporalLoss {
    /// Target time of each spike of the correct class.
    pub on_target: Vec<f64>,
    /// Target time of each spike of the other classes.
    pub off_target: Vec<f64>,
    /// Errors smaller than this many steps are ignored (0 disables).
    pub tolerance: f64,
}

impl Default for MseTemporalLoss {
    fn default() -> Self {
        Self {
            on_target: vec![0.0],
            off_target: vec![-1.0],
            tolerance: 0.0,
        }
    }
}

impl MseTemporalLoss {
    /// First-spike timing: the correct class at `on_target`, the others at `off_target`.
    pub fn new(on_target: f64, off_target: f64) -> Self {
        Self {
            on_target: vec![on_target],
            off_target: vec![off_target],
            tolerance: 0.0,
        }
    }

    /// Loss of spikes `[T, B, N]` against class indices `[B]`.
    pub fn forward(&self, spk: Tensor<3>, targets: Tensor<1, Int>) -> Result<Tensor<1>> {
        let [t, b, n] = dims3("spikes", &spk)?;
        if self.on_target.is_empty() || self.on_target.len() != self.off_target.len() {
            return Err(Error::invalid(
                "mse_temporal_loss targets",
                format!(
                    "on_target ({}) and off_target ({}) need the same, non-zero length",
                    self.on_target.len(),
                    self.off_target.len()
                ),
            ));
        }
        let idx = class_indices(&targets, Some(b), n)?;
        let wrap = |v: f64| if v < 0.0 { t as f64 + v } else { v };
        let goal = self
            .on_target
            .iter()
            .zip(&self.off_target)
            .map(|(&on, &off)| {
                one_hot_rows(&idx, n, wrap(on), wrap(off), &spk.device()).unsqueeze_dim::<3>(0)
            })
            .collect::<Vec<_>>();
        self.compare(spk, Tensor::cat(goal, 0))
    }

    /// Loss of spikes `[T, B, N]` against explicit target times `[F, B, N]` (snnTorch's
    /// `target_is_time=True`); `F` is the number of timed spikes per neuron.
    pub fn forward_times(&self, spk: Tensor<3>, target_times: Tensor<3>) -> Result<Tensor<1>> {
        let [t, b, n] = dims3("spikes", &spk)?;
        let [f, tb, tn] = target_times.dims();
        if f == 0 || tb != b || tn != n {
            return Err(Error::Shape {
                what: "target spike times".into(),
                expected: format!("[F, {b}, {n}] with F ≥ 1"),
                got: format!("{:?}", target_times.dims()),
            });
        }
        let target_times = target_times.detach();
        let wrapped = target_times.clone().lower_elem(0.0).float() * t as f64 + target_times;
        self.compare(spk, wrapped)
    }

    fn compare(&self, spk: Tensor<3>, goal: Tensor<3>) -> Result<Tensor<1>> {
        let t = spk.dims()[0] as f64;
        let mut times = spike_times(spk, goal.dims()[0])?;
        if self.tolerance > 0.0 {
            let close = (times.clone().detach() - goal.clone())
                .abs()
                .lower_elem(self.tolerance)
                .float();
            // Snap to the target in value only; the gradient passes unchanged, as in snnTorch.
            let snap = (goal.clone() - times.clone().detach()) * close;
            times = times + snap;
        }
        Ok((times.div_scalar(t) - goal.div_scalar(t)).square().mean())
    }
}

/// How [`CeTemporalLoss`] turns first-spike times into logits (earlier must score higher).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TemporalInverse {
    /// `-t`.
    #[default]
    Negate,
    /// `1 / (t + 1)`.
    Reciprocal,
}

/// Cross entropy of inverted first-spike times, so the correct class learns to fire first
/// (snnTorch `ce_temporal_loss`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CeTemporalLoss {
    /// The inversion applied to the spike times.
    pub inverse: TemporalInverse,
}

impl CeTemporalLoss {
    /// The loss with the given inversion.
    pub fn new(inverse: TemporalInverse) -> Self {
        Self { inverse }
    }

    /// Loss of spikes `[T, B, N]` against class indices `[B]`.
    pub fn forward(&self, spk: Tensor<3>, targets: Tensor<1, Int>) -> Result<Tensor<1>> {
        let [_, b, n] = dims3("spikes", &spk)?;
        let one_hot = one_hot_for(&targets, b, n, &spk.device())?;
        let times: Tensor<2> = spike_times(spk, 1)?.reshape([b, n]);
        let logits = match self.inverse {
            TemporalInverse::Negate => times.neg(),
            TemporalInverse::Reciprocal => times.add_scalar(1.0).recip(),
        };
        Ok(cross_entropy(logits, one_hot))
    }
}

/// L1 penalty on the total spike count, `lambda · Σ spk` (snnTorch `l1_rate_sparsity`).
#[derive(Debug, Clone, PartialEq)]
pub struct L1RateSparsity {
    /// Weight of the penalty.
    pub lambda: f64,
}

impl Default for L1RateSparsity {
    fn default() -> Self {
        Self { lambda: 1e-5 }
    }
}

impl L1RateSparsity {
    /// The penalty with weight `lambda`.
    pub fn new(lambda: f64) -> Self {
        Self { lambda }
    }

    /// Penalty of a spike recording of any shape.
    pub fn forward<const D: usize>(&self, spk: Tensor<D>) -> Tensor<1> {
        spk.sum().mul_scalar(self.lambda)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> Device {
        Device::flex().autodiff()
    }

    fn spikes(values: &[f32], shape: [usize; 3]) -> Tensor<3> {
        Tensor::from_data(TensorData::new(values.to_vec(), shape), &device())
    }

    fn classes(c: &[i64]) -> Tensor<1, Int> {
        Tensor::from_data(TensorData::new(c.to_vec(), [c.len()]), &device())
    }

    fn scalar(t: Tensor<1>) -> f64 {
        t.into_data().iter::<f64>().next().unwrap()
    }

    #[test]
    fn spike_times_take_first_and_second_spikes() {
        // One batch element, three neurons over four steps.
        #[rustfmt::skip]
        let spk = spikes(&[
            0.0, 1.0, 0.0,
            1.0, 0.0, 0.0,
            0.0, 1.0, 0.0,
            1.0, 0.0, 0.0,
        ], [4, 1, 3]);
        let times: Vec<f64> = spike_times(spk, 2)
            .unwrap()
            .into_data()
            .iter::<f64>()
            .collect();
        assert_eq!(times, vec![1.0, 0.0, 3.0, 3.0, 2.0, 3.0]);
    }

    #[test]
    fn spike_time_gradient_is_minus_one_at_the_spike() {
        let spk = spikes(&[0.0, 0.0, 1.0, 0.0, 0.0, 0.0], [3, 1, 2]).require_grad();
        let grads = spike_times(spk.clone(), 1).unwrap().sum().backward();
        let g: Vec<f64> = spk
            .grad(&grads)
            .unwrap()
            .into_data()
            .iter::<f64>()
            .collect();
        // Neuron 0 fires at step 1; neuron 1 never fires, so its shadow spike is the last step.
        assert_eq!(g, vec![0.0, 0.0, -1.0, 0.0, 0.0, -1.0]);
    }

    #[test]
    fn mse_membrane_constant_target() {
        let mem = spikes(&[1.0, 0.0, 0.5, 0.5], [2, 1, 2]);
        let loss = MseMembraneLoss::default()
            .forward(mem, classes(&[0]))
            .unwrap();
        // Errors 0, 0, -0.5, 0.5 → mean of squares 0.125.
        assert!((scalar(loss) - 0.125).abs() < 1e-7);
    }
}
