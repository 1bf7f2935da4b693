//! The trainable MatMul-free LM (`HGRNBit`) as Burn modules.
//!
//! Field names are chosen so that Burn's module paths are exactly the published tensor names
//! (`model.layers.3.attn.f_proj.weight`, `lm_head.norm.weight`, ...): a Burn record saved as
//! safetensors is then a valid Hugging Face checkpoint file, with no renaming step.
//!
//! Every projection is a [`BitLinear`]: the latent `f32` weight is kept for training and
//! quantised to ternary values on every forward pass, with straight-through estimators for the
//! gradients. The MLGRU recurrence `h_t = f_t ⊙ h_{t-1} + c_t` is evaluated for a whole sequence
//! by a log-depth parallel scan ([`linear_scan`]), so training needs `O(log T)` tensor operations
//! per layer rather than `O(T)`.

use burn::module::{Module, Param};
use burn::nn::Embedding;
use burn::tensor::activation::{sigmoid, silu, softmax};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};

use super::config::MmFreeConfig;
use super::weights::{HostTensor, MmFreeWeights, TensorRole};
use crate::error::{Error, Result};

/// Largest activation code: activations are quantised to signed 8 bits per token.
const ACT_LEVELS: f64 = 127.0;

/// Floor of the per-token activation maximum and of the mean absolute weight, as released.
const QUANT_FLOOR: f64 = 1e-5;

/// Root-mean-square normalisation with a learned gain: `x / sqrt(mean(x²) + eps) * weight`.
#[derive(Module, Debug)]
pub struct RmsNorm {
    /// Gain, `[d]`.
    pub weight: Param<Tensor<1>>,
    /// Added to the mean square before the square root.
    #[module(skip)]
    pub eps: f64,
}

impl RmsNorm {
    /// Normalises over the last axis.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let last = D - 1;
        let inv_rms = x
            .clone()
            .square()
            .mean_dim(last)
            .add_scalar(self.eps)
            .sqrt()
            .recip();
        x * inv_rms * self.weight.val().unsqueeze::<D>()
    }
}

/// A ternary-weight projection with its own input RMSNorm (released `FusedBitLinear`).
///
/// Forward: `xn = RmsNorm(x)`, per-token 8-bit activations `x_q = clamp(round(xn·s), -128, 127)`
/// with `s = 127 / max|xn|` (rounding half away from zero), per-tensor ternary weights
/// `W_t = clamp(round(W·s_w), -1, 1)` with `s_w = 1 / mean|W|` (rounding half to even), and
/// `y = (x_q / s) · (W_t / s_w)ᵀ`. Backward: straight-through, i.e. as if `y = xn · Wᵀ`.
#[derive(Module, Debug)]
pub struct BitLinear {
    /// Latent weight, `[out, in]` as PyTorch stores it.
    pub weight: Param<Tensor<2>>,
    /// The input normalisation.
    pub norm: RmsNorm,
}

impl BitLinear {
    /// `[..., in]` → `[..., out]`.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let dims = x.dims();
        let rows: usize = dims[..D - 1].iter().product();
        let y = self.forward_rows(x.reshape([rows, dims[D - 1]]));
        let mut out = dims;
        out[D - 1] = y.dims()[1];
        y.reshape(out)
    }

    /// `[N, in]` → `[N, out]`.
    fn forward_rows(&self, x: Tensor<2>) -> Tensor<2> {
        let xn = self.norm.forward(x);
        let w = self.weight.val();
        // Quantise detached copies: the rounding has no useful derivative, and keeping it out
        // of the autodiff graph saves the graph's bookkeeping. Adding `v - detach(v)` (exactly
        // zero) instead of `v + detach(q - v)` keeps the forward value exactly the quantised one.
        let (x_q, x_scale) = activation_quant(xn.clone().detach());
        let (w_t, w_scale) = weight_quant(w.clone().detach());
        let mut xq = x_q / x_scale;
        let mut wq = w_t / w_scale.unsqueeze::<2>();
        // Without autodiff (inference) the straight-through terms would only cost time.
        if xn.device().is_autodiff() {
            xq = xq + (xn.clone() - xn.detach());
            wq = wq + (w.clone() - w.detach());
        }
        xq.matmul(wq.transpose())
    }
}

