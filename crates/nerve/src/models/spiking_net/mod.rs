//! A feed-forward spiking network described by a compact architecture string.
//!
//! `12C5-MP2-64C5-MP2-FC10` is snnTorch's tutorial conv SNN: a 5×5 convolution to 12 channels,
//! 2×2 max pooling, a Leaky layer, a 5×5 convolution to 64 channels, pooling, a Leaky layer, and a
//! fully connected layer to 10 outputs with a final Leaky layer. Tokens:
//! `<n>C<k>` convolution, `MP<k>` / `AP<k>` max / average pooling, `BN` batch-norm through time,
//! `DO<p>` dropout, `FC<n>` fully connected. A Leaky layer follows every convolution (after the
//! pooling, batch-norm and dropout that come right after it) and every fully connected layer.
//! An explicit `LIF` places a convolution's Leaky layer where it stands, so pooling written after
//! it pools spikes: snnTorch's ST-MNIST tutorial network (Conv → LIF → Conv → LIF → MaxPool → FC
//! → LIF) is `32C4-LIF-64C3-LIF-MP2-FC10`.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::error::{Error, Result};
use crate::layers::{
    flatten_features, BatchNormTT2d, TimeAvgPool2d, TimeConv2d, TimeDropout, TimeLinear,
    TimeMaxPool2d,
};
use crate::neurons::{FiringConfig, Leaky, LeakyConfig, LeakyState};

/// One parsed token of an architecture string.
#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    /// Convolution to `channels` with a square `kernel`.
    Conv {
        /// Output channels.
        channels: usize,
        /// Kernel size.
        kernel: usize,
    },
    /// Max pooling with window and stride `size`.
    MaxPool(usize),
    /// Average pooling with window and stride `size`.
    AvgPool(usize),
    /// Batch-norm through time.
    BatchNorm,
    /// Dropout with probability `p`.
    Dropout(f64),
    /// Fully connected to `n` outputs.
    Linear(usize),
    /// An explicit Leaky layer (placed after a convolution; optional after `FC<n>`).
    Lif,
}

/// Parses an architecture string such as `12C5-MP2-64C5-MP2-FC10`.
pub fn parse_arch(arch: &str) -> Result<Vec<Token>> {
    let bad = |tok: &str, why: &str| {
        Error::invalid("architecture", format!("token '{tok}' in '{arch}': {why}"))
    };
    let num = |tok: &str, s: &str| -> Result<usize> {
        s.parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| bad(tok, "expected a positive integer"))
    };
    let mut tokens = Vec::new();
    for tok in arch.split('-').map(str::trim) {
        let upper = tok.to_ascii_uppercase();
        let t = if let Some(rest) = upper.strip_prefix("FC") {
            Token::Linear(num(tok, rest)?)
        } else if let Some(rest) = upper.strip_prefix("MP") {
            Token::MaxPool(num(tok, rest)?)
        } else if let Some(rest) = upper.strip_prefix("AP") {
            Token::AvgPool(num(tok, rest)?)
        } else if upper == "BN" {
            Token::BatchNorm
        } else if upper == "LIF" {
            Token::Lif
        } else if let Some(rest) = upper.strip_prefix("DO") {
            let p: f64 = rest
                .parse()
                .map_err(|_| bad(tok, "expected a probability"))?;
            if !(0.0..1.0).contains(&p) {
                return Err(bad(tok, "dropout probability must be in [0, 1)"));
            }
            Token::Dropout(p)
        } else if let Some((c, k)) = upper.split_once('C') {
            Token::Conv {
                channels: num(tok, c)?,
                kernel: num(tok, k)?,
            }
        } else {
            return Err(bad(
                tok,
                "expected <n>C<k>, MP<k>, AP<k>, BN, DO<p>, LIF or FC<n>",
            ));
        };
        tokens.push(t);
    }
    let last_layer = tokens.iter().rev().find(|t| **t != Token::Lif);
    if !matches!(last_layer, Some(Token::Linear(_))) {
        return Err(Error::invalid(
            "architecture",
            format!("'{arch}' must end with a fully connected layer (FC<n>)"),
        ));
    }
    Ok(tokens)
}

