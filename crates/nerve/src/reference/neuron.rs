//! Replays neuron cases: each neuron is stepped through the recorded input and the loss
//! `sum(spk*w_spk) + sum(mem*w_mem)` is differentiated.

use std::collections::BTreeMap;

use burn::tensor::{Device, Tensor};

use super::{firing_of, to_vec, Comparer, RefCase};
use crate::error::{Error, Result};
use crate::neurons::{FiringConfig, LeakyConfig, LeakyState};

/// A neuron under test, stepped one time step at a time.
trait SteppedNeuron {
    /// One step; returns spikes and the named state tensors after the step.
    fn step(&mut self, x: Tensor<3>) -> (Tensor<3>, Vec<(&'static str, Tensor<3>)>);
    /// Learnable parameters by reference-file name.
    fn params(&self) -> Vec<(&'static str, Tensor<1>)>;
}

struct LeakyUnderTest {
    neuron: crate::neurons::Leaky,
    state: Option<LeakyState<3>>,
}

impl SteppedNeuron for LeakyUnderTest {
    fn step(&mut self, x: Tensor<3>) -> (Tensor<3>, Vec<(&'static str, Tensor<3>)>) {
        let state = self.state.take().unwrap_or_else(|| LeakyState::zeros_like(&x));
        let (spk, state) = self.neuron.step(x, state);
        let traces = vec![("mem", state.mem.clone())];
        self.state = Some(state);
        (spk, traces)
    }

    fn params(&self) -> Vec<(&'static str, Tensor<1>)> {
        vec![
            ("beta", self.neuron.beta.val()),
            ("threshold", self.neuron.firing.threshold.val()),
            ("graded_spikes_factor", self.neuron.firing.graded.val()),
        ]
    }
}

/// Builds the neuron a case names, with learnable parameters set from `inputs.param.*`.
fn build_neuron(case: &RefCase, device: &Device) -> Result<Box<dyn SteppedNeuron>> {
    let firing = firing_of(case)?;
    let value = |name: &str, default: f64| -> f64 {
        case.inputs
            .get(&format!("param.{name}"))
            .and_then(|t| t.data.first().copied())
            .unwrap_or_else(|| case.param_f64(name, default))
    };
    let neuron = case.json["neuron"].as_str().unwrap_or("?");
    match neuron {
        "Leaky" => {
            let mut config = LeakyConfig::new(value("beta", 0.9));
            config.learn_beta = case.param_bool("learn_beta", false);
            config.firing = FiringConfig {
                threshold: value("threshold", 1.0),
                ..firing
            };
            Ok(Box::new(LeakyUnderTest {
                neuron: config.init(device),
                state: None,
            }))
        }
        other => Err(Error::invalid(case.label(), format!("neuron '{other}' is not supported yet"))),
    }
}

pub(super) fn check(case: &RefCase, cmp: &mut Comparer) -> Result<()> {
    let device = Device::flex().autodiff();
    let mut neuron = build_neuron(case, &device)?;
    let x = case.input("x")?.tensor::<3>(&device)?.require_grad();
    let w_spk = case.input("w_spk")?.tensor::<3>(&device)?;
    let w_mem = case.input("w_mem")?.tensor::<3>(&device)?;
    let steps = x.dims()[0];

    let mut spikes = Vec::new();
    let mut traces: BTreeMap<&'static str, Vec<Tensor<3>>> = BTreeMap::new();
    for t in 0..steps {
        let (spk, named) = neuron.step(x.clone().narrow(0, t, 1));
        spikes.push(spk);
        for (name, value) in named {
            traces.entry(name).or_default().push(value);
        }
    }
    let spk = Tensor::cat(spikes, 0);
    let traces: BTreeMap<&str, Tensor<3>> =
        traces.into_iter().map(|(k, v)| (k, Tensor::cat(v, 0))).collect();
    let mem = traces
        .get("mem")
        .cloned()
        .ok_or_else(|| Error::invalid(case.label(), "neuron records no membrane"))?;
    let loss = (spk.clone() * w_spk).sum() + (mem * w_mem).sum();
    let grads = loss.backward();

    cmp.forward("spk", spk, case.outputs.get("spk").ok_or_else(|| Error::invalid(case.label(), "no outputs.spk"))?)?;
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
                .params()
                .into_iter()
                .find(|(n, _)| *n == pname)
                .map(|(_, t)| t)
                .ok_or_else(|| Error::invalid(case.label(), format!("no learnable parameter '{pname}'")))?;
            // Reference parameters are scalars; a shared parameter is stored as `[1]`.
            cmp.grad(&format!("grad {pname}"), param.grad(&grads).map(to_vec), want)?;
        }
    }
    Ok(())
}
