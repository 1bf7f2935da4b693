//! Spiking LSTM (snnTorch `SLSTM`): an LSTM cell whose hidden state is the membrane.
//!
//! The cell state is `syn` and the hidden state `mem`; `mem` passes through the firing rule and
//! is reset before it re-enters the cell at the next step. Gates follow PyTorch's `LSTMCell`:
//! `[i, f, g, o] = x·W_ih + b_ih + mem·W_hh + b_hh`, `syn' = σ(f)·syn + σ(i)·tanh(g)`,
//! `mem' = σ(o)·tanh(syn')`.

use burn::module::Module;
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor};

use super::{Firing, FiringConfig, Neuron, NeuronOutput, NeuronState, Reset};
use crate::error::{Error, Result};

/// Options of an [`SLstm`] neuron.
#[derive(Debug, Clone)]
pub struct SLstmConfig {
    /// Features of the input `x[..., input_size]`.
    pub input_size: usize,
    /// Neurons in the layer: features of `syn`, `mem` and the spikes.
    pub hidden_size: usize,
    /// Give both gate layers a bias (snnTorch default true).
    pub bias: bool,
    /// Number of thresholds: 1 shares it across the layer, or `hidden_size`.
    pub size: usize,
    /// Firing rule (snnTorch's SLSTM does not reset by default).
    pub firing: FiringConfig,
    /// Record the membrane trace in `run`.
    pub record_mem: bool,
}

impl SLstmConfig {
    /// A spiking LSTM from `input_size` features to `hidden_size` neurons, snnTorch defaults.
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        Self {
            input_size,
            hidden_size,
            bias: true,
            size: 1,
            firing: FiringConfig {
                reset: Reset::None,
                ..FiringConfig::default()
            },
            record_mem: false,
        }
    }

    /// Builds the neuron on `device`; fails for empty layers or a threshold of the wrong size.
    pub fn init(&self, device: &Device) -> Result<SLstm> {
        let (n_in, n_hid) = (self.input_size, self.hidden_size);
        if n_in == 0 || n_hid == 0 {
            return Err(Error::invalid(
                "SLSTM sizes",
                format!("input_size and hidden_size must be positive, got {n_in} and {n_hid}"),
            ));
        }
        if self.size != 1 && self.size != n_hid {
            return Err(Error::invalid(
                "SLSTM size",
                format!("must be 1 or hidden_size = {n_hid}, got {}", self.size),
            ));
        }
        // PyTorch's LSTMCell initialisation: every weight and bias from U(-1/sqrt(H), 1/sqrt(H)).
        let k = 1.0 / (n_hid as f64).sqrt();
        let gates = |d_input: usize| {
            LinearConfig::new(d_input, 4 * n_hid)
                .with_bias(self.bias)
                .with_initializer(Initializer::Uniform { min: -k, max: k })
                .init(device)
        };
        Ok(SLstm {
            input_gates: gates(n_in),
            hidden_gates: gates(n_hid),
            firing: self.firing.init(self.size, device),
            hidden_size: n_hid,
            record_mem: self.record_mem,
        })
    }
}

/// State of an [`SLstm`] neuron.
#[derive(Debug, Clone)]
pub struct SLstmState<const D: usize> {
    /// Cell state `[..., hidden_size]`.
    pub syn: Tensor<D>,
    /// Hidden state, the membrane `[..., hidden_size]`.
    pub mem: Tensor<D>,
}

impl<const D: usize> NeuronState<D> for SLstmState<D> {
    fn membrane(&self) -> Tensor<D> {
        self.mem.clone()
    }

    fn named_tensors(&self) -> Vec<(&'static str, Tensor<D>)> {
        vec![("syn", self.syn.clone()), ("mem", self.mem.clone())]
    }
}

impl<const D: usize> SLstmState<D> {
    /// The resting state for inputs shaped like `x[..., input_size]`.
    pub fn zeros_for(x: &Tensor<D>, hidden_size: usize) -> Self {
        let mut shape = x.dims();
        shape[D - 1] = hidden_size;
        let zeros = Tensor::<D>::zeros(shape, &x.device());
        Self {
            syn: zeros.clone(),
            mem: zeros,
        }
    }
}

/// Spiking LSTM layer.
#[derive(Module, Debug)]
pub struct SLstm {
    /// Input-to-gates layer `[input_size, 4·hidden_size]` (PyTorch's `weight_ih`ᵀ, `bias_ih`).
    pub input_gates: Linear,
    /// Hidden-to-gates layer `[hidden_size, 4·hidden_size]` (PyTorch's `weight_hh`ᵀ, `bias_hh`).
    pub hidden_gates: Linear,
    /// Threshold, surrogate, reset.
    pub firing: Firing,
    /// Neurons in the layer.
    #[module(skip)]
    pub hidden_size: usize,
    /// Record the membrane trace in `run`.
    #[module(skip)]
    pub record_mem: bool,
}

impl Neuron for SLstm {
    type State<const D: usize> = SLstmState<D>;