/// Options of a [`SpikingNet`].
#[derive(Debug, Clone)]
pub struct SpikingNetConfig {
    /// Architecture string, e.g. `12C5-MP2-64C5-MP2-FC10`.
    pub arch: String,
    /// Input `[channels, height, width]`.
    pub input: [usize; 3],
    /// Number of time steps.
    pub steps: usize,
    /// Leaky layers' decay β.
    pub beta: f64,
    /// Learn β per layer.
    pub learn_beta: bool,
    /// Firing rule of every Leaky layer.
    pub firing: FiringConfig,
}

impl SpikingNetConfig {
    /// snnTorch's tutorial conv SNN on 28×28 greyscale images: β = 0.5, 25 steps.
    pub fn tutorial_conv() -> Self {
        Self {
            arch: "12C5-MP2-64C5-MP2-FC10".into(),
            input: [1, 28, 28],
            steps: 25,
            beta: 0.5,
            learn_beta: false,
            firing: FiringConfig::default(),
        }
    }

    /// A one-line description that identifies the parameter layout (stored in checkpoints).
    pub fn describe(&self) -> String {
        let [c, h, w] = self.input;
        let f = &self.firing;
        format!(
            "{} in={c}x{h}x{w} T={} leaky beta={}{} threshold={} reset={:?}",
            self.arch,
            self.steps,
            self.beta,
            if self.learn_beta { " (learned)" } else { "" },
            f.threshold,
            f.reset
        )
    }

    /// Checks the options a user can get wrong before anything is built.
    pub fn validate(&self) -> Result<()> {
        if self.steps == 0 {
            return Err(Error::invalid("steps", "must be at least 1"));
        }
        if !(0.0..=1.0).contains(&self.beta) {
            return Err(Error::invalid(
                "beta",
                format!("{} is outside [0, 1]", self.beta),
            ));
        }
        if !self.firing.threshold.is_finite() {
            return Err(Error::invalid(
                "threshold",
                format!("{} is not finite", self.firing.threshold),
            ));
        }
        if self.input.contains(&0) {
            return Err(Error::invalid(
                "input",
                format!("{:?} has an empty axis", self.input),
            ));
        }
        Ok(())
    }

