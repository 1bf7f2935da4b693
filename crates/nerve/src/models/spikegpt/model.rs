//! The SpikeGPT network: binary embedding, spiking RWKV blocks, LayerNorm and head.

use burn::module::{Module, Param};
use burn::nn::{Embedding, EmbeddingConfig};
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};

use super::config::SpikeGptConfig;
use super::layers::{orthogonal, LayerNorm, LinearNoBias};
use super::lif::{heaviside_atan, Lif};
use super::wkv::{wkv_parallel, wkv_recurrent, wkv_step, WkvState};

/// SRWKV token mixer (RWKV-4 time mix): `W_o(σ(W_r x_r) ⊙ wkv(W_k x_k, W_v x_v))`.
#[derive(Module, Debug)]
pub struct TimeMix {
    /// Per-channel decay parameter; the WKV uses `w = −exp(time_decay)`.
    pub time_decay: Param<Tensor<1>>,
    /// Per-channel bonus `u` of the current token.
    pub time_first: Param<Tensor<1>>,
    /// Token-shift mix of the key input, `[d]` (PyTorch `[1, 1, d]`).
    pub time_mix_k: Param<Tensor<1>>,
    /// Token-shift mix of the value input.
    pub time_mix_v: Param<Tensor<1>>,
    /// Token-shift mix of the receptance input.
    pub time_mix_r: Param<Tensor<1>>,
    /// `W_k`, `[d, d]`.
    pub key: LinearNoBias,
    /// `W_v`, `[d, d]`.
    pub value: LinearNoBias,
    /// `W_r`, `[d, d]`.
    pub receptance: LinearNoBias,
    /// `W_o`, `[d, d]`.
    pub output: LinearNoBias,
    /// How the parallel forward computes the WKV: 0 for the token loop, `C` for chunks of `C`.
    #[module(skip)]
    pub wkv_chunk: usize,
}

/// SRFFN channel mixer (RWKV-4 channel mix): `σ(W_r x_r) ⊙ W_v(ReLU(W_k x_k)²)`.
#[derive(Module, Debug)]
pub struct ChannelMix {
    /// Token-shift mix of the key input, `[d]`.
    pub time_mix_k: Param<Tensor<1>>,
    /// Token-shift mix of the receptance input, `[d]`.
    pub time_mix_r: Param<Tensor<1>>,
    /// `W_k`, `[hidden, d]`.
    pub key: LinearNoBias,
    /// `W_r`, `[d, d]`.
    pub receptance: LinearNoBias,
    /// `W_v`, `[d, hidden]`.
    pub value: LinearNoBias,
}

/// One block: `x += LIF(TimeMix(LN₁ x))`, `x += LIF(ChannelMix(LN₂ x))`, with LN₀ first in
/// block 0.
#[derive(Module, Debug)]
pub struct Block {
    /// LayerNorm applied to the block input (block 0 only).
    pub ln0: Option<LayerNorm>,
    /// LayerNorm in front of the token mixer.
    pub ln1: LayerNorm,
    /// LayerNorm in front of the channel mixer.
    pub ln2: LayerNorm,
    /// Token mixer.
    pub att: TimeMix,
    /// Channel mixer.
    pub ffn: ChannelMix,
    /// The LIF neuron after each mixer.
    #[module(skip)]
    pub lif: Lif,
    /// Dropout probability after the block while training.
    #[module(skip)]
    pub dropout: f64,
}

/// SpikeGPT (Zhu et al. 2023), a spiking RWKV-4 language model, after the released
/// `src/model.py`.
///
/// Parameter paths match the released checkpoint names (`emb.weight`, `blocks.0.ln0.weight`,
/// `blocks.0.att.time_decay`, `blocks.0.att.key.weight`, `blocks.0.ffn.receptance.weight`,
/// `ln_out.weight`, `head.weight`, ...), and every linear weight is stored `[out, in]` as in
/// PyTorch.
#[derive(Module, Debug)]
pub struct SpikeGpt {
    /// Token embedding `[V, d]`; its Heaviside is the model's binary input.
    pub emb: Embedding,
    /// The blocks.
    pub blocks: Vec<Block>,
    /// Final LayerNorm.
    pub ln_out: LayerNorm,
    /// Output projection `[V, d]`, no bias.
    pub head: LinearNoBias,
    /// The configuration the model was built from.
    #[module(skip)]
    pub config: SpikeGptConfig,
}

