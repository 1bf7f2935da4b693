//! The `config.json` of a MatMul-free LM checkpoint (`model_type: hgrn_bit`), as published on
//! the Hugging Face hub by the MatMul-free LM authors.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The `model_type` value of MatMul-free LM checkpoints.
pub const MODEL_TYPE: &str = "hgrn_bit";

/// Hyper-parameters of an HGRNBit model, with the published `config.json` key names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MmFreeConfig {
    /// Always `hgrn_bit`.
    pub model_type: String,
    /// Number of tokens in the vocabulary (32000 for the published models).
    pub vocab_size: usize,
    /// Model width `d`.
    pub hidden_size: usize,
    /// Number of blocks `L`.
    pub num_hidden_layers: usize,
    /// Width `I` of the GLU; `None` means `256 * ceil(int(d * hidden_ratio * 2 / 3) / 256)`.
    #[serde(default)]
    pub intermediate_size: Option<usize>,
    /// Ratio used to derive `intermediate_size` when it is absent.
    #[serde(default = "default_hidden_ratio")]
    pub hidden_ratio: usize,
    /// Epsilon of every RMSNorm.
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    /// Whether forget gates have learned lower bounds per layer (`model.lower_bounds`).
    #[serde(default = "default_true")]
    pub use_lower_bound: bool,
    /// Number of recurrent heads; only 1 is supported (as published).
    #[serde(default = "default_one")]
    pub num_heads: usize,
    /// Expansion of the recurrent state; only 1 is supported (as published).
    #[serde(default = "default_one")]
    pub expand_ratio: usize,
    /// Short convolution before the recurrence; not used by the published models.
    #[serde(default)]
    pub use_short_conv: bool,
    /// Whether the head shares the embedding; the published models do not.
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Beginning-of-sequence token id.
    #[serde(default = "default_bos")]
    pub bos_token_id: Option<u32>,
    /// End-of-sequence token id.
    #[serde(default = "default_eos")]
    pub eos_token_id: Option<u32>,
    /// Storage dtype of the weights (`bfloat16` when published).
    #[serde(default)]
    pub torch_dtype: Option<String>,
    /// Model classes, as transformers records them.
    #[serde(default)]
    pub architectures: Option<Vec<String>>,
}

fn default_hidden_ratio() -> usize {
    4
}
fn default_eps() -> f64 {
    1e-6
}
fn default_true() -> bool {
    true
}
fn default_one() -> usize {
    1
}
fn default_bos() -> Option<u32> {
    Some(1)
}
fn default_eos() -> Option<u32> {
    Some(2)
}

impl MmFreeConfig {
    /// A configuration with the published defaults for the given sizes.
    pub fn new(vocab_size: usize, hidden_size: usize, num_hidden_layers: usize) -> Self {
        Self {
            model_type: MODEL_TYPE.to_string(),
            vocab_size,
            hidden_size,
            num_hidden_layers,
            intermediate_size: None,
            hidden_ratio: default_hidden_ratio(),
            rms_norm_eps: default_eps(),
            use_lower_bound: true,
            num_heads: 1,
            expand_ratio: 1,
            use_short_conv: false,
            tie_word_embeddings: false,
            bos_token_id: default_bos(),
            eos_token_id: default_eos(),
            torch_dtype: Some("float32".to_string()),
            architectures: Some(vec!["HGRNBitForCausalLM".to_string()]),
        }
    }

    /// The published 370M shape (L=24, d=1024, vocab 32000).
    pub fn published_370m() -> Self {
        Self::new(32000, 1024, 24)
    }

    /// The published 1.3B shape (L=24, d=2048).
    pub fn published_1_3b() -> Self {
        Self::new(32000, 2048, 24)
    }

    /// The published 2.7B shape (L=32, d=2560).
    pub fn published_2_7b() -> Self {
        Self::new(32000, 2560, 32)
    }

    /// GLU width `I`, derived as the released code does when the config leaves it out.
    pub fn intermediate(&self) -> usize {
        self.intermediate_size.unwrap_or_else(|| {
            let raw = self.hidden_size * self.hidden_ratio * 2 / 3;
            256 * raw.div_ceil(256)
        })
    }

