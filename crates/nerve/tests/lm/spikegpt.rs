//! SpikeGPT: WKV forms against a float64 evaluation, LIF dynamics by hand, recurrent against
//! parallel mode, gradients, L2Wrap, a few training steps and a checkpoint round trip.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::{AdamConfig, GradientsParams};
use burn::store::ModuleSnapshot;
use burn::tensor::Gradients;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use nerve::models::spikegpt::{
    lm_loss, wkv_parallel, wkv_recurrent, Lif, SpikeGpt, SpikeGptConfig,
};
use nerve::store::checkpoint::{self, CheckpointMeta};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn vec_of<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

fn tensor<const D: usize>(v: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(v, shape), device)
}

fn tokens(ids: &[i64], shape: [usize; 2], device: &Device) -> Tensor<2, Int> {
    Tensor::from_data(TensorData::new(ids.to_vec(), shape), device)
}

/// `n` Gaussian draws (Box-Muller) from a local generator: the tests run in parallel threads,
/// so the device's process-wide generator would not give reproducible values.
fn gaussian(rng: &mut StdRng, n: usize, mean: f64, std: f64) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let u1: f64 = rng.random::<f64>().max(1e-300);
            let u2: f64 = rng.random();
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            (mean + std * z) as f32
        })
        .collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// WKV straight from the formula in float64 (which holds e^100 without trouble).
fn wkv_f64(w: &[f64], u: &[f64], k: &[f32], v: &[f32], [b, t, d]: [usize; 3]) -> Vec<f64> {
    let mut out = vec![0.0; b * t * d];
    for bi in 0..b {
        for c in 0..d {
            let at = |s: usize| (bi * t + s) * d + c;
            for s in 0..t {
                let (mut num, mut den) = (0.0, 0.0);
                for i in 0..s {
                    let e = ((s - 1 - i) as f64 * w[c] + k[at(i)] as f64).exp();
                    num += e * v[at(i)] as f64;
                    den += e;
                }
                let e = (u[c] + k[at(s)] as f64).exp();
                num += e * v[at(s)] as f64;
                den += e;
                out[at(s)] = num / den;
            }
        }
    }
    out
}

#[test]
fn wkv_parallel_and_recurrent_match_a_float64_evaluation_even_for_huge_keys() {
    let device = Device::flex();
    let mut rng = StdRng::seed_from_u64(7);
    let [b, t, d] = [2, 37, 6];
    let time_decay: Vec<f64> = (0..d)
        .map(|c| -5.0 + 8.0 * c as f64 / (d - 1) as f64)
        .collect();
    let w: Vec<f64> = time_decay.iter().map(|x| -x.exp()).collect();
    let u: Vec<f64> = (0..d)
        .map(|c| 0.3f64.ln() + 0.5 * (c % 3) as f64 - 0.5)
        .collect();
    let mut k = gaussian(&mut rng, b * t * d, 0.0, 3.0);
    let v = gaussian(&mut rng, b * t * d, 0.0, 1.0);
    // Keys where e^k overflows float32 (e^88.7 is its largest value), at the first position,
    // inside chunks and at chunk boundaries.
    for (i, big) in [
        (0, 60.0),
        (5 * d + 1, 100.0),
        (16 * d + 2, 60.0),
        (t * d + 20 * d + 3, 95.0),
    ] {
        k[i] = big;
    }
    assert!(
        (100f32).exp().is_infinite(),
        "the naive formula would overflow"
    );
    let want = wkv_f64(&w, &u, &k, &v, [b, t, d]);

    let w_t = tensor(w.iter().map(|&x| x as f32).collect(), [d], &device);
    let u_t = tensor(u.iter().map(|&x| x as f32).collect(), [d], &device);
    let k_t = tensor(k.clone(), [b, t, d], &device);
    let v_t = tensor(v.clone(), [b, t, d], &device);
    let check = |got: Vec<f32>, what: &str| {
        for (i, (&g, &e)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g as f64 - e).abs() <= 1e-5 * (1.0 + e.abs()),
                "{what}: element {i}: {g} vs {e}"
            );
        }
    };
    for chunk in [1, 4, 16, 37, 64] {
        let got = wkv_parallel(w_t.clone(), u_t.clone(), k_t.clone(), v_t.clone(), chunk);
        assert_eq!(got.dims(), [b, t, d]);
        check(vec_of(got), &format!("parallel, chunk {chunk}"));
    }
    let (got, _) = wkv_recurrent(w_t.clone(), u_t.clone(), k_t.clone(), v_t.clone(), None);
    check(vec_of(got), "recurrent");

    // In two pieces with the carried state.
    let (a, state) = wkv_recurrent(
        w_t.clone(),
        u_t.clone(),
        k_t.clone().narrow(1, 0, 10),
        v_t.clone().narrow(1, 0, 10),
        None,
    );
    let (rest, _) = wkv_recurrent(
        w_t,
        u_t,
        k_t.narrow(1, 10, t - 10),
        v_t.narrow(1, 10, t - 10),
        Some(state),
    );
    check(vec_of(Tensor::cat(vec![a, rest], 1)), "recurrent in pieces");
}

