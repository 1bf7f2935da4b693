//! Max pooling over non-overlapping windows (stride equal to the window, no padding), for the
//! time-folded feature maps of conv SNNs.
//!
//! Burn's pooling records the winner of each window as an `i64` index into the input plane and
//! its backward scatters through those; here the winner is one byte (its offset inside the
//! window), the backward writes each input plane once, and both passes run one task per band
//! of planes. Ties and NaN go as in Burn: the first maximum in row-major window order wins, and
//! a NaN replaces the current winner. `tests/kernels/max_pool.rs` checks values and gradients against
//! Burn's `max_pool2d`.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex};
use burn::tensor::Tensor;
use rayon::prelude::*;

use super::{f32_values, flex_tensor};

/// The largest window the one-byte winner offsets can address.
pub const MAX_WINDOW: usize = 256;

/// The op as a Burn backend extension: Flex on raw slices, Autodiff over Flex with its reverse
/// pass.
#[backend_extension(Flex, Autodiff)]
pub trait MaxPoolKernel: Backend {
    /// `x [N, C, H, W]` → `[N, C, H / kh, W / kw]`, the maximum of each `kh × kw` window.
    fn window_max_pool2d(x: FloatTensor<Self>, window: [usize; 2]) -> FloatTensor<Self>;
}

/// The sizes of one pooling.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    planes: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    ho: usize,
    wo: usize,
}

impl Geometry {
    fn new(shape: &[usize], [kh, kw]: [usize; 2]) -> Self {
        assert!(
            kh >= 1 && kw >= 1 && kh * kw <= MAX_WINDOW,
            "window_max_pool2d: a {kh}x{kw} window is empty or over {MAX_WINDOW} elements"
        );
        Self {
            planes: shape[0] * shape[1],
            h: shape[2],
            w: shape[3],
            kh,
            kw,
            ho: shape[2] / kh,
            wo: shape[3] / kw,
        }
    }

    fn of(x: &FlexTensor, window: [usize; 2]) -> Self {
        Self::new(x.layout().shape(), window)
    }

    fn in_plane(&self) -> usize {
        self.h * self.w
    }

    fn out_plane(&self) -> usize {
        self.ho * self.wo
    }
}

/// Planes per parallel task.
fn planes_per_task(g: &Geometry) -> usize {
    let tasks = 8 * rayon::current_num_threads().max(1);
    g.planes.div_ceil(tasks).max(1)
}

/// One plane's maxima and the offsets of the winners inside their windows.
#[inline(always)]
fn pool_plane(x: &[f32], g: &Geometry, out: &mut [f32], winner: &mut [u8]) {
    for py in 0..g.ho {
        for px in 0..g.wo {
            let mut best = f32::NEG_INFINITY;
            let mut at = 0usize;
            let mut first = true;
            for ky in 0..g.kh {
                let row = (py * g.kh + ky) * g.w + px * g.kw;
                for (kx, &v) in x[row..row + g.kw].iter().enumerate() {
                    if first || v > best || v.is_nan() {
                        best = v;
                        at = ky * g.kw + kx;
                        first = false;
                    }
                }
            }
            out[py * g.wo + px] = best;
            winner[py * g.wo + px] = at as u8;
        }
    }
}

/// The forward on plain slices: maxima `[planes, Ho, Wo]` and winner offsets.
fn forward(x: &[f32], g: &Geometry) -> (Vec<f32>, Vec<u8>) {
    let (inp, outp) = (g.in_plane(), g.out_plane());
    let mut out = vec![0f32; g.planes * outp];
    let mut winner = vec![0u8; g.planes * outp];
    if outp == 0 {
        return (out, winner);
    }
    let per = planes_per_task(g);
    out.par_chunks_mut(per * outp)
        .zip(winner.par_chunks_mut(per * outp))
        .zip(x.par_chunks(per * inp))
        .for_each(|((out, winner), x)| {
            for ((o, w), x) in out
                .chunks_exact_mut(outp)
                .zip(winner.chunks_exact_mut(outp))
                .zip(x.chunks_exact(inp))
            {
                pool_plane(x, g, o, w);
            }
        });
    (out, winner)
}

/// The backward on plain slices: each output gradient goes to its window's winner, every other
/// input gets zero.
fn backward(grad: &[f32], winner: &[u8], g: &Geometry) -> Vec<f32> {
    let (inp, outp) = (g.in_plane(), g.out_plane());
    let mut gx = vec![0f32; g.planes * inp];
    if outp == 0 || inp == 0 {
        return gx;
    }
    let per = planes_per_task(g);
    gx.par_chunks_mut(per * inp)
        .zip(grad.par_chunks(per * outp))
        .zip(winner.par_chunks(per * outp))
        .for_each(|((gx, grad), winner)| {
            for ((gx, grad), winner) in gx
                .chunks_exact_mut(inp)
                .zip(grad.chunks_exact(outp))
                .zip(winner.chunks_exact(outp))
            {
                for py in 0..g.ho {
                    for px in 0..g.wo {
                        let p = py * g.wo + px;
                        let at = winner[p] as usize;
                        let (ky, kx) = (at / g.kw, at % g.kw);
                        gx[(py * g.kh + ky) * g.w + px * g.kw + kx] = grad[p];
                    }
                }
            }
        });
    gx
}

fn output_shape(x: &FlexTensor, g: &Geometry) -> [usize; 4] {
    let s = x.layout().shape();
    [s[0], s[1], g.ho, g.wo]
}

impl MaxPoolKernel for Flex {
    fn window_max_pool2d(x: FlexTensor, window: [usize; 2]) -> FlexTensor {
        let g = Geometry::of(&x, window);
        let (out, _) = forward(&f32_values(&x), &g);
        flex_tensor(out, output_shape(&x, &g))
    }
}

#[derive(Debug)]
struct MaxPoolBackward;

impl Backward<Flex, 1> for MaxPoolBackward {
    /// Input shape, window, winner offsets.
    type State = ([usize; 4], [usize; 2], Vec<u8>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (shape, window, winner) = ops.state;
        if let Some(node) = node_x {
            let g = Geometry::new(&shape, window);
            let gx = backward(&f32_values(&grad), &winner, &g);
            grads.register::<Flex>(node.id, flex_tensor(gx, shape));
        }
    }
}

impl<C: CheckpointStrategy> MaxPoolKernel for Autodiff<Flex, C> {
    fn window_max_pool2d(x: FloatTensor<Self>, window: [usize; 2]) -> FloatTensor<Self> {
        let guards = [x.node()];
        let x = x.into_primitive();
        let g = Geometry::of(&x, window);
        let (out, winner) = forward(&f32_values(&x), &g);
        let shape = x.layout().shape();
        let in_shape = [shape[0], shape[1], shape[2], shape[3]];
        let y = flex_tensor(out, output_shape(&x, &g));
        match MaxPoolBackward
            .prepare::<C>(guards)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((in_shape, window, winner), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }
}

/// Max pooling of `x [N, C, H, W]` over non-overlapping `window`s (stride equal to the window,
/// no padding, remainder rows and columns dropped). Runs on the Flex backend (check
/// [`crate::device::is_flex`]); windows larger than [`MAX_WINDOW`] elements are refused.
pub fn window_max_pool2d(x: Tensor<4>, window: [usize; 2]) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as MaxPoolKernel>::window_max_pool2d(
        x.into_dispatch(),
        window,
    ))
}
