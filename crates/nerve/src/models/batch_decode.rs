//! Many sequences decoded together, each with its own recurrent state: the MatMul-free packed
//! engine through [`Engine::step_batch`] (one weight pass for all of them), SpikeGPT through
//! Burn's batch dimension. Sequences open and close between steps, which is what a server's
//! continuous batching needs.

use std::path::Path;

use burn::tensor::{Device, Tensor};

use super::language_model::{model_type, token_tensor, LanguageModel, LmArch};
use super::mmfree::engine::{BitLinearMatrix, Engine, Stream};
use super::mmfree::{self, MmFreeEngine};
use super::spikegpt::{self, BlockState, SpikeGpt, SpikeGptState, WkvState};
use crate::error::{Error, Result};
use crate::kernels::ternary::Kernel;
use crate::text::Tokenizer;

/// Sequences in numbered slots, advanced one token each per [`step`](Self::step).
pub trait BatchDecoder: Send {
    /// Vocabulary size (length of the logits).
    fn vocab_size(&self) -> usize;
    /// Opens a sequence with an empty context; returns its slot.
    fn open(&mut self) -> usize;
    /// Forgets the sequence in `slot`, which a later [`open`](Self::open) may reuse.
    fn close(&mut self, slot: usize);
    /// Feeds `tokens[i]` to the sequence in `slots[i]` (distinct open slots), all at once;
    /// errors (changing nothing) on a token id not below the vocabulary size.
    fn step(&mut self, slots: &[usize], tokens: &[u32]) -> Result<()>;
    /// The logits after the last token fed to `slot`.
    fn logits(&self, slot: usize) -> &[f32];
    /// Feeds several tokens to one sequence (a prompt); by default one [`step`](Self::step)
    /// each, faster where the model can take them together.
    fn prefill(&mut self, slot: usize, tokens: &[u32]) -> Result<()> {
        for &t in tokens {
            self.step(&[slot], &[t])?;
        }
        Ok(())
    }
}

/// Puts `value` in the first free slot.
fn take_slot<T>(slots: &mut Vec<Option<T>>, value: T) -> usize {
    match slots.iter().position(Option::is_none) {
        Some(i) => {
            slots[i] = Some(value);
            i
        }
        None => {
            slots.push(Some(value));
            slots.len() - 1
        }
    }
}

/// Refuses slot lists that name a closed slot twice or differ in length from the tokens.
fn check_slots<T>(slots: &[Option<T>], chosen: &[usize], tokens: &[u32]) -> Result<()> {
    if chosen.len() != tokens.len() {
        return Err(Error::invalid(
            "tokens",
            format!("{} tokens for {} sequences", tokens.len(), chosen.len()),
        ));
    }
    let mut seen = vec![false; slots.len()];
    for &s in chosen {
        if !slots.get(s).is_some_and(Option::is_some) || std::mem::replace(&mut seen[s], true) {
            return Err(Error::invalid(
                "slot",
                format!("{s} is not open or named twice"),
            ));
        }
    }
    Ok(())
}

/// The open sequence in `slot`, or an error naming the slot.
fn open_slot<T>(slots: &mut [Option<T>], slot: usize) -> Result<&mut T> {
    slots
        .get_mut(slot)
        .and_then(Option::as_mut)
        .ok_or_else(|| Error::invalid("slot", format!("{slot} is not open")))
}

/// A MatMul-free [`Engine`] with its sequences.
pub struct EngineBatch<M> {
    engine: Engine<M>,
    streams: Vec<Option<Stream>>,
}

impl<M: BitLinearMatrix> EngineBatch<M> {
    /// Wraps an engine (its own single-sequence state is not used).
    pub fn new(engine: Engine<M>) -> Self {
        Self {
            engine,
            streams: Vec::new(),
        }
    }
}

impl<M: BitLinearMatrix + Send> BatchDecoder for EngineBatch<M> {
    fn vocab_size(&self) -> usize {
        self.engine.config().vocab_size
    }

    fn open(&mut self) -> usize {
        let stream = self.engine.new_stream();
        take_slot(&mut self.streams, stream)
    }

    fn close(&mut self, slot: usize) {
        if let Some(s) = self.streams.get_mut(slot) {
            *s = None;
        }
    }