#[test]
fn lif_follows_the_hand_computed_dynamics() {
    let device = Device::flex();
    let lif = Lif::default();
    let run = |x: f32, steps: usize| {
        let input = Tensor::<3>::full([1, steps, 1], x, &device);
        let (s, v) = lif.run(input, None);
        (vec_of(s), vec_of(v)[0])
    };

    // Below threshold: H = 0.3, 0.45, 0.525, 0.5625, ... approaches 0.6 and never fires.
    let (s, v) = run(0.6, 4);
    assert_eq!(s, [0.0; 4]);
    assert!((v - 0.5625).abs() < 1e-6, "{v}");

    // 1.5: H = 0.75, then 0.75 + 0.375 = 1.125 fires and resets to 0, and so on.
    let (s, v) = run(1.5, 5);
    assert_eq!(s, [0.0, 1.0, 0.0, 1.0, 0.0]);
    assert!((v - 0.75).abs() < 1e-6, "{v}");

    // 2.0: H = 1.0 exactly, which fires (H ≥ threshold), every step.
    let (s, v) = run(2.0, 3);
    assert_eq!(s, [1.0, 1.0, 1.0]);
    assert_eq!(v, 0.0);

    // Step by step with an explicit membrane gives the same.
    let (s, v) = lif.step(
        tensor(vec![1.5, 0.6], [2], &device),
        tensor(vec![0.75, 0.3], [2], &device),
    );
    assert_eq!(vec_of(s), [1.0, 0.0]);
    let v = vec_of(v);
    assert_eq!(v[0], 0.0);
    assert!((v[1] - 0.45).abs() < 1e-6);
}

#[test]
fn lif_gradient_uses_the_atan_surrogate_through_an_undetached_reset() {
    let device = Device::flex().autodiff();
    let lif = Lif::default();
    let pi = std::f64::consts::PI;
    // dS/du = (α/2) / (1 + (π α u / 2)²) with α = 2.
    let slope = |u: f64| 1.0 / (1.0 + (pi * u).powi(2));
    for x0 in [1.6f64, 2.4] {
        let x = tensor(vec![x0 as f32], [1], &device).require_grad();
        let step = || lif.step(x.clone(), Tensor::zeros([1], &device));
        let (s, _) = step();
        let h = x0 / 2.0;
        let fired = if h >= 1.0 { 1.0 } else { 0.0 };
        assert_eq!(vec_of(s.clone())[0], fired as f32);

        let g = x.grad(&s.sum().backward()).unwrap();
        let want = 0.5 * slope(h - 1.0);
        assert!((vec_of(g)[0] as f64 - want).abs() < 1e-5, "dS/dx at {x0}");

        // V = H(1 − S): dV/dx = ½(1 − S) − H·S'(H − 1)·½, the second term only because the reset
        // is not detached.
        let (_, v) = step();
        let g = x.grad(&v.sum().backward()).unwrap();
        let want = 0.5 * (1.0 - fired) - h * slope(h - 1.0) * 0.5;
        assert!((vec_of(g)[0] as f64 - want).abs() < 1e-5, "dV/dx at {x0}");
    }
}

/// Replaces every weight matrix with a Gaussian of standard deviation `gain/√in` and nudges
/// every vector, so that a small model fires at a healthy rate (the released init starts with
/// silent blocks).
struct Randomize {
    gain: f64,
    rng: StdRng,
}

impl ModuleMapper for Randomize {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let t = param.val();
        let dims = t.dims();
        let device = t.device();
        let n = dims.iter().product();
        let values = if D == 2 {
            let std = self.gain / (dims[D - 1] as f64).sqrt();
            gaussian(&mut self.rng, n, 0.0, std)
        } else {
            let noise = gaussian(&mut self.rng, n, 0.0, 0.2);
            vec_of(t).iter().zip(noise).map(|(a, b)| a + b).collect()
        };
        Param::from_tensor(Tensor::from_data(TensorData::new(values, dims), &device))
    }
}

