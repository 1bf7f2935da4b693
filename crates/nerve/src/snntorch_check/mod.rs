//! Replays `nerve-reference-v1` files (vectors recorded from snnTorch) against Nerve.
//!
//! Each case is rebuilt with Nerve's own neurons (through the [`Neuron`](crate::neurons::Neuron)
//! trait, so any neuron replays the same way), encoders and losses in float32, and the worst
//! forward error (absolute) and gradient error (relative to the largest reference magnitude in
//! that tensor, with an absolute floor) are compared with the tolerances of the format.

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};

mod neuron;
mod quant;
mod spikegen;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::firing::Reset;
use crate::neurons::FiringConfig;
use crate::surrogate::Surrogate;

/// Forward tolerance: absolute.
pub const FORWARD_TOL: f64 = 1e-5;
/// Gradient tolerance: relative to the largest magnitude of the reference tensor.
pub const GRAD_TOL: f64 = 1e-4;
/// Absolute floor of the gradient tolerance: a near-zero gradient (a threshold's, a cancelling
/// sum of hundreds of terms) is within tolerance when it is this close, whatever its scale.
pub const GRAD_FLOOR: f64 = 1e-6;

/// A tensor of the reference file: shape and row-major values.
#[derive(Debug, Clone)]
pub struct RefTensor {
    /// Shape.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<f64>,
}

impl RefTensor {
    fn parse(v: &Value, what: &str) -> Result<Self> {
        let bad = || Error::invalid(what, "expected {\"shape\": [...], \"data\": [...]}");
        let shape = v
            .get("shape")
            .and_then(Value::as_array)
            .ok_or_else(bad)?
            .iter()
            .map(|d| d.as_u64().map(|d| d as usize).ok_or_else(bad))
            .collect::<Result<Vec<_>>>()?;
        let data = v
            .get("data")
            .and_then(Value::as_array)
            .ok_or_else(bad)?
            .iter()
            .map(|d| d.as_f64().ok_or_else(bad))
            .collect::<Result<Vec<_>>>()?;
        if shape.iter().product::<usize>() != data.len() {
            return Err(Error::invalid(
                what,
                format!(
                    "shape {:?} holds {} values, found {}",
                    shape,
                    shape.iter().product::<usize>(),
                    data.len()
                ),
            ));
        }
        Ok(Self { shape, data })
    }

    /// As a rank-`D` float tensor on `device` (a scalar becomes `[1]`).
    pub fn tensor<const D: usize>(&self, device: &Device) -> Result<Tensor<D>> {
        let shape = if self.shape.is_empty() {
            vec![1]
        } else {
            self.shape.clone()
        };
        if shape.len() != D {
            return Err(Error::Shape {
                what: "reference tensor".into(),
                expected: format!("rank {D}"),
                got: format!("{:?}", self.shape),
            });
        }
        let data: Vec<f32> = self.data.iter().map(|&v| v as f32).collect();
        Ok(Tensor::from_data(TensorData::new(data, shape), device))
    }
}

/// One case of a reference file, with its tensors parsed.
#[derive(Debug, Clone)]
pub struct RefCase {
    /// Position in the file.
    pub index: usize,
    /// The raw JSON (kind, params, surrogate, ...).
    pub json: Value,
    /// `inputs.*`.
    pub inputs: BTreeMap<String, RefTensor>,
    /// `outputs.*`.
    pub outputs: BTreeMap<String, RefTensor>,
    /// `grads.*` (parameter gradients as `param.NAME`).
    pub grads: BTreeMap<String, RefTensor>,
}

impl RefCase {
    /// A short human-readable label, e.g. `neuron Leaky subtract atan`.
    pub fn label(&self) -> String {
        let j = &self.json;
        let kind = j["kind"].as_str().unwrap_or("?");
        let mut label = format!("#{:02} {kind}", self.index);
        if let Some(name) = j[kind].as_str() {
            label.push_str(&format!(" {name}"));
        }
        for section in ["params", "quant_params", "leaky_params"] {
            for (k, v) in j[section].as_object().into_iter().flatten() {
                label.push_str(&format!(" {k}={v}"));
            }
        }
        if let Some(s) = j["surrogate"]["name"].as_str() {
            label.push_str(&format!(" sg={s}"));
        }
        label
    }

    /// The input tensor named `name`.
    pub fn input(&self, name: &str) -> Result<&RefTensor> {
        self.inputs
            .get(name)
            .ok_or_else(|| Error::invalid(self.label(), format!("missing inputs.{name}")))
    }

    /// A numeric parameter from `params`, or `default`.
    pub fn param_f64(&self, name: &str, default: f64) -> f64 {
        match &self.json["params"][name] {
            Value::Bool(b) => f64::from(u8::from(*b)),
            v => v.as_f64().unwrap_or(default),
        }
    }

    /// A boolean parameter from `params`, or `default`.
    pub fn param_bool(&self, name: &str, default: bool) -> bool {
        self.json["params"][name].as_bool().unwrap_or(default)
    }
}

