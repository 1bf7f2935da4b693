//! Training language models on a text corpus: random windows, AdamW with warm-up and cosine
//! decay, periodic held-out evaluation in bits per character, atomic checkpoints into a model
//! directory that `nerve lm generate` and `nerve lm eval` read directly, and exact resume.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::optimizer::OptimizerKind;
use super::schedule::Schedule;
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::models::generate::check_ids;
use crate::models::language_model::{token_tensor, LanguageModel, LmShape, MODEL_FILE};
use crate::store::checkpoint::{self, CheckpointMeta};
use crate::text::{Corpus, Tokenizer};

/// Settings of a language-model training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LmTrainConfig {
    /// Architecture and sizes.
    pub shape: LmShape,
    /// Tokens per training window.
    pub seq_len: usize,
    /// Windows per optimizer step.
    pub batch_size: usize,
    /// Optimizer steps in total (a resumed run continues up to this many).
    pub steps: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Final learning rate of the cosine decay.
    pub min_lr: f64,
    /// Linear warm-up steps.
    pub warmup: usize,
    /// Optimizer: `adam`, `adamw[:WD]`, `sgd[:M]`.
    pub optimizer: String,
    /// Gradient-norm clipping.
    pub clip: Option<f64>,
    /// Steps between held-out evaluations (0: only at the end).
    pub eval_every: usize,
    /// Held-out tokens scored at the periodic evaluations (the final one scores all).
    pub eval_tokens: usize,
    /// Steps between checkpoints (0: only at evaluations and the end).
    pub checkpoint_every: usize,
    /// Stop (with a checkpoint and a full evaluation) after this many minutes of training.
    pub max_minutes: Option<f64>,
    /// Seed of initialisation and data order.
    pub seed: u64,
    /// Fraction of the corpus held out at its end.
    pub held_out: f64,
}

impl LmTrainConfig {
    /// Refuses settings that cannot train, naming the option.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("seq-len", self.seq_len),
            ("batch-size", self.batch_size),
            ("steps", self.steps),
            ("d-model", self.shape.d_model),
            ("layers", self.shape.layers),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(Error::invalid(name, "must be at least 1"));
            }
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::invalid("lr", format!("{} (must be > 0)", self.lr)));
        }
        if !(self.min_lr.is_finite() && self.min_lr >= 0.0 && self.min_lr <= self.lr) {
            return Err(Error::invalid(
                "min-lr",
                format!("{} (must be in [0, lr])", self.min_lr),
            ));
        }
        if let Some(m) = self.max_minutes {
            if !(m.is_finite() && m > 0.0) {
                return Err(Error::invalid("max-minutes", format!("{m} (must be > 0)")));
            }
        }
        OptimizerKind::parse(&self.optimizer)?;
        Ok(())
    }

    /// Learning rate before optimizer step `step` (0-based): linear warm-up, cosine decay.
    pub fn lr_at(&self, step: usize) -> f64 {
        if step < self.warmup {
            return self.lr * (step + 1) as f64 / self.warmup as f64;
        }
        let decay = Schedule::Cosine {
            t_max: self.steps.saturating_sub(self.warmup).max(1),
            eta_min: self.min_lr,
        };
        decay.lr(self.lr, step - self.warmup)
    }
}

/// One row of the training log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LmRecord {
    /// Optimizer steps done.
    pub step: usize,
    /// Training loss of that step (nats per token).
    pub loss: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Seconds of training since the run (not this process) began.
    pub seconds: f64,
    /// Held-out nats per token, where evaluated at this step.
    pub eval_nats: Option<f64>,
    /// Held-out bits per character, where evaluated at this step.
    pub eval_bpc: Option<f64>,
}

/// Result of scoring a text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LmEval {
    /// Mean cross-entropy in nats per token.
    pub nats_per_token: f64,
    /// Bits per character (total bits over the characters the scored tokens cover).
    pub bits_per_char: f64,
    /// Tokens scored.
    pub tokens: usize,
}

impl LmEval {
    /// The scores of `count` tokens whose cross-entropies sum to `nats`, each token standing
    /// for `chars_per_token` characters of the text.
    fn from_nats(nats: f64, count: usize, chars_per_token: f64) -> Self {
        LmEval {
            nats_per_token: nats / count as f64,
            bits_per_char: nats
                / std::f64::consts::LN_2
                / (count as f64 * chars_per_token).max(1.0),
            tokens: count,
        }
    }
}

