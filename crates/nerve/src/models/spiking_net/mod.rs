//! A feed-forward spiking network described by a compact architecture string.
//!
//! `12C5-MP2-64C5-MP2-FC10` is snnTorch's tutorial conv SNN: a 5×5 convolution to 12 channels,
//! 2×2 max pooling, a Leaky layer, a 5×5 convolution to 64 channels, pooling, a Leaky layer, and a
//! fully connected layer to 10 outputs with a final Leaky layer. Tokens:
//! `<n>C<k>` convolution, `MP<k>` / `AP<k>` max / average pooling, `BN` batch-norm through time
//! (per-step statistics), `BN2D` batch-norm shared over time,
//! `DO<p>` dropout, `FC<n>` fully connected. A Leaky layer follows every convolution (after the
//! pooling, batch-norm and dropout that come right after it) and every fully connected layer.
//! An explicit `LIF` places a convolution's Leaky layer where it stands, so pooling written after
//! it pools spikes: snnTorch's ST-MNIST tutorial network (Conv → LIF → Conv → LIF → MaxPool → FC
//! → LIF) is `32C4-LIF-64C3-LIF-MP2-FC10`.

mod arch;
mod config;

use burn::module::Module;
use burn::tensor::Tensor;

pub use self::arch::{parse_arch, Token};
pub use self::config::SpikingNetConfig;
use crate::error::{Error, Result};
use crate::layers::{
    flatten_features, BatchNormTT2d, TimeAvgPool2d, TimeBatchNorm2d, TimeConv2d, TimeDropout,
    TimeLinear, TimeMaxPool2d,
};
use crate::neurons::{Leaky, LeakyState, Neuron};

/// One stage of a [`SpikingNet`].
#[derive(Module, Debug)]
pub enum Stage {
    /// Convolution over time.
    Conv(TimeConv2d),
    /// Max pooling over time.
    MaxPool(TimeMaxPool2d),
    /// Average pooling over time.
    AvgPool(TimeAvgPool2d),
    /// Batch-norm through time.
    BatchNorm(BatchNormTT2d),
    /// Dropout.
    Dropout(TimeDropout),
    /// Fully connected over time (flattens spatial input first).
    Linear(TimeLinear),
    /// A Leaky layer.
    Neuron(Leaky),
    /// Batch-norm shared over time.
    BatchNorm2d(TimeBatchNorm2d),
}

/// Activations between stages: spatial `[T, B, C, H, W]` or flat `[T, B, N]`.
#[derive(Debug, Clone)]
enum Act {
    Spatial(Tensor<5>),
    Flat(Tensor<3>),
}

impl Act {
    fn steps(&self) -> usize {
        match self {
            Act::Spatial(x) => x.dims()[0],
            Act::Flat(x) => x.dims()[0],
        }
    }

    /// Repeats a single-step activation over `steps` (a broadcast view, not a copy).
    fn expand(self, steps: usize) -> Self {
        if self.steps() == steps {
            return self;
        }
        match self {
            Act::Spatial(x) => {
                let [_, b, c, h, w] = x.dims();
                Act::Spatial(x.expand([steps, b, c, h, w]))
            }
            Act::Flat(x) => {
                let [_, b, n] = x.dims();
                Act::Flat(x.expand([steps, b, n]))
            }
        }
    }

    fn flat(self) -> Tensor<3> {
        match self {
            Act::Spatial(x) => flatten_features(x),
            Act::Flat(x) => x,
        }
    }
}

/// The membrane state of every Leaky layer, carried between chunks in truncated BPTT.
#[derive(Debug, Clone, Default)]
pub struct NetState {
    layers: Vec<Option<LayerState>>,
}

