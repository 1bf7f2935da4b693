//! The packed ternary engine against the float engine, and the engine's contract
//! (reset, state snapshots, lower bounds, bad token ids).

use nerve::kernels::ternary::Layout;
use nerve::models::mmfree::engine::{forget_lower_bounds, Decoder, FloatEngine, MmFreeEngine};
use nerve::models::mmfree::{MmFreeConfig, MmFreeWeights};

/// `max|a − b| / max|ref|`.
fn rel_diff(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    let diff = got
        .iter()
        .zip(want)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(scale > 0.0, "reference logits are all zero");
    diff / scale
}

fn tokens(n: usize, vocab: usize) -> Vec<u32> {
    (0..n).map(|k| ((k * 7 + 3) % vocab) as u32).collect()
}

/// Random weights whose lower bounds and norm weights are not the trivial init, so that γ and
/// every norm matter.
fn varied_weights(cfg: MmFreeConfig, seed: u64) -> MmFreeWeights {
    let mut w = MmFreeWeights::random(cfg, seed).unwrap();
    for (name, t) in w.tensors.iter_mut() {
        if name.ends_with("norm.weight") || name == "model.lower_bounds" {
            for (k, v) in t.data.iter_mut().enumerate() {
                *v += ((k * 37 % 17) as f32 - 8.0) / 16.0;
            }
        }
    }
    w
}

fn compare(weights: &MmFreeWeights, steps: &[u32], tol: f32) {
    let mut packed = MmFreeEngine::new(weights).unwrap();
    let mut float = FloatEngine::new(weights).unwrap();
    for (k, &t) in steps.iter().enumerate() {
        let want = float.step(t).unwrap().to_vec();
        let got = packed.step(t).unwrap();
        let rel = rel_diff(got, &want);
        assert!(rel < tol, "token {k}: relative difference {rel}");
    }
    for (a, b) in packed.state().iter().zip(float.state()) {
        assert!(rel_diff(a, b) < tol, "recurrent states differ");
    }
}

#[test]
fn packed_matches_float_on_a_tiny_model() {
    let cfg = MmFreeConfig::new(50, 64, 2);
    compare(&varied_weights(cfg, 1), &tokens(20, 50), 1e-3);
}

#[test]
fn packed_matches_float_on_one_layer_of_the_370m_shape() {
    // d = 1024 and I = 2816 as published, but one layer and a 256-token vocabulary (instead of
    // 32000) keep the float engine fast in the dev profile.
    let mut cfg = MmFreeConfig::published_370m();
    cfg.vocab_size = 256;
    cfg.num_hidden_layers = 1;
    assert_eq!(cfg.intermediate(), 2816);
    compare(&varied_weights(cfg, 2), &tokens(4, 256), 1e-3);
}

#[test]
fn random_builds_the_same_engine_as_random_weights() {
    let cfg = MmFreeConfig::new(40, 32, 3);
    let mut a = MmFreeEngine::random(cfg.clone(), 9).unwrap();
    let mut b = MmFreeEngine::new(&MmFreeWeights::random(cfg, 9).unwrap()).unwrap();
    assert_eq!(a.packed_bytes(), b.packed_bytes());
    for t in tokens(5, 40) {
        assert_eq!(a.step(t).unwrap(), b.step(t).unwrap());
    }
}

#[test]
fn a_clone_forks_generation_and_engines_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<MmFreeEngine>();
    send_sync::<FloatEngine>();
    // A clone shares the packed weights and copies the state: both continue alike.
    let mut a = MmFreeEngine::random(MmFreeConfig::new(40, 32, 2), 3).unwrap();
    a.step(1).unwrap();
    let mut b = a.clone();
    let la = a.step(2).unwrap().to_vec();
    let lb = b.step(2).unwrap().to_vec();
    assert_eq!(la, lb);
    assert_ne!(a.step(3).unwrap(), b.step(4).unwrap());
}

