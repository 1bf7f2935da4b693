//! What the retina needs of a spiking ganglion model: a fixed step, a resting state and one
//! step under a given input current. Both the Fohlmeister–Miller and the LIF cell implement it,
//! so the pipeline and the tests drive either the same way.

/// A single-compartment spiking neuron integrated with a fixed time step.
pub trait SpikingModel: Sync {
    /// The state of one cell.
    type State: Clone + Send;

    /// The integration step, ms.
    fn dt(&self) -> f64;

    /// The state of a cell left alone with no input.
    fn rest_state(&self) -> Self::State;

    /// Advances `state` by one step under input `current` (µA/cm²). Returns where in the step
    /// a spike happened, as a fraction in `[0, 1]` of the step, or `None`.
    fn step(&self, state: &mut Self::State, current: f64) -> Option<f64>;

    /// Spike times (ms) of a cell started at rest and driven by a constant `current` for
    /// `duration_ms`.
    fn spike_times(&self, current: f64, duration_ms: f64) -> Vec<f64> {
        let dt = self.dt();
        let steps = (duration_ms / dt).round() as usize;
        let mut state = self.rest_state();
        let mut times = Vec::new();
        for k in 0..steps {
            if let Some(frac) = self.step(&mut state, current) {
                times.push((k as f64 + frac) * dt);
            }
        }
        times
    }

    /// Steady firing rate (Hz) for a constant `current`: the inverse of the mean interspike
    /// interval after the first `settle_ms`, measured over `duration_ms`; 0 without two spikes.
    fn steady_rate(&self, current: f64, settle_ms: f64, duration_ms: f64) -> f64 {
        let times: Vec<f64> = self
            .spike_times(current, settle_ms + duration_ms)
            .into_iter()
            .filter(|&t| t >= settle_ms)
            .collect();
        match (times.first(), times.last()) {
            (Some(first), Some(last)) if times.len() >= 2 => {
                1000.0 * (times.len() - 1) as f64 / (last - first)
            }
            _ => 0.0,
        }
    }
}