/// Per-token 8-bit activation quantisation of `[N, in]`: the integer codes (as floats) and the
/// scale `s = 127 / max(max|x|, 1e-5)`, `[N, 1]`. Rounds half away from zero.
pub fn activation_quant(x: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
    let max = x.clone().max_abs_dim(1).clamp_min(QUANT_FLOOR);
    // A true division, as released: `recip() * 127` can differ in the last bit.
    let scale = max.ones_like().mul_scalar(ACT_LEVELS) / max;
    let v = x * scale.clone();
    // Burn's `round` is half-to-even, the released kernel rounds half away from zero, and
    // `floor` is a slow scalar call on CPU. `trunc(2v) - trunc(v)` is half-away rounding with
    // exact arithmetic (2v is exact; casts truncate toward zero). No clamp to [-128, 127] is
    // needed: |v| <= 127 by construction of the scale, so the codes already lie in [-127, 127].
    let q = v.clone().mul_scalar(2.0).int() - v.int();
    (q.float(), scale)
}

/// Per-tensor ternary weight quantisation: the codes in {-1, 0, 1} (as floats) and the scale
/// `s_w = 1 / max(mean|W|, 1e-5)`, `[1]`. Rounds half to even, as `torch.round`.
pub fn weight_quant(w: Tensor<2>) -> (Tensor<2>, Tensor<1>) {
    let scale = w.clone().abs().mean().clamp_min(QUANT_FLOOR).recip();
    let t = (w * scale.clone().unsqueeze::<2>())
        .round()
        .clamp(-1.0, 1.0);
    (t, scale)
}

/// The MLGRU token mixer (one head, state of width `d`).
#[derive(Module, Debug)]
pub struct Mlgru {
    /// Input (candidate) projection.
    pub i_proj: BitLinear,
    /// Forget-gate projection.
    pub f_proj: BitLinear,
    /// Output-gate projection.
    pub g_proj: BitLinear,
    /// Output projection.
    pub o_proj: BitLinear,
    /// Normalisation of the output gate.
    pub g_norm: RmsNorm,
}

impl Mlgru {
    /// `x: [B, T, d]` → (`[B, T, d]`, last hidden state `[B, d]`). `lower_bound` (`[d]`) raises
    /// the forget gate to `γ + (1 − γ) f`; `h0` is the state before the first token.
    pub fn forward(
        &self,
        x: Tensor<3>,
        lower_bound: Option<Tensor<1>>,
        h0: Option<Tensor<2>>,
    ) -> (Tensor<3>, Tensor<2>) {
        let [b, t, d] = x.dims();
        let mut f = sigmoid(self.f_proj.forward(x.clone()));
        if let Some(gamma) = lower_bound {
            let gamma = gamma.unsqueeze::<3>();
            f = gamma.clone() + (gamma.neg().add_scalar(1.0)) * f;
        }
        let c = silu(self.i_proj.forward(x.clone())) * f.clone().neg().add_scalar(1.0);
        let h = linear_scan(f, c, h0);
        let last = h.clone().narrow(1, t - 1, 1).reshape([b, d]);
        let gate = self.g_norm.forward(self.g_proj.forward(x));
        (self.o_proj.forward(gate * silu(h)), last)
    }
}

/// Solves `h_t = f_t ⊙ h_{t-1} + c_t` over axis 1 of `[B, T, d]` (with `h_{-1} = h0`, or zero),
/// returning every `h_t`.
///
/// A work-efficient parallel scan: adjacent steps are composed pairwise into a sequence half as
/// long, which is solved recursively; its results are the states at odd positions, from which
/// the even ones follow in one step. That is `O(T)` work in `O(log T)` rounds of whole-tensor
/// operations. Only forget gates in (0, 1) are multiplied, so nothing can overflow (unlike a
/// closed form through `exp(Σ log f)`). A per-step loop would instead slice the sequence `T`
/// times, and the backward of each slice writes a gradient as large as the whole sequence.
pub fn linear_scan(f: Tensor<3>, c: Tensor<3>, h0: Option<Tensor<2>>) -> Tensor<3> {
    let t = f.dims()[1];
    let c = match h0 {
        // Fold the carried state into the first step: h_0 = f_0 h0 + c_0.
        Some(h0) => {
            let first = c.clone().narrow(1, 0, 1) + f.clone().narrow(1, 0, 1) * h0.unsqueeze_dim(1);
            if t == 1 {
                first
            } else {
                Tensor::cat(vec![first, c.narrow(1, 1, t - 1)], 1)
            }
        }
        None => c,
    };
    scan_pairs(f, c)
}