    /// One time step: `x[..., input_size]` to spikes `[..., hidden_size]`.
    fn step<const D: usize>(
        &self,
        x: Tensor<D>,
        state: SLstmState<D>,
    ) -> (Tensor<D>, SLstmState<D>) {
        let h = self.hidden_size;
        let reset = self.firing.reset_signal(&state.mem);
        let gates = self.input_gates.forward(x) + self.hidden_gates.forward(state.mem);
        let gate = |k: usize| gates.clone().narrow(D - 1, k * h, h);
        let input = sigmoid(gate(0));
        let forget = sigmoid(gate(1));
        let cell = gate(2).tanh();
        let output = sigmoid(gate(3));
        let syn = forget * state.syn + input * cell;
        let mem = output * syn.clone().tanh();
        // As snnTorch does, a zero reset clears the hidden state but keeps the cell state.
        let mem = self.firing.apply_reset(mem, &reset);
        let (syn, mem) = (self.firing.quantize(syn), self.firing.quantize(mem));
        let spk = self.firing.fire(&mem);
        let mem = self.firing.immediate_reset(mem, &spk, &reset);
        (spk, SLstmState { syn, mem })
    }

    /// The resting state, `[..., hidden_size]` for inputs `x[..., input_size]`.
    fn zero_state<const D: usize>(&self, x: &Tensor<D>) -> SLstmState<D> {
        SLstmState::zeros_for(x, self.hidden_size)
    }

    fn records_mem(&self) -> bool {
        self.record_mem
    }

    /// The threshold and graded-spike factor; the gate layers have no snnTorch scalar name.
    fn named_params(&self) -> Vec<(&'static str, Tensor<1>)> {
        self.firing.named_params()
    }
}

impl SLstm {
    /// Like [`Neuron::run`], but checks that `x` has `input_size` features and `state` fits it.
    pub fn try_run<const D: usize>(
        &self,
        x: Tensor<D>,
        state: Option<SLstmState<D>>,
    ) -> Result<NeuronOutput<D, SLstmState<D>>> {
        let dims = x.dims();
        let n_in = self.input_gates.weight.val().dims()[0];
        if D < 2 || dims[D - 1] != n_in {
            return Err(Error::Shape {
                what: "SLSTM input".into(),
                expected: format!("[T, ..., {n_in}]"),
                got: format!("{dims:?}"),
            });
        }
        if let Some(s) = &state {
            let mut want = dims;
            want[0] = 1;
            want[D - 1] = self.hidden_size;
            for (name, t) in [("syn", &s.syn), ("mem", &s.mem)] {
                if t.dims() != want {
                    return Err(Error::Shape {
                        what: format!("SLSTM state {name}"),
                        expected: format!("{want:?}"),
                        got: format!("{:?}", t.dims()),
                    });
                }
            }
        }
        Ok(self.run(x, state))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::neurons::to_vec;
    use burn::module::Param;

    #[test]
    fn matches_a_hand_computed_lstm_step() {
        let device = Device::flex();
        let mut config = SLstmConfig::new(1, 1);
        config.firing.threshold = 0.1;
        let mut neuron = config.init(&device).unwrap();
        // Gates i, f, g, o get 0.5, 0, 1, 2 from x = 1; the hidden path is zero.
        let w = Tensor::<2>::from_floats([[0.5, 0.0, 1.0, 2.0]], &device);
        neuron.input_gates.weight = Param::from_tensor(w);
        neuron.input_gates.bias = None;
        neuron.hidden_gates.weight = Param::from_tensor(Tensor::zeros([1, 4], &device));
        neuron.hidden_gates.bias = None;
        let x = Tensor::<2>::from_floats([[1.0]], &device);
        let (spk, state) = neuron.step(x.clone(), SLstmState::zeros_for(&x, 1));
        let s = |v: f64| 1.0 / (1.0 + (-v).exp());
        let c = s(0.5) * 1f64.tanh();
        let h = s(2.0) * c.tanh();
        assert!((to_vec(state.syn)[0] - c).abs() < 1e-6);
        assert!((to_vec(state.mem)[0] - h).abs() < 1e-6);
        assert_eq!(to_vec(spk), vec![1.0]);
    }

    #[test]
    fn bad_sizes_are_errors() {
        let device = Device::flex();
        assert!(SLstmConfig::new(0, 3).init(&device).is_err());
        assert!(SLstmConfig {
            size: 2,
            ..SLstmConfig::new(2, 3)
        }
        .init(&device)
        .is_err());
        let neuron = SLstmConfig::new(2, 3).init(&device).unwrap();
        let x = Tensor::<3>::zeros([4, 1, 5], &device);
        assert!(neuron.try_run(x, None).is_err());
        let x = Tensor::<3>::zeros([4, 1, 2], &device);
        let out = neuron.try_run(x, None).unwrap();
        assert_eq!(out.spk.dims(), [4, 1, 3]);
    }
}
