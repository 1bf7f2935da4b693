//! SpikeGPT as its authors release it: a `torch.save` state dict (`.pth`) named as the released
//! `src/model.py` names its parameters, an optional `config.json` in the released training
//! script's terms (`n_layer`, `n_embd`, `ctx_len`, `vocab_size`, `model_type: "RWKV"`), and the
//! released tokenizers (read by [`crate::text::Tokenizer::load_dir`]).
//!
//! The architecture is inferred from the tensor shapes: `emb.weight` is `[vocab, d]`, the
//! blocks are counted, the channel mixer's width is `blocks.0.ffn.key.weight`'s rows. A
//! `config.json` that disagrees with the shapes is an error naming the key.
//!
//! We compute as the released training model (`model.py`) does, since that is the function the
//! checkpoints were trained to minimise. The released RNN-mode script (`model_run.py`) differs
//! from it: it feeds the raw embedding (not its spikes) unless the vocabulary has 77 tokens,
//! divides `att.output` and `ffn.value` by 2 every 6 blocks and the residual stream by 2 after
//! every 6th block (an fp16 overflow guard), and uses spikingjelly's single-step `LIFNode`
//! defaults. Its outputs therefore differ from the training model's; ours match the latter.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use serde::Deserialize;

use super::{SpikeGpt, SpikeGptConfig};
use crate::error::{Error, Result};
use crate::store::checkpoint;
use crate::store::pth::{read_pth, PthTensor, StateDict};

/// The `model_type` the released training script writes for the SpikeGPT it ships.
pub const RELEASED_MODEL_TYPE: &str = "RWKV";

/// A released `config.json`: the training script's hyper-parameters (all optional; the tensor
/// shapes decide, these are checked against them).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ReleasedConfig {
    /// Number of blocks.
    pub n_layer: Option<usize>,
    /// Model width.
    pub n_embd: Option<usize>,
    /// Context length the model was trained with.
    pub ctx_len: Option<usize>,
    /// Vocabulary size.
    pub vocab_size: Option<usize>,
    /// `RWKV` for the released SpikeGPT (`RWKV-ffnPre` is a variant not supported here).
    pub model_type: Option<String>,
}

impl ReleasedConfig {
    /// Reads a released `config.json`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::format(path, format!("not a SpikeGPT config: {e}")))
    }
}

/// A released SpikeGPT checkpoint and what came with it.
#[derive(Debug)]
pub struct ReleasedModel {
    /// The network, weights loaded.
    pub model: SpikeGpt,
    /// `ctx_len` from `config.json`, when there is one.
    pub ctx_len: Option<usize>,
    /// The `.pth` file read.
    pub weights: PathBuf,
}