fn random_model(cfg: &SpikeGptConfig, device: &Device, seed: u64) -> SpikeGpt {
    SpikeGpt::init(cfg, device).map(&mut Randomize {
        gain: 2.0,
        rng: StdRng::seed_from_u64(seed),
    })
}

fn small_config() -> SpikeGptConfig {
    SpikeGptConfig::new(20, 32, 2).with_dropout(0.0)
}

fn random_tokens(b: usize, t: usize, v: usize, seed: u64, device: &Device) -> Tensor<2, Int> {
    let mut x = seed;
    let ids: Vec<i64> = (0..b * t)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 33) % v as u64) as i64
        })
        .collect();
    tokens(&ids, [b, t], device)
}

#[test]
fn recurrent_mode_matches_parallel_mode() {
    let device = Device::flex();
    let cfg = small_config();
    let model = random_model(&cfg, &device, 11);
    let (b, t) = (2, 16);
    let x = random_tokens(b, t, cfg.vocab_size, 3, &device);

    let trace = model.forward_trace(x.clone());
    // The comparison means something only if neurons fire, but not all of them all the time.
    for (i, s) in trace.spikes.iter().enumerate() {
        let rate = s.clone().mean().into_scalar::<f32>();
        assert!((0.05..0.95).contains(&rate), "LIF {i} fires at rate {rate}");
    }
    let parallel = vec_of(trace.logits);

    let (whole, _) = model.forward_with_state(x.clone(), None);
    assert_eq!(whole.dims(), [b, t, cfg.vocab_size]);
    let whole = vec_of(whole);
    let err = max_abs_diff(&parallel, &whole);
    assert!(err < 1e-4, "recurrent vs parallel: {err}");

    // In pieces of 5, 1 and 10 tokens with the carried state.
    let mut state = None;
    let mut pieces = Vec::new();
    for (start, len) in [(0, 5), (5, 1), (6, 10)] {
        let (y, s) = model.forward_with_state(x.clone().narrow(1, start, len), state);
        state = Some(s);
        pieces.push(y);
    }
    let err = max_abs_diff(&parallel, &vec_of(Tensor::cat(pieces, 1)));
    assert!(err < 1e-4, "recurrent in pieces vs parallel: {err}");

    // The chunked masked-softmax WKV (the GPU-friendly form) gives the same logits.
    let mut model = model;
    for block in &mut model.blocks {
        block.att.wkv_chunk = 5;
    }
    let err = max_abs_diff(&parallel, &vec_of(model.forward(x)));
    assert!(err < 1e-4, "chunked WKV vs token loop: {err}");
}

/// Fails unless every parameter received a gradient with a non-zero entry.
struct AllGrads<'a> {
    grads: &'a Gradients,
    count: usize,
    missing: Vec<String>,
    path: Vec<String>,
}

impl ModuleVisitor for AllGrads<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.count += 1;
        let nonzero = param
            .grad(self.grads)
            .map(|g| g.abs().max().into_scalar::<f32>() > 0.0)
            .unwrap_or(false);
        if !nonzero {
            self.missing
                .push(format!("{} {:?}", self.path.join("."), param.dims()));
        }
    }
}

#[test]
fn gradients_reach_every_parameter() {
    let device = Device::flex().autodiff();
    let cfg = small_config();
    let model = random_model(&cfg, &device, 5);
    let x = random_tokens(2, 12, cfg.vocab_size, 1, &device);
    let y = random_tokens(2, 12, cfg.vocab_size, 2, &device);
    let loss = model.loss(x, y);
    assert!(loss.clone().into_scalar::<f32>().is_finite());
    let grads = loss.backward();
    let mut visitor = AllGrads {
        grads: &grads,
        count: 0,
        missing: Vec::new(),
        path: Vec::new(),
    };
    model.visit(&mut visitor);
    // emb, ln_out (2), head, and per block 2 LNs (+ ln0 in block 0), 9 time-mix and 5
    // channel-mix tensors.
    assert_eq!(visitor.count, 4 + 2 * (4 + 9 + 5) + 2);
    assert!(
        visitor.missing.is_empty(),
        "no gradient: {:?}",
        visitor.missing
    );
}

