//! One type for both language models, so training, evaluation and generation are written once:
//! [`LanguageModel`] is either the MatMul-free LM or SpikeGPT, and a model directory says which
//! in its `config.json` (`model_type`).
//!
//! A model directory holds `config.json`, `model.safetensors` (tensor names as published:
//! Hugging Face layout for `hgrn_bit`, the released SpikeGPT names for `spikegpt`) and a
//! tokenizer (`tokenizer.json` or `chars.json`). Published MatMul-free checkpoints (bf16,
//! possibly sharded) load from the same kind of directory, and so do SpikeGPT's released `.pth`
//! state dicts with their `config.json` and tokenizer.

use std::path::Path;

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::mmfree::model::{MmFreeLm, MmFreeState};
use super::mmfree::{self, MmFreeConfig};
use super::spikegpt::{self, SpikeGpt, SpikeGptConfig, SpikeGptState};
use crate::error::{Error, Result};
use crate::store::checkpoint::{self, CheckpointMeta};

/// The two language-model architectures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LmArch {
    /// The MatMul-free LM (HGRNBit: ternary BitLinear, MLGRU, GLU).
    MmFree,
    /// SpikeGPT (spiking RWKV).
    SpikeGpt,
}

impl LmArch {
    /// Parses `mmfree` or `spikegpt`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "mmfree" | "hgrn_bit" | "hgrnbit" => Ok(LmArch::MmFree),
            "spikegpt" => Ok(LmArch::SpikeGpt),
            _ => Err(Error::invalid(
                "arch",
                format!("'{s}': expected mmfree or spikegpt"),
            )),
        }
    }

    /// The `model_type` written to `config.json`.
    pub fn model_type(self) -> &'static str {
        match self {
            LmArch::MmFree => mmfree::config::MODEL_TYPE,
            LmArch::SpikeGpt => "spikegpt",
        }
    }
}

/// Sizes of a language model to build from scratch.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LmShape {
    /// Which architecture.
    pub arch: LmArch,
    /// Vocabulary size (from the tokenizer).
    pub vocab_size: usize,
    /// Model width.
    pub d_model: usize,
    /// Number of blocks.
    pub layers: usize,
}

/// Either language model, as one Burn module.
#[derive(Module, Debug)]
pub enum LanguageModel {
    /// The MatMul-free LM.
    MmFree(MmFreeLm),
    /// SpikeGPT.
    SpikeGpt(SpikeGpt),
}

/// The recurrent state of either model between calls of [`LanguageModel::forward_with_state`].
#[derive(Debug, Clone)]
pub enum LmState {
    /// Per-layer hidden vectors of the MLGRU.
    MmFree(MmFreeState),
    /// WKV accumulators, token-shift inputs and LIF membranes per layer.
    SpikeGpt(SpikeGptState),
}

impl LanguageModel {
    /// A freshly initialised model of the given shape.
    pub fn init(shape: &LmShape, device: &Device) -> Result<Self> {
        match shape.arch {
            LmArch::MmFree => {
                let cfg = MmFreeConfig::new(shape.vocab_size, shape.d_model, shape.layers);
                cfg.validate()?;
                Ok(LanguageModel::MmFree(MmFreeLm::init(&cfg, device)))
            }
            LmArch::SpikeGpt => {
                let cfg = SpikeGptConfig::new(shape.vocab_size, shape.d_model, shape.layers);
                cfg.validate()?;
                Ok(LanguageModel::SpikeGpt(SpikeGpt::init(&cfg, device)))
            }
        }
    }

    /// Which architecture this is.
    pub fn arch(&self) -> LmArch {
        match self {
            LanguageModel::MmFree(_) => LmArch::MmFree,
            LanguageModel::SpikeGpt(_) => LmArch::SpikeGpt,
        }
    }

    /// Vocabulary size.
    pub fn vocab_size(&self) -> usize {
        match self {
            LanguageModel::MmFree(m) => m.config().vocab_size,
            LanguageModel::SpikeGpt(m) => m.config().vocab_size,
        }
    }

    /// A one-line description that also identifies the shape (checkpoints must match it).
    pub fn describe(&self) -> String {
        match self {
            LanguageModel::MmFree(m) => {
                let c = m.config();
                format!(
                    "mmfree V={} d={} L={} I={}",
                    c.vocab_size,
                    c.hidden_size,
                    c.num_hidden_layers,
                    c.intermediate()
                )
            }
            LanguageModel::SpikeGpt(m) => {
                let c = m.config();
                format!("spikegpt V={} d={} L={}", c.vocab_size, c.n_embd, c.n_layer)
            }
        }
    }

