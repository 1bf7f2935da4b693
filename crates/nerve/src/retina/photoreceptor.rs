//! Rods and cones: photoisomerisations to a normalised photoreceptor response, with the
//! divisive adaptation of the Clark et al. model.
//!
//! Clark, D. A., Benichou, R., Meister, M. & Azeredo da Silveira, R. (2013). Dynamical
//! adaptation in photoreceptors. *PLoS Comput. Biol.* 9(11), e1003289.
//!
//! Their "DA" model drives the response `r` with a linear filter of the light, `y`, and divides
//! it by a slower one, `z`:
//!
//! ```text
//! τ_r dr/dt = α y − (1 + β z) r,   y = K_y ∗ Φ,   z = K_z ∗ Φ
//! ```
//!
//! Here `Φ` is the photoisomerisation rate (R*/s), `K_y` a cascade of `n_y` first-order
//! low-passes with time constant τ_y (a gamma filter peaking at (n_y − 1)τ_y) and
//! `K_z = γ K_y + (1 − γ) K_slow`, `K_slow` a cascade of `n_z` low-passes with τ_z. Every filter
//! has unit gain at zero frequency. We report `p = r β/α`, the response as a fraction of its
//! saturated value α/β (0 in darkness, towards 1 as the outer-segment channels close), so only
//! the half-saturating rate `Φ½ = 1/β` remains:
//!
//! ```text
//! τ_r dp/dt = y/Φ½ − (1 + z/Φ½) p,   steady state p = Φ/(Φ + Φ½)
//! ```
//!
//! Because `z` lags `y`, a step of light first overshoots and then relaxes (light adaptation),
//! and a step's transient scales with contrast rather than with absolute intensity once the
//! cell is adapted (Weber's law). The response cannot exceed complete channel closure, so `p`
//! is capped at 1; the cap never binds in a steady state. The time constants are ours, chosen
//! for textbook time-to-peak of a dim flash response (cones about 40 ms, rods about 150 ms);
//! the rods' Φ½ is a hundred times lower than the cones', so rods saturate in daylight.
//!
//! Each low-pass stage is advanced exactly for a piecewise-constant input
//! (`x ← u + (x − u) e^{−dt/τ}`) and `p` exactly for the step's `y` and `z`, so the layer is
//! stable at any step.

/// Parameters of one photoreceptor type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhotoreceptorParams {
    /// Half-saturating photoisomerisation rate Φ½ = 1/β, R*/s.
    pub phi_half: f64,
    /// Relaxation time constant τ_r, ms.
    pub tau_r: f64,
    /// Time constant of each stage of the driving filter K_y, ms.
    pub tau_y: f64,
    /// Number of stages of K_y.
    pub n_y: usize,
    /// Time constant of each stage of the slow part of the adapting filter K_z, ms.
    pub tau_z: f64,
    /// Number of stages of the slow part of K_z.
    pub n_z: usize,
    /// Weight γ of K_y in K_z.
    pub gamma: f64,
}

impl PhotoreceptorParams {
    /// Cone defaults: fast (time-to-peak about 40 ms), half-saturating at 2000 R*/s.
    pub fn cone() -> Self {
        Self {
            phi_half: 2000.0,
            tau_r: 8.0,
            tau_y: 12.0,
            n_y: 4,
            tau_z: 30.0,
            n_z: 4,
            gamma: 0.3,
        }
    }

    /// Rod defaults: slow (time-to-peak about 150 ms) and a hundred times more sensitive.
    pub fn rod() -> Self {
        Self {
            phi_half: 20.0,
            tau_r: 40.0,
            tau_y: 50.0,
            n_y: 4,
            tau_z: 120.0,
            n_z: 4,
            gamma: 0.3,
        }
    }

    /// The analytic steady response to a constant rate `phi` (R*/s): `Φ/(Φ + Φ½)`.
    pub fn steady_state(&self, phi: f64) -> f64 {
        phi / (phi + self.phi_half)
    }

