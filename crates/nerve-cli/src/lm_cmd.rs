//! `nerve lm train | generate | eval`: the language models (`serve` and `load-test` are in
//! `serve_cmd.rs`).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

use burn::module::Module;
use burn::tensor::Device;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use nerve::models::generate::{generate, BurnStepper, TokenStepper};
use nerve::models::language_model::{LanguageModel, LmArch, LmShape};
use nerve::models::mmfree;
use nerve::models::mmfree::engine::{FloatEngine, MmFreeEngine};
use nerve::models::spikegpt::released;
use nerve::text::corpus::{read_text, split_tail};
use nerve::text::tokenizer::StreamDecoder;
use nerve::text::{Corpus, Sampler, SamplerConfig, Tokenizer};
use nerve::train::lm_trainer::{
    evaluate_disjoint, evaluate_tokens, saved_config, train_lm, LmEvent, LmSession, LmTrainConfig,
};
use nerve::viz::LmCurves;
use nerve::{Error, Result};

/// The `nerve lm` subcommands.
#[derive(Subcommand, Debug)]
pub enum LmCommand {
    /// Train a language model from scratch on a text file (last part held out).
    Train(Box<TrainArgs>),
    /// Generate text from a model directory, streamed as it is drawn.
    Generate(GenerateArgs),
    /// Score a text with a model: nats per token and bits per character.
    Eval(EvalArgs),
    /// Serve a model over HTTP: OpenAI-style completions, streamed, continuously batched.
    Serve(crate::serve_cmd::ServeArgs),
    /// Load-test a completions server: concurrent streaming clients for a fixed time.
    LoadTest(crate::serve_cmd::LoadTestArgs),
}

/// Options of `nerve lm train`.
#[derive(Args, Debug)]
#[command(args_override_self = true)]
pub struct TrainArgs {
    #[arg(long, help = crate::recipe_args::CONFIG_HELP)]
    config: Option<PathBuf>,
    /// Architecture: mmfree (MatMul-free LM, HGRNBit) or spikegpt.
    #[arg(long, default_value = "mmfree")]
    arch: String,
    /// UTF-8 text to train on (e.g. ../shared/data/text/tinyshakespeare.txt).
    #[arg(long)]
    text: PathBuf,
    /// A Hugging Face tokenizer.json; without it the model reads characters.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Model directory to write (default runs/lm-<arch>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run saved in --out (same settings; --steps may be raised).
    #[arg(long)]
    resume: bool,
    /// Model width.
    #[arg(long, default_value_t = 256)]
    d_model: usize,
    /// Number of blocks.
    #[arg(long, default_value_t = 4)]
    layers: usize,
    /// Tokens per training window.
    #[arg(long, default_value_t = 128)]
    seq_len: usize,
    /// Windows per step.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Optimizer steps in total.
    #[arg(long, default_value_t = 2000)]
    steps: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 2e-3)]
    lr: f64,
    /// Final learning rate of the cosine decay.
    #[arg(long, default_value_t = 1e-4)]
    min_lr: f64,
    /// Linear warm-up steps.
    #[arg(long, default_value_t = 100)]
    warmup: usize,
    /// Optimizer: adam, adamw[:WD], sgd[:MOMENTUM].
    #[arg(long, default_value = "adamw:0.01")]
    optimizer: String,
    /// Clip the gradient norm to this value.
    #[arg(long, default_value_t = 1.0)]
    clip: f64,
    /// Steps between held-out evaluations.
    #[arg(long, default_value_t = 250)]
    eval_every: usize,
    /// Held-out tokens scored at periodic evaluations, in windows spread over the held-out text
    /// (the final evaluation scores all of it).
    #[arg(long, default_value_t = 16384)]
    eval_tokens: usize,
    /// Steps between checkpoints (besides those at evaluations).
    #[arg(long, default_value_t = 0)]
    checkpoint_every: usize,
    /// Stop after this many minutes of training (then evaluate and save).
    #[arg(long)]
    max_minutes: Option<f64>,
    /// Fraction of the text held out at its end.
    #[arg(long, default_value_t = 0.1)]
    held_out: f64,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Characters of sample text printed at the end.
    #[arg(long, default_value_t = 400)]
    sample_tokens: usize,
    /// Backend: flex (pure-Rust CPU), or wgpu / cuda in builds with those features.
    #[arg(long, default_value = "flex")]
    device: String,
}

