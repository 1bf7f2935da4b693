//! A run's configuration as the JSON stored in its checkpoint, and the network rebuilt from it,
//! so `eval` (or any library user) gets the network a checkpoint was trained as, quantization
//! included.

use serde_json::{json, Value};

use crate::data::Encoding;
use crate::error::{Error, Result};
use crate::firing::Reset;
use crate::models::SpikingNetConfig;
use crate::neurons::FiringConfig;
use crate::quant::{StateQuantConfig, WeightQuantConfig};
use crate::train::trainer::{LossKind, TrainConfig};

/// The run's configuration as JSON, stored in the checkpoint so `eval` can rebuild the network.
pub fn run_config_json(net: &SpikingNetConfig, cfg: &TrainConfig) -> Value {
    json!({
        "arch": net.arch,
        "input": net.input,
        "steps": net.steps,
        "beta": net.beta,
        "learn_beta": net.learn_beta,
        "threshold": net.firing.threshold,
        "reset": format!("{:?}", net.firing.reset).to_lowercase(),
        "surrogate": format!("{:?}", net.firing.surrogate),
        "weight_quant": net.weight_quant.map(|w| w.to_string()),
        "state_quant": net.firing.state_quant.as_ref().map(|q| &q.config),
        "epochs": cfg.epochs,
        "batch_size": cfg.batch_size,
        "lr": cfg.lr,
        "optimizer": format!("{:?}", cfg.optimizer),
        "schedule": format!("{:?}", cfg.schedule),
        "grad_clip": cfg.grad_clip,
        "seed": cfg.seed,
        "loss": format!("{:?}", cfg.loss),
        "loss_spec": cfg.loss.spec(),
        "encoding": format!("{:?}", cfg.encoding),
        "dataset": cfg.dataset,
        "tbptt": cfg.tbptt,
        "population": cfg.population,
    })
}

/// The network a training checkpoint holds, rebuilt on Flex from its run configuration and
/// loaded, with that configuration and the checkpoint's metadata.
pub fn load_checkpoint_net(
    path: &std::path::Path,
) -> Result<(
    crate::models::SpikingNet,
    SpikingNetConfig,
    crate::store::checkpoint::CheckpointMeta,
)> {
    let meta = crate::store::checkpoint::load_meta(path)?;
    let config = net_config_from_run(&meta.config).map_err(|e| Error::Checkpoint {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })?;
    let net = config.init(&burn::tensor::Device::flex())?;
    let (net, _) = crate::store::checkpoint::load(path, net, &config.describe())?;
    Ok((net, config, meta))
}

/// The network a run configuration describes (what [`run_config_json`] wrote). The surrogate is
/// not restored: it shapes only gradients, and a rebuilt network is for inference.
pub fn net_config_from_run(config: &Value) -> Result<SpikingNetConfig> {
    let lacks = |what: &str| {
        Error::invalid(
            "checkpoint run configuration",
            format!("lacks a valid '{what}'"),
        )
    };
    let input: Vec<usize> =
        serde_json::from_value(config["input"].clone()).map_err(|_| lacks("input"))?;
    let threshold = config["threshold"]
        .as_f64()
        .ok_or_else(|| lacks("threshold"))?;
    let weight_quant = match &config["weight_quant"] {
        Value::Null => None,
        Value::String(spec) => Some(WeightQuantConfig::parse(spec)?),
        _ => return Err(lacks("weight_quant")),
    };
    let state_quant = match &config["state_quant"] {
        Value::Null => None,
        q @ Value::Object(_) => {
            let config: StateQuantConfig =
                serde_json::from_value(q.clone()).map_err(|_| lacks("state_quant"))?;
            Some(config.init()?)
        }
        _ => return Err(lacks("state_quant")),
    };
    let net = SpikingNetConfig {
        arch: config["arch"]
            .as_str()
            .ok_or_else(|| lacks("arch"))?
            .to_string(),
        input: input.try_into().map_err(|_| lacks("input"))?,
        steps: config["steps"].as_u64().ok_or_else(|| lacks("steps"))? as usize,
        beta: config["beta"].as_f64().ok_or_else(|| lacks("beta"))?,
        learn_beta: config["learn_beta"].as_bool().unwrap_or(false),
        firing: FiringConfig {
            threshold,
            reset: config["reset"]
                .as_str()
                .and_then(Reset::from_name)
                .unwrap_or_default(),
            state_quant,
            ..FiringConfig::default()
        },
        weight_quant,
    };
    net.validate()?;
    Ok(net)
}

/// The loss a run was trained with (checkpoints from before `loss_spec` name only the kind,
/// with snnTorch's default rates; cross-entropy of the rates when the record names none).
pub fn loss_from_run(config: &Value) -> LossKind {
    if let Some(loss) = config["loss_spec"]
        .as_str()
        .and_then(|s| LossKind::parse(s).ok())
    {
        return loss;
    }
    match config["loss"].as_str().unwrap_or("") {
        n if n.starts_with("CeCount") => LossKind::CeCount,
        n if n.starts_with("MseCount") => LossKind::MseCount {
            correct_rate: 1.0,
            incorrect_rate: 0.0,
        },
        n if n.starts_with("CeMaxMembrane") => LossKind::CeMaxMembrane,
        _ => LossKind::CeRate,
    }
}

/// The population code a run was trained with: output neurons per class (`None`: one each).
pub fn population_from_run(config: &Value) -> Option<usize> {
    config["population"].as_u64().map(|p| p as usize)
}

/// The input encoding a run was trained with (direct when the record names none).
pub fn encoding_from_run(config: &Value) -> Encoding {
    match config["encoding"].as_str() {
        Some(s) if s.starts_with("Rate") => Encoding::Rate { gain: 1.0 },
        _ => Encoding::Direct,
    }
}