/// Recurrent state of one block, each tensor `[B, d]`.
#[derive(Debug, Clone)]
pub struct BlockState {
    /// LN₁ output at the previous token (token shift of the token mixer).
    pub att_prev: Tensor<2>,
    /// LN₂ output at the previous token (token shift of the channel mixer).
    pub ffn_prev: Tensor<2>,
    /// RWKV's `(aa, bb, pp)`.
    pub wkv: WkvState,
    /// Membrane of the LIF after the token mixer.
    pub v_att: Tensor<2>,
    /// Membrane of the LIF after the channel mixer.
    pub v_ffn: Tensor<2>,
}

impl BlockState {
    /// The state before the first token.
    pub fn zeros(batch: usize, d: usize, device: &Device) -> Self {
        Self {
            att_prev: Tensor::zeros([batch, d], device),
            ffn_prev: Tensor::zeros([batch, d], device),
            wkv: WkvState::zeros(batch, d, device),
            v_att: Tensor::zeros([batch, d], device),
            v_ffn: Tensor::zeros([batch, d], device),
        }
    }
}

/// Recurrent state of the whole model: one [`BlockState`] per block.
#[derive(Debug, Clone)]
pub struct SpikeGptState {
    /// Per block, in order.
    pub blocks: Vec<BlockState>,
}

impl SpikeGptState {
    /// The state before the first token for a batch of `batch` sequences.
    pub fn zeros(config: &SpikeGptConfig, batch: usize, device: &Device) -> Self {
        Self {
            blocks: (0..config.n_layer)
                .map(|_| BlockState::zeros(batch, config.n_embd, device))
                .collect(),
        }
    }

    /// The same state cut from the autodiff graph (truncated backpropagation through time).
    pub fn detach(self) -> Self {
        Self {
            blocks: self
                .blocks
                .into_iter()
                .map(|b| BlockState {
                    att_prev: b.att_prev.detach(),
                    ffn_prev: b.ffn_prev.detach(),
                    wkv: WkvState {
                        aa: b.wkv.aa.detach(),
                        bb: b.wkv.bb.detach(),
                        pp: b.wkv.pp.detach(),
                    },
                    v_att: b.v_att.detach(),
                    v_ffn: b.v_ffn.detach(),
                })
                .collect(),
        }
    }

    /// Batch size the state was made for.
    pub fn batch_size(&self) -> usize {
        self.blocks.first().map_or(0, |b| b.att_prev.dims()[0])
    }
}

/// What the parallel forward can return besides the logits: every LIF's spikes.
#[derive(Debug, Clone)]
pub struct SpikeGptTrace {
    /// Logits `[B, T, V]`.
    pub logits: Tensor<3>,
    /// Spikes `[B, T, d]` of every LIF, two per block (after the token mixer, then after the
    /// channel mixer).
    pub spikes: Vec<Tensor<3>>,
}

/// The previous-token inputs `[B, T, d]`: `prev` (zeros when `None`) then `x` without its last
/// token.
fn token_shift(x: &Tensor<3>, prev: Option<Tensor<2>>) -> Tensor<3> {
    let [b, t, d] = x.dims();
    let first = match prev {
        Some(p) => p.unsqueeze_dim::<3>(1),
        None => Tensor::zeros([b, 1, d], &x.device()),
    };
    if t == 1 {
        first
    } else {
        Tensor::cat(vec![first, x.clone().narrow(1, 0, t - 1)], 1)
    }
}

/// `x·μ + xx·(1 − μ)` with `μ[d]`.
fn mix(x: &Tensor<3>, xx: &Tensor<3>, mu: &Param<Tensor<1>>) -> Tensor<3> {
    let mu = mu.val().unsqueeze::<3>();
    x.clone() * mu.clone() + xx.clone() * (mu.neg() + 1.0)
}

/// The released code's fancy init of a token-shift mix: `(i/d)^power`.
fn ramp(d: usize, power: f64, offset: f64, device: &Device) -> Param<Tensor<1>> {
    let v: Vec<f32> = (0..d)
        .map(|i| ((i as f64 / d as f64).powf(power) + offset) as f32)
        .collect();
    Param::from_tensor(Tensor::from_data(TensorData::new(v, [d]), device))
}