/// [`linear_scan`] from a zero state.
fn scan_pairs(a: Tensor<3>, b: Tensor<3>) -> Tensor<3> {
    let [batch, n, d] = a.dims();
    if n == 1 {
        return b;
    }
    let device = a.device();
    // An odd length gets an identity step (a = 1, b = 0) at the end, cut off again below.
    let (a, b, m) = if n % 2 == 1 {
        (
            Tensor::cat(vec![a, Tensor::ones([batch, 1, d], &device)], 1),
            Tensor::cat(vec![b, Tensor::zeros([batch, 1, d], &device)], 1),
            n + 1,
        )
    } else {
        (a, b, n)
    };
    let half = m / 2;
    let a = a.reshape([batch, half, 2, d]);
    let b = b.reshape([batch, half, 2, d]);
    let pick = |t: &Tensor<4>, i: usize| t.clone().narrow(2, i, 1).reshape([batch, half, d]);
    let (a_even, a_odd, b_even, b_odd) = (pick(&a, 0), pick(&a, 1), pick(&b, 0), pick(&b, 1));
    // Step 2j+1 after step 2j: h_{2j+1} = (a_odd a_even) h_{2j-1} + (a_odd b_even + b_odd).
    let h_odd = scan_pairs(
        a_odd.clone() * a_even.clone(),
        a_odd * b_even.clone() + b_odd,
    );
    let before = Tensor::zeros([batch, 1, d], &device);
    let h_prev = if half > 1 {
        Tensor::cat(vec![before, h_odd.clone().narrow(1, 0, half - 1)], 1)
    } else {
        before
    };
    let h_even = a_even * h_prev + b_even;
    let h = Tensor::stack::<4>(vec![h_even, h_odd], 2).reshape([batch, m, d]);
    if m == n {
        h
    } else {
        h.narrow(1, 0, n)
    }
}

/// The GLU channel mixer: `down_proj(SiLU(a) ⊙ b)` with `[a, b] = gate_proj(x)`.
#[derive(Module, Debug)]
pub struct Glu {
    /// `d → 2I`; the first `I` outputs are the gate.
    pub gate_proj: BitLinear,
    /// `I → d`.
    pub down_proj: BitLinear,
}

impl Glu {
    /// `[B, T, d]` → `[B, T, d]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let ab = self.gate_proj.forward(x);
        let i = ab.dims()[2] / 2;
        let a = ab.clone().narrow(2, 0, i);
        let b = ab.narrow(2, i, i);
        self.down_proj.forward(silu(a) * b)
    }
}

/// One HGRNBit block: pre-norm MLGRU and pre-norm GLU, each with a residual connection.
#[derive(Module, Debug)]
pub struct Block {
    /// Norm before the token mixer.
    pub attn_norm: RmsNorm,
    /// The token mixer (named `attn` in the released code).
    pub attn: Mlgru,
    /// Norm before the channel mixer.
    pub mlp_norm: RmsNorm,
    /// The channel mixer.
    pub mlp: Glu,
}

impl Block {
    /// `[B, T, d]` → (`[B, T, d]`, last hidden state `[B, d]`).
    pub fn forward(
        &self,
        x: Tensor<3>,
        lower_bound: Option<Tensor<1>>,
        h0: Option<Tensor<2>>,
    ) -> (Tensor<3>, Tensor<2>) {
        let (mixed, h) = self
            .attn
            .forward(self.attn_norm.forward(x.clone()), lower_bound, h0);
        let s = x + mixed;
        let y = s.clone() + self.mlp.forward(self.mlp_norm.forward(s));
        (y, h)
    }
}

/// Embeddings, blocks and final norm (`model.*` in the published layout).
#[derive(Module, Debug)]
pub struct Backbone {
    /// Token embeddings, `[V, d]`.
    pub embeddings: Embedding,
    /// Per-layer forget-gate lower-bound logits, `[L, d]` (when `use_lower_bound`).
    pub lower_bounds: Option<Param<Tensor<2>>>,
    /// The blocks.
    pub layers: Vec<Block>,
    /// Final normalisation.
    pub norm: RmsNorm,
}

impl Backbone {
    /// `γ_l = cumsum(softmax(lower_bounds))_l − softmax(lower_bounds)_0` for every layer,
    /// `[L, d]`; layer 0's row is zero.
    fn gammas(&self) -> Option<Tensor<2>> {
        self.lower_bounds.as_ref().map(|lb| {
            let p = softmax(lb.val(), 0);
            p.clone().cumsum(0) - p.narrow(0, 0, 1)
        })
    }
}

/// Recurrent state of every layer: the MLGRU hidden state `h`, `[B, d]` per layer.
#[derive(Debug, Clone)]
pub struct MmFreeState {
    /// One `[B, d]` tensor per layer, in layer order.
    pub h: Vec<Tensor<2>>,
}