#[test]
fn reset_and_set_state_replay_logits_exactly() {
    let cfg = MmFreeConfig::new(50, 64, 2);
    let w = varied_weights(cfg, 3);
    let mut e = MmFreeEngine::new(&w).unwrap();
    let first = e.step(5).unwrap().to_vec();
    let second = e.step(6).unwrap().to_vec();
    assert_ne!(first, second);
    // Fork after three tokens: the continuation replays exactly from the snapshot.
    e.step(7).unwrap();
    let snapshot = e.state().to_vec();
    let a = e.step(8).unwrap().to_vec();
    e.step(9).unwrap();
    e.set_state(&snapshot).unwrap();
    assert_eq!(e.step(8).unwrap(), a.as_slice());
    e.reset();
    assert!(e.state().iter().all(|h| h.iter().all(|&v| v == 0.0)));
    assert_eq!(e.step(5).unwrap(), first.as_slice());
    assert!(e.set_state(&snapshot[..1]).is_err());

    let mut r = FloatEngine::new(&w).unwrap();
    let first = r.step(5).unwrap().to_vec();
    r.step(6).unwrap();
    r.reset();
    assert_eq!(r.step(5).unwrap(), first.as_slice());
}

#[test]
fn lower_bounds_follow_the_cumulative_softmax() {
    // Channel 0: softmax over layers of [0, ln 3] is [1/4, 3/4], so γ = [0, 3/4].
    // Channel 1: equal bounds over 2 layers give γ = [0, 1/2].
    let g = forget_lower_bounds(&[0.0, 0.0, 3f32.ln(), 0.0], 2, 2);
    assert_eq!(g[0], [0.0, 0.0]);
    assert!(
        (g[1][0] - 0.75).abs() < 1e-6 && (g[1][1] - 0.5).abs() < 1e-6,
        "{g:?}"
    );
    // Three equal layers: γ = [0, 1/3, 2/3].
    let g = forget_lower_bounds(&[1.0, 1.0, 1.0], 3, 1);
    assert!((g[1][0] - 1.0 / 3.0).abs() < 1e-6 && (g[2][0] - 2.0 / 3.0).abs() < 1e-6);
}

#[test]
fn a_lower_bound_of_one_freezes_the_second_layer_mixer() {
    // With γ_1 = 1 the forget gate of layer 1 is 1, so its state stays zero and its token
    // mixer outputs o_proj(0) = 0: layer 1's i_proj no longer matters. Layer 0 never uses γ.
    let cfg = MmFreeConfig::new(30, 32, 2);
    let mut w = MmFreeWeights::random(cfg, 4).unwrap();
    let lb = w.tensors.get_mut("model.lower_bounds").unwrap();
    lb.data[..32].fill(-40.0);
    lb.data[32..].fill(40.0);
    let mut changed = w.clone();
    for v in &mut changed
        .tensors
        .get_mut("model.layers.1.attn.i_proj.weight")
        .unwrap()
        .data
    {
        *v = -*v;
    }
    let mut a = MmFreeEngine::new(&w).unwrap();
    let mut b = MmFreeEngine::new(&changed).unwrap();
    for t in tokens(4, 30) {
        assert_eq!(a.step(t).unwrap(), b.step(t).unwrap());
    }
    assert!(a.state()[1].iter().all(|&v| v == 0.0));
    assert!(a.state()[0].iter().any(|&v| v != 0.0));

    // With the default bounds (γ_1 = 1/2) the same change does alter the logits.
    let mut w = MmFreeWeights::random(MmFreeConfig::new(30, 32, 2), 4).unwrap();
    let mut a = MmFreeEngine::new(&w).unwrap();
    for v in &mut w
        .tensors
        .get_mut("model.layers.1.attn.i_proj.weight")
        .unwrap()
        .data
    {
        *v = -*v;
    }
    let mut b = MmFreeEngine::new(&w).unwrap();
    assert_ne!(a.step(3).unwrap(), b.step(3).unwrap());
}