/// Sampling options.
#[derive(Args, Debug, Clone)]
pub struct SampleArgs {
    /// Softmax temperature; 0 picks the most likely token.
    #[arg(long, default_value_t = 0.8)]
    temperature: f64,
    /// Keep the k most likely tokens (0 = all).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Nucleus sampling: keep the most likely tokens up to this probability mass.
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
    /// Seed of the draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

impl SampleArgs {
    fn sampler(&self) -> Result<Sampler> {
        Sampler::new(SamplerConfig {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            seed: self.seed,
        })
    }
}

/// Options of `nerve lm generate`.
#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Model directory: a Nerve run or a published checkpoint (config.json, model.safetensors,
    /// tokenizer), or a released SpikeGPT (.pth, config.json, 20B_tokenizer.json or vocab.json).
    #[arg(long)]
    model: PathBuf,
    /// Text to continue.
    #[arg(long, default_value = "\n")]
    prompt: String,
    /// Tokens to generate.
    #[arg(long, default_value_t = 200)]
    max_tokens: usize,
    #[command(flatten)]
    sample: SampleArgs,
    /// MatMul-free models: packed (ternary, additions only), float (the same ternary weights as
    /// `f32`, plain dot products; `reference` is its older name) or burn.
    #[arg(long, default_value = "packed")]
    engine: String,
    /// Threads of the packed engine (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

/// Options of `nerve lm eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Model directory (as for `nerve lm generate`).
    #[arg(long)]
    model: PathBuf,
    /// UTF-8 text to score.
    #[arg(long)]
    text: PathBuf,
    /// Score only the held-out tail (the fraction given by --held-out), as training does.
    #[arg(long)]
    held_out_only: bool,
    /// Fraction of the text held out at its end (with --held-out-only).
    #[arg(long, default_value_t = 0.1)]
    held_out: f64,
    /// Context window in tokens (each scored token sees at least half of it); default 256, or
    /// the `ctx_len` of a released SpikeGPT's config.json.
    #[arg(long)]
    window: Option<usize>,
    /// Score disjoint windows, every token from a fresh state, as SpikeGPT's and RWKV's
    /// trainers compute their loss (compare with a trainer's printed loss).
    #[arg(long)]
    disjoint: bool,
    /// Windows per batch.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
}

/// Runs a `nerve lm` subcommand.
pub fn run(cmd: LmCommand) -> Result<()> {
    match cmd {
        LmCommand::Train(args) => train(*args),
        LmCommand::Generate(args) => generate_cmd(args),
        LmCommand::Eval(args) => eval(args),
        LmCommand::Serve(args) => crate::serve_cmd::serve(args),
        LmCommand::LoadTest(args) => crate::serve_cmd::load_test(args),
    }
}

fn train(args: TrainArgs) -> Result<()> {
    crate::recipe_args::announce(args.config.as_deref());
    let arch = LmArch::parse(&args.arch)?;
    let device = nerve::device::parse(&args.device)?;
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| nerve::train::lm_trainer::default_dir(&args.arch));
    let text = read_text(&args.text)?;
    let tokenizer = match (&args.tokenizer, args.resume) {
        (_, true) => Tokenizer::load_dir(&dir)?,
        (Some(path), false) => Tokenizer::from_hf_file(path)?,
        (None, false) => Tokenizer::chars_from_text(&text)?,
    };
    let cfg = LmTrainConfig {
        shape: LmShape {
            arch,
            vocab_size: tokenizer.vocab_size(),
            d_model: args.d_model,
            layers: args.layers,
        },
        seq_len: args.seq_len,
        batch_size: args.batch_size,
        steps: args.steps,
        lr: args.lr,
        min_lr: args.min_lr,
        warmup: args.warmup,
        optimizer: args.optimizer.clone(),
        clip: (args.clip > 0.0).then_some(args.clip),
        eval_every: args.eval_every,
        eval_tokens: args.eval_tokens,
        checkpoint_every: args.checkpoint_every,
        max_minutes: args.max_minutes,
        seed: args.seed,
        held_out: args.held_out,
    };
    cfg.validate()?;
    let train_device = device.clone().autodiff();
    let session = if args.resume {
        let saved = saved_config(&dir)?;
        if saved.shape != cfg.shape {
            return Err(Error::invalid(
                "resume",
                format!(
                    "{} holds a {:?} model, the options ask for {:?}",
                    dir.display(),
                    saved.shape,
                    cfg.shape
                ),
            ));
        }
        LmSession::resume(&dir, &cfg, &train_device)?
    } else {
        if dir.join(nerve::models::language_model::MODEL_FILE).exists() {
            return Err(Error::invalid(
                "out",
                format!(
                    "{} already holds a model; pass --resume to continue it or choose another --out",
                    dir.display()
                ),
            ));
        }
        LmSession::new(&cfg, &train_device)?
    };
    let corpus = Corpus::new(&args.text, &text, &tokenizer, cfg.held_out)?;
    println!(
        "{}: {} training / {} held-out tokens ({}), model {} -> {}",
        args.text.display(),
        corpus.train.len(),
        corpus.held_out.len(),
        tokenizer.describe(),
        session.model.describe(),
        dir.display()
    );
    let started = Instant::now();
    // The trainer does not draw: its curves are redrawn here each time it saves the run.
    let mut curves = LmCurves::new(dir.join("curves.png"), &session.history);
    let mut curves_error = None;
    let mut report = progress();
    let session = train_lm(
        session,
        &corpus,
        &tokenizer,
        &cfg,
        &dir,
        &train_device,
        &mut |event| {
            if curves_error.is_none() {
                curves_error = curves.observe(&event).err();
            }
            report(event);
        },
    )?;
    if let Some(e) = curves_error {
        return Err(e);
    }
    let last = session
        .history
        .iter()
        .rev()
        .find_map(|r| r.eval_bpc.zip(r.eval_nats));
    if let Some((bpc, nats)) = last {
        println!(
            "held-out: {nats:.4} nats/token, {bpc:.4} bits/char after {} steps ({:.1} min this process)",
            session.step,
            started.elapsed().as_secs_f64() / 60.0
        );
    }
    println!("model saved in {}", dir.display());
    if args.sample_tokens > 0 {
        println!("--- sample (temperature 0.8, seed {}) ---", args.seed);
        let model = session.model.valid();
        let mut stepper: Box<dyn TokenStepper> = match &model {
            LanguageModel::MmFree(m) => Box::new(MmFreeEngine::new(&m.to_weights())?),
            LanguageModel::SpikeGpt(_) => Box::new(BurnStepper::new(model, device.clone())),
        };
        // A newline starts a char model's sample; a word tokenizer may have no token for it,
        // so fall back to the first token of the text.
        let prompt = tokenizer
            .encode("\n")
            .ok()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| vec![corpus.train.first().copied().unwrap_or(0)]);
        let sample = SampleArgs {
            temperature: 0.8,
            top_k: 0,
            top_p: 1.0,
            seed: args.seed,
        };
        stream(
            &tokenizer,
            stepper.as_mut(),
            &prompt,
            &sample,
            args.sample_tokens,
            None,
        )?;
        println!("\n---");
    }
    Ok(())
}

