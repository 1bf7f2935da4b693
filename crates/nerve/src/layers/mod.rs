//! Layers over time: stateless layers fold `[T, B, ...]` into one batch `[T·B, ...]` and run
//! once, instead of once per time step, so each is a single large GEMM or convolution.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::PaddingConfig2d;
use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::module::{conv2d, linear};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor};

mod min_latency_pool;
mod weight_quant;

pub use min_latency_pool::{MinLatencyPool2d, PooledSpikes};
pub use weight_quant::WeightQuantizer;

use crate::kernels::max_pool::{window_max_pool2d, MAX_WINDOW};
use crate::kernels::spike_conv::{spike_conv2d, SpikeConvMode};
use crate::kernels::spike_linear::{spike_linear, SpikeLinearMode};
use crate::quant::WeightQuantConfig;

/// Merges the time and batch axes: `[T, B, ...]` → `[T·B, ...]`.
pub fn fold<const D: usize, const F: usize>(x: Tensor<D>) -> Tensor<F> {
    x.flatten(0, 1)
}

/// Splits the leading axis back into time and batch: `[T·B, ...]` → `[T, B, ...]`.
pub fn unfold<const F: usize, const D: usize>(x: Tensor<F>, steps: usize) -> Tensor<D> {
    let dims = x.dims();
    let mut shape = [0usize; D];
    shape[0] = steps;
    shape[1] = dims[0] / steps;
    shape[2..].copy_from_slice(&dims[1..]);
    x.reshape(shape)
}

/// Flattens every axis after time and batch: `[T, B, C, H, W]` → `[T, B, C·H·W]`.
pub fn flatten_features(x: Tensor<5>) -> Tensor<3> {
    x.flatten(2, 4)
}

/// A layer's bias, or zeros of length `n` on the weights' device for a layer built without one
/// (the kernels always take a bias).
fn bias_or_zeros<const D: usize>(
    bias: Option<&burn::module::Param<Tensor<1>>>,
    n: usize,
    weight: &Tensor<D>,
) -> Tensor<1> {
    bias.map_or_else(|| Tensor::zeros([n], &weight.device()), |b| b.val())
}

/// A 2-D convolution applied to every time step at once.
#[derive(Module, Debug)]
pub struct TimeConv2d {
    /// The convolution.
    pub conv: Conv2d,
    /// Fake-quantization of the kernel (output channels along axis 0).
    pub quant: WeightQuantizer,
}

