//! Replays encoder, loss and accuracy cases: encoders compare their spikes, losses their value
//! and the gradient with respect to the recorded spikes or membrane, accuracy its value.

use burn::tensor::{Device, Int, Tensor, TensorData};

use super::{to_vec, Comparer, RefCase, RefTensor};
use crate::encode::{delta, latency, DeltaConfig, LatencyConfig};
use crate::error::{Error, Result};
use crate::loss::{CeCountLoss, CeMaxMembraneLoss, CeRateLoss, MseCountLoss, MseMembraneLoss};
use crate::metrics::accuracy_rate;

pub(super) fn check(case: &RefCase, cmp: &mut Comparer) -> Result<()> {
    match case.json["kind"].as_str() {
        Some("encoder") => check_encoder(case, cmp),
        Some("loss") => check_loss(case, cmp),
        Some("accuracy") => check_accuracy(case, cmp),
        _ => Err(Error::invalid(
            case.label(),
            "not an encoder, loss or accuracy case",
        )),
    }
}

fn output<'a>(case: &'a RefCase, name: &str) -> Result<&'a RefTensor> {
    case.outputs
        .get(name)
        .ok_or_else(|| Error::invalid(case.label(), format!("missing outputs.{name}")))
}

fn usize_param(case: &RefCase, name: &str, default: usize) -> usize {
    case.json["params"][name]
        .as_u64()
        .map_or(default, |v| v as usize)
}

/// `params.num_classes` when `params.population_code` is set.
fn population(case: &RefCase) -> Result<Option<usize>> {
    if !case.param_bool("population_code", false) {
        return Ok(None);
    }
    case.json["params"]["num_classes"]
        .as_u64()
        .map(|c| Some(c as usize))
        .ok_or_else(|| Error::invalid(case.label(), "population_code needs num_classes"))
}

fn targets(case: &RefCase, device: &Device) -> Result<Tensor<1, Int>> {
    let t = case.input("targets")?;
    let classes: Vec<i64> = t.data.iter().map(|&v| v.round() as i64).collect();
    Ok(Tensor::from_data(
        TensorData::new(classes, [t.data.len()]),
        device,
    ))
}

fn check_encoder(case: &RefCase, cmp: &mut Comparer) -> Result<()> {
    let device = Device::flex();
    let data = case.input("data")?;
    let want = output(case, "spikes")?;
    match case.json["encoder"].as_str() {
        Some("latency") => {
            let defaults = LatencyConfig::default();
            let config = LatencyConfig {
                num_steps: case.json["params"]["num_steps"]
                    .as_u64()
                    .map(|t| t as usize),
                tau: case.param_f64("tau", defaults.tau),
                threshold: case.param_f64("threshold", defaults.threshold),
                linear: case.param_bool("linear", false),
                normalize: case.param_bool("normalize", false),
                clip: case.param_bool("clip", false),
                first_spike_time: usize_param(case, "first_spike_time", 0),
                epsilon: case.param_f64("epsilon", defaults.epsilon),
                bypass: case.param_bool("bypass", false),
            };
            let spikes: Tensor<3> = latency(data.tensor::<2>(&device)?, &config)?;
            cmp.forward("spikes", spikes, want)
        }
        Some("delta") => {
            let config = DeltaConfig {
                threshold: case.param_f64("threshold", 0.1),
                padding: case.param_bool("padding", false),
                off_spike: case.param_bool("off_spike", false),
            };
            cmp.forward("spikes", delta(data.tensor::<3>(&device)?, &config)?, want)
        }
        other => Err(Error::invalid(
            case.label(),
            format!("encoder {other:?} is not supported"),
        )),
    }
}

fn check_loss(case: &RefCase, cmp: &mut Comparer) -> Result<()> {
    let device = Device::flex().autodiff();
    let spk = case.input("spk")?.tensor::<3>(&device)?.require_grad();
    let mem = case.input("mem")?.tensor::<3>(&device)?.require_grad();
    let targets = targets(case, &device)?;
    let population_code = population(case)?;
    let loss = match case.json["loss"].as_str() {
        Some("ce_rate_loss") => CeRateLoss { population_code }.forward(spk.clone(), targets)?,
        Some("ce_count_loss") => CeCountLoss { population_code }.forward(spk.clone(), targets)?,
        Some("mse_count_loss") => MseCountLoss {
            correct_rate: case.param_f64("correct_rate", 1.0),
            incorrect_rate: case.param_f64("incorrect_rate", 0.0),
            population_code,
        }
        .forward(spk.clone(), targets)?,
        Some("mse_membrane_loss") => MseMembraneLoss {
            on_target: case.param_f64("on_target", 1.0),
            off_target: case.param_f64("off_target", 0.0),
        }
        .forward(mem.clone(), targets)?,
        Some("ce_max_membrane_loss") => CeMaxMembraneLoss.forward(mem.clone(), targets)?,
        other => {
            return Err(Error::invalid(
                case.label(),
                format!("loss {other:?} is not supported"),
            ))
        }
    };
    let grads = loss.backward();
    cmp.forward_values("value", &to_vec(loss), output(case, "value")?)?;
    for (name, want) in &case.grads {
        let got = match name.as_str() {
            "spk" => spk.grad(&grads),
            "mem" => mem.grad(&grads),
            other => {
                return Err(Error::invalid(
                    case.label(),
                    format!("no gradient for '{other}'"),
                ))
            }
        };
        cmp.grad(&format!("grad {name}"), got.map(to_vec), want)?;
    }
    Ok(())
}

fn check_accuracy(case: &RefCase, cmp: &mut Comparer) -> Result<()> {
    let device = Device::flex();
    let spk = case.input("spk")?.tensor::<3>(&device)?;
    let targets = targets(case, &device)?;
    let value = match case.json["accuracy"].as_str() {
        Some("accuracy_rate") => accuracy_rate(spk, targets, population(case)?)?,
        other => {
            return Err(Error::invalid(
                case.label(),
                format!("accuracy {other:?} is not supported"),
            ))
        }
    };
    cmp.forward_values("value", &[value], output(case, "value")?)
}