impl TimeMix {
    /// RWKV-4 initialisation for block `layer` of `n_layer`, as in the released code.
    fn init(config: &SpikeGptConfig, layer: usize, device: &Device) -> Self {
        let d = config.n_embd;
        // The released code divides by n_layer − 1; a one-block model takes ratio 0.
        let ratio_0_to_1 = if config.n_layer > 1 {
            layer as f64 / (config.n_layer - 1) as f64
        } else {
            0.0
        };
        let ratio_1_to_almost0 = 1.0 - layer as f64 / config.n_layer as f64;
        let decay: Vec<f32> = (0..d)
            .map(|h| {
                let x = if d > 1 {
                    h as f64 / (d - 1) as f64
                } else {
                    0.0
                };
                (-5.0 + 8.0 * x.powf(0.7 + 1.3 * ratio_0_to_1)) as f32
            })
            .collect();
        let first: Vec<f32> = (0..d)
            .map(|i| (0.3f64.ln() + (((i + 1) % 3) as f64 - 1.0) * 0.5) as f32)
            .collect();
        let vec =
            |v: Vec<f32>| Param::from_tensor(Tensor::from_data(TensorData::new(v, [d]), device));
        Self {
            time_decay: vec(decay),
            time_first: vec(first),
            time_mix_k: ramp(d, ratio_1_to_almost0, 0.0, device),
            time_mix_v: ramp(d, ratio_1_to_almost0, 0.3 * ratio_0_to_1, device),
            time_mix_r: ramp(d, 0.5 * ratio_1_to_almost0, 0.0, device),
            // RWKV_Init: key, receptance and output have scale_init = 0 (zeros); value is
            // orthogonal with gain 1.
            key: LinearNoBias::zeros(d, d, device),
            value: LinearNoBias::orthogonal(d, d, 1.0, device),
            receptance: LinearNoBias::zeros(d, d, device),
            output: LinearNoBias::zeros(d, d, device),
            wkv_chunk: config.wkv_chunk,
        }
    }

    /// `w = −exp(time_decay)`.
    fn w(&self) -> Tensor<1> {
        self.time_decay.val().exp().neg()
    }

    /// `σ(r)`, `k`, `v` for the inputs `x[B, T, d]` whose previous token is `prev`.
    fn rkv(&self, x: &Tensor<3>, prev: Option<Tensor<2>>) -> (Tensor<3>, Tensor<3>, Tensor<3>) {
        let xx = token_shift(x, prev);
        let k = self.key.forward(mix(x, &xx, &self.time_mix_k));
        let v = self.value.forward(mix(x, &xx, &self.time_mix_v));
        let r = self.receptance.forward(mix(x, &xx, &self.time_mix_r));
        (sigmoid(r), k, v)
    }

    /// Parallel form over a whole sequence from a zero state.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let (sr, k, v) = self.rkv(&x, None);
        let (w, u) = (self.w(), self.time_first.val());
        let wkv = match self.wkv_chunk {
            0 => wkv_recurrent(w, u, k, v, None).0,
            chunk => wkv_parallel(w, u, k, v, chunk),
        };
        self.output.forward(sr * wkv)
    }

    /// One token `x[B, 1, d]` with the previous token's input `prev[B, d]` and the WKV state.
    pub fn step(&self, x: Tensor<3>, prev: Tensor<2>, state: WkvState) -> (Tensor<3>, WkvState) {
        let [b, _, d] = x.dims();
        let (sr, k, v) = self.rkv(&x, Some(prev));
        let (wkv, state) = wkv_step(
            self.w(),
            self.time_first.val(),
            k.reshape([b, d]),
            v.reshape([b, d]),
            state,
        );
        (self.output.forward(sr * wkv.unsqueeze_dim::<3>(1)), state)
    }
}