impl TimeConv2d {
    /// `in_channels → out_channels` with a square `kernel`, stride 1, no padding.
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize, device: &Device) -> Self {
        Self {
            conv: Conv2dConfig::new([in_channels, out_channels], [kernel, kernel]).init(device),
            quant: WeightQuantizer::none(),
        }
    }

    /// Fake-quantizes the kernel from now on (a learned scale starts from the current kernel).
    pub fn quantized(mut self, config: Option<WeightQuantConfig>) -> Self {
        self.quant = WeightQuantizer::new(config, || self.conv.weight.val(), 0);
        self
    }

    /// The kernel the convolution computes with (fake-quantized when asked).
    pub fn weight(&self) -> Tensor<4> {
        self.quant.apply(self.conv.weight.val(), 0)
    }

    /// `[T, B, C, H, W]` → `[T, B, C', H', W']`. On the Flex CPU backend, sparse inputs (spike
    /// maps) take the event-driven kernel ([`crate::kernels::spike_conv`]) when the convolution
    /// has stride 1, no dilation, one group and symmetric padding.
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        let steps = x.dims()[0];
        let folded = fold::<5, 4>(x);
        match self.kernel_padding(&folded) {
            Some(padding) => {
                let weight = self.weight();
                let bias = bias_or_zeros(self.conv.bias.as_ref(), weight.dims()[0], &weight);
                unfold(
                    spike_conv2d(folded, weight, bias, padding, SpikeConvMode::Auto),
                    steps,
                )
            }
            None if self.quant.config.is_none() => unfold(self.conv.forward(folded), steps),
            None => unfold(self.dense(folded), steps),
        }
    }

    /// The `(before, after)` padding of rows and columns for an `h × w` input, as
    /// `Conv2d::forward` pads (Burn keeps that rule private; this is the same, ONNX `SAME_UPPER`).
    pub fn padding_pairs(&self, h: usize, w: usize) -> [(usize, usize); 2] {
        let c = &self.conv;
        let same = |k: usize, stride: usize, size: usize| {
            let total = (size.div_ceil(stride).saturating_sub(1) * stride + k).saturating_sub(size);
            (total / 2, total - total / 2)
        };
        match c.padding {
            PaddingConfig2d::Valid => [(0, 0), (0, 0)],
            PaddingConfig2d::Same => [
                same(c.kernel_size[0], c.stride[0], h),
                same(c.kernel_size[1], c.stride[1], w),
            ],
            PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
        }
    }

    /// Burn's convolution with this layer's (quantized) kernel, as `Conv2d::forward` pads.
    fn dense(&self, x: Tensor<4>) -> Tensor<4> {
        let c = &self.conv;
        let [_, _, h, w] = x.dims();
        let padding = self.padding_pairs(h, w);
        let options = ConvOptions::new_with_padding(c.stride, padding, c.dilation, c.groups);
        conv2d(x, self.weight(), c.bias.as_ref().map(|b| b.val()), options)
    }

    /// The padding to run the event-driven kernel with, or `None` where it does not apply.
    fn kernel_padding(&self, x: &Tensor<4>) -> Option<[usize; 2]> {
        let c = &self.conv;
        if !(crate::kernels::enabled() && crate::device::is_flex(&x.device()))
            || c.stride != [1, 1]
            || c.dilation != [1, 1]
            || c.groups != 1
        {
            return None;
        }
        // `Same` padding with stride 1 is symmetric only for odd kernels; the dense path keeps
        // Burn's own rule for the rest.
        let [kh, kw] = c.kernel_size;
        match c.padding {
            PaddingConfig2d::Valid => Some([0, 0]),
            PaddingConfig2d::Same if kh % 2 == 1 && kw % 2 == 1 => Some([kh / 2, kw / 2]),
            PaddingConfig2d::Explicit(top, left, bottom, right)
                if top == bottom && left == right =>
            {
                Some([top, left])
            }
            _ => None,
        }
    }
}

/// Max pooling applied to every time step at once.
#[derive(Module, Debug)]
pub struct TimeMaxPool2d {
    /// The pooling layer.
    pub pool: MaxPool2d,
}

impl TimeMaxPool2d {
    /// Square window `size` with stride `size`.
    pub fn new(size: usize) -> Self {
        Self {
            pool: MaxPool2dConfig::new([size, size]).init(),
        }
    }

    /// `[T, B, C, H, W]` → `[T, B, C, H/size, W/size]`. On the Flex CPU backend,
    /// non-overlapping windows without padding take [`crate::kernels::max_pool`].
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        let steps = x.dims()[0];
        let folded = fold::<5, 4>(x);
        let p = &self.pool;
        let [kh, kw] = p.kernel_size;
        let kernel = crate::kernels::enabled()
            && crate::device::is_flex(&folded.device())
            && p.stride == p.kernel_size
            && p.dilation == [1, 1]
            && !p.ceil_mode
            && p.padding == PaddingConfig2d::Valid
            && kh * kw <= MAX_WINDOW;
        if kernel {
            unfold(window_max_pool2d(folded, p.kernel_size), steps)
        } else {
            unfold(p.forward(folded), steps)
        }
    }
}

/// Average pooling applied to every time step at once.
#[derive(Module, Debug)]
pub struct TimeAvgPool2d {
    /// The pooling layer.
    pub pool: AvgPool2d,
}

impl TimeAvgPool2d {
    /// Square window `size` with stride `size`.
    pub fn new(size: usize) -> Self {
        Self {
            pool: AvgPool2dConfig::new([size, size]).init(),
        }
    }

    /// `[T, B, C, H, W]` → `[T, B, C, H/size, W/size]`.
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        let steps = x.dims()[0];
        unfold(self.pool.forward(fold(x)), steps)
    }
}

/// A fully connected layer applied to every time step as one `[T·B, in] × [in, out]` GEMM.
#[derive(Module, Debug)]
pub struct TimeLinear {
    /// The linear layer.
    pub linear: Linear,
    /// Fake-quantization of the weights (`[in, out]`, output channels along axis 1).
    pub quant: WeightQuantizer,
}