#[test]
fn use_lower_bound_false_drops_gamma() {
    let mut cfg = MmFreeConfig::new(30, 32, 2);
    let with = MmFreeWeights::random(cfg.clone(), 6).unwrap();
    cfg.use_lower_bound = false;
    let without = MmFreeWeights::random(cfg, 6).unwrap();
    assert!(!without.tensors.contains_key("model.lower_bounds"));
    let mut a = MmFreeEngine::new(&with).unwrap();
    let mut b = MmFreeEngine::new(&without).unwrap();
    let mut r = FloatEngine::new(&without).unwrap();
    // Same matrices (lower bounds draw no random numbers), different forget gates in layer 1.
    let la = a.step(1).unwrap().to_vec();
    let lb = b.step(1).unwrap().to_vec();
    assert_ne!(la, lb);
    assert!(rel_diff(&lb, r.step(1).unwrap()) < 1e-3);
}

#[test]
fn bad_token_ids_and_weights_are_errors() {
    let cfg = MmFreeConfig::new(50, 16, 1);
    let w = MmFreeWeights::random(cfg, 1).unwrap();
    let mut e = MmFreeEngine::new(&w).unwrap();
    let err = e.step(50).unwrap_err().to_string();
    assert!(err.contains("50") && err.contains("vocabulary"), "{err}");
    assert!(e.step(49).is_ok());
    let mut r = FloatEngine::new(&w).unwrap();
    assert!(r.step(u32::MAX).is_err());
    // The trait object works for both engines.
    let engines: Vec<Box<dyn Decoder>> = vec![Box::new(e), Box::new(r)];
    for e in &engines {
        assert_eq!(e.config().vocab_size, 50);
    }

    let mut bad = w.clone();
    bad.tensors
        .get_mut("model.layers.0.mlp.down_proj.weight")
        .unwrap()
        .data[3] = f32::NAN;
    let err = MmFreeEngine::new(&bad).unwrap_err().to_string();
    assert!(err.contains("model.layers.0.mlp.down_proj.weight"), "{err}");
    let mut bad = w;
    bad.tensors.remove("lm_head.norm.weight");
    let err = MmFreeEngine::new(&bad).unwrap_err().to_string();
    assert!(err.contains("lm_head.norm.weight"), "{err}");
}

#[test]
fn packed_size_is_at_most_two_bits_per_weight() {
    let cfg = MmFreeConfig::new(128, 128, 2);
    let e = MmFreeEngine::random(cfg.clone(), 1).unwrap();
    let (d, i) = (128, cfg.intermediate());
    // Base 3: 16 bits per 9 columns (rounded up); two bits (AVX2): 32 bytes per 128 columns.
    // Every row count here is a whole number of the kernel's 128-row bands.
    let bytes = |rows: usize, cols: usize| match Layout::detect() {
        Layout::Base3 => rows * cols.div_ceil(9) * 2,
        Layout::TwoBit => rows * cols.div_ceil(128) * 32,
    };
    let layer = 4 * bytes(d, d) + bytes(2 * i, d) + bytes(d, i);
    assert_eq!(e.packed_bytes(), 2 * layer + bytes(128, d));
    let weights = 2 * (4 * d * d + 3 * d * i) + 128 * d;
    assert!(e.packed_bytes() * 8 <= 2 * weights);
    assert!(e.bytes_per_token() > e.packed_bytes());
}

