//! Event-driven 2-D convolution for spike inputs: stride 1, no dilation, one group, symmetric
//! zero padding (the convolutions of the tutorial conv SNNs).
//!
//! A dense convolution multiplies every input by every kernel weight; a spike map is mostly
//! zeros. The sparse forward walks the active inputs of each sample and, for each kernel offset
//! that lands inside the output, adds the kernel's column of output-channel weights to that
//! output position (`out[p] += x[c, y, x] · W[:, c, ky, kx]`). It accumulates in a channels-last
//! buffer of one sample's outputs (a few KB, in L1) against the weights transposed to
//! `[C, KH, KW, O]`, so each add is a contiguous vector of `O` floats, then writes the sample
//! back in Burn's `[O, H, W]` order. The weight gradient is the same walk with the roles of the
//! weights and the output gradient exchanged, into per-thread partial sums. The input gradient
//! is needed at every input, but after max pooling three in four output gradients are zero: on
//! CPUs with AVX-512 it sums each output pixel's nonzero gradients times their filters and adds
//! the sum to the inputs the pixel saw; otherwise, or when the output gradient is dense, it is
//! Burn's transposed convolution.
//!
//! The dense path is Burn's convolution; which path runs is chosen per call from the measured
//! density, and `tests/kernels/spike_conv.rs` checks both against each other in outputs and in all
//! three gradients.

mod input_grad;
mod scatter;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{FloatTensorOps, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex};
use burn::tensor::ops::ConvOptions;
use burn::tensor::Tensor;

use self::input_grad::{sparse_input_grad, SPARSE_GRAD_BELOW};
use self::scatter::{sparse_forward, sparse_weight_grad};
use super::spike_linear::density;
use super::{f32_values, flex_tensor};

/// Which algorithm [`spike_conv2d`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpikeConvMode {
    /// Sparse below [`SPARSE_BELOW`] density of nonzero inputs, dense above.
    Auto,
    /// Always Burn's dense convolution, and its input gradient.
    Dense,
    /// Always the event-driven accumulation.
    Sparse,
}

/// Input density under which the event-driven path wins. Measured on the W3 second layer
/// (`[3200, 12, 12, 12]` spikes, 64 filters of 5×5, one thread): the sparse forward takes about
/// 14 ms plus 330 ms per unit of density, Burn's convolution 160 ms whatever the density, so
/// they cross near 0.45; the margin covers CPUs whose GEMM is relatively faster.
pub const SPARSE_BELOW: f64 = 0.4;

/// The op as a Burn backend extension: Flex on raw slices, Autodiff over Flex with its reverse
/// pass.
#[backend_extension(Flex, Autodiff)]
pub trait SpikeConvKernel: Backend {
    /// `x [N, C, H, W]`, `w [O, C, KH, KW]`, `b [O]`, zero `padding` `[ph, pw]` on each side,
    /// stride 1 → `[N, O, H + 2ph − KH + 1, W + 2pw − KW + 1]`.
    fn spike_conv2d(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        padding: [usize; 2],
        mode: SpikeConvMode,
    ) -> FloatTensor<Self>;
}

/// The sizes of one convolution.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    kh: usize,
    kw: usize,
    ph: usize,
    pw: usize,
    ho: usize,
    wo: usize,
}

impl Geometry {
    fn new(x: &[usize], w: &[usize], padding: [usize; 2]) -> Self {
        let (n, c, h, wd) = (x[0], x[1], x[2], x[3]);
        let (o, kh, kw) = (w[0], w[2], w[3]);
        // A programming error, as in Burn's convolution (user data reaches this through a
        // network whose input shape is checked first).
        assert_eq!(
            c, w[1],
            "spike_conv2d: the input has {c} channels, the weights expect {}",
            w[1]
        );
        let [ph, pw] = padding;
        Self {
            n,
            c,
            h,
            w: wd,
            o,
            kh,
            kw,
            ph,
            pw,
            ho: (h + 2 * ph + 1).saturating_sub(kh),
            wo: (wd + 2 * pw + 1).saturating_sub(kw),
        }
    }

    fn of(x: &FlexTensor, w: &FlexTensor, padding: [usize; 2]) -> Self {
        Self::new(x.layout().shape(), w.layout().shape(), padding)
    }

    fn input_len(&self) -> usize {
        self.c * self.h * self.w
    }

    fn output_len(&self) -> usize {
        self.o * self.ho * self.wo
    }

    fn kernel_len(&self) -> usize {
        self.c * self.kh * self.kw * self.o
    }

    fn options(&self) -> ConvOptions<2> {
        ConvOptions::new([1, 1], [self.ph, self.pw], [1, 1], 1)
    }

    /// The kernel rows `ky` that carry input row `y` into the output (`0 ≤ y + ph − ky < Ho`).
    #[inline(always)]
    fn rows_reached(&self, y: usize) -> std::ops::Range<usize> {
        (y + self.ph + 1).saturating_sub(self.ho)..(y + self.ph + 1).min(self.kh)
    }

