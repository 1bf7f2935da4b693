//! Hot loops that are the product, each beside a plain reference implementation that tests
//! compare it with.

pub mod leaky;
pub mod levels;
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

/// `y += a·x`, written so LLVM vectorises it for whatever target features the caller has (the
/// callers inline it into their AVX-512 and AVX2 builds).
#[inline(always)]
pub(crate) fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

/// The widest vector build of a kernel this CPU runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isa {
    /// AVX-512F with AVX2 and FMA.
    Avx512,
    /// AVX2 with FMA.
    Avx2,
    /// Whatever the crate was compiled for.
    Plain,
}

/// The widest build [`Isa`] this CPU supports, no wider than `NERVE_ISA` asks
/// ([`ternary::ISA_ENV`]: `avx512`, `avx2` or `portable`), so one switch steers every kernel.
pub(crate) fn isa() -> Isa {
    static CHOSEN: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
    *CHOSEN.get_or_init(|| {
        let cap = std::env::var(ternary::ISA_ENV)
            .ok()
            .and_then(|v| ternary::Kernel::parse(&v));
        #[cfg(target_arch = "x86_64")]
        {
            let wants = |k: ternary::Kernel| cap.is_none_or(|c| c >= k);
            if wants(ternary::Kernel::Avx512) && std::is_x86_feature_detected!("avx512f") {
                return Isa::Avx512;
            }
            if wants(ternary::Kernel::Avx2)
                && std::is_x86_feature_detected!("avx2")
                && std::is_x86_feature_detected!("fma")
            {
                return Isa::Avx2;
            }
        }
        let _ = cap;
        Isa::Plain
    })
}