#[test]
fn l2wrap_adds_factor_times_max_at_the_argmax_only() {
    let device = Device::flex().autodiff();
    let (b, t, v) = (2, 3, 5);
    let mut rng = StdRng::seed_from_u64(3);
    let logits = tensor(gaussian(&mut rng, b * t * v, 0.0, 2.0), [b, t, v], &device);
    let targets = random_tokens(b, t, v, 9, &device);
    let grad_of = |l2wrap: f64| {
        let y = logits.clone().detach().require_grad();
        let loss = lm_loss(y.clone(), targets.clone(), l2wrap);
        let value = loss.clone().into_scalar::<f32>();
        let g = y.grad(&loss.backward()).unwrap();
        (value, vec_of(g))
    };
    let (plain_value, plain) = grad_of(0.0);
    let y = vec_of(logits.clone());
    for l2wrap in [1e-4, 0.5] {
        let (value, wrapped) = grad_of(l2wrap);
        assert_eq!(value, plain_value, "L2Wrap changes the loss value");
        let factor = l2wrap / (b * t) as f64;
        for row in 0..b * t {
            let r = &y[row * v..(row + 1) * v];
            let (arg, max) =
                r.iter().enumerate().fold(
                    (0, f32::MIN),
                    |acc, (i, &x)| if x > acc.1 { (i, x) } else { acc },
                );
            for j in 0..v {
                let at = row * v + j;
                let want = if j == arg { factor * max as f64 } else { 0.0 };
                let got = (wrapped[at] - plain[at]) as f64;
                assert!(
                    (got - want).abs() <= 1e-7 + 1e-4 * want.abs(),
                    "l2wrap {l2wrap}, row {row}, logit {j}: {got} vs {want}"
                );
            }
        }
    }

    // Cross-entropy value against a hand computation.
    let mut want = 0.0;
    let ids: Vec<i64> = targets.into_data().iter::<i64>().collect();
    for row in 0..b * t {
        let r = &y[row * v..(row + 1) * v];
        let lse = r.iter().map(|&x| (x as f64).exp()).sum::<f64>().ln();
        want += lse - r[ids[row] as usize] as f64;
    }
    want /= (b * t) as f64;
    assert!(
        (plain_value as f64 - want).abs() < 1e-5,
        "{plain_value} vs {want}"
    );
}

#[test]
fn adam_steps_reduce_the_loss_on_repeated_text() {
    let device = Device::flex().autodiff();
    device.seed(1);
    let cfg = SpikeGptConfig::new(8, 32, 2);
    let mut model = SpikeGpt::init(&cfg, &device);
    // "abcdefg" repeated: every next token is determined by the current one.
    let ids: Vec<i64> = (0..2 * 25).map(|i| (i % 7) as i64).collect();
    let x = tokens(&ids[..48], [2, 24], &device);
    // Each row of x is ids[24r..24r+24], so the targets are the same slice shifted by one.
    let y = tokens(&ids[1..49], [2, 24], &device);
    let mut optim = AdamConfig::new().init();
    let mut losses = Vec::new();
    for _ in 0..25 {
        let loss = model.loss(x.clone(), y.clone());
        losses.push(loss.clone().into_scalar::<f32>());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-2, model, grads);
    }
    let (first, last) = (losses[0], *losses.last().unwrap());
    assert!(
        (first - 8f32.ln()).abs() < 0.3,
        "initial loss {first} should be near ln 8"
    );
    assert!(last < 0.5 * first, "losses {losses:?}");
}