/// The one `.pth` (or `.pt`) file in `dir`; `None` if there is none, an error if several.
pub fn find_pth(dir: &Path) -> Result<Option<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "pth" || x == "pt"))
        .collect();
    found.sort();
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => Err(Error::format(
            dir,
            format!(
                "{} .pth files ({}); keep one per model directory",
                found.len(),
                found
                    .iter()
                    .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// Whether `dir` holds a released SpikeGPT: a `.pth` file and either no `config.json` or one
/// whose `model_type` is the training script's (`RWKV…`) rather than Nerve's.
pub fn is_released_dir(dir: &Path) -> bool {
    if !matches!(find_pth(dir), Ok(Some(_))) {
        return false;
    }
    let config = dir.join("config.json");
    !config.exists()
        || ReleasedConfig::load(&config).is_ok_and(|c| {
            c.model_type
                .is_none_or(|t| t.starts_with(RELEASED_MODEL_TYPE))
        })
}

/// Loads the released SpikeGPT in `dir` (its `.pth` and, if present, `config.json`).
pub fn load_dir(dir: &Path, device: &Device) -> Result<ReleasedModel> {
    let weights = find_pth(dir)?
        .ok_or_else(|| Error::format(dir, "no .pth file: not a released SpikeGPT directory"))?;
    let config_path = dir.join("config.json");
    let file_config = if config_path.exists() {
        Some(ReleasedConfig::load(&config_path)?)
    } else {
        None
    };
    let dict = read_pth(&weights)?;
    let config = infer_config(&dict, file_config.as_ref(), &weights, &config_path)?;
    let model = from_state_dict(dict, &config, &weights, device)?;
    Ok(ReleasedModel {
        model,
        ctx_len: file_config.and_then(|c| c.ctx_len),
        weights,
    })
}

fn shape_of<'a>(dict: &'a StateDict, name: &str, path: &Path) -> Result<&'a [usize]> {
    dict.get(name).map(|t| t.shape.as_slice()).ok_or_else(|| {
        Error::format(
            path,
            format!("tensor '{name}' is missing: not a SpikeGPT state dict"),
        )
    })
}

/// The architecture the tensors describe, checked against `config.json` when given.
pub fn infer_config(
    dict: &StateDict,
    file: Option<&ReleasedConfig>,
    weights: &Path,
    config_path: &Path,
) -> Result<SpikeGptConfig> {
    let fail = |msg: String| Error::format(weights, msg);
    for (name, why) in [
        (
            "blocks.0.ffnPre.key.weight",
            "model_type RWKV-ffnPre (a channel mixer in place of block 0's token mixer)",
        ),
        (
            "head_q.weight",
            "the RWKV_HEAD_QK copy head (head_q, head_k)",
        ),
    ] {
        if dict.get(name).is_some() {
            return Err(fail(format!("{why} is not supported (tensor '{name}')")));
        }
    }
    let (vocab_size, n_embd) = match shape_of(dict, "emb.weight", weights)? {
        &[v, d] => (v, d),
        other => {
            return Err(fail(format!(
                "emb.weight has shape {other:?}, expected [vocab, n_embd]"
            )))
        }
    };
    let mut n_layer = 0;
    while dict.get(&format!("blocks.{n_layer}.ln1.weight")).is_some() {
        n_layer += 1;
    }
    if n_layer == 0 {
        return Err(fail(
            "no blocks (blocks.0.ln1.weight is missing): not a SpikeGPT state dict".into(),
        ));
    }
    let ffn_hidden = match shape_of(dict, "blocks.0.ffn.key.weight", weights)? {
        &[h, d] if d == n_embd && h % n_embd == 0 && h > 0 => h,
        other => {
            return Err(fail(format!(
                "blocks.0.ffn.key.weight has shape {other:?}, expected [k * {n_embd}, {n_embd}]"
            )))
        }
    };
    match shape_of(dict, "blocks.0.att.key.weight", weights)? {
        &[a, d] if a == n_embd && d == n_embd => {}
        other => {
            return Err(fail(format!(
                "blocks.0.att.key.weight has shape {other:?}; only an attention width equal to \
                 n_embd ({n_embd}) is supported"
            )))
        }
    }
    let mut config = SpikeGptConfig::new(vocab_size, n_embd, n_layer);
    config.ffn_mult = ffn_hidden / n_embd;
    if let Some(file) = file {
        let bad = |key: &str, file_value: usize, found: usize| {
            Error::format(
                config_path,
                format!(
                    "{key} is {file_value} but the weights in {} have {found}",
                    weights.display()
                ),
            )
        };
        for (key, file_value, found) in [
            ("n_layer", file.n_layer, n_layer),
            ("n_embd", file.n_embd, n_embd),
            ("vocab_size", file.vocab_size, vocab_size),
        ] {
            if let Some(v) = file_value {
                if v != found {
                    return Err(bad(key, v, found));
                }
            }
        }
        if let Some(t) = &file.model_type {
            if t != RELEASED_MODEL_TYPE {
                return Err(Error::format(
                    config_path,
                    format!("model_type '{t}' is not supported (the released SpikeGPT is '{RELEASED_MODEL_TYPE}')"),
                ));
            }
        }
    }
    config.validate()?;
    Ok(config)
}

/// Builds the model of `config` with the state dict's tensors. The released `time_mix_*`
/// parameters are `[1, 1, d]`; they are flattened to the model's `[d]`.
pub fn from_state_dict(
    dict: StateDict,
    config: &SpikeGptConfig,
    weights: &Path,
    device: &Device,
) -> Result<SpikeGpt> {
    let tensors: Vec<(String, PthTensor)> = dict
        .into_iter()
        .map(|(name, mut t)| {
            if name.contains(".time_mix_") && t.shape.len() == 3 && t.shape[..2] == [1, 1] {
                t.shape = vec![t.shape[2]];
            }
            (name, t)
        })
        .collect();
    let bytes = safetensors_bytes(&tensors).map_err(|e| Error::format(weights, e))?;
    drop(tensors);
    let model = SpikeGpt::init(config, device);
    checkpoint::load_tensors(weights, model, bytes)
}

/// The tensors as an f32 safetensors file in memory, so that the checkpoint loader's checks
/// (every parameter present, shapes equal, nothing extra) apply unchanged.
fn safetensors_bytes(tensors: &[(String, PthTensor)]) -> std::result::Result<Vec<u8>, String> {
    let raw: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, t)| {
            let bytes = t.values.iter().flat_map(|v| v.to_le_bytes()).collect();
            (n.clone(), t.shape.clone(), bytes)
        })
        .collect();
    let views = raw
        .iter()
        .map(|(n, shape, bytes)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                .map(|v| (n.clone(), v))
                .map_err(|e| format!("tensor '{n}': {e}"))
        })
        .collect::<std::result::Result<Vec<_>, String>>()?;
    safetensors::serialize(views, None).map_err(|e| e.to_string())
}
