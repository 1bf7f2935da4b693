//! The trainable MatMul-free LM: tensor names, initialisation, BitLinear, the scan, the
//! recurrent mode and training.

use std::collections::BTreeMap;

use burn::module::Param;
use burn::optim::{AdamConfig, GradientsParams};
use burn::store::ModuleSnapshot;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use nerve::models::mmfree::model::{
    activation_quant, linear_scan, weight_quant, BitLinear, MmFreeLm, RmsNorm,
};
use nerve::models::mmfree::{tensor_specs, MmFreeConfig};

use crate::mmfree_fixtures::*;

#[test]
fn module_paths_are_the_published_tensor_names() {
    for use_lower_bound in [true, false] {
        let mut cfg = tiny_config();
        cfg.use_lower_bound = use_lower_bound;
        let m = MmFreeLm::init(&cfg, &Device::flex());
        let mut got: Vec<(String, Vec<usize>)> = m
            .collect(None, None, false)
            .into_iter()
            .map(|t| (t.name.clone(), t.shape.to_vec()))
            .collect();
        let mut want: Vec<(String, Vec<usize>)> = tensor_specs(&cfg)
            .into_iter()
            .map(|s| (s.name, s.shape))
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want);
        assert_eq!(
            got.iter().any(|(n, _)| n == "model.lower_bounds"),
            use_lower_bound
        );
    }
}

#[test]
fn init_follows_the_released_initialisation() {
    let device = Device::flex();
    device.seed(3);
    let w = MmFreeLm::init(&tiny_config(), &device).to_weights();
    let emb = &w.get("model.embeddings.weight").unwrap().data;
    let std = (emb.iter().map(|v| v * v).sum::<f32>() / emb.len() as f32).sqrt();
    assert!((0.015..0.025).contains(&std), "{std}");
    assert!(w
        .get("lm_head.norm.weight")
        .unwrap()
        .data
        .iter()
        .all(|&v| v == 1.0));
    assert!(w
        .get("model.lower_bounds")
        .unwrap()
        .data
        .iter()
        .all(|&v| v == 0.0));
}

#[test]
fn weights_round_trip_through_the_model() {
    let w = tiny_weights(5);
    let m = MmFreeLm::from_weights(&w, &Device::flex()).unwrap();
    assert_eq!(m.config(), &w.config);
    let back = m.to_weights();
    assert_eq!(back.tensors, w.tensors);

    // A misshapen tensor is refused with its name.
    let mut bad = w.clone();
    bad.tensors
        .get_mut("model.layers.2.mlp.down_proj.weight")
        .unwrap()
        .shape = vec![12, 8];
    let err = err_text(MmFreeLm::from_weights(&bad, &Device::flex()));
    assert!(err.contains("model.layers.2.mlp.down_proj.weight"), "{err}");
}

#[test]
fn bitlinear_forward_is_the_quantised_formula() {
    let device = Device::flex();
    // x = ±1 has RMS exactly 1 (eps 0), so xn = x · g; max|xn| = 127/64 gives s = 64 exactly and
    // xn · s = x · g · 64 with halfway values ±2.5 (half away from zero: ±3; half-even: ±2).
    let x = [1.0f32, -1.0, 1.0, -1.0, 1.0, -1.0];
    let g = [1.984375f32, 0.0390625, 0.0390625, 0.0546875, 0.5, 0.3];
    // mean|W| = 0.25, so s_w = 4; 0.125·4 = 0.5 rounds to 0 (half to even), ±1.5 → ±2 → ±1.
    let w = [
        [0.125f32, -0.375, 0.25, 0.0, -0.25, 0.5],
        [0.375, 0.125, -0.125, 0.5, 0.25, -0.125],
    ];
    let make = |device: &Device| BitLinear {
        weight: Param::from_tensor(Tensor::from_data(
            TensorData::new(w.concat(), [2, 6]),
            device,
        )),
        norm: RmsNorm {
            weight: Param::from_tensor(Tensor::from_data(TensorData::new(g.to_vec(), [6]), device)),
            eps: 0.0,
        },
    };
    let layer = make(&device);
    let xt = Tensor::<2>::from_data(TensorData::new(x.to_vec(), [1, 6]), &device);

    let xn: Vec<f32> = x.iter().zip(&g).map(|(a, b)| a * b).collect();
    let (q, s) = activation_quant(Tensor::from_data(
        TensorData::new(xn.clone(), [1, 6]),
        &device,
    ));
    assert_eq!(values(q), [127.0, -3.0, 3.0, -4.0, 32.0, -19.0]);
    assert_eq!(values(s), [64.0]);
    let (wt, sw) = weight_quant(layer.weight.val());
    let wt_expected = [
        0.0f32, -1.0, 1.0, 0.0, -1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0,
    ];
    assert_eq!(values(wt), wt_expected);
    assert_eq!(values(sw), [4.0]);

    // By hand: y = (x_q · W_tᵀ) / (s · s_w).
    let xq = [127.0f32, -3.0, 3.0, -4.0, 32.0, -19.0];
    let want: Vec<f32> = (0..2)
        .map(|o| {
            let dot: f32 = (0..6).map(|i| xq[i] * wt_expected[o * 6 + i]).sum();
            dot / (64.0 * 4.0)
        })
        .collect();
    let y = values(layer.forward(xt.clone()));
    assert!(max_diff(&y, &want) < 1e-6, "{y:?} vs {want:?}");

    // On an autodiff device the value is the same; the gradient is straight-through.
    let ad = Device::flex().autodiff();
    let layer = make(&ad);
    let xt = Tensor::<2>::from_data(TensorData::new(x.to_vec(), [1, 6]), &ad).require_grad();
    let y = layer.forward(xt.clone());
    assert!(max_diff(&values(y.clone()), &want) < 1e-6);
    let grads = y.sum().backward();
    // d sum(y) / d W[o, i] = dequantised x_i for every row o.
    let gw = values(layer.weight.grad(&grads).unwrap());
    let xdq: Vec<f32> = xq.iter().map(|v| v / 64.0).collect();
    assert!(max_diff(&gw, &[xdq.clone(), xdq].concat()) < 1e-6, "{gw:?}");
    assert!(xt.grad(&grads).is_some());
}

