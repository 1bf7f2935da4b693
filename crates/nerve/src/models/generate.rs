//! Text generation one token at a time, from any model that can take a token and return the
//! logits of the next: the Burn models in recurrent mode, or the MatMul-free engines (any
//! [`Decoder`]).

use burn::tensor::{Device, Tensor};

use super::language_model::{token_tensor, LanguageModel, LmState};
use super::mmfree::engine::Decoder;
use crate::error::{Error, Result};
use crate::text::Sampler;

/// A model read token by token, with its recurrent state inside.
pub trait TokenStepper: Send {
    /// Vocabulary size (length of the logits).
    fn vocab_size(&self) -> usize;
    /// Forgets the context.
    fn reset(&mut self);
    /// Reads `tokens` in order and returns the logits of the token after the last one.
    fn feed(&mut self, tokens: &[u32]) -> Result<Vec<f32>>;
}

/// A Burn [`LanguageModel`] in recurrent mode (use a non-autodiff device: `model.valid()`).
pub struct BurnStepper {
    model: LanguageModel,
    state: Option<LmState>,
    device: Device,
}

impl BurnStepper {
    /// Wraps an inference model living on `device`.
    pub fn new(model: LanguageModel, device: Device) -> Self {
        Self {
            model,
            state: None,
            device,
        }
    }
}

impl TokenStepper for BurnStepper {
    fn vocab_size(&self) -> usize {
        self.model.vocab_size()
    }

    fn reset(&mut self) {
        self.state = None;
    }

    fn feed(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        if tokens.is_empty() {
            return Err(Error::invalid("tokens", "nothing to feed"));
        }
        check_ids(tokens, self.vocab_size())?;
        let x = token_tensor(tokens, 1, tokens.len(), &self.device);
        let (logits, state) = self.model.forward_with_state(x, self.state.take())?;
        self.state = Some(state);
        let [_, t, v] = logits.dims();
        let last: Tensor<3> = logits.slice([0..1, t - 1..t, 0..v]);
        Ok(last.into_data().iter::<f32>().collect())
    }
}

/// Errors naming the first token id not below `vocab`.
pub fn check_ids(tokens: &[u32], vocab: usize) -> Result<()> {
    match tokens.iter().find(|&&t| t as usize >= vocab) {
        Some(t) => Err(Error::invalid(
            "token id",
            format!("{t} is outside the model's vocabulary of {vocab}"),
        )),
        None => Ok(()),
    }
}

// Both MatMul-free engines (packed and float) step through the same trait.
impl<E: Decoder + Send> TokenStepper for E {
    fn vocab_size(&self) -> usize {
        self.config().vocab_size
    }

    fn reset(&mut self) {
        Decoder::reset(self);
    }

    fn feed(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        let (last, rest) = tokens
            .split_last()
            .ok_or_else(|| Error::invalid("tokens", "nothing to feed"))?;
        for &t in rest {
            self.step(t)?;
        }
        Ok(self.step(*last)?.to_vec())
    }
}

/// Generates up to `max_tokens` after `prompt`, calling `on_token` with each new token as it
/// is drawn (to stream it); stops early at `stop`. Returns the new tokens.
pub fn generate(
    model: &mut dyn TokenStepper,
    prompt: &[u32],
    sampler: &mut Sampler,
    max_tokens: usize,
    stop: Option<u32>,
    on_token: &mut dyn FnMut(u32) -> Result<()>,
) -> Result<Vec<u32>> {
    if prompt.is_empty() {
        return Err(Error::invalid(
            "prompt",
            "is empty; give at least one token",
        ));
    }
    let mut logits = model.feed(prompt)?;
    let mut out = Vec::with_capacity(max_tokens);
    for _ in 0..max_tokens {
        let next = sampler.sample(&logits)?;
        out.push(next);
        on_token(next)?;
        if Some(next) == stop {
            break;
        }
        logits = model.feed(&[next])?;
    }
    Ok(out)
}
