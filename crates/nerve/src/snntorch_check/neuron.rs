//! Replays neuron cases: each neuron is stepped through the recorded input and the loss
//! `sum(spk*w_spk) + sum(mem*w_mem)` is differentiated.

use std::collections::BTreeMap;

use burn::tensor::{Device, Tensor};

use super::{firing_of, to_vec, Comparer, RefCase};
use crate::error::{Error, Result};
use crate::neurons::{
    AlphaConfig, FiringConfig, LapicqueConfig, LeakyConfig, Neuron, NeuronState, RLeakyConfig,
    RSynapticConfig, RecurrentConfig, Reset, SynapticConfig,
};

/// Builds the neuron a case names, with learnable parameters set from `inputs.param.*`, and
/// replays the case through it.
pub(super) fn check(case: &RefCase, cmp: &mut Comparer) -> Result<()> {
    let device = &Device::flex().autodiff();
    let firing = firing_of(case)?;
    let value = |name: &str, default: f64| -> f64 {
        case.inputs
            .get(&format!("param.{name}"))
            .and_then(|t| t.data.first().copied())
            .unwrap_or_else(|| case.param_f64(name, default))
    };
    let firing = FiringConfig {
        threshold: value("threshold", 1.0),
        ..firing
    };
    let learn = |name: &str| case.param_bool(name, false);
    // snnTorch learns the recurrent weights unless told otherwise.
    let recurrent = || -> Result<RecurrentConfig> {
        if case.param_bool("all_to_all", true) {
            return Err(Error::invalid(
                case.label(),
                "all-to-all recurrent cases need the recorded weight matrix, which the format lacks",
            ));
        }
        Ok(RecurrentConfig {
            learn_recurrent: case.param_bool("learn_recurrent", true),
            ..RecurrentConfig::one_to_one(value("V", 1.0))
        })
    };
    let neuron = case.json["neuron"].as_str().unwrap_or("?");
    match neuron {
        "Leaky" => {
            let mut config = LeakyConfig::new(value("beta", 0.9));
            config.learn_beta = learn("learn_beta");
            config.firing = firing;
            replay(case, cmp, device, config.init(device))
        }
        "Synaptic" => {
            let mut config = SynapticConfig::new(value("alpha", 0.9), value("beta", 0.9));
            config.learn_alpha = learn("learn_alpha");
            config.learn_beta = learn("learn_beta");
            config.firing = firing;
            replay(case, cmp, device, config.init(device))
        }
        "Lapicque" => {
            let mut config = LapicqueConfig::new(value("beta", 0.9));
            let opt = |name: &str| case.json["params"][name].as_f64();
            config.r = opt("R");
            config.c = opt("C");
            if config.r.is_some() && config.c.is_some() && case.json["params"]["beta"].is_null() {
                config.beta = None;
            }
            config.time_step = case.param_f64("time_step", 1.0);
            config.learn_beta = learn("learn_beta");
            config.firing = firing;
            replay(case, cmp, device, config.init(device)?)
        }
        "Alpha" => {
            let mut config = AlphaConfig::new(value("alpha", 0.9), value("beta", 0.8));
            config.learn_alpha = learn("learn_alpha");
            config.learn_beta = learn("learn_beta");
            // snnTorch's Alpha defaults to reset-to-zero, unlike every other neuron.
            config.firing = FiringConfig {
                reset: if case.json["params"]["reset_mechanism"].is_null() {
                    Reset::Zero
                } else {
                    firing.reset
                },
                ..firing
            };
            replay(case, cmp, device, config.init(device)?)
        }
        "RLeaky" => {
            let mut config = RLeakyConfig::new(value("beta", 0.9), recurrent()?);
            config.learn_beta = learn("learn_beta");
            config.firing = firing;
            replay(case, cmp, device, config.init(device)?)
        }
        "RSynaptic" => {
            let mut config =
                RSynapticConfig::new(value("alpha", 0.9), value("beta", 0.9), recurrent()?);
            config.learn_alpha = learn("learn_alpha");
            config.learn_beta = learn("learn_beta");
            config.firing = firing;
            replay(case, cmp, device, config.init(device)?)
        }
        other => Err(Error::invalid(
            case.label(),
            format!("neuron '{other}' is not supported yet"),
        )),
    }
}

/// Steps `neuron` through the case's input, recording every named state tensor, and compares
/// the traces and the gradients of the case's loss with the reference.
fn replay<N: Neuron>(case: &RefCase, cmp: &mut Comparer, device: &Device, neuron: N) -> Result<()> {
    let x = case.input("x")?.tensor::<3>(device)?.require_grad();
    let w_spk = case.input("w_spk")?.tensor::<3>(device)?;
    let w_mem = case.input("w_mem")?.tensor::<3>(device)?;
    let steps = x.dims()[0];

    let mut spikes = Vec::new();
    let mut traces: BTreeMap<&'static str, Vec<Tensor<3>>> = BTreeMap::new();
    let mut state = None;
    for t in 0..steps {
        let xt = x.clone().narrow(0, t, 1);
        let current = state.take().unwrap_or_else(|| neuron.zero_state(&xt));
        let (spk, next) = neuron.step(xt, current);
        for (name, value) in next.named_tensors() {
            // A recurrent neuron keeps its spikes as state; they are compared as `spk` below.
            if name != "spk" {
                traces.entry(name).or_default().push(value);
            }
        }
        spikes.push(spk);
        state = Some(next);
    }
    let spk = Tensor::cat(spikes, 0);
    let traces: BTreeMap<&str, Tensor<3>> = traces
        .into_iter()
        .map(|(k, v)| (k, Tensor::cat(v, 0)))
        .collect();
    let mem = traces
        .get("mem")
        .cloned()
        .ok_or_else(|| Error::invalid(case.label(), "neuron records no membrane"))?;
    let loss = (spk.clone() * w_spk).sum() + (mem * w_mem).sum();
    let grads = loss.backward();

    cmp.forward(
        "spk",
        spk,
        case.outputs
            .get("spk")
            .ok_or_else(|| Error::invalid(case.label(), "no outputs.spk"))?,
    )?;
    for (name, value) in &traces {
        if let Some(want) = case.outputs.get(*name) {
            cmp.forward(name, value.clone(), want)?;
        }
    }
    for (name, want) in &case.grads {
        if name == "x" {
            cmp.grad("grad x", x.grad(&grads).map(to_vec), want)?;
        } else if let Some(pname) = name.strip_prefix("param.") {
            let param = neuron
                .named_params()
                .into_iter()
                .find(|(n, _)| *n == pname)
                .map(|(_, t)| t)
                .ok_or_else(|| {
                    Error::invalid(case.label(), format!("no learnable parameter '{pname}'"))
                })?;
            // Reference parameters are scalars; a shared parameter is stored as `[1]`.
            cmp.grad(
                &format!("grad {pname}"),
                param.grad(&grads).map(to_vec),
                want,
            )?;
        }
    }
    Ok(())
}