/// h_t = f_t h_{t-1} + c_t, step by step on the host.
fn scan_reference(f: &[f32], c: &[f32], h0: &[f32], b: usize, t: usize, d: usize) -> Vec<f32> {
    let mut out = vec![0.0; b * t * d];
    for bi in 0..b {
        let mut h = h0[bi * d..(bi + 1) * d].to_vec();
        for ti in 0..t {
            for (k, hk) in h.iter_mut().enumerate() {
                let i = (bi * t + ti) * d + k;
                *hk = f[i] * *hk + c[i];
                out[i] = *hk;
            }
        }
    }
    out
}

#[test]
fn parallel_scan_matches_the_recurrence() {
    let device = Device::flex();
    for t in [1usize, 2, 3, 7, 12, 33] {
        let (b, d) = (2, 3);
        let f = Tensor::<3>::random([b, t, d], Distribution::Uniform(0.0, 1.0), &device);
        let c = Tensor::<3>::random([b, t, d], Distribution::Normal(0.0, 1.0), &device);
        let h0 = Tensor::<2>::random([b, d], Distribution::Normal(0.0, 1.0), &device);
        let (fv, cv, hv) = (values(f.clone()), values(c.clone()), values(h0.clone()));
        let got = values(linear_scan(f.clone(), c.clone(), Some(h0)));
        let want = scan_reference(&fv, &cv, &hv, b, t, d);
        assert!(max_diff(&got, &want) < 1e-5, "T={t}");
        let got = values(linear_scan(f, c, None));
        let want = scan_reference(&fv, &cv, &vec![0.0; b * d], b, t, d);
        assert!(max_diff(&got, &want) < 1e-5, "T={t} without h0");
    }
}

#[test]
fn recurrent_mode_equals_parallel_mode() {
    let device = Device::flex();
    let m = MmFreeLm::from_weights(&tiny_weights(9), &device).unwrap();
    let ids: Vec<i64> = (0..24).map(|i| (i * 7 + 3) % 11).collect();
    let whole = values(m.forward(tokens(&ids, 2, &device))); // [2, 12, 11]
    let at = |v: &[f32], b: usize, t: usize| v[(b * 12 + t) * 11..(b * 12 + t + 1) * 11].to_vec();

    // Pieces of 5 + 1 + 6 tokens, carrying the state.
    let mut state = None;
    let mut start = 0;
    for len in [5, 1, 6] {
        let piece: Vec<i64> = (0..2)
            .flat_map(|b| ids[b * 12 + start..b * 12 + start + len].to_vec())
            .collect();
        let (y, s) = m.forward_with_state(tokens(&piece, 2, &device), state);
        let y = values(y);
        for b in 0..2 {
            for t in 0..len {
                let got = y[(b * len + t) * 11..(b * len + t + 1) * 11].to_vec();
                let d = max_diff(&got, &at(&whole, b, start + t));
                assert!(d < 1e-4, "piece at {start}, b={b} t={t}: {d}");
            }
        }
        state = Some(s);
        start += len;
    }

    // Token by token.
    let mut state = None;
    for t in 0..12 {
        let (y, s) = m.forward_with_state(tokens(&[ids[t], ids[12 + t]], 2, &device), state);
        let y = values(y);
        for b in 0..2 {
            let d = max_diff(&y[b * 11..(b + 1) * 11], &at(&whole, b, t));
            assert!(d < 1e-4, "token {t}, b={b}: {d}");
        }
        state = Some(s);
    }
    assert_eq!(state.unwrap().h.len(), 3);
}

