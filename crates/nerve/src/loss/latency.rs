//! Loss and decoding on output spike latencies (BPLC + NOSO, Jin et al. 2023): the earliest
//! output neuron names the class.
//!
//! The authors' code trains with `cross_entropy(−latency, label)` (the negated latencies of
//! the output neurons as logits; a silent output has latency `T` and no gradient) and predicts
//! the output of smallest latency, breaking ties by the largest `|u|` at the spike.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};

use crate::encode::{class_indices, one_hot_rows};
use crate::error::{Error, Result};

/// Mean cross-entropy of the logits `−latency` `[B, K]` against class labels `[B]`.
pub fn latency_ce_loss(latency: Tensor<2>, targets: Tensor<1, Int>) -> Result<Tensor<1>> {
    let [batch, classes] = latency.dims();
    let idx = class_indices(&targets, Some(batch), classes)?;
    let one_hot = one_hot_rows(&idx, classes, 1.0, 0.0, &latency.device());
    Ok((log_softmax(latency.neg(), 1) * one_hot)
        .sum()
        .neg()
        .div_scalar(batch.max(1) as f64))
}

/// The predicted class of each sample: the output of smallest latency, ties broken by the
/// largest `|u|` at the spike (then the lowest index). `latency` and `u_spike` are `[B, K]`
/// row-major.
pub fn latency_predictions(latency: &[f32], u_spike: &[f32], classes: usize) -> Result<Vec<usize>> {
    if classes == 0 || !latency.len().is_multiple_of(classes) || latency.len() != u_spike.len() {
        return Err(Error::invalid(
            "latency predictions",
            format!(
                "{} latencies and {} potentials do not make rows of {classes} classes",
                latency.len(),
                u_spike.len()
            ),
        ));
    }
    Ok(latency
        .chunks(classes)
        .zip(u_spike.chunks(classes))
        .map(|(lat, u)| {
            let min = lat.iter().copied().fold(f32::INFINITY, f32::min);
            let mut best = 0;
            let mut best_u = f32::NEG_INFINITY;
            for (k, (&l, &v)) in lat.iter().zip(u).enumerate() {
                if l == min && v.abs() > best_u {
                    best = k;
                    best_u = v.abs();
                }
            }
            best
        })
        .collect())
}