impl ChannelMix {
    /// RWKV-4 initialisation for block `layer` of `n_layer`, as in the released code.
    fn init(config: &SpikeGptConfig, layer: usize, device: &Device) -> Self {
        let d = config.n_embd;
        let hidden = config.ffn_hidden();
        let ratio_1_to_almost0 = 1.0 - layer as f64 / config.n_layer as f64;
        // RWKV_Init: a linear with more outputs than inputs gets gain sqrt(out/in); value and
        // receptance have scale_init = 0.
        let key_gain = if hidden > d {
            (hidden as f64 / d as f64).sqrt()
        } else {
            1.0
        };
        Self {
            time_mix_k: ramp(d, ratio_1_to_almost0, 0.0, device),
            time_mix_r: ramp(d, ratio_1_to_almost0, 0.0, device),
            key: LinearNoBias::orthogonal(d, hidden, key_gain, device),
            receptance: LinearNoBias::zeros(d, d, device),
            value: LinearNoBias::zeros(hidden, d, device),
        }
    }

    /// The mixer on `x[B, T, d]` whose previous token is `prev` (zeros when `None`).
    pub fn forward(&self, x: Tensor<3>, prev: Option<Tensor<2>>) -> Tensor<3> {
        let xx = token_shift(&x, prev);
        let k = relu(self.key.forward(mix(&x, &xx, &self.time_mix_k))).square();
        let kv = self.value.forward(k);
        sigmoid(self.receptance.forward(mix(&x, &xx, &self.time_mix_r))) * kv
    }
}

impl Block {
    fn init(config: &SpikeGptConfig, layer: usize, device: &Device) -> Self {
        let ln = || LayerNorm::new(config.n_embd, config.layer_norm_eps, device);
        Self {
            ln0: (layer == 0).then(ln),
            ln1: ln(),
            ln2: ln(),
            att: TimeMix::init(config, layer, device),
            ffn: ChannelMix::init(config, layer, device),
            lif: config.lif(),
            dropout: config.dropout,
        }
    }

    /// Parallel form over `x[B, T, d]` from a zero state; pushes both LIFs' spikes to `spikes`.
    fn forward(&self, x: Tensor<3>, spikes: &mut Vec<Tensor<3>>) -> Tensor<3> {
        let x = match &self.ln0 {
            Some(ln0) => ln0.forward(x),
            None => x,
        };
        let (s1, _) = self
            .lif
            .run(self.att.forward(self.ln1.forward(x.clone())), None);
        let x = x + s1.clone();
        let (s2, _) = self
            .lif
            .run(self.ffn.forward(self.ln2.forward(x.clone()), None), None);
        let x = x + s2.clone();
        spikes.push(s1);
        spikes.push(s2);
        dropout(x, self.dropout)
    }

    /// One token `x[B, 1, d]`.
    fn step(&self, x: Tensor<3>, state: BlockState) -> (Tensor<3>, BlockState) {
        let [b, _, d] = x.dims();
        let x = match &self.ln0 {
            Some(ln0) => ln0.forward(x),
            None => x,
        };
        let xa = self.ln1.forward(x.clone());
        let (a, wkv) = self.att.step(xa.clone(), state.att_prev, state.wkv);
        let (s1, v_att) = self.lif.step(a.reshape([b, d]), state.v_att);
        let x = x + s1.unsqueeze_dim::<3>(1);
        let xf = self.ln2.forward(x.clone());
        let f = self.ffn.forward(xf.clone(), Some(state.ffn_prev));
        let (s2, v_ffn) = self.lif.step(f.reshape([b, d]), state.v_ffn);
        let x = x + s2.unsqueeze_dim::<3>(1);
        let next = BlockState {
            att_prev: xa.reshape([b, d]),
            ffn_prev: xf.reshape([b, d]),
            wkv,
            v_att,
            v_ffn,
        };
        (x, next)
    }
}

/// Dropout with probability `p`, active only on an autodiff device (training); evaluate with
/// `model.valid()` (the inner device) to switch it off.
fn dropout(x: Tensor<3>, p: f64) -> Tensor<3> {
    if p == 0.0 || !x.device().is_autodiff() {
        return x;
    }
    let keep = x.random_like(Distribution::Bernoulli(1.0 - p));
    x * keep / (1.0 - p)
}