#[test]
fn checkpoint_round_trip_uses_the_released_names_and_keeps_the_logits() {
    let device = Device::flex();
    let cfg = small_config();
    let model = random_model(&cfg, &device, 21);
    let names: Vec<(String, Vec<usize>)> = model
        .collect(None, None, false)
        .into_iter()
        .map(|t| (t.name.clone(), t.shape.to_vec()))
        .collect();
    let shape_of = |name: &str| {
        names
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.clone())
            .unwrap_or_else(|| panic!("no tensor {name} in {names:?}"))
    };
    let (v, d) = (cfg.vocab_size, cfg.n_embd);
    assert_eq!(shape_of("emb.weight"), [v, d]);
    assert_eq!(shape_of("blocks.0.ln0.weight"), [d]);
    assert_eq!(shape_of("blocks.0.ln1.bias"), [d]);
    assert_eq!(shape_of("blocks.1.att.time_decay"), [d]);
    assert_eq!(shape_of("blocks.1.att.time_mix_k"), [d]);
    assert_eq!(shape_of("blocks.0.att.key.weight"), [d, d]);
    assert_eq!(shape_of("blocks.0.ffn.key.weight"), [4 * d, d]);
    assert_eq!(shape_of("blocks.0.ffn.value.weight"), [d, 4 * d]);
    assert_eq!(shape_of("blocks.1.ffn.receptance.weight"), [d, d]);
    assert_eq!(shape_of("ln_out.weight"), [d]);
    assert_eq!(shape_of("head.weight"), [v, d]);
    assert!(!names.iter().any(|(n, _)| n.starts_with("blocks.1.ln0")));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let meta = CheckpointMeta {
        arch: "spikegpt".into(),
        epoch: 0,
        step: 3,
        config: serde_json::to_value(&cfg).unwrap(),
        seed: 21,
    };
    checkpoint::save_model(&path, &model, &meta).unwrap();
    let fresh = random_model(&cfg, &device, 99);
    let (loaded, got_meta) = checkpoint::load(&path, fresh, "spikegpt").unwrap();
    assert_eq!(got_meta, meta);
    let x = random_tokens(2, 9, cfg.vocab_size, 4, &device);
    assert_eq!(
        vec_of(model.forward(x.clone())),
        vec_of(loaded.forward(x)),
        "logits after save and load"
    );
}

/// Times one training step at the size used for tiny Shakespeare, and the WKV forms. Run with
/// `cargo test -p nerve --test lm -- --ignored --nocapture timing` (sizes from `SG_B`,
/// `SG_T`, `SG_D`, `SG_L`; `WKV_CHUNK` picks the model's WKV form, `WKV_CHUNKS` the forms timed
/// alone).
#[test]
#[ignore]
fn timing_of_a_training_step() {
    use std::time::Instant;
    let device = Device::flex().autodiff();
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let (b, t, d) = (env("SG_B", 16), env("SG_T", 128), env("SG_D", 256));

    // The WKV alone, forward + backward, for several chunk lengths and the recurrent loop.
    let w = Tensor::<1>::random([d], Distribution::Normal(0.0, 1.0), &device)
        .exp()
        .neg();
    let u = Tensor::<1>::random([d], Distribution::Normal(0.0, 1.0), &device);
    let k = Tensor::<3>::random([b, t, d], Distribution::Normal(0.0, 1.0), &device).require_grad();
    let v = Tensor::<3>::random([b, t, d], Distribution::Normal(0.0, 1.0), &device).require_grad();
    let wkv_chunks: Vec<usize> = std::env::var("WKV_CHUNKS")
        .map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_else(|_| vec![16]);
    for &chunk in &wkv_chunks {
        let start = Instant::now();
        for _ in 0..3 {
            let y = wkv_parallel(w.clone(), u.clone(), k.clone(), v.clone(), chunk);
            let g = y.sum().backward();
            let _ = k.grad(&g).unwrap().into_data();
        }
        println!(
            "wkv parallel chunk {chunk}: {:.3} s",
            start.elapsed().as_secs_f64() / 3.0
        );
    }
    {
        let start = Instant::now();
        let (y, _) = wkv_recurrent(w.clone(), u.clone(), k.clone(), v.clone(), None);
        let g = y.sum().backward();
        let _ = k.grad(&g).unwrap().into_data();
        println!("wkv recurrent loop: {:.3} s", start.elapsed().as_secs_f64());
    }

    // One LIF over the whole sequence, forward + backward.
    let start = Instant::now();
    let (sp, _) = Lif::default().run(k.clone() * 2.0, None);
    let g = sp.sum().backward();
    let _ = k.grad(&g).unwrap().into_data();
    println!("lif run: {:.3} s", start.elapsed().as_secs_f64());

    let mut cfg = SpikeGptConfig::new(65, d, env("SG_L", 4));
    cfg.wkv_chunk = env("WKV_CHUNK", cfg.wkv_chunk);
    let model = SpikeGpt::init(&cfg, &device);
    let x = random_tokens(b, t, 65, 1, &device);
    let y = random_tokens(b, t, 65, 2, &device);
    for i in 0..3 {
        let start = Instant::now();
        let loss = model.loss(x.clone(), y.clone());
        let value = loss.clone().into_scalar::<f32>();
        let fwd = start.elapsed().as_secs_f64();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        drop(grads);
        println!(
            "step {i}: loss {value:.3}, forward {fwd:.3} s, forward+backward {:.3} s",
            start.elapsed().as_secs_f64()
        );
    }
}