    fn step(&mut self, slots: &[usize], tokens: &[u32]) -> Result<()> {
        check_slots(&self.streams, slots, tokens)?;
        // `step_batch` takes the streams in slot order; the tokens follow them.
        let mut token_of = vec![None; self.streams.len()];
        for (&s, &t) in slots.iter().zip(tokens) {
            token_of[s] = Some(t);
        }
        let (mut chosen, mut ordered) = (Vec::new(), Vec::new());
        for (stream, token) in self.streams.iter_mut().zip(token_of) {
            if let (Some(stream), Some(t)) = (stream.as_mut(), token) {
                chosen.push(stream);
                ordered.push(t);
            }
        }
        self.engine.step_batch(&mut chosen, &ordered)
    }

    fn logits(&self, slot: usize) -> &[f32] {
        self.streams[slot].as_ref().map_or(&[], Stream::logits)
    }

    fn prefill(&mut self, slot: usize, tokens: &[u32]) -> Result<()> {
        self.engine
            .prefill(open_slot(&mut self.streams, slot)?, tokens)
    }
}

/// One SpikeGPT sequence: its state (batch 1; `None` before the first token) and logits.
struct SpikeGptSeq {
    state: Option<SpikeGptState>,
    logits: Vec<f32>,
}

/// SpikeGPT in recurrent mode; each step stacks the chosen sequences' states on Burn's batch
/// dimension, runs one token for all of them and splits the states again.
pub struct SpikeGptBatch {
    model: SpikeGpt,
    device: Device,
    seqs: Vec<Option<SpikeGptSeq>>,
}

impl SpikeGptBatch {
    /// Wraps an inference model living on `device` (a non-autodiff device).
    pub fn new(model: SpikeGpt, device: Device) -> Self {
        Self {
            model,
            device,
            seqs: Vec::new(),
        }
    }
}

/// The seven `[B, d]` tensors of a block state, in a fixed order.
fn block_tensors(b: BlockState) -> [Tensor<2>; 7] {
    [
        b.att_prev, b.ffn_prev, b.wkv.aa, b.wkv.bb, b.wkv.pp, b.v_att, b.v_ffn,
    ]
}

fn block_from([att_prev, ffn_prev, aa, bb, pp, v_att, v_ffn]: [Tensor<2>; 7]) -> BlockState {
    BlockState {
        att_prev,
        ffn_prev,
        wkv: WkvState { aa, bb, pp },
        v_att,
        v_ffn,
    }
}

/// Stacks batch-1 states into one state of batch `states.len()`.
fn stack_states(states: Vec<SpikeGptState>, layers: usize) -> SpikeGptState {
    let mut per_block: Vec<[Vec<Tensor<2>>; 7]> = (0..layers).map(|_| Default::default()).collect();
    for state in states {
        for (block, parts) in state.blocks.into_iter().zip(&mut per_block) {
            for (t, part) in block_tensors(block).into_iter().zip(parts.iter_mut()) {
                part.push(t);
            }
        }
    }
    SpikeGptState {
        blocks: per_block
            .into_iter()
            .map(|parts| block_from(parts.map(|p| Tensor::cat(p, 0))))
            .collect(),
    }
}

/// Splits a state of batch N into N batch-1 states.
fn split_state(state: SpikeGptState, n: usize) -> Vec<SpikeGptState> {
    let mut out: Vec<SpikeGptState> = (0..n)
        .map(|_| SpikeGptState { blocks: Vec::new() })
        .collect();
    for block in state.blocks {
        let parts = block_tensors(block).map(|t| t.split(1, 0));
        let mut iters = parts.map(Vec::into_iter);
        for seq in &mut out {
            let tensors = iters
                .each_mut()
                .map(|it| it.next().expect("one row per sequence"));
            seq.blocks.push(block_from(tensors));
        }
    }
    out
}

impl BatchDecoder for SpikeGptBatch {
    fn vocab_size(&self) -> usize {
        self.model.config().vocab_size
    }

    fn open(&mut self) -> usize {
        let seq = SpikeGptSeq {
            state: None,
            logits: Vec::new(),
        };
        take_slot(&mut self.seqs, seq)
    }

    fn close(&mut self, slot: usize) {
        if let Some(s) = self.seqs.get_mut(slot) {
            *s = None;
        }
    }