    /// Checks that every value is finite and positive where it must be.
    pub fn validate(&self, what: &str) -> crate::Result<()> {
        let positive = [
            ("phi_half", self.phi_half),
            ("tau_r", self.tau_r),
            ("tau_y", self.tau_y),
            ("tau_z", self.tau_z),
        ];
        for (name, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err(crate::Error::invalid(
                    format!("{what} {name}"),
                    format!("must be finite and > 0, got {v}"),
                ));
            }
        }
        if self.n_y == 0 || self.n_z == 0 || self.n_y > 16 || self.n_z > 16 {
            return Err(crate::Error::invalid(
                format!("{what} filter stages"),
                format!(
                    "n_y and n_z must be in 1..=16, got {} and {}",
                    self.n_y, self.n_z
                ),
            ));
        }
        if !(0.0..=1.0).contains(&self.gamma) {
            return Err(crate::Error::invalid(
                format!("{what} gamma"),
                format!("must be in [0, 1], got {}", self.gamma),
            ));
        }
        Ok(())
    }
}

/// A layer of identical photoreceptors, one per pixel.
#[derive(Debug, Clone)]
pub struct PhotoreceptorLayer {
    params: PhotoreceptorParams,
    dt: f64,
    /// K_y stages, pixel-major (`n_y` per pixel).
    y: Vec<f64>,
    /// Slow K_z stages, pixel-major (`n_z` per pixel).
    z: Vec<f64>,
    /// Normalised response p per pixel.
    p: Vec<f64>,
    decay_y: f64,
    decay_z: f64,
}

impl PhotoreceptorLayer {
    /// A dark-adapted layer of `n` photoreceptors advanced in steps of `dt` ms.
    pub fn new(params: PhotoreceptorParams, n: usize, dt: f64) -> Self {
        Self {
            params,
            dt,
            y: vec![0.0; n * params.n_y],
            z: vec![0.0; n * params.n_z],
            p: vec![0.0; n],
            decay_y: (-dt / params.tau_y).exp(),
            decay_z: (-dt / params.tau_z).exp(),
        }
    }

    /// A layer adapted to the constant rates `phi` (R*/s per pixel): every filter and the
    /// response at their steady states, so a run starts without an adaptation transient.
    pub fn adapted(params: PhotoreceptorParams, phi: &[f64], dt: f64) -> Self {
        let mut layer = Self::new(params, phi.len(), dt);
        for (i, &f) in phi.iter().enumerate() {
            layer.y[i * params.n_y..(i + 1) * params.n_y].fill(f);
            layer.z[i * params.n_z..(i + 1) * params.n_z].fill(f);
            layer.p[i] = params.steady_state(f);
        }
        layer
    }

    /// The normalised responses, one per pixel.
    pub fn response(&self) -> &[f64] {
        &self.p
    }

    /// Advances every photoreceptor by one step under rates `phi` (R*/s per pixel).
    pub fn step(&mut self, phi: &[f64]) {
        let (ny, nz) = (self.params.n_y, self.params.n_z);
        let beta = 1.0 / self.params.phi_half;
        let gamma = self.params.gamma;
        let tau_r = self.params.tau_r;
        for (i, &f) in phi.iter().enumerate().take(self.p.len()) {
            let y_out = cascade(&mut self.y[i * ny..(i + 1) * ny], f, self.decay_y);
            let z_slow = cascade(&mut self.z[i * nz..(i + 1) * nz], f, self.decay_z);
            let z_out = gamma * y_out + (1.0 - gamma) * z_slow;
            let rate = 1.0 + beta * z_out;
            let p_inf = beta * y_out / rate;
            let p = p_inf + (self.p[i] - p_inf) * (-self.dt * rate / tau_r).exp();
            self.p[i] = p.min(1.0);
        }
    }
}

/// Advances a cascade of identical first-order low-passes under input `u`; returns the last.
fn cascade(stages: &mut [f64], u: f64, decay: f64) -> f64 {
    let mut input = u;
    for x in stages.iter_mut() {
        *x = input + (*x - input) * decay;
        input = *x;
    }
    input
}