impl SpikeGpt {
    /// A model with the released code's RWKV initialisation (`RWKV_Init` plus each block's fancy
    /// init of `time_decay`, `time_first` and the token-shift mixes); random draws use the
    /// device's seed. Call [`SpikeGptConfig::validate`] first: sizes of zero panic here.
    pub fn init(config: &SpikeGptConfig, device: &Device) -> Self {
        let (v, d) = (config.vocab_size, config.n_embd);
        let mut emb = EmbeddingConfig::new(v, d).init(device);
        // RWKV_Init: the token embedding is orthogonal with gain sqrt(max(V, d)) · 1e-4.
        emb.weight =
            Param::from_tensor(orthogonal([v, d], (v.max(d) as f64).sqrt() * 1e-4, device));
        // The head gets gain sqrt(V/d) when V > d, times its scale 0.5.
        let head_gain = if v > d {
            (v as f64 / d as f64).sqrt()
        } else {
            1.0
        } * 0.5;
        Self {
            emb,
            blocks: (0..config.n_layer)
                .map(|l| Block::init(config, l, device))
                .collect(),
            ln_out: LayerNorm::new(d, config.layer_norm_eps, device),
            head: LinearNoBias::orthogonal(d, v, head_gain, device),
            config: config.clone(),
        }
    }

    /// The configuration the model was built from.
    pub fn config(&self) -> &SpikeGptConfig {
        &self.config
    }

    /// The binary input: Heaviside of the embedding, with the arctangent surrogate.
    fn embed(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        heaviside_atan(self.emb.forward(tokens), self.config.surrogate_alpha)
    }

    /// Logits `[B, T, V]` for `tokens[B, T]`, every sequence from a zero state (parallel mode,
    /// for training). Token ids must be below `vocab_size` (see [`Self::check_tokens`]).
    pub fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        self.forward_trace(tokens).logits
    }

    /// [`Self::forward`] that also returns every LIF's spikes.
    pub fn forward_trace(&self, tokens: Tensor<2, Int>) -> SpikeGptTrace {
        let [b, t] = tokens.dims();
        let mut spikes = Vec::with_capacity(2 * self.blocks.len());
        if t == 0 {
            let logits = Tensor::zeros([b, 0, self.config.vocab_size], &tokens.device());
            return SpikeGptTrace { logits, spikes };
        }
        let mut x = self.embed(tokens);
        for block in &self.blocks {
            x = block.forward(x, &mut spikes);
        }
        let logits = self.head.forward(self.ln_out.forward(x));
        SpikeGptTrace { logits, spikes }
    }

    /// Logits `[B, T, V]` computed token by token in recurrent mode, starting from `state`
    /// (zeros when `None`), and the state after the last token. With `T = 1` this is one
    /// generation step; feeding a sequence in pieces gives the same logits as feeding it whole.
    ///
    /// # Panics
    ///
    /// If `state` was made for another batch size or number of blocks (a programming error).
    pub fn forward_with_state(
        &self,
        tokens: Tensor<2, Int>,
        state: Option<SpikeGptState>,
    ) -> (Tensor<3>, SpikeGptState) {
        let [b, t] = tokens.dims();
        let device = tokens.device();
        let mut state = state.unwrap_or_else(|| SpikeGptState::zeros(&self.config, b, &device));
        assert_eq!(
            state.blocks.len(),
            self.blocks.len(),
            "SpikeGPT state has {} blocks, the model {}",
            state.blocks.len(),
            self.blocks.len()
        );
        assert_eq!(
            state.batch_size(),
            b,
            "SpikeGPT state is for batch size {}, the tokens have {b}",
            state.batch_size()
        );
        if t == 0 {
            let logits = Tensor::zeros([b, 0, self.config.vocab_size], &device);
            return (logits, state);
        }
        let mut logits = Vec::with_capacity(t);
        for tok in tokens.split(1, 1) {
            let mut x = self.embed(tok);
            let mut next = Vec::with_capacity(self.blocks.len());
            for (block, s) in self.blocks.iter().zip(state.blocks) {
                let (y, s) = block.step(x, s);
                x = y;
                next.push(s);
            }
            state = SpikeGptState { blocks: next };
            logits.push(self.head.forward(self.ln_out.forward(x)));
        }
        (Tensor::cat(logits, 1), state)
    }

    /// Mean next-token cross-entropy (nats) of `tokens` against `targets` (both `[B, T]`), with
    /// the configured L2Wrap term in the gradient (its value adds exactly zero).
    pub fn loss(&self, tokens: Tensor<2, Int>, targets: Tensor<2, Int>) -> Tensor<1> {
        lm_loss(self.forward(tokens), targets, self.config.l2wrap)
    }

    /// Checks that every token id is below `vocab_size` (one read back from the device).
    pub fn check_tokens(&self, tokens: &Tensor<2, Int>) -> crate::Result<()> {
        let [b, t] = tokens.dims();
        if b * t == 0 {
            return Ok(());
        }
        let (lo, hi) = (
            tokens.clone().min().into_scalar::<i64>(),
            tokens.clone().max().into_scalar::<i64>(),
        );
        let v = self.config.vocab_size as i64;
        if lo < 0 || hi >= v {
            let bad = if lo < 0 { lo } else { hi };
            return Err(crate::Error::invalid(
                "tokens",
                format!("token id {bad} is outside the vocabulary 0..{v}"),
            ));
        }
        Ok(())
    }
}

