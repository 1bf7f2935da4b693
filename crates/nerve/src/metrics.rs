//! Accuracy and spike statistics of output recordings, after snnTorch 1.0's
//! `snntorch.functional.acc`. Recordings are time-first `[T, B, N]`; results are plain `f64`.

use burn::tensor::{Int, Tensor};

use crate::encode::class_indices;
use crate::error::{Error, Result};
use crate::loss::population_sum;

/// Index of the largest value of each row (first one on ties, as `torch.max` does).
fn argmax_rows(values: &[f64], cols: usize) -> Vec<usize> {
    values
        .chunks(cols)
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0, f64::NEG_INFINITY), |best, (i, &v)| {
                    if v > best.1 {
                        (i, v)
                    } else {
                        best
                    }
                })
                .0
        })
        .collect()
}

fn check_recording(spk: &Tensor<3>) -> Result<[usize; 3]> {
    let dims = spk.dims();
    if dims.contains(&0) {
        return Err(Error::Shape {
            what: "spikes".into(),
            expected: "[T, B, N] with no empty axis".into(),
            got: format!("{dims:?}"),
        });
    }
    Ok(dims)
}

fn fraction_correct(predicted: &[usize], truth: &[usize]) -> f64 {
    let hits = predicted.iter().zip(truth).filter(|(p, t)| p == t).count();
    hits as f64 / truth.len() as f64
}

/// The class with the most spikes for each batch element (population code: per class group).
pub fn predict_rate(spk: Tensor<3>, population_code: Option<usize>) -> Result<Vec<usize>> {
    let [_, b, n] = check_recording(&spk)?;
    let (grouped, classes) = match population_code {
        Some(c) => (population_sum(spk, c)?, c),
        None => (spk, n),
    };
    let counts: Tensor<2> = grouped.detach().sum_dim(0).reshape([b, classes]);
    let values: Vec<f64> = counts.into_data().iter::<f64>().collect();
    Ok(argmax_rows(&values, classes))
}

/// Fraction of the batch whose most active class is the target (snnTorch `accuracy_rate`).
pub fn accuracy_rate(
    spk: Tensor<3>,
    targets: Tensor<1, Int>,
    population_code: Option<usize>,
) -> Result<f64> {
    let [_, b, n] = check_recording(&spk)?;
    let truth = class_indices(&targets, Some(b), population_code.unwrap_or(n))?;
    Ok(fraction_correct(
        &predict_rate(spk, population_code)?,
        &truth,
    ))
}

/// First spike step of each neuron `[B, N]`, `T - 1` for a silent neuron, as snnTorch counts it.
pub fn first_spike_steps(spk: Tensor<3>) -> Result<Vec<usize>> {
    let [t, b, n] = check_recording(&spk)?;
    let values: Vec<f64> = spk.detach().into_data().iter::<f64>().collect();
    let mut first = vec![t - 1; b * n];
    for j in 0..b * n {
        if let Some(step) = (0..t).find(|&s| values[s * b * n + j] != 0.0) {
            first[j] = step;
        }
    }
    Ok(first)
}

/// The class whose neuron fires first for each batch element (lowest index on ties).
pub fn predict_temporal(spk: Tensor<3>) -> Result<Vec<usize>> {
    let n = check_recording(&spk)?[2];
    let first = first_spike_steps(spk)?;
    let negated: Vec<f64> = first.iter().map(|&s| -(s as f64)).collect();
    Ok(argmax_rows(&negated, n))
}

/// Fraction of the batch whose earliest-firing neuron is the target (snnTorch `accuracy_temporal`).
pub fn accuracy_temporal(spk: Tensor<3>, targets: Tensor<1, Int>) -> Result<f64> {
    let [_, b, n] = check_recording(&spk)?;
    let truth = class_indices(&targets, Some(b), n)?;
    Ok(fraction_correct(&predict_temporal(spk)?, &truth))
}

/// Spike count of each neuron over time: `[T, B, N]` → `[B, N]`.
pub fn spike_counts(spk: Tensor<3>) -> Tensor<2> {
    let [_, b, n] = spk.dims();
    spk.sum_dim(0).reshape([b, n])
}

/// Total number of spikes in a recording of any shape.
pub fn total_spikes<const D: usize>(spk: Tensor<D>) -> f64 {
    spk.detach()
        .sum()
        .into_data()
        .iter::<f64>()
        .next()
        .unwrap_or(0.0)
}

/// Mean spikes per neuron per step: the total divided by the number of elements.
pub fn firing_rate<const D: usize>(spk: Tensor<D>) -> f64 {
    let numel: usize = spk.dims().iter().product();
    if numel == 0 {
        return 0.0;
    }
    total_spikes(spk) / numel as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_go_to_the_first_class() {
        assert_eq!(argmax_rows(&[1.0, 3.0, 3.0, 0.0, 0.0, 0.0], 3), vec![1, 0]);
    }
}