/// Progress reports of [`train_lm`].
#[derive(Debug, Clone)]
pub enum LmEvent {
    /// Training starts (or resumes) at `step` of `total`.
    Start {
        /// First step to run.
        step: usize,
        /// Total steps.
        total: usize,
        /// Parameters of the model.
        params: usize,
    },
    /// One optimizer step finished.
    Step(LmRecord),
    /// A held-out evaluation finished.
    Eval {
        /// After this many steps.
        step: usize,
        /// The scores.
        eval: LmEval,
    },
    /// A checkpoint was written.
    Saved {
        /// After this many steps.
        step: usize,
    },
}

/// A model in training with its optimizer and log.
pub struct LmSession {
    /// The model (on an autodiff device).
    pub model: LanguageModel,
    /// The optimizer state.
    pub optim: ModuleOptimizer,
    /// Steps done.
    pub step: usize,
    /// The log so far.
    pub history: Vec<LmRecord>,
    /// Training seconds of earlier processes of this run.
    pub seconds_before: f64,
}

const HISTORY_FILE: &str = "history.json";

impl LmSession {
    /// A new model of `cfg.shape`.
    pub fn new(cfg: &LmTrainConfig, device: &Device) -> Result<Self> {
        cfg.validate()?;
        device.seed(cfg.seed);
        let model = LanguageModel::init(&cfg.shape, device)?;
        let optim = OptimizerKind::parse(&cfg.optimizer)?.init(cfg.clip);
        Ok(Self {
            model,
            optim,
            step: 0,
            history: Vec::new(),
            seconds_before: 0.0,
        })
    }

    /// Resumes the run saved in `dir` (weights, optimizer state and log).
    pub fn resume(dir: &Path, cfg: &LmTrainConfig, device: &Device) -> Result<Self> {
        let fresh = LanguageModel::init(&cfg.shape, device)?;
        let arch = fresh.describe();
        let path = dir.join(MODEL_FILE);
        let (model, meta) = fresh.load_checkpoint(&path, &arch)?;
        let optim = OptimizerKind::parse(&cfg.optimizer)?.init(cfg.clip);
        let optim = model.load_optimizer(&path, optim)?;
        let history = load_history(dir)?;
        let seconds_before = history.last().map_or(0.0, |r| r.seconds);
        Ok(Self {
            model,
            optim,
            step: meta.step as usize,
            history,
            seconds_before,
        })
    }
}

fn load_history(dir: &Path) -> Result<Vec<LmRecord>> {
    let path = dir.join(HISTORY_FILE);
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::format(&path, format!("bad training log: {e}")))
}