impl TimeLinear {
    /// `inputs → outputs` with bias.
    pub fn new(inputs: usize, outputs: usize, device: &Device) -> Self {
        Self {
            linear: LinearConfig::new(inputs, outputs).init(device),
            quant: WeightQuantizer::none(),
        }
    }

    /// Fake-quantizes the weights from now on (a learned scale starts from the current weights).
    pub fn quantized(mut self, config: Option<WeightQuantConfig>) -> Self {
        self.quant = WeightQuantizer::new(config, || self.linear.weight.val(), 1);
        self
    }

    /// The weights `[in, out]` the layer computes with (fake-quantized when asked).
    pub fn weight(&self) -> Tensor<2> {
        self.quant.apply(self.linear.weight.val(), 1)
    }

    /// `[T, B, in]` → `[T, B, out]`. On the Flex CPU backend, spike inputs (mostly zeros) take
    /// the event-driven kernel ([`crate::kernels::spike_linear`]), dense inputs one GEMM.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let steps = x.dims()[0];
        let folded = fold::<3, 2>(x);
        if !(crate::kernels::enabled() && crate::device::is_flex(&folded.device())) {
            let bias = self.linear.bias.as_ref().map(|b| b.val());
            return unfold(linear(folded, self.weight(), bias), steps);
        }
        let weight = self.weight();
        let bias = bias_or_zeros(self.linear.bias.as_ref(), weight.dims()[1], &weight);
        unfold(
            spike_linear(folded, weight, bias, SpikeLinearMode::Auto),
            steps,
        )
    }
}

/// Dropout with an independent mask per time step (as `nn.Dropout` inside an snnTorch loop).
#[derive(Module, Debug)]
pub struct TimeDropout {
    /// The dropout layer.
    pub dropout: Dropout,
}

impl TimeDropout {
    /// Drops each activation with probability `prob` while training.
    pub fn new(prob: f64) -> Self {
        Self {
            dropout: DropoutConfig::new(prob).init(),
        }
    }

    /// Any `[T, B, ...]`.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        self.dropout.forward(x)
    }
}

/// Batch normalisation shared by every time step: one set of affine parameters and running
/// statistics, as a PyTorch `BatchNorm2d` called at every step of an snnTorch loop (the QSNN
/// networks). In training the batch statistics are taken over all steps at once (torch takes
/// them per call, i.e. per step); inference with the running statistics is the same.
#[derive(Module, Debug)]
pub struct TimeBatchNorm2d {
    /// The batch norm over the folded `[T·B, C, H, W]` input.
    pub norm: BatchNorm,
}

impl TimeBatchNorm2d {
    /// `channels` features.
    pub fn new(channels: usize, device: &Device) -> Self {
        Self {
            norm: BatchNormConfig::new(channels).init(device),
        }
    }

    /// `[T, B, C, H, W]`, any `T`.
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        let steps = x.dims()[0];
        unfold(self.norm.forward(fold::<5, 4>(x)), steps)
    }
}

/// Batch normalisation through time (BNTT, Kim & Panda 2021; snnTorch `BatchNormTT2d`):
/// one set of statistics and affine parameters per time step.
#[derive(Module, Debug)]
pub struct BatchNormTT2d {
    /// One batch norm per time step.
    pub steps: Vec<BatchNorm>,
}

impl BatchNormTT2d {
    /// `channels` features, `steps` time steps.
    pub fn new(channels: usize, steps: usize, device: &Device) -> Self {
        Self {
            steps: (0..steps)
                .map(|_| BatchNormConfig::new(channels).init(device))
                .collect(),
        }
    }

    /// `[T, B, C, H, W]` with `T` equal to the number of steps it was built for.
    pub fn forward(&self, x: Tensor<5>) -> crate::Result<Tensor<5>> {
        let t = x.dims()[0];
        if t != self.steps.len() {
            return Err(crate::Error::Shape {
                what: "BatchNormTT2d input time axis".into(),
                expected: self.steps.len().to_string(),
                got: t.to_string(),
            });
        }
        let out = self
            .steps
            .iter()
            .enumerate()
            .map(|(i, bn)| {
                bn.forward(x.clone().narrow(0, i, 1).squeeze_dim::<4>(0))
                    .unsqueeze_dim::<5>(0)
            })
            .collect();
        Ok(Tensor::cat(out, 0))
    }
}