fn next_token_loss(m: &MmFreeLm, ids: &[i64], batch: usize, device: &Device) -> Tensor<1> {
    let t = ids.len() / batch;
    let inputs: Vec<i64> = (0..batch)
        .flat_map(|b| ids[b * t..b * t + t - 1].to_vec())
        .collect();
    let targets: Vec<i64> = (0..batch)
        .flat_map(|b| ids[b * t + 1..b * t + t].to_vec())
        .collect();
    let logits = m.forward(tokens(&inputs, batch, device));
    let [b, tt, v] = logits.dims();
    let logp = log_softmax(logits.reshape([b * tt, v]), 1);
    let targets = Tensor::<2, Int>::from_data(TensorData::new(targets, [b * tt, 1]), device);
    logp.gather(1, targets).mean().neg()
}

#[test]
fn gradients_reach_every_parameter() {
    let device = Device::flex().autodiff();
    let m = MmFreeLm::from_weights(&tiny_weights(10), &device).unwrap();
    let ids: Vec<i64> = (0..20).map(|i| (i * 5 + 1) % 11).collect();
    let grads = next_token_loss(&m, &ids, 2, &device).backward();

    let norm = |n: &RmsNorm| values(n.weight.grad(&grads).expect("norm grad"));
    let lin = |l: &BitLinear| {
        [
            values(l.weight.grad(&grads).expect("weight grad")),
            norm(&l.norm),
        ]
    };
    let mut all: BTreeMap<String, Vec<f32>> = BTreeMap::new();
    all.insert(
        "embeddings".into(),
        values(m.model.embeddings.weight.grad(&grads).unwrap()),
    );
    let lb = m
        .model
        .lower_bounds
        .as_ref()
        .unwrap()
        .grad(&grads)
        .expect("lower bounds grad");
    all.insert("lower_bounds".into(), values(lb));
    for (i, b) in m.model.layers.iter().enumerate() {
        all.insert(format!("{i}.attn_norm"), norm(&b.attn_norm));
        all.insert(format!("{i}.mlp_norm"), norm(&b.mlp_norm));
        all.insert(format!("{i}.g_norm"), norm(&b.attn.g_norm));
        for (name, l) in [
            ("i", &b.attn.i_proj),
            ("f", &b.attn.f_proj),
            ("g", &b.attn.g_proj),
            ("o", &b.attn.o_proj),
            ("gate", &b.mlp.gate_proj),
            ("down", &b.mlp.down_proj),
        ] {
            let [w, n] = lin(l);
            all.insert(format!("{i}.{name}"), w);
            all.insert(format!("{i}.{name}.norm"), n);
        }
    }
    all.insert("norm".into(), norm(&m.model.norm));
    let [w, n] = lin(&m.lm_head);
    all.insert("lm_head".into(), w);
    all.insert("lm_head.norm".into(), n);
    assert_eq!(all.len(), tensor_specs(m.config()).len());
    for (name, g) in &all {
        assert!(g.iter().all(|v| v.is_finite()), "{name}");
        assert!(g.iter().any(|v| *v != 0.0), "{name} has a zero gradient");
    }
}

#[test]
fn adam_steps_reduce_the_loss() {
    let device = Device::flex().autodiff();
    device.seed(11);
    let mut m = MmFreeLm::init(&tiny_config(), &device);
    let mut optim = AdamConfig::new().init();
    let ids: Vec<i64> = [1, 4, 2, 8, 5, 7].repeat(4);
    let first = next_token_loss(&m, &ids, 2, &device).into_scalar::<f32>();
    let mut last = first;
    for _ in 0..30 {
        let loss = next_token_loss(&m, &ids, 2, &device);
        last = loss.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        m = optim.step(1e-2, m, grads);
    }
    assert!(last < 0.7 * first, "loss {first} -> {last}");
}

/// Forward + backward time at the size used to plan training (run with `--ignored`).
#[test]
#[ignore]
fn time_training_step() {
    let device = Device::flex().autodiff();
    let cfg = MmFreeConfig::new(65, 256, 4);
    let m = MmFreeLm::init(&cfg, &device);
    let ids = Tensor::<2, Int>::random([16, 257], Distribution::Uniform(0.0, 65.0), &device);
    let (b, t) = (16, 256);
    for i in 0..4 {
        let start = std::time::Instant::now();
        let logits = m.forward(ids.clone().narrow(1, 0, t));
        let logp = log_softmax(logits.reshape([b * t, 65]), 1);
        let loss = logp
            .gather(1, ids.clone().narrow(1, 1, t).reshape([b * t, 1]))
            .mean()
            .neg();
        let _ = loss.clone().into_scalar::<f32>();
        let fwd = start.elapsed();
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        let total = start.elapsed();
        drop(grads);
        println!("step {i}: forward {fwd:?}, forward+backward {total:?}");
    }
}
