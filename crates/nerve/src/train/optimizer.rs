//! The optimiser choice shared by the image trainer and the language-model trainer.

use burn::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamConfig, AdamWConfig, ModuleOptimizer, SgdConfig};

use crate::error::{Error, Result};

/// The optimiser.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OptimizerKind {
    /// Adam (snnTorch tutorials: lr 1e-2, betas 0.9/0.999).
    Adam,
    /// AdamW with decoupled weight decay.
    AdamW {
        /// Weight decay.
        weight_decay: f64,
    },
    /// SGD with momentum.
    Sgd {
        /// Momentum (0 for plain SGD).
        momentum: f64,
    },
}

/// PyTorch's default ε for Adam and AdamW (and so snnTorch's tutorials').
const TORCH_ADAM_EPSILON: f32 = 1e-8;

impl OptimizerKind {
    /// Parses `adam`, `adamw[:WD]`, `sgd[:MOMENTUM]`.
    pub fn parse(s: &str) -> Result<Self> {
        let (name, arg) = s.split_once(':').map_or((s, None), |(a, b)| (a, Some(b)));
        let num = |d: f64| -> Result<f64> {
            arg.map_or(Ok(d), |a| {
                a.parse().map_err(|_| {
                    Error::invalid("optimizer", format!("'{s}': '{a}' is not a number"))
                })
            })
        };
        match name {
            "adam" => Ok(OptimizerKind::Adam),
            "adamw" => Ok(OptimizerKind::AdamW {
                weight_decay: num(1e-2)?,
            }),
            "sgd" => Ok(OptimizerKind::Sgd {
                momentum: num(0.9)?,
            }),
            _ => Err(Error::invalid(
                "optimizer",
                format!("'{s}': expected adam, adamw[:WD] or sgd[:MOMENTUM]"),
            )),
        }
    }

    /// Builds the optimiser, with gradient-norm clipping when `clip` is set.
    ///
    /// Adam and AdamW use PyTorch's ε = 1e-8, not Burn's default 1e-5: surrogate gradients of
    /// a quiet network are tiny (a fast sigmoid of slope 25 gives 1/676 per layer a unit below
    /// threshold), and with ε = 1e-5 the snnTorch tutorial conv SNN with that surrogate never
    /// leaves its silent start, where with PyTorch's ε it learns in a few batches.
    pub fn init(&self, clip: Option<f64>) -> ModuleOptimizer {
        let clip = clip.map(|c| GradientClippingConfig::Norm(c as f32));
        match *self {
            OptimizerKind::Adam => AdamConfig::new()
                .with_epsilon(TORCH_ADAM_EPSILON)
                .with_grad_clipping(clip)
                .init(),
            OptimizerKind::AdamW { weight_decay } => AdamWConfig::new()
                .with_epsilon(TORCH_ADAM_EPSILON)
                .with_weight_decay(weight_decay as f32)
                .with_grad_clipping(clip)
                .init(),
            OptimizerKind::Sgd { momentum } => {
                let m = (momentum > 0.0)
                    .then(|| burn::optim::momentum::MomentumConfig::new().with_momentum(momentum));
                SgdConfig::new()
                    .with_momentum(m)
                    .with_gradient_clipping(clip)
                    .init()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::{Module, Param};
    use burn::optim::GradientsParams;
    use burn::tensor::{Device, Tensor, TensorData};

    #[derive(Module, Debug)]
    struct One {
        w: Param<Tensor<1>>,
    }

    /// Adam's first step moves a parameter by about the learning rate whatever the gradient's
    /// scale, as in PyTorch; with Burn's default ε = 1e-5 a gradient of 1e-7 would move it by
    /// 1% of that.
    #[test]
    fn adam_steps_as_pytorch_on_tiny_gradients() {
        let device = Device::flex().autodiff();
        for kind in [
            OptimizerKind::Adam,
            OptimizerKind::AdamW { weight_decay: 0.0 },
        ] {
            let model = One {
                w: Param::from_tensor(Tensor::from_data(
                    TensorData::new(vec![0.0f32], [1]),
                    &device,
                )),
            };
            let loss = model.w.val().mul_scalar(1e-7).sum();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            let model = kind.init(None).step(0.01, model, grads);
            let moved = model.w.val().into_scalar::<f32>().abs();
            assert!((0.009..0.0101).contains(&moved), "{kind:?} moved {moved}");
        }
    }
}