impl NetState {
    /// Cuts the gradient history (for truncated BPTT), keeping the values.
    pub fn detach(self) -> Self {
        Self {
            layers: self
                .layers
                .into_iter()
                .map(|s| {
                    s.map(|s| match s {
                        LayerState::Spatial(st) => LayerState::Spatial(LeakyState {
                            mem: st.mem.detach(),
                        }),
                        LayerState::Flat(st) => LayerState::Flat(LeakyState {
                            mem: st.mem.detach(),
                        }),
                    })
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone)]
enum LayerState {
    Spatial(LeakyState<5>),
    Flat(LeakyState<3>),
}

/// Spikes of one spiking layer during a forward pass.
#[derive(Debug, Clone)]
pub struct LayerSpikes {
    /// Layer name with its shape, e.g. `conv1 (12x12x12)`.
    pub name: String,
    /// Number of neurons in the layer (per sample).
    pub neurons: usize,
    /// Total spikes over all steps and samples (detached scalar).
    pub total: Tensor<1>,
    /// Spikes `[T, B, neurons]`, detached, when recording was asked for.
    pub spikes: Option<Tensor<3>>,
}

/// What a forward pass returns.
#[derive(Debug, Clone)]
pub struct NetOutput {
    /// Output spikes `[T, B, classes]`.
    pub spk: Tensor<3>,
    /// Output membrane `[T, B, classes]`.
    pub mem: Tensor<3>,
    /// Per spiking layer spike counts (and spikes when recorded).
    pub layers: Vec<LayerSpikes>,
    /// State after the last step.
    pub state: NetState,
}

/// A feed-forward spiking network (see the module docs for the architecture string).
#[derive(Module, Debug)]
pub struct SpikingNet {
    /// The stages in order.
    pub stages: Vec<Stage>,
    /// Spiking layers' names and sizes.
    #[module(skip)]
    pub layer_names: Vec<(String, usize)>,
    /// Number of time steps.
    #[module(skip)]
    pub steps: usize,
    /// Input `[channels, height, width]`.
    #[module(skip)]
    pub input: [usize; 3],
    /// What [`SpikingNetConfig::describe`] said when it was built.
    #[module(skip)]
    pub description: String,
}

/// What a stage of a [`SpikingNet`] is given, as [`SpikingNet::forward_observed`] shows it.
#[derive(Debug, Clone, Copy)]
pub enum StageInput<'a> {
    /// Spatial activations `[T, B, C, H, W]` (`T` is 1 for a static input not yet expanded).
    Spatial(&'a Tensor<5>),
    /// Flat activations `[T, B, N]`.
    Flat(&'a Tensor<3>),
}

impl SpikingNet {
    /// Runs the network over `x`: `[T, B, C, H, W]`, or `[1, B, C, H, W]` for an input that is the
    /// same at every step (a static image). A static input goes through the stateless layers
    /// before the first spiking layer only once.
    pub fn forward(
        &self,
        x: Tensor<5>,
        state: Option<NetState>,
        record: bool,
    ) -> Result<NetOutput> {
        self.forward_observed(x, state, record, &mut |_, _, _| {})
    }

    /// [`SpikingNet::forward`], showing `observe` each stage (by index) with the input it is
    /// about to compute on: what operation counting (energy estimates) needs.
    pub fn forward_observed(
        &self,
        x: Tensor<5>,
        state: Option<NetState>,
        record: bool,
        observe: &mut dyn FnMut(usize, &Stage, StageInput<'_>),
    ) -> Result<NetOutput> {
        let [t, _, c, h, w] = x.dims();
        if [c, h, w] != self.input {
            return Err(Error::Shape {
                what: "network input".into(),
                expected: format!(
                    "[T, B, {}, {}, {}]",
                    self.input[0], self.input[1], self.input[2]
                ),
                got: format!("{:?}", x.dims()),
            });
        }
        if t != 1 && t != self.steps && state.is_none() {
            return Err(Error::Shape {
                what: "network input time axis".into(),
                expected: format!("1 (static) or {}", self.steps),
                got: t.to_string(),
            });
        }
        let steps = if t == 1 && state.is_none() {
            self.steps
        } else {
            t
        };
        let mut states = state.unwrap_or_default().layers;
        let mut act = Act::Spatial(x);
        let mut layers = Vec::new();
        let mut last_mem = None;
        let neuron_count = self
            .stages
            .iter()
            .filter(|s| matches!(s, Stage::Neuron(_)))
            .count();
        for (i, stage) in self.stages.iter().enumerate() {
            match &act {
                Act::Spatial(x) => observe(i, stage, StageInput::Spatial(x)),
                Act::Flat(x) => observe(i, stage, StageInput::Flat(x)),
            }
            act = match (stage, act) {
                (Stage::Conv(m), Act::Spatial(x)) => Act::Spatial(m.forward(x)),
                (Stage::MaxPool(m), Act::Spatial(x)) => Act::Spatial(m.forward(x)),
                (Stage::AvgPool(m), Act::Spatial(x)) => Act::Spatial(m.forward(x)),
                (Stage::BatchNorm(m), a) => match a.expand(steps) {
                    Act::Spatial(x) => Act::Spatial(m.forward(x)?),
                    Act::Flat(_) => unreachable!("the parser puts BN only after convolutions"),
                },
                (Stage::BatchNorm2d(m), Act::Spatial(x)) => Act::Spatial(m.forward(x)),
                (Stage::Dropout(m), Act::Spatial(x)) => Act::Spatial(m.forward(x)),
                (Stage::Dropout(m), Act::Flat(x)) => Act::Flat(m.forward(x)),
                (Stage::Linear(m), a) => Act::Flat(m.forward(a.flat())),
                (Stage::Neuron(n), a) => {
                    let index = layers.len();
                    let is_last = index + 1 == neuron_count;
                    if states.len() <= index {
                        states.resize(index + 1, None);
                    }
                    let (name, neurons) = self.layer_names[index].clone();
                    let (spk_flat, next) = match (a.expand(steps), states[index].take()) {
                        (Act::Spatial(x), prev) => {
                            let prev = match prev {
                                Some(LayerState::Spatial(s)) => Some(s),
                                _ => None,
                            };
                            let out = n.run(x, prev);
                            let spk = out.spk;
                            (Act::Spatial(spk), LayerState::Spatial(out.state))
                        }
                        (Act::Flat(x), prev) => {
                            let prev = match prev {
                                Some(LayerState::Flat(s)) => Some(s),
                                _ => None,
                            };
                            let out = if is_last {
                                let mut recorded = n.clone();
                                recorded.record_mem = true;
                                recorded.run(x, prev)
                            } else {
                                n.run(x, prev)
                            };
                            if is_last {
                                last_mem = out.mem.clone();
                            }
                            (Act::Flat(out.spk), LayerState::Flat(out.state))
                        }
                    };
                    states[index] = Some(next);
                    let detached = spk_flat.clone().flat().detach();
                    layers.push(LayerSpikes {
                        name,
                        neurons,
                        total: detached.clone().sum(),
                        spikes: record.then_some(detached),
                    });
                    spk_flat
                }
                (stage, _) => {
                    return Err(Error::invalid(
                        "network",
                        format!("stage {stage:?} got a flat input"),
                    ));
                }
            };
        }
        let spk = act.flat();
        let mem = last_mem
            .ok_or_else(|| Error::invalid("network", "the last stage is not a spiking layer"))?;
        Ok(NetOutput {
            spk,
            mem,
            layers,
            state: NetState { layers: states },
        })
    }

    /// Number of output classes (neurons of the last layer).
    pub fn outputs(&self) -> usize {
        self.layer_names.last().map_or(0, |(_, n)| *n)
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::Device;

    use super::*;

    #[test]
    fn tutorial_net_runs_forward_and_backward() {
        let device = Device::flex().autodiff();
        let net = SpikingNetConfig::tutorial_conv().init(&device).unwrap();
        let x = Tensor::<5>::ones([1, 2, 1, 28, 28], &device);
        let out = net.forward(x, None, true).unwrap();
        assert_eq!(out.spk.dims(), [25, 2, 10]);
        assert_eq!(out.mem.dims(), [25, 2, 10]);
        assert_eq!(out.layers.len(), 3);
        assert_eq!(out.layers[0].neurons, 12 * 12 * 12);
        assert_eq!(out.layers[1].neurons, 64 * 4 * 4);
        let grads = out.mem.sum().backward();
        let Stage::Conv(conv) = &net.stages[0] else {
            panic!("first stage is a conv")
        };
        let g = conv
            .conv
            .weight
            .val()
            .grad(&grads)
            .expect("conv weight has a gradient");
        assert!(g.abs().sum().into_scalar::<f32>() > 0.0);
    }

    #[test]
    fn explicit_lif_puts_pooling_after_the_spikes() {
        let device = Device::flex();
        let config = SpikingNetConfig {
            arch: "32C4-LIF-64C3-LIF-MP2-FC10".into(),
            input: [2, 10, 10],
            steps: 3,
            beta: 0.95,
            ..SpikingNetConfig::tutorial_conv()
        };
        let net = config.init(&device).unwrap();
        let kinds: Vec<&str> = net
            .stages
            .iter()
            .map(|s| match s {
                Stage::Conv(_) => "conv",
                Stage::Neuron(_) => "lif",
                Stage::MaxPool(_) => "mp",
                Stage::Linear(_) => "fc",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, ["conv", "lif", "conv", "lif", "mp", "fc", "lif"]);
        // The second Leaky layer sees the unpooled 5x5 map; the FC sees 64x2x2 pooled spikes.
        let sizes: Vec<usize> = net.layer_names.iter().map(|(_, n)| *n).collect();
        assert_eq!(sizes, [32 * 7 * 7, 64 * 5 * 5, 10]);
        let out = net
            .forward(Tensor::<5>::ones([3, 2, 2, 10, 10], &device), None, false)
            .unwrap();
        assert_eq!(out.spk.dims(), [3, 2, 10]);
        // Without LIF the pooling comes first, as in the conv tutorial.
        let implicit = SpikingNetConfig {
            arch: "32C4-64C3-MP2-FC10".into(),
            ..config.clone()
        };
        let sizes: Vec<usize> = implicit
            .init(&device)
            .unwrap()
            .layer_names
            .iter()
            .map(|(_, n)| *n)
            .collect();
        assert_eq!(sizes, [32 * 7 * 7, 64 * 2 * 2, 10]);
        for bad in ["LIF-FC10", "32C4-LIF-LIF-FC10", "FC10-LIF-LIF"] {
            let c = SpikingNetConfig {
                arch: bad.into(),
                ..config.clone()
            };
            assert!(c.init(&device).is_err(), "{bad} should be refused");
        }
        // FC10-LIF spells out what FC10 has anyway.
        let c = SpikingNetConfig {
            arch: "32C4-LIF-FC10-LIF".into(),
            ..config
        };
        assert_eq!(c.init(&device).unwrap().layer_names.len(), 2);
    }

    #[test]
    fn wrong_input_shape_is_an_error() {
        let device = Device::flex();
        let net = SpikingNetConfig::tutorial_conv().init(&device).unwrap();
        let err = net
            .forward(Tensor::<5>::ones([1, 2, 1, 32, 32], &device), None, false)
            .unwrap_err();
        assert!(err.to_string().contains("network input"), "{err}");
    }
}