/// The HGRNBit causal language model (`HGRNBitForCausalLM`).
#[derive(Module, Debug)]
pub struct MmFreeLm {
    /// Embeddings, blocks and final norm.
    pub model: Backbone,
    /// The output projection to vocabulary logits.
    pub lm_head: BitLinear,
    /// The published configuration this model was built from.
    #[module(skip)]
    pub cfg: MmFreeConfig,
}

impl MmFreeLm {
    /// A freshly initialised model as released (matrices normal with std 0.02, norm weights
    /// ones, lower bounds zeros), drawing from the device's random generator.
    ///
    /// # Panics
    /// If `cfg` fails [`MmFreeConfig::validate`]; validate configurations from users first.
    pub fn init(cfg: &MmFreeConfig, device: &Device) -> Self {
        if let Err(e) = cfg.validate() {
            panic!("MmFreeLm::init: {e}");
        }
        Builder {
            cfg,
            device,
            weights: None,
        }
        .build()
        .expect("random initialisation cannot fail")
    }

    /// The model holding `weights`, on `device`.
    pub fn from_weights(weights: &MmFreeWeights, device: &Device) -> Result<Self> {
        weights.config.validate()?;
        Builder {
            cfg: &weights.config,
            device,
            weights: Some(weights),
        }
        .build()
    }

    /// Copies the current weights to host memory, under the published names.
    pub fn to_weights(&self) -> MmFreeWeights {
        let mut tensors = std::collections::BTreeMap::new();
        for (name, data) in self.named_tensors() {
            let shape = data.shape().to_vec();
            let values = data.iter::<f32>().collect();
            tensors.insert(
                name,
                HostTensor {
                    shape,
                    data: values,
                },
            );
        }
        MmFreeWeights {
            config: self.cfg.clone(),
            tensors,
        }
    }

    /// The configuration the model was built from.
    pub fn config(&self) -> &MmFreeConfig {
        &self.cfg
    }

    /// Logits for every position, `[B, T]` → `[B, T, V]` (parallel mode, for training).
    ///
    /// Token ids must be below `vocab_size`.
    pub fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        self.forward_with_state(tokens, None).0
    }

    /// Logits for `[B, T]` tokens that continue from `state` (a fresh sequence when `None`),
    /// and the state after the last token. With `T = 1` this is token-by-token generation;
    /// feeding a sequence in pieces gives the same logits as feeding it whole.
    ///
    /// # Panics
    /// If `state` has a different number of layers, batch size or width than this call.
    pub fn forward_with_state(
        &self,
        tokens: Tensor<2, Int>,
        state: Option<MmFreeState>,
    ) -> (Tensor<3>, MmFreeState) {
        let layers = self.model.layers.len();
        let mut h0: Vec<Option<Tensor<2>>> = match state {
            Some(s) => {
                assert_eq!(
                    s.h.len(),
                    layers,
                    "MmFreeState has {} layers, the model {layers}",
                    s.h.len()
                );
                s.h.into_iter().map(Some).collect()
            }
            None => vec![None; layers],
        };
        let gammas = self.model.gammas();
        let d = self.cfg.hidden_size;
        let mut x = self.model.embeddings.forward(tokens);
        let mut h = Vec::with_capacity(layers);
        for (l, block) in self.model.layers.iter().enumerate() {
            // Layer 0's bound is identically zero; skipping it is the released behaviour.
            let bound = match &gammas {
                Some(g) if l > 0 => Some(g.clone().narrow(0, l, 1).reshape([d])),
                _ => None,
            };
            let (y, last) = block.forward(x, bound, h0[l].take());
            x = y;
            h.push(last);
        }
        let logits = self.lm_head.forward(self.model.norm.forward(x));
        (logits, MmFreeState { h })
    }

    /// Every tensor under its published name.
    fn named_tensors(&self) -> Vec<(String, TensorData)> {
        fn lin(out: &mut Vec<(String, TensorData)>, name: String, b: &BitLinear) {
            out.push((
                format!("{name}.norm.weight"),
                b.norm.weight.val().into_data(),
            ));
            out.push((format!("{name}.weight"), b.weight.val().into_data()));
        }
        let m = &self.model;
        let mut out = vec![(
            "model.embeddings.weight".to_string(),
            m.embeddings.weight.val().into_data(),
        )];
        if let Some(lb) = &m.lower_bounds {
            out.push(("model.lower_bounds".into(), lb.val().into_data()));
        }
        for (i, block) in m.layers.iter().enumerate() {
            let p = format!("model.layers.{i}");
            let norms = [
                ("attn_norm", &block.attn_norm),
                ("attn.g_norm", &block.attn.g_norm),
                ("mlp_norm", &block.mlp_norm),
            ];
            for (name, n) in norms {
                out.push((format!("{p}.{name}.weight"), n.weight.val().into_data()));
            }
            let a = &block.attn;
            lin(&mut out, format!("{p}.attn.i_proj"), &a.i_proj);
            lin(&mut out, format!("{p}.attn.f_proj"), &a.f_proj);
            lin(&mut out, format!("{p}.attn.g_proj"), &a.g_proj);
            lin(&mut out, format!("{p}.attn.o_proj"), &a.o_proj);
            lin(&mut out, format!("{p}.mlp.gate_proj"), &block.mlp.gate_proj);
            lin(&mut out, format!("{p}.mlp.down_proj"), &block.mlp.down_proj);
        }
        out.push(("model.norm.weight".into(), m.norm.weight.val().into_data()));
        lin(&mut out, "lm_head".into(), &self.lm_head);
        out
    }
}