    /// The kernel columns `kx` that carry input column `x` into the output.
    #[inline(always)]
    fn cols_reached(&self, x: usize) -> std::ops::Range<usize> {
        (x + self.pw + 1).saturating_sub(self.wo)..(x + self.pw + 1).min(self.kw)
    }
}

/// Samples per parallel task: enough tasks for load balance, few enough that each reuses its
/// accumulator many times.
fn samples_per_task(n: usize) -> usize {
    n.div_ceil(8 * rayon::current_num_threads().max(1)).max(1)
}

fn use_sparse(mode: SpikeConvMode, x: &[f32]) -> bool {
    match mode {
        SpikeConvMode::Sparse => true,
        SpikeConvMode::Dense => false,
        SpikeConvMode::Auto => density(x) < SPARSE_BELOW,
    }
}

impl SpikeConvKernel for Flex {
    fn spike_conv2d(
        x: FlexTensor,
        w: FlexTensor,
        b: FlexTensor,
        padding: [usize; 2],
        mode: SpikeConvMode,
    ) -> FlexTensor {
        let g = Geometry::of(&x, &w, padding);
        if !use_sparse(mode, &f32_values(&x)) {
            return Flex::conv2d(x, w, Some(b), g.options());
        }
        let y = sparse_forward(&f32_values(&x), &f32_values(&w), &f32_values(&b), &g);
        flex_tensor(y, [g.n, g.o, g.ho, g.wo])
    }
}

#[derive(Debug)]
struct SpikeConvBackward;

impl Backward<Flex, 3> for SpikeConvBackward {
    /// Input, weights, padding, whether the forward took the sparse path, the mode asked for.
    type State = (FlexTensor, FlexTensor, [usize; 2], bool, SpikeConvMode);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let gout = grads.consume::<Flex>(&ops.node);
        let (x, w, padding, sparse, mode) = ops.state;
        let g = Geometry::of(&x, &w, padding);
        if let Some(node) = node_b {
            let sum = Flex::float_sum_dim(Flex::float_sum_dim(gout.clone(), 3), 2);
            let gb = Flex::float_sum_dim(sum, 0);
            grads.register::<Flex>(node.id, Flex::float_reshape(gb, [g.o].into()));
        }
        if let Some(node) = node_w {
            let gw = if sparse {
                let values = sparse_weight_grad(&f32_values(&x), &f32_values(&gout), &g);
                flex_tensor(values, [g.o, g.c, g.kh, g.kw])
            } else {
                Flex::conv2d_weight_backward(x.clone(), w.clone(), gout.clone(), g.options())
            };
            grads.register::<Flex>(node.id, gw);
        }
        if let Some(node) = node_x {
            let values = f32_values(&gout);
            let sparse_grad = (mode != SpikeConvMode::Dense
                && density(&values) < SPARSE_GRAD_BELOW)
                .then(|| sparse_input_grad(&values, &f32_values(&w), &g))
                .flatten();
            drop(values);
            let gx = match sparse_grad {
                Some(gx) => flex_tensor(gx, [g.n, g.c, g.h, g.w]),
                None => Flex::conv2d_x_backward(x, w, gout, g.options()),
            };
            grads.register::<Flex>(node.id, gx);
        }
    }
}

impl<C: CheckpointStrategy> SpikeConvKernel for Autodiff<Flex, C> {
    fn spike_conv2d(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        padding: [usize; 2],
        mode: SpikeConvMode,
    ) -> FloatTensor<Self> {
        let guards = [x.node(), w.node(), b.node()];
        let (x, w) = (x.into_primitive(), w.into_primitive());
        // Decide once, so the backward uses the path the forward took.
        let sparse = use_sparse(mode, &f32_values(&x));
        let forced = if sparse {
            SpikeConvMode::Sparse
        } else {
            SpikeConvMode::Dense
        };
        let y = <Flex as SpikeConvKernel>::spike_conv2d(
            x.clone(),
            w.clone(),
            b.into_primitive(),
            padding,
            forced,
        );
        match SpikeConvBackward
            .prepare::<C>(guards)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((x, w, padding, sparse, mode), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }
}

/// `x [N, C, H, W]` convolved with `w [O, C, KH, KW]` plus `b [O]`, stride 1, zero `padding`
/// `[ph, pw]` on each side, with the event-driven path where `x` is sparse. Runs on the Flex
/// backend (check [`crate::device::is_flex`]).
pub fn spike_conv2d(
    x: Tensor<4>,
    w: Tensor<4>,
    b: Tensor<1>,
    padding: [usize; 2],
    mode: SpikeConvMode,
) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as SpikeConvKernel>::spike_conv2d(
        x.into_dispatch(),
        w.into_dispatch(),
        b.into_dispatch(),
        padding,
        mode,
    ))
}