    /// Logits `[B, T, V]` for tokens `[B, T]` (parallel mode, from a fresh state).
    pub fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        match self {
            LanguageModel::MmFree(m) => m.forward(tokens),
            LanguageModel::SpikeGpt(m) => m.forward(tokens),
        }
    }

    /// Logits for tokens `[B, T]` continuing from `state` (recurrent mode), and the new state.
    pub fn forward_with_state(
        &self,
        tokens: Tensor<2, Int>,
        state: Option<LmState>,
    ) -> Result<(Tensor<3>, LmState)> {
        match (self, state) {
            (LanguageModel::MmFree(m), None) => {
                let (y, s) = m.forward_with_state(tokens, None);
                Ok((y, LmState::MmFree(s)))
            }
            (LanguageModel::MmFree(m), Some(LmState::MmFree(s))) => {
                let (y, s) = m.forward_with_state(tokens, Some(s));
                Ok((y, LmState::MmFree(s)))
            }
            (LanguageModel::SpikeGpt(m), None) => {
                let (y, s) = m.forward_with_state(tokens, None);
                Ok((y, LmState::SpikeGpt(s)))
            }
            (LanguageModel::SpikeGpt(m), Some(LmState::SpikeGpt(s))) => {
                let (y, s) = m.forward_with_state(tokens, Some(s));
                Ok((y, LmState::SpikeGpt(s)))
            }
            _ => Err(Error::invalid("state", "belongs to the other architecture")),
        }
    }

    /// The training loss: mean next-token cross-entropy in nats (SpikeGPT adds its L2Wrap
    /// gradient term, which leaves the value unchanged).
    pub fn loss(&self, tokens: Tensor<2, Int>, targets: Tensor<2, Int>) -> Tensor<1> {
        match self {
            LanguageModel::MmFree(m) => crate::loss::next_token_ce(m.forward(tokens), targets),
            LanguageModel::SpikeGpt(m) => m.loss(tokens, targets),
        }
    }

    /// Writes `config.json` for this model into `dir`.
    pub fn save_config(&self, dir: &Path) -> Result<()> {
        match self {
            LanguageModel::MmFree(m) => m.config().save(dir.join("config.json")),
            LanguageModel::SpikeGpt(m) => m.config().save(dir.join("config.json")),
        }
    }

    /// Builds the (untrained) model described by `dir/config.json`.
    pub fn init_from_config(dir: &Path, device: &Device) -> Result<Self> {
        let path = dir.join("config.json");
        match model_type(&path)?.as_str() {
            mmfree::config::MODEL_TYPE => {
                let cfg = MmFreeConfig::load(&path)?;
                Ok(LanguageModel::MmFree(MmFreeLm::init(&cfg, device)))
            }
            "spikegpt" => {
                let cfg = SpikeGptConfig::load(&path)?;
                Ok(LanguageModel::SpikeGpt(SpikeGpt::init(&cfg, device)))
            }
            other => Err(unknown_type(&path, other)),
        }
    }

    /// Loads a model directory: a Nerve training run of either architecture, a published
    /// MatMul-free checkpoint (bf16/f16/f32, single file or sharded), or a released SpikeGPT
    /// `.pth` state dict (see [`spikegpt::released`]).
    pub fn load_dir(dir: &Path, device: &Device) -> Result<Self> {
        if spikegpt::released::is_released_dir(dir) {
            let released = spikegpt::released::load_dir(dir, device)?;
            return Ok(LanguageModel::SpikeGpt(released.model));
        }
        let path = dir.join("config.json");
        match model_type(&path)?.as_str() {
            mmfree::config::MODEL_TYPE => {
                let weights = mmfree::hf_checkpoint::load_dir(dir)?;
                Ok(LanguageModel::MmFree(MmFreeLm::from_weights(
                    &weights, device,
                )?))
            }
            "spikegpt" => {
                let model = Self::init_from_config(dir, device)?;
                let arch = model.describe();
                Ok(model.load_checkpoint(&dir.join(MODEL_FILE), &arch)?.0)
            }
            other => Err(unknown_type(&path, other)),
        }
    }
}

impl LanguageModel {
    // Checkpoints hold the inner model: the enum would prefix every tensor name with its
    // variant, and the files must keep the published names.

    /// Saves weights and optimizer state (see [`checkpoint::save`]) under the published names.
    pub fn save_checkpoint(
        &self,
        path: &Path,
        optim: &ModuleOptimizer,
        meta: &CheckpointMeta,
    ) -> Result<()> {
        match self {
            LanguageModel::MmFree(m) => checkpoint::save(path, m, optim, meta),
            LanguageModel::SpikeGpt(m) => checkpoint::save(path, m, optim, meta),
        }
    }

    /// Loads weights saved by [`Self::save_checkpoint`] into this model of architecture `arch`.
    pub fn load_checkpoint(self, path: &Path, arch: &str) -> Result<(Self, CheckpointMeta)> {
        match self {
            LanguageModel::MmFree(m) => {
                let (m, meta) = checkpoint::load(path, m, arch)?;
                Ok((LanguageModel::MmFree(m), meta))
            }
            LanguageModel::SpikeGpt(m) => {
                let (m, meta) = checkpoint::load(path, m, arch)?;
                Ok((LanguageModel::SpikeGpt(m), meta))
            }
        }
    }

    /// Restores the optimizer state saved beside the checkpoint at `path` onto this model.
    pub fn load_optimizer(&self, path: &Path, optim: ModuleOptimizer) -> Result<ModuleOptimizer> {
        match self {
            LanguageModel::MmFree(m) => checkpoint::load_optimizer(path, optim, m),
            LanguageModel::SpikeGpt(m) => checkpoint::load_optimizer(path, optim, m),
        }
    }
}

/// Tokens `[rows, cols]` as an Int tensor.
pub fn token_tensor(ids: &[u32], rows: usize, cols: usize, device: &Device) -> Tensor<2, Int> {
    let data: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
    Tensor::from_data(TensorData::new(data, [rows, cols]), device)
}

/// Weights file of a model directory.
pub const MODEL_FILE: &str = "model.safetensors";

/// The `model_type` recorded in a `config.json`.
pub fn model_type(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::format(path, format!("not valid JSON: {e}")))?;
    value
        .get("model_type")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .ok_or_else(|| Error::format(path, "no model_type"))
}

fn unknown_type(path: &Path, found: &str) -> Error {
    Error::format(
        path,
        format!(
            "model_type '{found}' is not supported (expected '{}' or 'spikegpt')",
            mmfree::config::MODEL_TYPE
        ),
    )
}