/// Builds the modules from released-style random values or from host weights, one tensor at a
/// time, under the published names.
struct Builder<'a> {
    cfg: &'a MmFreeConfig,
    device: &'a Device,
    weights: Option<&'a MmFreeWeights>,
}

impl Builder<'_> {
    fn build(&self) -> Result<MmFreeLm> {
        let cfg = self.cfg;
        let (v, d, l, i) = (
            cfg.vocab_size,
            cfg.hidden_size,
            cfg.num_hidden_layers,
            cfg.intermediate(),
        );
        let embeddings = Embedding {
            weight: self.param("model.embeddings.weight", [v, d], TensorRole::Matrix)?,
        };
        let lower_bounds = if cfg.use_lower_bound {
            Some(self.param("model.lower_bounds", [l, d], TensorRole::LowerBounds)?)
        } else {
            None
        };
        let mut layers = Vec::with_capacity(l);
        for layer in 0..l {
            let p = format!("model.layers.{layer}");
            layers.push(Block {
                attn_norm: self.norm(&format!("{p}.attn_norm"), d)?,
                attn: Mlgru {
                    i_proj: self.bitlinear(&format!("{p}.attn.i_proj"), d, d)?,
                    f_proj: self.bitlinear(&format!("{p}.attn.f_proj"), d, d)?,
                    g_proj: self.bitlinear(&format!("{p}.attn.g_proj"), d, d)?,
                    o_proj: self.bitlinear(&format!("{p}.attn.o_proj"), d, d)?,
                    g_norm: self.norm(&format!("{p}.attn.g_norm"), d)?,
                },
                mlp_norm: self.norm(&format!("{p}.mlp_norm"), d)?,
                mlp: Glu {
                    gate_proj: self.bitlinear(&format!("{p}.mlp.gate_proj"), 2 * i, d)?,
                    down_proj: self.bitlinear(&format!("{p}.mlp.down_proj"), d, i)?,
                },
            });
        }
        Ok(MmFreeLm {
            model: Backbone {
                embeddings,
                lower_bounds,
                layers,
                norm: self.norm("model.norm", d)?,
            },
            lm_head: self.bitlinear("lm_head", v, d)?,
            cfg: cfg.clone(),
        })
    }

    fn norm(&self, prefix: &str, dim: usize) -> Result<RmsNorm> {
        Ok(RmsNorm {
            weight: self.param(&format!("{prefix}.weight"), [dim], TensorRole::NormWeight)?,
            eps: self.cfg.rms_norm_eps,
        })
    }

    fn bitlinear(&self, prefix: &str, out: usize, inp: usize) -> Result<BitLinear> {
        Ok(BitLinear {
            weight: self.param(&format!("{prefix}.weight"), [out, inp], TensorRole::Matrix)?,
            norm: self.norm(&format!("{prefix}.norm"), inp)?,
        })
    }

    fn param<const D: usize>(
        &self,
        name: &str,
        shape: [usize; D],
        role: TensorRole,
    ) -> Result<Param<Tensor<D>>> {
        let tensor = match self.weights {
            Some(w) => {
                let host = w.get(name)?;
                if host.shape != shape {
                    return Err(Error::Shape {
                        what: format!("tensor {name}"),
                        expected: format!("{shape:?}"),
                        got: format!("{:?}", host.shape),
                    });
                }
                Tensor::from_data(TensorData::new(host.data.clone(), shape), self.device)
            }
            None => match role {
                TensorRole::Matrix => {
                    Tensor::random(shape, Distribution::Normal(0.0, 0.02), self.device)
                }
                TensorRole::NormWeight => Tensor::ones(shape, self.device),
                TensorRole::LowerBounds => Tensor::zeros(shape, self.device),
            },
        };
        Ok(Param::from_tensor(tensor))
    }
}