    /// Builds the network on `device`.
    pub fn init(&self, device: &Device) -> Result<SpikingNet> {
        self.validate()?;
        let tokens = parse_arch(&self.arch)?;
        let [mut c, mut h, mut w] = self.input;
        let mut flat: Option<usize> = None;
        let mut stages = Vec::new();
        let mut names = Vec::new();
        let leaky = LeakyConfig {
            beta: self.beta,
            learn_beta: self.learn_beta,
            size: 1,
            firing: self.firing.clone(),
            record_mem: false,
        };
        let mut i = 0;
        while i < tokens.len() {
            match &tokens[i] {
                Token::Conv { channels, kernel } => {
                    if flat.is_some() {
                        return Err(Error::invalid(
                            "architecture",
                            format!(
                                "'{}': a convolution cannot follow a fully connected layer",
                                self.arch
                            ),
                        ));
                    }
                    if *kernel > h || *kernel > w {
                        return Err(Error::invalid(
                            "architecture",
                            format!(
                                "'{}': kernel {kernel} is larger than the {h}x{w} feature map",
                                self.arch
                            ),
                        ));
                    }
                    stages.push(Stage::Conv(TimeConv2d::new(c, *channels, *kernel, device)));
                    c = *channels;
                    h = h - kernel + 1;
                    w = w - kernel + 1;
                    // Pooling, batch-norm and dropout right after a convolution come before its
                    // neurons, unless an explicit LIF puts the neurons first.
                    let mut placed = false;
                    while let Some(next) = tokens.get(i + 1) {
                        match next {
                            Token::MaxPool(s) | Token::AvgPool(s) => {
                                if *s > h || *s > w {
                                    return Err(Error::invalid("architecture", format!("'{}': pooling {s} is larger than the {h}x{w} feature map", self.arch)));
                                }
                                stages.push(if matches!(next, Token::MaxPool(_)) {
                                    Stage::MaxPool(TimeMaxPool2d::new(*s))
                                } else {
                                    Stage::AvgPool(TimeAvgPool2d::new(*s))
                                });
                                h /= s;
                                w /= s;
                            }
                            Token::BatchNorm if !placed => stages
                                .push(Stage::BatchNorm(BatchNormTT2d::new(c, self.steps, device))),
                            Token::Dropout(p) => stages.push(Stage::Dropout(TimeDropout::new(*p))),
                            Token::Lif if !placed => {
                                stages.push(Stage::Neuron(leaky.init(device)));
                                names.push((
                                    format!("conv{} ({c}x{h}x{w})", names.len() + 1),
                                    c * h * w,
                                ));
                                placed = true;
                            }
                            _ => break,
                        }
                        i += 1;
                    }
                    if !placed {
                        stages.push(Stage::Neuron(leaky.init(device)));
                        names.push((format!("conv{} ({c}x{h}x{w})", names.len() + 1), c * h * w));
                    }
                }
                Token::Linear(n) => {
                    let inputs = flat.unwrap_or(c * h * w);
                    stages.push(Stage::Linear(TimeLinear::new(inputs, *n, device)));
                    stages.push(Stage::Neuron(leaky.init(device)));
                    names.push((format!("fc{} ({n})", names.len() + 1), *n));
                    flat = Some(*n);
                    // `FC<n>-LIF` spells out the Leaky layer every FC has anyway.
                    if tokens.get(i + 1) == Some(&Token::Lif) {
                        i += 1;
                    }
                }
                Token::Dropout(p) => stages.push(Stage::Dropout(TimeDropout::new(*p))),
                Token::MaxPool(_) | Token::AvgPool(_) | Token::BatchNorm => {
                    return Err(Error::invalid(
                        "architecture",
                        format!("'{}': pooling and BN must follow a convolution", self.arch),
                    ));
                }
                Token::Lif => {
                    return Err(Error::invalid(
                        "architecture",
                        format!(
                            "'{}': LIF must follow a convolution (or its pooling), once",
                            self.arch
                        ),
                    ));
                }
            }
            i += 1;
        }
        Ok(SpikingNet {
            stages,
            layer_names: names,
            steps: self.steps,
            input: self.input,
            description: self.describe(),
        })
    }
}

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
        for stage in &self.stages {
            act = match (stage, act) {
                (Stage::Conv(m), Act::Spatial(x)) => Act::Spatial(m.forward(x)),
                (Stage::MaxPool(m), Act::Spatial(x)) => Act::Spatial(m.forward(x)),
                (Stage::AvgPool(m), Act::Spatial(x)) => Act::Spatial(m.forward(x)),
                (Stage::BatchNorm(m), a) => match a.expand(steps) {
                    Act::Spatial(x) => Act::Spatial(m.forward(x)?),
                    Act::Flat(_) => unreachable!("the parser puts BN only after convolutions"),
                },
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
    use super::*;

    #[test]
    fn parses_the_tutorial_architecture() {
        let tokens = parse_arch("12C5-MP2-64C5-MP2-FC10").unwrap();
        assert_eq!(tokens.len(), 5);
        assert_eq!(
            tokens[0],
            Token::Conv {
                channels: 12,
                kernel: 5
            }
        );
        assert!(parse_arch("12C5-MP2").is_err(), "must end with FC");
        let err = parse_arch("12X5-FC10").unwrap_err().to_string();
        assert!(err.contains("12X5"), "{err}");
    }

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