    fn step(&mut self, slots: &[usize], tokens: &[u32]) -> Result<()> {
        check_slots(&self.seqs, slots, tokens)?;
        super::generate::check_ids(tokens, self.vocab_size())?;
        let config = self.model.config().clone();
        let states = slots
            .iter()
            .map(|&s| {
                let seq = self.seqs[s].as_mut().expect("checked open");
                seq.state
                    .take()
                    .unwrap_or_else(|| SpikeGptState::zeros(&config, 1, &self.device))
            })
            .collect();
        let n = slots.len();
        let x = token_tensor(tokens, n, 1, &self.device);
        let (logits, state) = self
            .model
            .forward_with_state(x, Some(stack_states(states, config.n_layer)));
        let values: Vec<f32> = logits.into_data().iter::<f32>().collect();
        let v = config.vocab_size;
        for ((&s, state), row) in slots
            .iter()
            .zip(split_state(state, n))
            .zip(values.chunks(v))
        {
            let seq = self.seqs[s].as_mut().expect("checked open");
            seq.state = Some(state);
            seq.logits.clear();
            seq.logits.extend_from_slice(row);
        }
        Ok(())
    }

    fn logits(&self, slot: usize) -> &[f32] {
        self.seqs[slot].as_ref().map_or(&[], |s| &s.logits)
    }

    fn prefill(&mut self, slot: usize, tokens: &[u32]) -> Result<()> {
        super::generate::check_ids(tokens, self.vocab_size())?;
        let seq = open_slot(&mut self.seqs, slot)?;
        if tokens.is_empty() {
            return Ok(());
        }
        // One recurrent-mode call over the whole prompt, no stacking per token.
        let x = token_tensor(tokens, 1, tokens.len(), &self.device);
        let (logits, state) = self.model.forward_with_state(x, seq.state.take());
        let [_, t, v] = logits.dims();
        let last: Tensor<3> = logits.slice([0..1, t - 1..t, 0..v]);
        seq.state = Some(state);
        seq.logits = last.into_data().iter::<f32>().collect();
        Ok(())
    }
}

/// A model directory opened for batched decoding.
pub struct BatchModel {
    /// The decoder.
    pub decoder: Box<dyn BatchDecoder>,
    /// Which architecture it is.
    pub arch: LmArch,
    /// Token put before every prompt (the checkpoint's `bos_token_id` with its own tokenizer).
    pub bos: Option<u32>,
    /// Token that ends a completion (`eos_token_id`, or the tokenizer's end-of-text token).
    pub eos: Option<u32>,
    /// One line naming the model and its shape.
    pub description: String,
}

/// Opens any directory [`LanguageModel::load_dir`] reads: MatMul-free models on the packed
/// ternary engine, SpikeGPT (trained here or released) on Burn's `device`. Errors if the
/// tokenizer has more tokens than the model.
pub fn open_dir(dir: &Path, tokenizer: &Tokenizer, device: &Device) -> Result<BatchModel> {
    let is_mmfree = !spikegpt::released::is_released_dir(dir)
        && model_type(&dir.join("config.json"))? == mmfree::config::MODEL_TYPE;
    let hf = matches!(tokenizer, Tokenizer::HuggingFace(_));
    let model = if is_mmfree {
        let weights = mmfree::hf_checkpoint::load_dir(dir)?;
        let c = &weights.config;
        BatchModel {
            arch: LmArch::MmFree,
            bos: c.bos_token_id.filter(|_| hf),
            eos: c.eos_token_id.filter(|_| hf),
            description: format!(
                "mmfree V={} d={} L={} ({} parameters, packed ternary engine, {} kernel)",
                c.vocab_size,
                c.hidden_size,
                c.num_hidden_layers,
                weights.num_params(),
                Kernel::detect().name()
            ),
            decoder: Box::new(EngineBatch::new(MmFreeEngine::new(&weights)?)),
        }
    } else {
        let LanguageModel::SpikeGpt(model) = LanguageModel::load_dir(dir, device)? else {
            return Err(Error::invalid("model", "expected a SpikeGPT directory"));
        };
        let c = model.config();
        BatchModel {
            arch: LmArch::SpikeGpt,
            bos: None,
            eos: tokenizer.end_of_text(),
            description: format!("spikegpt V={} d={} L={}", c.vocab_size, c.n_embd, c.n_layer),
            decoder: Box::new(SpikeGptBatch::new(model, device.clone())),
        }
    };
    if tokenizer.vocab_size() > model.decoder.vocab_size() {
        return Err(Error::invalid(
            "model",
            format!(
                "the tokenizer has {} tokens but the model only {}",
                tokenizer.vocab_size(),
                model.decoder.vocab_size()
            ),
        ));
    }
    Ok(model)
}