/// Generates and prints tokens as they come; returns (tokens, seconds).
fn stream(
    tokenizer: &Tokenizer,
    model: &mut dyn TokenStepper,
    prompt: &[u32],
    sample: &SampleArgs,
    max_tokens: usize,
    stop: Option<u32>,
) -> Result<(usize, f64)> {
    let mut sampler = sample.sampler()?;
    let mut decoder = StreamDecoder::new(tokenizer);
    let mut stdout = std::io::stdout().lock();
    let started = Instant::now();
    let out = generate(model, prompt, &mut sampler, max_tokens, stop, &mut |id| {
        let piece = decoder.push(id)?;
        let _ = stdout.write_all(piece.as_bytes());
        let _ = stdout.flush();
        Ok(())
    })?;
    Ok((out.len(), started.elapsed().as_secs_f64()))
}

fn generate_cmd(args: GenerateArgs) -> Result<()> {
    let tokenizer = Tokenizer::load_dir(&args.model)?;
    // Check the prompt before the (possibly slow) model load.
    let mut prompt = tokenizer.encode(&args.prompt)?;
    args.sample.sampler()?;
    let device = Device::flex();
    let mtype = nerve::models::language_model::model_type(&args.model.join("config.json"))?;
    let is_mmfree = mtype == mmfree::config::MODEL_TYPE;
    let mut bos = None;
    let mut eos = None;
    let mut stepper: Box<dyn TokenStepper> = if is_mmfree && args.engine != "burn" {
        let loading = Instant::now();
        let weights = mmfree::hf_checkpoint::load_dir(&args.model)?;
        if matches!(tokenizer, Tokenizer::HuggingFace(_)) {
            bos = weights.config.bos_token_id;
            eos = weights.config.eos_token_id;
        }
        let engine: Box<dyn TokenStepper> = match args.engine.as_str() {
            "packed" => Box::new(MmFreeEngine::new(&weights)?),
            "float" | "reference" => Box::new(FloatEngine::new(&weights)?),
            other => {
                return Err(Error::invalid(
                    "engine",
                    format!("'{other}': expected packed, float or burn"),
                ))
            }
        };
        eprintln!(
            "loaded {} ({} parameters) in {:.1} s, {} engine ({} kernel)",
            args.model.display(),
            weights.num_params(),
            loading.elapsed().as_secs_f64(),
            args.engine,
            nerve::kernels::ternary::Kernel::detect().name()
        );
        engine
    } else {
        let model = LanguageModel::load_dir(&args.model, &device)?;
        eprintln!("loaded {} ({})", args.model.display(), model.describe());
        Box::new(BurnStepper::new(model, device.clone()))
    };
    if tokenizer.vocab_size() > stepper.vocab_size() {
        return Err(Error::invalid(
            "model",
            format!(
                "the tokenizer has {} tokens but the model only {}",
                tokenizer.vocab_size(),
                stepper.vocab_size()
            ),
        ));
    }
    if let Some(b) = bos {
        prompt.insert(0, b);
    }
    print!("{}", args.prompt);
    let run = || -> Result<(usize, f64)> {
        stream(
            &tokenizer,
            stepper.as_mut(),
            &prompt,
            &args.sample,
            args.max_tokens,
            eos,
        )
    };
    // Decoding runs on a worker of the pool, so its many small parallel sections per token
    // start as joins rather than as wake-ups from outside the pool.
    let (n, secs) = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads.unwrap_or(0))
        .build()
        .map_err(|e| Error::invalid("threads", e.to_string()))?
        .install(run)?;
    println!();
    eprintln!(
        "{n} tokens in {secs:.2} s ({:.1} tokens/s, prompt included)",
        n as f64 / secs.max(1e-9)
    );
    Ok(())
}