/// Parses a `nerve-reference-v1` file.
pub fn load(path: &Path) -> Result<Vec<RefCase>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let root: Value = serde_json::from_str(&text)
        .map_err(|e| Error::format(path, format!("not valid JSON: {e}")))?;
    if root["meta"]["format"].as_str() != Some("nerve-reference-v1") {
        return Err(Error::format(
            path,
            "meta.format is not \"nerve-reference-v1\"",
        ));
    }
    let cases = root["cases"]
        .as_array()
        .ok_or_else(|| Error::format(path, "no \"cases\" array"))?;
    cases
        .iter()
        .enumerate()
        .map(|(index, c)| {
            let section = |name: &str| -> Result<BTreeMap<String, RefTensor>> {
                let mut map = BTreeMap::new();
                if let Some(obj) = c[name].as_object() {
                    for (k, v) in obj {
                        if k == "param" {
                            for (pk, pv) in v.as_object().into_iter().flatten() {
                                let key = format!("param.{pk}");
                                map.insert(key.clone(), RefTensor::parse(pv, &key)?);
                            }
                        } else {
                            map.insert(k.clone(), RefTensor::parse(v, k)?);
                        }
                    }
                }
                Ok(map)
            };
            Ok(RefCase {
                index,
                json: c.clone(),
                inputs: section("inputs")?,
                outputs: section("outputs")?,
                grads: section("grads")?,
            })
        })
        .collect::<Result<Vec<_>>>()
        .map_err(|e| Error::format(path, e.to_string()))
}

/// What replaying one case found.
#[derive(Debug, Clone)]
pub struct CaseReport {
    /// The case's label.
    pub label: String,
    /// Worst absolute forward error, and in which tensor.
    pub forward: (f64, String),
    /// Worst relative gradient error, and in which tensor (0 when the case has no gradients):
    /// the largest absolute difference over the tensor's largest reference magnitude, or over
    /// `GRAD_FLOOR / GRAD_TOL` when that is larger, so it is within `GRAD_TOL` exactly when the
    /// difference is within `GRAD_TOL` relative or `GRAD_FLOOR` absolute.
    pub grad: (f64, String),
    /// Spikes that differ from the reference.
    pub spike_flips: usize,
    /// An error that stopped the case from running, if any.
    pub error: Option<String>,
}

impl CaseReport {
    /// Whether the case is within tolerance.
    pub fn passed(&self) -> bool {
        self.error.is_none()
            && self.forward.0 <= FORWARD_TOL
            && self.grad.0 <= GRAD_TOL
            && self.spike_flips == 0
    }
}

/// Compares named results with the references and accumulates the worst errors.
#[derive(Default)]
pub(crate) struct Comparer {
    forward: (f64, String),
    grad: (f64, String),
    spike_flips: usize,
}

impl Comparer {
    pub(crate) fn forward(&mut self, name: &str, got: Tensor<3>, want: &RefTensor) -> Result<()> {
        self.forward_values(name, &to_vec(got), want)
    }

    pub(crate) fn forward_values(
        &mut self,
        name: &str,
        got: &[f64],
        want: &RefTensor,
    ) -> Result<()> {
        check_len(name, got.len(), want)?;
        let err = max_abs_diff(got, &want.data);
        if name == "spk" || name == "spikes" {
            self.spike_flips += got
                .iter()
                .zip(&want.data)
                .filter(|(a, b)| (*a - *b).abs() > 0.5 * b.abs().max(1e-3))
                .count();
        }
        if err > self.forward.0 || self.forward.1.is_empty() {
            self.forward = (err.max(self.forward.0), name.to_string());
        }
        Ok(())
    }

    pub(crate) fn grad(
        &mut self,
        name: &str,
        got: Option<Vec<f64>>,
        want: &RefTensor,
    ) -> Result<()> {
        let got = got.ok_or_else(|| Error::invalid(name, "no gradient was computed"))?;
        check_len(name, got.len(), want)?;
        let err = grad_error(&got, &want.data);
        if err > self.grad.0 || self.grad.1.is_empty() {
            self.grad = (err.max(self.grad.0), name.to_string());
        }
        Ok(())
    }
}

fn check_len(name: &str, got: usize, want: &RefTensor) -> Result<()> {
    if got != want.data.len() {
        return Err(Error::Shape {
            what: name.into(),
            expected: format!("{:?}", want.shape),
            got: format!("{got} values"),
        });
    }
    Ok(())
}

/// The gradient error of `got` against `want`, as [`CaseReport::grad`] defines it.
fn grad_error(got: &[f64], want: &[f64]) -> f64 {
    let scale = want
        .iter()
        .fold(0.0f64, |m, v| m.max(v.abs()))
        .max(GRAD_FLOOR / GRAD_TOL);
    max_abs_diff(got, want) / scale
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

/// A tensor's values as f64.
pub fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}

/// Replays every case of a file.
pub fn check_file(path: &Path) -> Result<Vec<CaseReport>> {
    let cases = load(path)?;
    Ok(cases.iter().map(check_case).collect())
}

