//! The `config.json` of a SpikeGPT model (`"model_type": "spikegpt"`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

use super::lif::Lif;

/// The `model_type` value of SpikeGPT configurations.
pub const MODEL_TYPE: &str = "spikegpt";

/// Hyper-parameters of a SpikeGPT model; the names follow the released code's `GPTConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpikeGptConfig {
    /// Always `spikegpt`.
    pub model_type: String,
    /// Number of tokens in the vocabulary.
    pub vocab_size: usize,
    /// Model width `d`.
    pub n_embd: usize,
    /// Number of blocks.
    pub n_layer: usize,
    /// Hidden width of the channel mixer as a multiple of `d` (4 in the released code).
    #[serde(default = "default_ffn_mult")]
    pub ffn_mult: usize,
    /// L2Wrap factor: the logits' gradient gains `l2wrap/(B·T) · max` at each argmax (0 = off).
    #[serde(default = "default_l2wrap")]
    pub l2wrap: f64,
    /// Dropout after every block while training (0.03 in the released code).
    #[serde(default = "default_dropout")]
    pub dropout: f64,
    /// Membrane time constant τ of every LIF neuron.
    #[serde(default = "default_tau")]
    pub tau: f64,
    /// Firing threshold of every LIF neuron.
    #[serde(default = "default_threshold")]
    pub v_threshold: f64,
    /// Sharpness α of the arctangent surrogate (embedding spikes and LIF neurons).
    #[serde(default = "default_alpha")]
    pub surrogate_alpha: f64,
    /// Epsilon of every LayerNorm (PyTorch's default).
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// How training computes the WKV, a speed knob only (results agree to rounding): 0 runs
    /// RWKV's recurrence token by token (fastest on CPU: many small operations), `C ≥ 1` a
    /// masked softmax over chunks of `C` tokens (fewer, larger operations, for GPUs).
    #[serde(default = "default_wkv_chunk")]
    pub wkv_chunk: usize,
}

fn default_ffn_mult() -> usize {
    4
}
fn default_l2wrap() -> f64 {
    1e-4
}
fn default_dropout() -> f64 {
    0.03
}
fn default_tau() -> f64 {
    2.0
}
fn default_threshold() -> f64 {
    1.0
}
fn default_alpha() -> f64 {
    2.0
}
fn default_eps() -> f64 {
    1e-5
}
fn default_wkv_chunk() -> usize {
    0
}

impl SpikeGptConfig {
    /// A configuration with the released code's defaults for the given sizes.
    pub fn new(vocab_size: usize, n_embd: usize, n_layer: usize) -> Self {
        Self {
            model_type: MODEL_TYPE.to_string(),
            vocab_size,
            n_embd,
            n_layer,
            ffn_mult: default_ffn_mult(),
            l2wrap: default_l2wrap(),
            dropout: default_dropout(),
            tau: default_tau(),
            v_threshold: default_threshold(),
            surrogate_alpha: default_alpha(),
            layer_norm_eps: default_eps(),
            wkv_chunk: default_wkv_chunk(),
        }
    }

    /// The same configuration with dropout `p`.
    pub fn with_dropout(mut self, p: f64) -> Self {
        self.dropout = p;
        self
    }

    /// Hidden width of the channel mixer.
    pub fn ffn_hidden(&self) -> usize {
        self.ffn_mult * self.n_embd
    }

    /// The LIF neuron of every block.
    pub fn lif(&self) -> Lif {
        Lif {
            tau: self.tau,
            v_threshold: self.v_threshold,
            alpha: self.surrogate_alpha,
        }
    }