/// Mean cross-entropy (nats) of `logits[B, T, V]` against `targets[B, T]`, plus RWKV's L2Wrap:
/// the value is unchanged, but the gradient of the logits gains `factor · max` at each
/// position's largest logit, `factor = l2wrap / (B·T)`.
pub fn lm_loss(logits: Tensor<3>, targets: Tensor<2, Int>, l2wrap: f64) -> Tensor<1> {
    let [b, t, _] = logits.dims();
    let nll = crate::loss::next_token_ce(logits.clone(), targets);
    if l2wrap == 0.0 || b * t == 0 {
        return nll;
    }
    // d/dy (factor/2 · max(y)²) = factor · max(y) at the argmax; `p − detach(p)` is zero.
    let factor = l2wrap / (b * t) as f64;
    let p = logits.max_dim(2).square().sum() * (factor / 2.0);
    nll + (p.clone() - p.detach())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(p: &Param<Tensor<1>>) -> Vec<f32> {
        p.val().into_data().iter::<f32>().collect()
    }

    #[test]
    fn init_follows_the_released_rwkv_init() {
        let device = Device::flex();
        device.seed(0);
        let cfg = SpikeGptConfig::new(65, 8, 3);
        let m = SpikeGpt::init(&cfg, &device);
        let abs_max = |t: Tensor<2>| t.abs().max().into_scalar::<f32>();

        // Zero-initialised matrices (scale_init = 0) and the non-zero ones.
        let b = &m.blocks[1];
        for w in [
            &b.att.key.weight,
            &b.att.receptance.weight,
            &b.att.output.weight,
            &b.ffn.receptance.weight,
            &b.ffn.value.weight,
        ] {
            assert_eq!(abs_max(w.val()), 0.0);
        }
        assert!(abs_max(b.att.value.weight.val()) > 0.0);
        assert_eq!(b.ffn.key.weight.dims(), [32, 8]);
        // The embedding is tiny (gain sqrt(65)·1e-4): only its sign matters.
        assert!(abs_max(m.emb.weight.val()) < 1e-3);
        assert_eq!(m.head.weight.dims(), [65, 8]);
        assert!(m.blocks[0].ln0.is_some() && m.blocks[1].ln0.is_none());

        // Block 1 of 3: ratio_0_to_1 = 0.5, ratio_1_to_almost0 = 2/3.
        let decay = values(&b.att.time_decay);
        assert!((decay[0] + 5.0).abs() < 1e-6 && (decay[7] - 3.0).abs() < 1e-6);
        let want = -5.0 + 8.0 * (3.0f64 / 7.0).powf(0.7 + 1.3 * 0.5);
        assert!((decay[3] as f64 - want).abs() < 1e-5);
        let first = values(&b.att.time_first);
        assert!((first[0] as f64 - 0.3f64.ln()).abs() < 1e-6);
        assert!((first[1] as f64 - (0.3f64.ln() + 0.5)).abs() < 1e-6);
        assert!((first[2] as f64 - (0.3f64.ln() - 0.5)).abs() < 1e-6);
        let mix_v = values(&b.att.time_mix_v);
        assert!((mix_v[4] as f64 - (0.5f64.powf(2.0 / 3.0) + 0.15)).abs() < 1e-6);
        let mix_r = values(&b.att.time_mix_r);
        assert!((mix_r[4] as f64 - 0.5f64.powf(1.0 / 3.0)).abs() < 1e-6);
    }
}
