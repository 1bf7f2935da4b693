//! Language-model training: a run resumed from its checkpoint continues exactly as an unbroken
//! one, for both architectures, and evaluation counts bits per character correctly.

use burn::module::Module;
use burn::tensor::Device;
use nerve::models::language_model::{LanguageModel, LmArch, LmShape};
use nerve::text::{Corpus, Tokenizer};
use nerve::train::lm_trainer::{evaluate_tokens, train_lm, LmSession, LmTrainConfig};

const TEXT: &str = "to be, or not to be, that is the question: whether 'tis nobler in the mind \
                    to suffer the slings and arrows of outrageous fortune, or to take arms \
                    against a sea of troubles and by opposing end them.";

fn config(arch: LmArch, vocab: usize, steps: usize) -> LmTrainConfig {
    LmTrainConfig {
        shape: LmShape {
            arch,
            vocab_size: vocab,
            d_model: 16,
            layers: 2,
        },
        seq_len: 12,
        batch_size: 3,
        steps,
        lr: 3e-3,
        min_lr: 1e-4,
        warmup: 2,
        optimizer: "adamw:0.01".into(),
        clip: Some(1.0),
        eval_every: 2,
        eval_tokens: 40,
        checkpoint_every: 0,
        max_minutes: None,
        seed: 5,
        held_out: 0.2,
    }
}

fn losses(session: &LmSession) -> Vec<f64> {
    session.history.iter().map(|r| r.loss).collect()
}

fn resume_matches_unbroken(arch: LmArch) {
    let _turn = crate::common::rng_turn();
    let device = Device::flex().autodiff();
    let tok = Tokenizer::chars_from_text(TEXT).unwrap();
    let corpus = Corpus::new("verse.txt", TEXT, &tok, 0.2).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let full = config(arch, tok.vocab_size(), 4);

    let s = LmSession::new(&full, &device).unwrap();
    let unbroken = train_lm(
        s,
        &corpus,
        &tok,
        &full,
        &dir.path().join("a"),
        &device,
        &mut |_| {},
    )
    .unwrap();

    let half = config(arch, tok.vocab_size(), 2);
    let b = dir.path().join("b");
    let s = LmSession::new(&half, &device).unwrap();
    train_lm(s, &corpus, &tok, &half, &b, &device, &mut |_| {}).unwrap();
    let s = LmSession::resume(&b, &full, &device).unwrap();
    assert_eq!(s.step, 2);
    let resumed = train_lm(s, &corpus, &tok, &full, &b, &device, &mut |_| {}).unwrap();

    assert_eq!(losses(&unbroken), losses(&resumed), "{arch:?}");
    let eval = |m: &LanguageModel| {
        evaluate_tokens(
            &m.valid(),
            &corpus.held_out,
            corpus.held_out_chars,
            12,
            4,
            None,
            &Device::flex(),
        )
        .unwrap()
    };
    let (a, r) = (eval(&unbroken.model), eval(&resumed.model));
    assert_eq!(a, r);
    // One token per character: bits per character is nats per token over ln 2.
    assert!((a.bits_per_char - a.nats_per_token / std::f64::consts::LN_2).abs() < 1e-9);
    assert_eq!(a.tokens, corpus.held_out.len() - 1);
    // A limited evaluation scores about that many tokens, spread over the text.
    let part = evaluate_tokens(
        &unbroken.model.valid(),
        &corpus.held_out,
        corpus.held_out_chars,
        8,
        4,
        Some(12),
        &Device::flex(),
    )
    .unwrap();
    assert!(part.tokens >= 12 && part.tokens < 12 + 8, "{}", part.tokens);
}

#[test]
fn mmfree_resume_matches_an_unbroken_run() {
    resume_matches_unbroken(LmArch::MmFree);
}

#[test]
fn spikegpt_resume_matches_an_unbroken_run() {
    resume_matches_unbroken(LmArch::SpikeGpt);
}