/// Trains until `cfg.steps` (or `cfg.max_minutes`), evaluating and checkpointing into `dir`.
pub fn train_lm(
    mut session: LmSession,
    corpus: &Corpus,
    tokenizer: &Tokenizer,
    cfg: &LmTrainConfig,
    dir: &Path,
    device: &Device,
    on_event: &mut dyn FnMut(LmEvent),
) -> Result<LmSession> {
    cfg.validate()?;
    if tokenizer.vocab_size() != session.model.vocab_size() {
        return Err(Error::invalid(
            "tokenizer",
            format!(
                "{} tokens, but the model has a vocabulary of {}",
                tokenizer.vocab_size(),
                session.model.vocab_size()
            ),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    session.model.save_config(dir)?;
    tokenizer.save_dir(dir)?;
    let started = Instant::now();
    on_event(LmEvent::Start {
        step: session.step,
        total: cfg.steps,
        params: session.model.num_params(),
    });
    let out_of_time = |started: &Instant| {
        cfg.max_minutes
            .is_some_and(|m| started.elapsed().as_secs_f64() >= m * 60.0)
    };
    while session.step < cfg.steps && !out_of_time(&started) {
        let step = session.step;
        // Seeded per step, so a resumed run draws exactly the windows an unbroken one would.
        let step_seed = cfg.seed ^ (step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut rng = StdRng::seed_from_u64(step_seed);
        // Dropout draws from the device RNG; reseeding it per step keeps resume exact.
        device.seed(step_seed.rotate_left(17));
        let (x, y) = corpus.sample_windows(&mut rng, cfg.batch_size, cfg.seq_len)?;
        let x = token_tensor(&x, cfg.batch_size, cfg.seq_len, device);
        let y = token_tensor(&y, cfg.batch_size, cfg.seq_len, device);
        let lr = cfg.lr_at(step);
        let loss = session.model.loss(x, y);
        let value = loss.clone().into_scalar::<f64>();
        if !value.is_finite() {
            return Err(Error::NonFinite {
                value,
                epoch: 1,
                step: step + 1,
            });
        }
        let grads = GradientsParams::from_grads(loss.backward(), &session.model);
        session.model = session.optim.step(lr, session.model, grads);
        session.step += 1;
        let mut record = LmRecord {
            step: session.step,
            loss: value,
            lr,
            seconds: session.seconds_before + started.elapsed().as_secs_f64(),
            eval_nats: None,
            eval_bpc: None,
        };
        let last = session.step == cfg.steps || out_of_time(&started);
        let eval_now = last || (cfg.eval_every > 0 && session.step.is_multiple_of(cfg.eval_every));
        if eval_now {
            let limit = if last { None } else { Some(cfg.eval_tokens) };
            let eval = evaluate_tokens(
                &session.model.valid(),
                &corpus.held_out,
                corpus.held_out_chars,
                cfg.seq_len,
                cfg.batch_size,
                limit,
                &device.clone().inner(),
            )?;
            record.eval_nats = Some(eval.nats_per_token);
            record.eval_bpc = Some(eval.bits_per_char);
            on_event(LmEvent::Eval {
                step: session.step,
                eval,
            });
        }
        session.history.push(record.clone());
        on_event(LmEvent::Step(record));
        let save_now = eval_now
            || (cfg.checkpoint_every > 0 && session.step.is_multiple_of(cfg.checkpoint_every));
        if save_now {
            save_session(&session, cfg, dir)?;
            on_event(LmEvent::Saved { step: session.step });
        }
    }
    Ok(session)
}

/// Writes weights, optimizer state and the log into `dir`, each atomically.
pub fn save_session(session: &LmSession, cfg: &LmTrainConfig, dir: &Path) -> Result<()> {
    let meta = CheckpointMeta {
        arch: session.model.describe(),
        epoch: 0,
        step: session.step as u64,
        config: serde_json::to_value(cfg).expect("config serialises"),
        seed: cfg.seed,
    };
    let log = serde_json::to_string(&session.history).expect("log serialises");
    write_atomic(dir.join(HISTORY_FILE), log.as_bytes())?;
    session
        .model
        .save_checkpoint(&dir.join(MODEL_FILE), &session.optim, &meta)
}

/// The training configuration stored in a run's checkpoint (for `--resume`).
pub fn saved_config(dir: &Path) -> Result<LmTrainConfig> {
    let path = dir.join(MODEL_FILE);
    let meta = checkpoint::load_meta(&path)?;
    serde_json::from_value(meta.config)
        .map_err(|e| Error::format(&path, format!("not a language-model training run: {e}")))
}

/// Scores `tokens` (a contiguous text of `chars` characters) with overlapping windows: each
/// window of `window` tokens scores only its second half (the first window scores all), so
/// every scored token sees at least `window / 2` tokens of context. `limit` scores about that
/// many tokens, in windows spread evenly over the text.
pub fn evaluate_tokens(
    model: &LanguageModel,
    tokens: &[u32],
    chars: usize,
    window: usize,
    batch: usize,
    limit: Option<usize>,
    device: &Device,
) -> Result<LmEval> {
    // Characters per token of the whole text: bits per character divides by the characters
    // that the scored tokens cover (exactly one per token for a character model).
    let chars_per_token = chars as f64 / tokens.len().max(1) as f64;
    if tokens.len() < 2 {
        return Err(Error::invalid("evaluation text", "needs at least 2 tokens"));
    }
    check_ids(tokens, model.vocab_size())?;
    let window = window.min(tokens.len() - 1).max(1);
    let stride = (window / 2).max(1);
    // (start of the window, first position within it that is scored)
    let mut spans = vec![(0usize, 0usize)];
    let mut scored_to = window; // targets tokens[1..=window] are scored
    while scored_to < tokens.len() - 1 {
        let end = (scored_to + stride).min(tokens.len() - 1);
        let start = end - window;
        spans.push((start, scored_to - start));
        scored_to = end;
    }
    if let Some(limit) = limit {
        // Evenly spread windows represent the whole text; a prefix would not (a play's opening
        // scene is not its average).
        let per_span = stride.max(1);
        let wanted = limit.div_ceil(per_span).max(1);
        if wanted < spans.len() {
            let every = spans.len() as f64 / wanted as f64;
            spans = (0..wanted)
                .map(|i| spans[(i as f64 * every) as usize])
                .collect();
        }
    }
    let (mut nats, mut count) = (0.0f64, 0usize);
    for group in spans.chunks(batch.max(1)) {
        let mut x = Vec::with_capacity(group.len() * window);
        let mut y = Vec::with_capacity(group.len() * window);
        let mut mask = Vec::with_capacity(group.len() * window);
        for &(start, first) in group {
            x.extend_from_slice(&tokens[start..start + window]);
            y.extend_from_slice(&tokens[start + 1..start + window + 1]);
            mask.extend((0..window).map(|i| if i >= first { 1.0f32 } else { 0.0 }));
            count += window - first;
        }
        let rows = group.len();
        let logits = model.forward(token_tensor(&x, rows, window, device));
        let mask = Tensor::<2>::from_data(TensorData::new(mask, [rows, window]), device);
        nats += masked_nats(logits, token_tensor(&y, rows, window, device), mask)?;
    }
    Ok(LmEval::from_nats(nats, count, chars_per_token))
}

/// Scores `tokens` in disjoint windows of `window` tokens, every position of each from a fresh
/// state, as SpikeGPT's and RWKV's trainers compute their loss (a last, shorter window covers
/// the tail). Lower context per token than [`evaluate_tokens`], so a higher loss: the number to
/// compare with a trainer's printed loss.
pub fn evaluate_disjoint(
    model: &LanguageModel,
    tokens: &[u32],
    chars: usize,
    window: usize,
    batch: usize,
    device: &Device,
) -> Result<LmEval> {
    if tokens.len() < 2 {
        return Err(Error::invalid("evaluation text", "needs at least 2 tokens"));
    }
    check_ids(tokens, model.vocab_size())?;
    let window = window.max(1);
    let targets = tokens.len() - 1;
    let starts: Vec<usize> = (0..targets).step_by(window).collect();
    let (full, tail): (Vec<usize>, Vec<usize>) =
        starts.into_iter().partition(|&s| s + window <= targets);
    let (mut nats, mut count) = (0.0f64, 0usize);
    let groups = full
        .chunks(batch.max(1))
        .map(|g| (g.to_vec(), window))
        .chain(tail.iter().map(|&s| (vec![s], targets - s)));
    for (group, len) in groups {
        let x: Vec<u32> = group
            .iter()
            .flat_map(|&s| tokens[s..s + len].to_vec())
            .collect();
        let y: Vec<u32> = group
            .iter()
            .flat_map(|&s| tokens[s + 1..s + len + 1].to_vec())
            .collect();
        let rows = group.len();
        let logits = model.forward(token_tensor(&x, rows, len, device));
        let mask = Tensor::<2>::ones([rows, len], device);
        nats += masked_nats(logits, token_tensor(&y, rows, len, device), mask)?;
        count += rows * len;
    }
    let chars_per_token = chars as f64 / tokens.len() as f64;
    Ok(LmEval::from_nats(nats, count, chars_per_token))
}

fn masked_nats(logits: Tensor<3>, targets: Tensor<2, Int>, mask: Tensor<2>) -> Result<f64> {
    let picked = crate::loss::token_log_probs(logits, targets);
    let nats = -(picked * mask).sum().into_scalar::<f64>();
    if nats.is_finite() {
        Ok(nats)
    } else {
        Err(Error::invalid(
            "model",
            "produced non-finite logits on the evaluation text",
        ))
    }
}

/// Default model directory name for a run of `arch`.
pub fn default_dir(arch: &str) -> PathBuf {
    PathBuf::from("runs").join(format!("lm-{arch}"))
}
