//! A tiny MatMul-free configuration, seeded weights and raw safetensors writers shared by the
//! model and checkpoint tests.

use std::path::Path;

use burn::tensor::{Device, Int, Tensor, TensorData};
use nerve::models::mmfree::{MmFreeConfig, MmFreeWeights};
use safetensors::tensor::TensorView;
use safetensors::Dtype;

/// V=11, d=8, L=3, I=12: every code path, tiny.
pub fn tiny_config() -> MmFreeConfig {
    let mut cfg = MmFreeConfig::new(11, 8, 3);
    cfg.intermediate_size = Some(12);
    cfg
}

/// Random weights with non-trivial norms and lower bounds (released init has ones/zeros).
pub fn tiny_weights(seed: u64) -> MmFreeWeights {
    let mut w = MmFreeWeights::random(tiny_config(), seed).unwrap();
    for (i, (name, t)) in w.tensors.iter_mut().enumerate() {
        if name.ends_with("norm.weight") || name == "model.lower_bounds" {
            for (j, v) in t.data.iter_mut().enumerate() {
                *v += 0.1 * (((i * 7 + j * 3) % 11) as f32 - 5.0) / 5.0;
            }
        }
    }
    w
}

pub fn tokens(ids: &[i64], batch: usize, device: &Device) -> Tensor<2, Int> {
    let t = ids.len() / batch;
    Tensor::from_data(TensorData::new(ids.to_vec(), [batch, t]), device)
}

pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

pub fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Writes a safetensors file holding exactly `tensors` (name, dtype, shape, raw bytes).
pub fn write_raw(path: &Path, tensors: &[(String, Dtype, Vec<usize>, Vec<u8>)]) {
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, dt, shape, bytes)| {
            (
                n.clone(),
                TensorView::new(*dt, shape.clone(), bytes).unwrap(),
            )
        })
        .collect();
    let bytes = safetensors::serialize(views, None).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// The weights of `w` as F32 raw tensors, for hand-made (broken) files.
pub fn raw_f32(w: &MmFreeWeights) -> Vec<(String, Dtype, Vec<usize>, Vec<u8>)> {
    w.tensors
        .iter()
        .map(|(n, t)| {
            let bytes = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
            (n.clone(), Dtype::F32, t.shape.clone(), bytes)
        })
        .collect()
}

pub fn err_text<T: std::fmt::Debug>(r: nerve::Result<T>) -> String {
    r.unwrap_err().to_string()
}
