//! A layer's weight quantizer: the options of [`crate::quant::weight`] and, for a learned
//! scale, the trained scale itself.

use burn::module::{Module, Param};
use burn::tensor::Tensor;

use crate::quant::{fake_quantize, grid_integers, weight_scale, ScaleRule, WeightQuantConfig};

/// What a layer does to its weights before using them: nothing, or fake-quantization.
#[derive(Module, Debug)]
pub struct WeightQuantizer {
    /// The learned scale (`[1]`, or one per output channel), when the scale is learned.
    pub scale: Option<Param<Tensor<1>>>,
    /// The quantization, or `None` for float weights.
    #[module(skip)]
    pub config: Option<WeightQuantConfig>,
}

impl WeightQuantizer {
    /// Float weights, left as they are.
    pub fn none() -> Self {
        Self {
            scale: None,
            config: None,
        }
    }

    /// A quantizer for the weights `weight()` gives, whose output channels lie along
    /// `channel_axis`; a learned scale starts where the weights put it. `weight` is called only
    /// for a learned scale: reading a lazily initialised parameter draws its values, and an
    /// earlier draw would change every later one (and so a seeded run's initial weights).
    pub fn new<const D: usize>(
        config: Option<WeightQuantConfig>,
        weight: impl FnOnce() -> Tensor<D>,
        channel_axis: usize,
    ) -> Self {
        let scale = config.filter(|c| c.scale == ScaleRule::Learned).map(|c| {
            let weight = weight();
            let s = weight_scale(&c, weight.clone().detach(), channel_axis);
            // A fresh leaf tensor: a parameter cannot be the result of other operations.
            let values = s.flatten::<1>(0, D - 1).into_data();
            Param::from_tensor(Tensor::from_data(values, &weight.device()))
        });
        Self { scale, config }
    }

    /// The weights the layer computes with.
    pub fn apply<const D: usize>(&self, weight: Tensor<D>, channel_axis: usize) -> Tensor<D> {
        let Some(config) = &self.config else {
            return weight;
        };
        fake_quantize(
            config,
            weight,
            channel_axis,
            self.learned_scale(channel_axis),
        )
    }

    /// The weights as integers on this layer's grid (on `fallback` for a float layer) and the
    /// scale they multiply: what an integer program of the layer computes with.
    pub fn grid<const D: usize>(
        &self,
        weight: Tensor<D>,
        channel_axis: usize,
        fallback: &WeightQuantConfig,
    ) -> (Tensor<D>, Tensor<D>) {
        let config = self.config.as_ref().unwrap_or(fallback);
        grid_integers(
            config,
            weight,
            channel_axis,
            self.learned_scale(channel_axis),
        )
    }

    /// The learned scale shaped to broadcast against rank-`D` weights.
    fn learned_scale<const D: usize>(&self, channel_axis: usize) -> Option<Tensor<D>> {
        self.scale.as_ref().map(|s| {
            let s = s.val();
            let mut shape = [1usize; D];
            if s.dims()[0] > 1 {
                shape[channel_axis] = s.dims()[0];
            }
            s.reshape(shape)
        })
    }
}
