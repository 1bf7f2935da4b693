//! Replays state-quantization cases: snnTorch's `state_quant` level tables and rounding
//! (`state_quant`), and a Leaky neuron whose membrane is quantized each step (`leaky_state_quant`).

use burn::tensor::Device;
use serde_json::Value;

use super::{firing_from, to_vec, Comparer, RefCase, RefTensor};
use crate::error::{Error, Result};
use crate::neurons::{LeakyConfig, Neuron};
use crate::quant::{StateQuant, StateQuantConfig};

/// The format's tolerance for quantized values and membranes: exact, or this close.
pub const QUANT_TOL: f64 = 1e-6;

/// The quantizer a `params` object describes, with `state_quant`'s defaults for what it omits.
fn quantizer(case: &RefCase, params: &Value) -> Result<StateQuant> {
    let bad = |e: String| Error::invalid(case.label(), e);
    let mut merged =
        serde_json::to_value(StateQuantConfig::default()).map_err(|e| bad(e.to_string()))?;
    for (k, v) in params.as_object().into_iter().flatten() {
        merged[k] = v.clone();
    }
    let config: StateQuantConfig =
        serde_json::from_value(merged).map_err(|e| bad(format!("quantizer parameters: {e}")))?;
    config.init().map_err(|e| bad(e.to_string()))
}

/// Fails unless the worst absolute difference is within [`QUANT_TOL`].
fn within(case: &RefCase, what: &str, err: f64) -> Result<()> {
    if err > QUANT_TOL {
        return Err(Error::invalid(
            case.label(),
            format!("{what} differs by {err:.3e}, beyond {QUANT_TOL:e}"),
        ));
    }
    Ok(())
}

/// Compares our level table with the recorded one, when the case carries it.
fn check_levels(case: &RefCase, quant: &StateQuant, cmp: &mut Comparer) -> Result<()> {
    if case.json.get("levels").is_none() {
        return Ok(());
    }
    let want = RefTensor::parse(&case.json["levels"], "levels")?;
    let got: Vec<f64> = quant.levels().iter().map(|&v| f64::from(v)).collect();
    cmp.forward_values("levels", &got, &want)?;
    within(case, "the level table", cmp.forward.0)
}

/// `state_quant`: levels, the quantized values (either neighbour at a recorded near-tie), and
/// the straight-through gradient of `sum(q)` (exactly one everywhere).
pub(super) fn check_state_quant(case: &RefCase, cmp: &mut Comparer) -> Result<()> {
    let quant = quantizer(case, &case.json["params"])?;
    check_levels(case, &quant, cmp)?;
    let device = &Device::flex().autodiff();
    let x_ref = case.input("x")?;
    let x = x_ref.tensor::<1>(device)?.require_grad();
    let q = quant.apply(x.clone());
    let got = to_vec(q.clone());
    let want = case
        .outputs
        .get("q")
        .ok_or_else(|| Error::invalid(case.label(), "missing outputs.q"))?;
    let ties: Vec<usize> = case.json["near_tie_indices"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_u64().map(|i| i as usize))
        .collect();
    // At a recorded near-tie the two closest levels are both right; compare with whichever
    // of them we picked.
    let mut accepted = want.clone();
    for &i in &ties {
        if let (Some(&x), Some(&g)) = (x_ref.data.get(i), got.get(i)) {
            let (a, b) = two_nearest(quant.levels(), x as f32);
            if (g - f64::from(a)).abs() <= QUANT_TOL || (g - f64::from(b)).abs() <= QUANT_TOL {
                accepted.data[i] = g;
            }
        }
    }
    cmp.forward_values("q", &got, &accepted)?;
    within(case, "q", cmp.forward.0)?;
    if let Some(want) = case.grads.get("x") {
        let grads = q.sum().backward();
        let g = x.grad(&grads).map(to_vec);
        cmp.grad("x", g.clone(), want)?;
        let exact = g
            .unwrap_or_default()
            .iter()
            .zip(&want.data)
            .all(|(a, b)| a == b);
        if !exact {
            return Err(Error::invalid(
                case.label(),
                "the straight-through gradient is not exact",
            ));
        }
    }
    Ok(())
}

/// The two levels closest to `x` (by distance, the lower first on a tie).
fn two_nearest(levels: &[f32], x: f32) -> (f32, f32) {
    let mut sorted: Vec<f32> = levels.to_vec();
    sorted.sort_by(|a, b| (a - x).abs().total_cmp(&(b - x).abs()).then(a.total_cmp(b)));
    (sorted[0], *sorted.get(1).unwrap_or(&sorted[0]))
}

/// `leaky_state_quant`: a Leaky neuron (`leaky_params`, snnTorch's defaults otherwise) with
/// its membrane quantized by `quant_params`, stepped through `inputs.x` from rest.
pub(super) fn check_leaky(case: &RefCase, cmp: &mut Comparer) -> Result<()> {
    let leaky = &case.json["leaky_params"];
    let quant = quantizer(case, &case.json["quant_params"])?;
    check_levels(case, &quant, cmp)?;
    let device = &Device::flex();
    let mut firing = firing_from(case, leaky)?;
    firing.state_quant = Some(quant);
    let mut config = LeakyConfig::new(leaky["beta"].as_f64().unwrap_or(0.9));
    config.firing = firing;
    config.record_mem = true;
    let neuron = config.init(device);
    let x = case.input("x")?.tensor::<3>(device)?;
    let out = neuron.run(x, None);
    let spk_want = case
        .outputs
        .get("spk")
        .ok_or_else(|| Error::invalid(case.label(), "missing outputs.spk"))?;
    cmp.forward("spk", out.spk, spk_want)?;
    if cmp.spike_flips > 0 {
        return Err(Error::invalid(
            case.label(),
            format!("{} spikes differ", cmp.spike_flips),
        ));
    }
    if let (Some(mem), Some(want)) = (out.mem, case.outputs.get("mem")) {
        cmp.forward("mem", mem, want)?;
    }
    within(case, "spk or mem", cmp.forward.0)
}