/// Replays one case.
pub fn check_case(case: &RefCase) -> CaseReport {
    let mut cmp = Comparer::default();
    let result = match case.json["kind"].as_str() {
        Some("neuron") => neuron::check(case, &mut cmp),
        Some("encoder" | "loss" | "accuracy") => spikegen::check(case, &mut cmp),
        Some("state_quant") => quant::check_state_quant(case, &mut cmp),
        Some("leaky_state_quant") => quant::check_leaky(case, &mut cmp),
        Some(other) => Err(Error::invalid(
            case.label(),
            format!("case kind '{other}' is not supported yet"),
        )),
        None => Err(Error::invalid(case.label(), "case has no kind")),
    };
    CaseReport {
        label: case.label(),
        forward: cmp.forward,
        grad: cmp.grad,
        spike_flips: cmp.spike_flips,
        error: result.err().map(|e| e.to_string()),
    }
}

/// The surrogate a case names, with its constants.
pub fn surrogate_of(case: &RefCase) -> Result<Surrogate> {
    let s = &case.json["surrogate"];
    let name = s["name"].as_str().unwrap_or("atan");
    let c = |k: &str, d: f64| s[k].as_f64().unwrap_or(d);
    Ok(match name {
        "atan" => Surrogate::ATan {
            alpha: c("alpha", 2.0),
        },
        "fast_sigmoid" => Surrogate::FastSigmoid {
            slope: c("slope", 25.0),
        },
        "sigmoid" => Surrogate::Sigmoid {
            slope: c("slope", 25.0),
        },
        "triangular" => Surrogate::Triangular {
            threshold: c("threshold", 1.0),
        },
        "spike_rate_escape" => Surrogate::SpikeRateEscape {
            beta: c("beta", 1.0),
            slope: c("slope", 25.0),
        },
        "straight_through_estimator" => Surrogate::StraightThrough,
        other => {
            return Err(Error::invalid(
                case.label(),
                format!("unknown surrogate '{other}'"),
            ));
        }
    })
}

/// The firing options a neuron case names.
pub fn firing_of(case: &RefCase) -> Result<FiringConfig> {
    firing_from(case, &case.json["params"])
}

/// The firing options in a case's `params` object (or another object of the same names).
pub(crate) fn firing_from(case: &RefCase, params: &Value) -> Result<FiringConfig> {
    let f64_of = |name: &str, default: f64| match &params[name] {
        Value::Bool(b) => f64::from(u8::from(*b)),
        v => v.as_f64().unwrap_or(default),
    };
    let bool_of = |name: &str, default: bool| params[name].as_bool().unwrap_or(default);
    let reset_name = params["reset_mechanism"].as_str().unwrap_or("subtract");
    let reset = Reset::from_name(reset_name).ok_or_else(|| {
        Error::invalid(
            case.label(),
            format!("unknown reset mechanism '{reset_name}'"),
        )
    })?;
    Ok(FiringConfig {
        threshold: f64_of("threshold", 1.0),
        learn_threshold: bool_of("learn_threshold", false),
        surrogate: surrogate_of(case)?,
        reset,
        reset_delay: bool_of("reset_delay", true),
        graded_spikes_factor: f64_of("graded_spikes_factor", 1.0),
        learn_graded_spikes_factor: bool_of("learn_graded_spikes_factor", false),
        inhibition: bool_of("inhibition", false),
        detach_reset: true,
        state_quant: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(data: &[f64]) -> RefTensor {
        RefTensor {
            shape: vec![data.len()],
            data: data.to_vec(),
        }
    }

    fn worst_grad_error(got: &[f64], want: &[f64]) -> f64 {
        let mut cmp = Comparer::default();
        cmp.grad("grad threshold", Some(got.to_vec()), &reference(want))
            .unwrap();
        cmp.grad.0
    }

    #[test]
    fn a_near_zero_gradient_within_the_absolute_floor_passes() {
        // 5e-7 off a gradient of magnitude 2e-7: 2.5 relative, but within the 1e-6 floor.
        let err = worst_grad_error(&[6e-7, -2e-7], &[1e-7, -2e-7]);
        assert!(err <= GRAD_TOL, "{err:e}");
    }

    #[test]
    fn a_near_zero_gradient_beyond_the_absolute_floor_fails() {
        let err = worst_grad_error(&[2.1e-6, -2e-7], &[1e-7, -2e-7]);
        assert!(err > GRAD_TOL, "{err:e}");
    }

    #[test]
    fn a_large_gradient_is_judged_relative_to_its_scale() {
        // 5e-3 off a scale of 100 is 5e-5 relative; 2e-2 off is 2e-4.
        assert!(worst_grad_error(&[100.005, 1.0], &[100.0, 1.0]) <= GRAD_TOL);
        assert!(worst_grad_error(&[100.0, 1.02], &[100.0, 1.0]) > GRAD_TOL);
    }
}