    /// Refuses configurations this implementation cannot run, naming the key at fault.
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, msg: String| Err(Error::invalid(format!("config: {key}"), msg));
        if self.model_type != MODEL_TYPE {
            return bad(
                "model_type",
                format!("expected '{MODEL_TYPE}', found '{}'", self.model_type),
            );
        }
        for (key, v) in [
            ("vocab_size", self.vocab_size),
            ("n_embd", self.n_embd),
            ("n_layer", self.n_layer),
            ("ffn_mult", self.ffn_mult),
        ] {
            if v == 0 {
                return bad(key, "must be at least 1".into());
            }
        }
        if !(self.l2wrap.is_finite() && self.l2wrap >= 0.0) {
            return bad(
                "l2wrap",
                format!("{} is not a finite factor ≥ 0", self.l2wrap),
            );
        }
        if !(self.dropout.is_finite() && (0.0..1.0).contains(&self.dropout)) {
            return bad("dropout", format!("{} is not in [0, 1)", self.dropout));
        }
        if !(self.tau.is_finite() && self.tau >= 1.0) {
            // τ < 1 would overshoot: H = V + (X − V)/τ extrapolates past X.
            return bad("tau", format!("{} is not a finite value ≥ 1", self.tau));
        }
        if !self.v_threshold.is_finite() {
            return bad("v_threshold", format!("{} is not finite", self.v_threshold));
        }
        if !(self.surrogate_alpha.is_finite() && self.surrogate_alpha > 0.0) {
            return bad(
                "surrogate_alpha",
                format!("{} is not a finite value > 0", self.surrogate_alpha),
            );
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps > 0.0) {
            return bad(
                "layer_norm_eps",
                format!("{} is not a finite value > 0", self.layer_norm_eps),
            );
        }
        Ok(())
    }

    /// Reads and validates a `config.json`; a file for another `model_type` is refused.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_json(&text).map_err(|msg| Error::format(path, msg))
    }

    /// Parses and validates the text of a `config.json`.
    fn from_json(text: &str) -> std::result::Result<Self, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let found = match value.get("model_type") {
            Some(serde_json::Value::String(s)) => s.as_str(),
            Some(_) => return Err("model_type is not a string".into()),
            None => return Err(format!("no model_type (expected '{MODEL_TYPE}')")),
        };
        if found != MODEL_TYPE {
            return Err(format!(
                "model_type is '{found}', expected '{MODEL_TYPE}' (this is not a SpikeGPT config)"
            ));
        }
        let cfg: Self =
            serde_json::from_value(value).map_err(|e| format!("bad SpikeGPT config: {e}"))?;
        cfg.validate().map_err(|e| e.to_string())?;
        Ok(cfg)
    }

    /// Writes `config.json` atomically.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| Error::format(path, format!("cannot serialize the config: {e}")))?;
        crate::fsutil::write_atomic(path, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips_and_refuses_other_models() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        let cfg = SpikeGptConfig::new(65, 256, 4);
        cfg.save(&p).unwrap();
        assert_eq!(SpikeGptConfig::load(&p).unwrap(), cfg);

        // Defaults fill in what a minimal file leaves out.
        std::fs::write(
            &p,
            r#"{"model_type":"spikegpt","vocab_size":65,"n_embd":256,"n_layer":4}"#,
        )
        .unwrap();
        assert_eq!(SpikeGptConfig::load(&p).unwrap(), cfg);

        std::fs::write(
            &p,
            r#"{"model_type":"hgrn_bit","vocab_size":65,"n_embd":256,"n_layer":4}"#,
        )
        .unwrap();
        let err = SpikeGptConfig::load(&p).unwrap_err().to_string();
        assert!(err.contains("model_type is 'hgrn_bit'"), "{err}");

        std::fs::write(&p, r#"{"vocab_size":65}"#).unwrap();
        let err = SpikeGptConfig::load(&p).unwrap_err().to_string();
        assert!(err.contains("no model_type"), "{err}");

        std::fs::write(
            &p,
            r#"{"model_type":"spikegpt","vocab_size":65,"n_embd":0,"n_layer":4}"#,
        )
        .unwrap();
        let err = SpikeGptConfig::load(&p).unwrap_err().to_string();
        assert!(err.contains("n_embd"), "{err}");
    }
}
