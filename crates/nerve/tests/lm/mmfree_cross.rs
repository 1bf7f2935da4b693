//! The three implementations of the MatMul-free LM agree on the same weights: the trainable
//! Burn model (parallel mode), the float engine and the packed ternary engine.

use burn::tensor::{Device, Int, Tensor, TensorData};
use nerve::models::mmfree::engine::{FloatEngine, MmFreeEngine};
use nerve::models::mmfree::{MmFreeConfig, MmFreeLm, MmFreeWeights};

fn max_rel(a: &[f32], b: &[f32]) -> f32 {
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

#[test]
fn burn_model_float_and_packed_engines_give_the_same_logits() {
    let mut cfg = MmFreeConfig::new(50, 64, 3);
    cfg.intermediate_size = Some(96);
    let mut weights = MmFreeWeights::random(cfg, 11).unwrap();
    // Non-zero lower bounds, so the forget-gate floor of layers 1 and 2 matters.
    for (i, v) in weights
        .tensors
        .get_mut("model.lower_bounds")
        .unwrap()
        .data
        .iter_mut()
        .enumerate()
    {
        *v = ((i * 7919) % 13) as f32 / 4.0 - 1.5;
    }
    let tokens: Vec<u32> = (0..16).map(|i| (i * 17 + 3) % 50).collect();

    let device = Device::flex();
    let model = MmFreeLm::from_weights(&weights, &device).unwrap();
    let ids: Vec<i64> = tokens.iter().map(|&t| t as i64).collect();
    let x = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, tokens.len()]), &device);
    let burn: Vec<f32> = model.forward(x).into_data().iter::<f32>().collect();

    let mut packed = MmFreeEngine::new(&weights).unwrap();
    let mut float = FloatEngine::new(&weights).unwrap();
    let v = 50;
    for (t, &tok) in tokens.iter().enumerate() {
        let p = packed.step(tok).unwrap().to_vec();
        let r = float.step(tok).unwrap().to_vec();
        let b = &burn[t * v..(t + 1) * v];
        assert!(
            max_rel(&p, &r) < 1e-3,
            "token {t}: packed vs reference {}",
            max_rel(&p, &r)
        );
        assert!(
            max_rel(&r, b) < 1e-3,
            "token {t}: reference vs Burn {}",
            max_rel(&r, b)
        );
    }
}