fn eval(args: EvalArgs) -> Result<()> {
    let tokenizer = Tokenizer::load_dir(&args.model)?;
    let device = Device::flex();
    let model = LanguageModel::load_dir(&args.model, &device)?;
    let text = read_text(&args.text)?;
    let scored = if args.held_out_only {
        split_tail(&text, args.held_out).1
    } else {
        &text
    };
    let tokens = tokenizer
        .encode(scored)
        .map_err(|e| Error::format(&args.text, e.to_string()))?;
    let chars = scored.chars().count();
    let window = args
        .window
        .unwrap_or_else(|| released_ctx_len(&args.model).unwrap_or(256));
    let started = Instant::now();
    let e = if args.disjoint {
        evaluate_disjoint(&model, &tokens, chars, window, args.batch_size, &device)?
    } else {
        evaluate_tokens(
            &model,
            &tokens,
            chars,
            window,
            args.batch_size,
            None,
            &device,
        )?
    };
    println!(
        "{}: {} tokens scored in {} windows of {window} with {} ({:.1} s)",
        args.text.display(),
        e.tokens,
        if args.disjoint {
            "disjoint"
        } else {
            "overlapping"
        },
        model.describe(),
        started.elapsed().as_secs_f64()
    );
    println!("cross-entropy: {:.4} nats/token", e.nats_per_token);
    println!("bits per character: {:.4}", e.bits_per_char);
    Ok(())
}

/// The `ctx_len` of a released SpikeGPT directory's config.json, if it is one.
fn released_ctx_len(dir: &std::path::Path) -> Option<usize> {
    if !released::is_released_dir(dir) {
        return None;
    }
    released::ReleasedConfig::load(&dir.join("config.json"))
        .ok()?
        .ctx_len
}

fn progress() -> impl FnMut(LmEvent) {
    let interactive = std::io::stderr().is_terminal();
    let mut pb: Option<ProgressBar> = None;
    let mut total = 0;
    let mut avg = None::<f64>;
    move |event| match event {
        LmEvent::Start {
            step,
            total: t,
            params,
        } => {
            total = t;
            println!("{params} parameters; steps {step}..{t}");
            let bar = ProgressBar::new(t as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>6} [{bar:30}] {pos}/{len} {elapsed_precise}<{eta_precise} {msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix("train");
            bar.set_position(step as u64);
            if interactive {
                pb = Some(bar);
            }
        }
        LmEvent::Step(r) => {
            // An exponential average reads better than one noisy batch.
            let a = avg.map_or(r.loss, |a| 0.98 * a + 0.02 * r.loss);
            avg = Some(a);
            let msg = format!(
                "loss {a:.3} ({:.3} bits/token) lr {:.2e}",
                a / std::f64::consts::LN_2,
                r.lr
            );
            if let Some(pb) = &pb {
                pb.set_position(r.step as u64);
                pb.set_message(msg);
            } else if r.step % 50 == 0 || r.step == total {
                println!("step {}/{total}: {msg} ({:.0} s)", r.step, r.seconds);
            }
        }
        LmEvent::Eval { step, eval } => {
            let line = format!(
                "step {step}: held-out {:.4} nats/token, {:.4} bits/char ({} tokens)",
                eval.nats_per_token, eval.bits_per_char, eval.tokens
            );
            match &pb {
                Some(pb) => pb.println(line),
                None => println!("{line}"),
            }
        }
        LmEvent::Saved { .. } => {}
    }
}
