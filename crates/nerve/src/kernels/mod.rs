//! Hot loops that are the product, each beside a plain reference implementation that tests
//! compare it with.

pub mod leaky;
pub mod max_pool;
pub mod spike_conv;
pub mod spike_linear;
pub mod ternary;

use std::borrow::Cow;

use burn::backend::flex::FlexTensor;
use burn::tensor::TensorData;

/// The fused and event-driven kernels are on unless `NERVE_FUSED=0` (to time or debug the
/// tensor-op reference paths).
pub(crate) fn enabled() -> bool {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var("NERVE_FUSED").map_or(true, |v| v != "0"))
}

/// A Flex tensor's values as a row-major `f32` slice, borrowed when already contiguous.
pub(crate) fn f32_values(t: &FlexTensor) -> Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(s) if t.is_contiguous() => Cow::Borrowed(s),
        _ => Cow::Owned(t.to_contiguous().as_slice::<f32>().expect("f32").to_vec()),
    }
}

/// A Flex tensor owning `values` with `shape`.
pub(crate) fn flex_tensor(values: Vec<f32>, shape: impl Into<Vec<usize>>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape.into()))
}
