//! Replays neuron cases: each neuron is stepped through the recorded input and the loss
//! `sum(spk*w_spk) + sum(mem*w_mem)` is differentiated.

use std::collections::BTreeMap;

use burn::tensor::{Device, Tensor};

use super::{firing_of, to_vec, Comparer, RefCase};
use crate::error::{Error, Result};
use crate::neurons::{
    Alpha, AlphaConfig, AlphaState, FiringConfig, Lapicque, LapicqueConfig, LapicqueState, Leaky,
    LeakyConfig, LeakyState, RLeaky, RLeakyConfig, RLeakyState, RSynaptic, RSynapticConfig,
    RSynapticState, RecurrentConfig, Synaptic, SynapticConfig, SynapticState,
};

/// A neuron under test, stepped one time step at a time.
trait SteppedNeuron {
    /// One step; returns spikes and the named state tensors after the step.
    fn step(&mut self, x: Tensor<3>) -> (Tensor<3>, Vec<(&'static str, Tensor<3>)>);
    /// Learnable parameters by reference-file name.
    fn params(&self) -> Vec<(&'static str, Tensor<1>)>;
}

/// A neuron and its state between steps (none before the first).
struct UnderTest<N, S> {
    neuron: N,
    state: Option<S>,
}

/// Implements [`SteppedNeuron`] for one neuron type: its state, zero state, recorded traces and
/// learnable parameters by reference-file name.
macro_rules! stepped {
    ($neuron:ty, $state:ident, |$s:ident| [$($trace:ident),*], |$n:ident| [$($pname:literal => $pval:expr),*]) => {
        impl SteppedNeuron for UnderTest<$neuron, $state<3>> {
            fn step(&mut self, x: Tensor<3>) -> (Tensor<3>, Vec<(&'static str, Tensor<3>)>) {
                let state = self.state.take().unwrap_or_else(|| $state::zeros_like(&x));
                let (spk, $s) = self.neuron.step(x, state);
                let traces = vec![$((stringify!($trace), $s.$trace.clone())),*];
                self.state = Some($s);
                (spk, traces)
            }

            fn params(&self) -> Vec<(&'static str, Tensor<1>)> {
                let $n = &self.neuron;
                let mut params = vec![
                    ("threshold", $n.firing.threshold.val()),
                    ("graded_spikes_factor", $n.firing.graded.val()),
                ];
                // Entries are tensors or options of them (a parameter the neuron may lack).
                $(if let Some(t) = Option::<Tensor<1>>::from($pval) {
                    params.push(($pname, t));
                })*
                params
            }
        }
    };
}

stepped!(Leaky, LeakyState, |s| [mem], |n| ["beta" => n.beta.val()]);
stepped!(Synaptic, SynapticState, |s| [syn, mem], |n| ["alpha" => n.alpha.val(), "beta" => n.beta.val()]);
stepped!(Lapicque, LapicqueState, |s| [mem], |n| ["beta" => n.beta.val()]);
stepped!(Alpha, AlphaState, |s| [syn_exc, syn_inh, mem], |n| ["alpha" => n.alpha.val(), "beta" => n.beta.val()]);
stepped!(RLeaky, RLeakyState, |s| [mem], |n| ["beta" => n.beta.val(), "V" => recurrent_v(&n.recurrent)]);
stepped!(RSynaptic, RSynapticState, |s| [syn, mem], |n| [
    "alpha" => n.alpha.val(),
    "beta" => n.beta.val(),
    "V" => recurrent_v(&n.recurrent)
]);

/// The one-to-one recurrent weight `V`, absent for an all-to-all layer.
fn recurrent_v(recurrent: &crate::neurons::Recurrent) -> Option<Tensor<1>> {
    recurrent.v.as_ref().map(|v| v.val())
}

/// Wraps a freshly built neuron, its state type chosen by the caller.
fn boxed<N: 'static, S: 'static>(neuron: N) -> Box<dyn SteppedNeuron>
where
    UnderTest<N, S>: SteppedNeuron,
{
    Box::new(UnderTest::<N, S> {
        neuron,
        state: None,
    })
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
    Ok(match neuron {
        "Leaky" => {
            let mut config = LeakyConfig::new(value("beta", 0.9));
            config.learn_beta = learn("learn_beta");
            config.firing = firing;
            boxed::<_, LeakyState<3>>(config.init(device))
        }
        "Synaptic" => {
            let mut config = SynapticConfig::new(value("alpha", 0.9), value("beta", 0.9));
            config.learn_alpha = learn("learn_alpha");
            config.learn_beta = learn("learn_beta");
            config.firing = firing;
            boxed::<_, SynapticState<3>>(config.init(device))
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
            boxed::<_, LapicqueState<3>>(config.init(device)?)
        }
        "Alpha" => {
            let mut config = AlphaConfig::new(value("alpha", 0.9), value("beta", 0.8));
            config.learn_alpha = learn("learn_alpha");
            config.learn_beta = learn("learn_beta");
            // snnTorch's Alpha defaults to reset-to-zero, unlike every other neuron.
            config.firing = FiringConfig {
                reset: if case.json["params"]["reset_mechanism"].is_null() {
                    crate::neurons::Reset::Zero
                } else {
                    firing.reset
                },
                ..firing
            };
            boxed::<_, AlphaState<3>>(config.init(device)?)
        }
        "RLeaky" => {
            let mut config = RLeakyConfig::new(value("beta", 0.9), recurrent()?);
            config.learn_beta = learn("learn_beta");
            config.firing = firing;
            boxed::<_, RLeakyState<3>>(config.init(device)?)
        }
        "RSynaptic" => {
            let mut config =
                RSynapticConfig::new(value("alpha", 0.9), value("beta", 0.9), recurrent()?);
            config.learn_alpha = learn("learn_alpha");
            config.learn_beta = learn("learn_beta");
            config.firing = firing;
            boxed::<_, RSynapticState<3>>(config.init(device)?)
        }
        other => {
            return Err(Error::invalid(
                case.label(),
                format!("neuron '{other}' is not supported yet"),
            ))
        }
    })
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
                .params()
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