/// Three sequences decoded together, the third joining late and the first leaving early, give
/// exactly the logits and states each gets decoded alone; bad input changes nothing.
#[test]
fn batched_steps_equal_single_steps_exactly() {
    let w = varied_weights(MmFreeConfig::new(50, 64, 2), 8);
    let texts: [Vec<u32>; 3] = [tokens(6, 50), vec![5, 1, 49, 0, 7, 7, 3], vec![2, 9, 11]];
    let single = |text: &[u32]| -> Vec<Vec<f32>> {
        let mut e = MmFreeEngine::new(&w).unwrap();
        text.iter().map(|&t| e.step(t).unwrap().to_vec()).collect()
    };
    let want: Vec<Vec<Vec<f32>>> = texts.iter().map(|t| single(t)).collect();
    let packed = MmFreeEngine::new(&w).unwrap();
    let float = FloatEngine::new(&w).unwrap();
    let mut float_want = FloatEngine::new(&w).unwrap();
    let float_first: Vec<Vec<f32>> = texts[0]
        .iter()
        .map(|&t| float_want.step(t).unwrap().to_vec())
        .collect();
    let mut streams = [
        packed.new_stream(),
        packed.new_stream(),
        packed.new_stream(),
    ];
    let mut fstream = float.new_stream();
    let mut pos = [0usize; 3];
    for step in 0..7 {
        // Stream 0 runs steps 0..6, stream 1 all 7, stream 2 joins at step 4.
        let active: Vec<usize> = (0..3)
            .filter(|&s| match s {
                0 => step < 6,
                1 => true,
                _ => step >= 4,
            })
            .collect();
        let toks: Vec<u32> = active.iter().map(|&s| texts[s][pos[s]]).collect();
        let [a, b, c] = &mut streams;
        let mut all: Vec<&mut nerve::models::mmfree::engine::Stream> = vec![a, b, c];
        let mut batch: Vec<&mut nerve::models::mmfree::engine::Stream> = Vec::new();
        for (s, st) in all.drain(..).enumerate() {
            if active.contains(&s) {
                batch.push(st);
            }
        }
        packed.step_batch(&mut batch, &toks).unwrap();
        for (st, &s) in batch.iter().zip(&active) {
            assert_eq!(
                st.logits(),
                &want[s][pos[s]][..],
                "stream {s} at token {}",
                pos[s]
            );
            pos[s] += 1;
        }
        if step < 6 {
            float
                .step_batch(&mut [&mut fstream], &[texts[0][step]])
                .unwrap();
            assert_eq!(fstream.logits(), &float_first[step][..]);
        }
    }
    let mut e = MmFreeEngine::new(&w).unwrap();
    for &t in &texts[1] {
        e.step(t).unwrap();
    }
    assert_eq!(streams[1].state(), e.state());
    // A bad token id or a length mismatch is an error, and the streams stay as they were.
    let before = streams[1].logits().to_vec();
    let err = packed
        .step_batch(&mut [&mut streams[1]], &[50])
        .unwrap_err();
    assert!(err.to_string().contains("50"), "{err}");
    let err = packed
        .step_batch(&mut [&mut streams[1]], &[1, 2])
        .unwrap_err();
    assert!(err.to_string().contains("1 streams but 2 tokens"), "{err}");
    assert_eq!(streams[1].logits(), &before[..]);
}

#[test]
fn prefill_equals_single_steps_exactly() {
    let w = varied_weights(MmFreeConfig::new(50, 64, 2), 9);
    let text = tokens(40, 50);
    for n in [1, 2, 5, 16, 17, 33, 40] {
        let mut single = MmFreeEngine::new(&w).unwrap();
        let mut want = Vec::new();
        for &t in &text[..n] {
            want = single.step(t).unwrap().to_vec();
        }
        // The first token by a batch step, so prefill starts from a non-zero state.
        let packed = MmFreeEngine::new(&w).unwrap();
        let mut s = packed.new_stream();
        packed.step_batch(&mut [&mut s], &text[..1]).unwrap();
        packed.prefill(&mut s, &text[1..n]).unwrap();
        assert_eq!(s.logits(), &want[..], "packed, {n} tokens");
        assert_eq!(s.state(), single.state(), "packed, {n} tokens");
        let float = FloatEngine::new(&w).unwrap();
        let mut f = float.new_stream();
        float.prefill(&mut f, &text[..n]).unwrap();
        let mut float_single = FloatEngine::new(&w).unwrap();
        for &t in &text[..n] {
            want = float_single.step(t).unwrap().to_vec();
        }
        assert_eq!(f.logits(), &want[..], "float, {n} tokens");
    }
    // A bad id anywhere changes nothing.
    let packed = MmFreeEngine::new(&w).unwrap();
    let mut s = packed.new_stream();
    packed.prefill(&mut s, &text[..3]).unwrap();
    let (logits, state) = (s.logits().to_vec(), s.state().to_vec());
    let err = packed.prefill(&mut s, &[1, 2, 50]).unwrap_err().to_string();
    assert!(err.contains("50"), "{err}");
    assert_eq!((s.logits(), s.state()), (&logits[..], &state[..]));
}
