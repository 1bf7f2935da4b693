//! Tensor helpers shared by the encoder, loss and metric tests.

use burn::tensor::{Device, Int, Tensor, TensorData};

pub fn cpu() -> Device {
    Device::flex()
}

pub fn grad_device() -> Device {
    Device::flex().autodiff()
}

pub fn tensor<const D: usize>(values: &[f32], shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values.to_vec(), shape), device)
}

pub fn classes(c: &[i64], device: &Device) -> Tensor<1, Int> {
    Tensor::from_data(TensorData::new(c.to_vec(), [c.len()]), device)
}

pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}

pub fn scalar(t: Tensor<1>) -> f64 {
    values(t)[0]
}

pub fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

/// A deterministic pseudo-random 0/1 recording for gradient and equivalence checks.
pub fn pattern(shape: [usize; 3], device: &Device) -> Tensor<3> {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|i| ((i * 7 + i / 3) % 5 < 2) as u8 as f32)
        .collect();
    tensor(&v, shape, device)
}