    /// Refuses configurations this implementation does not follow, naming the key at fault.
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, msg: String| Err(Error::invalid(format!("config.json: {key}"), msg));
        if self.model_type != MODEL_TYPE {
            return bad(
                "model_type",
                format!("expected '{MODEL_TYPE}', found '{}'", self.model_type),
            );
        }
        // intermediate() and the tensor shapes multiply these sizes; a product that overflows
        // describes no model (found by fuzzing config.json: it panicked in debug builds).
        let glu = match self.intermediate_size {
            Some(i) => Some(i),
            None => self
                .hidden_size
                .checked_mul(self.hidden_ratio)
                .and_then(|n| n.checked_mul(2))
                .and_then(|n| (n / 3).div_ceil(256).checked_mul(256)),
        };
        let fits = glu
            .and_then(|i| i.checked_mul(2))
            .and_then(|i2| i2.checked_mul(self.hidden_size))
            .zip(self.vocab_size.checked_mul(self.hidden_size))
            .is_some();
        if !fits {
            let key = match self.intermediate_size {
                Some(_) => "intermediate_size",
                None => "hidden_ratio",
            };
            return bad(key, "the tensor sizes it implies overflow".into());
        }
        for (key, v) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("intermediate_size", self.intermediate()),
        ] {
            if v == 0 {
                return bad(key, "must be at least 1".into());
            }
        }
        if self.num_heads != 1 {
            return bad(
                "num_heads",
                format!("only 1 is supported, found {}", self.num_heads),
            );
        }
        if self.expand_ratio != 1 {
            return bad(
                "expand_ratio",
                format!("only 1 is supported, found {}", self.expand_ratio),
            );
        }
        if self.use_short_conv {
            return bad(
                "use_short_conv",
                "short convolutions are not supported".into(),
            );
        }
        if self.tie_word_embeddings {
            return bad(
                "tie_word_embeddings",
                "a tied head is not supported (the published models have a separate lm_head)"
                    .into(),
            );
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps >= 0.0) {
            return bad(
                "rms_norm_eps",
                format!("{} is not a valid epsilon", self.rms_norm_eps),
            );
        }
        Ok(())
    }

    /// Reads and validates `config.json`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::format(path, format!("not valid JSON: {e}")))?;
        let found = value
            .get("model_type")
            .and_then(|v| v.as_str())
            .unwrap_or("(none)");
        if found != MODEL_TYPE {
            return Err(Error::format(
                path,
                format!("model_type is '{found}', expected '{MODEL_TYPE}'"),
            ));
        }
        let cfg: Self = serde_json::from_value(value)
            .map_err(|e| Error::format(path, format!("bad HGRNBit config: {e}")))?;
        cfg.validate()
            .map_err(|e| Error::format(path, e.to_string()))?;
        Ok(cfg)
    }

    /// Writes `config.json` atomically.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("config serialises");
        crate::fsutil::write_atomic(path, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intermediate_matches_the_released_formula() {
        assert_eq!(MmFreeConfig::published_370m().intermediate(), 2816);
        assert_eq!(MmFreeConfig::published_1_3b().intermediate(), 5632);
        assert_eq!(MmFreeConfig::published_2_7b().intermediate(), 6912);
        assert_eq!(MmFreeConfig::new(65, 64, 2).intermediate(), 256);
    }

    #[test]
    fn published_config_json_parses() {
        let json = r#"{"architectures":["HGRNBitForCausalLM"],"attn_mode":"fused_recurrent",
            "bos_token_id":1,"conv_size":4,"eos_token_id":2,"expand_ratio":1,"fuse_cross_entropy":true,
            "hidden_act":"swish","hidden_ratio":4,"hidden_size":1024,"initializer_range":0.02,
            "intermediate_size":null,"max_position_embeddings":2048,"model_type":"hgrn_bit",
            "num_heads":1,"num_hidden_layers":24,"rms_norm_eps":1e-06,"share_conv_kernel":true,
            "tie_word_embeddings":false,"torch_dtype":"bfloat16","transformers_version":"4.40.2",
            "use_cache":true,"use_lower_bound":true,"use_short_conv":false,"vocab_size":32000}"#;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        std::fs::write(&p, json).unwrap();
        let cfg = MmFreeConfig::load(&p).unwrap();
        assert_eq!(cfg, {
            let mut c = MmFreeConfig::published_370m();
            c.torch_dtype = Some("bfloat16".into());
            c
        });
        std::fs::write(
            &p,
            json.replace(
                r#""hidden_ratio":4"#,
                r#""hidden_ratio":18446744073709551615"#,
            ),
        )
        .unwrap();
        let err = MmFreeConfig::load(&p).unwrap_err().to_string();
        assert!(
            err.contains("hidden_ratio") && err.contains("overflow"),
            "{err}"
        );
        std::fs::write(&p, json.replace("hgrn_bit", "llama")).unwrap();
        let err = MmFreeConfig::load(&p).unwrap_err().to_string();
        assert!(err.contains("model_type is 'llama'"), "{err}");
    }
}
