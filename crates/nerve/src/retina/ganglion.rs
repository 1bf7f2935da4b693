//! The Fohlmeister–Miller retinal ganglion cell: a single-compartment conductance model with
//! five voltage- or calcium-gated channels and a leak.
//!
//! Fohlmeister, J. F. & Miller, R. F. (1997). Impulse encoding mechanisms of ganglion cells in
//! the tiger salamander retina. *J. Neurophysiol.* 78(4), 1935–1947.
//!
//! With `V` in mV, currents in µA/cm², conductances in mS/cm², `C_m` = 1 µF/cm² and time in ms:
//!
//! ```text
//! C_m dV/dt = −(I_Na + I_Ca + I_K + I_A + I_KCa + I_L) + I_stim
//! I_Na  = ḡ_Na m³h (V − E_Na)           I_K  = ḡ_K n⁴ (V − E_K)
//! I_Ca  = ḡ_Ca c³ (V − E_Ca)            I_A  = ḡ_A a³h_A (V − E_K)
//! I_KCa = ḡ_KCa x²/(1 + x²) (V − E_K),  x = [Ca]ᵢ/[Ca]_diss
//! I_L   = ḡ_L (V − E_L)
//! dg/dt = α_g(V)(1 − g) − β_g(V) g      for g ∈ {m, h, n, a, h_A, c}
//! d[Ca]ᵢ/dt = max(0, −I_Ca)/(2F d) − ([Ca]ᵢ − [Ca]_res)/τ_Ca
//! E_Ca = (RT/2F) ln([Ca]ₑ/[Ca]ᵢ)
//! ```
//!
//! The rate functions (1/ms) are those of the paper's Table 1 (22 °C), also in the CellML
//! encoding of the model and in the NEURON mechanism of Velte & Fohlmeister on ModelDB:
//!
//! ```text
//! α_m = 0.6 (V+30)/(1 − e^{−(V+30)/10})     β_m = 20 e^{−(V+55)/18}
//! α_h = 0.4 e^{−(V+50)/20}                  β_h = 6/(1 + e^{−(V+20)/10})
//! α_c = 0.3 (V+13)/(1 − e^{−(V+13)/10})     β_c = 10 e^{−(V+38)/18}
//! α_n = 0.02 (V+40)/(1 − e^{−(V+40)/10})    β_n = 0.4 e^{−(V+50)/80}
//! α_a = 0.006 (V+90)/(1 − e^{−(V+90)/10})   β_a = 0.1 e^{−(V+30)/10}
//! α_hA = 0.04 e^{−(V+70)/20}                β_hA = 0.6/(1 + e^{−(V+40)/10})
//! ```
//!
//! Calcium enters a sub-membrane shell of depth `d` (0.1 µm) and relaxes to `[Ca]_res`
//! (0.1 µM) with τ_Ca = 1.5 ms, as in the ModelDB `capump.mod` that accompanies the model; the
//! paper writes the influx as 3·I_Ca/(2Fr), the same shell form with a sphere's surface-to-volume
//! ratio. The pump cannot move calcium inward, hence the `max(0, ·)`.
//!
//! With the defaults the cell rests at −61.7 mV, starts firing at about 0.12 µA/cm² from 0 Hz
//! (class-1 excitability: the steady-state I–V curve peaks at 0.11 µA/cm² near −57 mV), fires
//! 8.5 Hz at 0.2, 46 Hz at 1 and 205 Hz at 10 µA/cm², and goes into depolarisation block
//! somewhere between 20 and 40 µA/cm².
//!
//! # Integration
//!
//! Each step first advances every gate exactly for the step's voltage (Rush–Larsen:
//! `g ← g∞ + (g − g∞) e^{−dt/τ}`), then the membrane exactly for the new, frozen conductances
//! (exponential Euler: `V ← V∞ + (V − V∞) e^{−dt·g_tot/C}`), then calcium the same way. Every
//! update is a convex combination, so no state can leave its physical range whatever the step:
//! the scheme is unconditionally stable. Its accuracy is first order: at the default 0.025 ms,
//! halving the step changes the firing rate for a constant current by about 0.1 % (0.2 to
//! 10 µA/cm², 8 to 205 Hz; the tests allow 5 %), and even 0.1 ms stays within 2 % of it. The
//! resting potential (−61.70 mV) does not depend on the step. Gate steady states and decay
//! factors are tabulated every 0.02 mV (as NEURON does with its rate tables) and interpolated
//! linearly, which keeps the cost per cell and step to a few dozen flops, one `exp` and one `ln`.

use super::model::SpikingModel;

/// Faraday's constant, C/mol.
const FARADAY: f64 = 96_485.332;
/// Gas constant, J/(mol·K).
const GAS_CONSTANT: f64 = 8.314_462;

/// Parameters of the Fohlmeister–Miller ganglion cell (units in the field docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FmParams {
    /// Maximal sodium conductance ḡ_Na, mS/cm² (50).
    pub g_na: f64,
    /// Maximal calcium conductance ḡ_Ca, mS/cm² (2.2).
    pub g_ca: f64,
    /// Maximal delayed-rectifier potassium conductance ḡ_K, mS/cm² (12).
    pub g_k: f64,
    /// Maximal A-type potassium conductance ḡ_A, mS/cm² (36).
    pub g_a: f64,
    /// Maximal calcium-activated potassium conductance ḡ_KCa, mS/cm² (0.05).
    pub g_kca: f64,
    /// Leak conductance ḡ_L, mS/cm² (0.05).
    pub g_l: f64,
    /// Sodium reversal potential, mV (35).
    pub e_na: f64,
    /// Potassium reversal potential, mV (−75).
    pub e_k: f64,
    /// Leak reversal potential, mV (−62).
    pub e_l: f64,
    /// Membrane capacitance, µF/cm² (1).
    pub c_m: f64,
    /// Extracellular calcium `[Ca]ₑ`, mM (1.8).
    pub ca_out: f64,
    /// Resting intracellular calcium `[Ca]_res`, mM (1e-4, i.e. 0.1 µM).
    pub ca_res: f64,
    /// Time constant of calcium removal τ_Ca, ms (1.5).
    pub tau_ca: f64,
    /// Depth of the sub-membrane calcium shell, µm (0.1).
    pub shell_depth_um: f64,
    /// Calcium concentration of half-activation of I_KCa, mM (1e-3).
    pub ca_diss: f64,
    /// Temperature for the Nernst potential of calcium, °C (22, the paper's).
    pub temperature_c: f64,
    /// A spike is counted when V rises through this level, mV (−10).
    pub spike_threshold: f64,
}

impl Default for FmParams {
    fn default() -> Self {
        Self {
            g_na: 50.0,
            g_ca: 2.2,
            g_k: 12.0,
            g_a: 36.0,
            g_kca: 0.05,
            g_l: 0.05,
            e_na: 35.0,
            e_k: -75.0,
            e_l: -62.0,
            c_m: 1.0,
            ca_out: 1.8,
            ca_res: 1e-4,
            tau_ca: 1.5,
            shell_depth_um: 0.1,
            ca_diss: 1e-3,
            temperature_c: 22.0,
            spike_threshold: -10.0,
        }
    }
}

impl FmParams {
    /// RT/2F in mV, the slope of the calcium Nernst potential.
    pub fn nernst_ca_slope(&self) -> f64 {
        GAS_CONSTANT * (self.temperature_c + 273.15) / (2.0 * FARADAY) * 1e3
    }

    /// `E_Ca = (RT/2F) ln([Ca]ₑ/[Ca]ᵢ)` in mV for an intracellular concentration in mM.
    pub fn e_ca(&self, ca_in: f64) -> f64 {
        self.nernst_ca_slope() * (self.ca_out / ca_in).ln()
    }

    /// Calcium influx into the shell in mM/ms per µA/cm² of inward current: 1/(2F·d) with the
    /// units converted (µA → A, cm³ → L, mol → mmol, s → ms).
    pub fn ca_influx_per_current(&self) -> f64 {
        let depth_cm = self.shell_depth_um * 1e-4;
        1e-3 / (2.0 * FARADAY * depth_cm)
    }

    /// Fraction of I_KCa channels open at intracellular calcium `ca_in` (mM).
    pub fn kca_open(&self, ca_in: f64) -> f64 {
        let x = ca_in / self.ca_diss;
        let x2 = x * x;
        x2 / (1.0 + x2)
    }
}

/// `scale·u/(1 − e^{−u/k})`, the rate form of α_m, α_c, α_n and α_a, with its limit `scale·k` at
/// `u = 0` (the formula is 0/0 there).
fn lin_exp_rate(scale: f64, u: f64, k: f64) -> f64 {
    if u.abs() < 1e-6 * k {
        scale * (k + u / 2.0)
    } else {
        scale * u / (1.0 - (-u / k).exp())
    }
}

/// Opening and closing rates (α, β) in 1/ms of every gate at membrane potential `v` (mV).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FmRates {
    /// Sodium activation m.
    pub m: (f64, f64),
    /// Sodium inactivation h.
    pub h: (f64, f64),
    /// Calcium activation c.
    pub c: (f64, f64),
    /// Delayed-rectifier activation n.
    pub n: (f64, f64),
    /// A-current activation a.
    pub a: (f64, f64),
    /// A-current inactivation h_A.
    pub h_a: (f64, f64),
}

impl FmRates {
    /// The rates of Fohlmeister & Miller (1997), Table 1, at `v` mV.
    pub fn at(v: f64) -> Self {
        Self {
            m: (
                lin_exp_rate(0.6, v + 30.0, 10.0),
                20.0 * (-(v + 55.0) / 18.0).exp(),
            ),
            h: (
                0.4 * (-(v + 50.0) / 20.0).exp(),
                6.0 / (1.0 + (-(v + 20.0) / 10.0).exp()),
            ),
            c: (
                lin_exp_rate(0.3, v + 13.0, 10.0),
                10.0 * (-(v + 38.0) / 18.0).exp(),
            ),
            n: (
                lin_exp_rate(0.02, v + 40.0, 10.0),
                0.4 * (-(v + 50.0) / 80.0).exp(),
            ),
            a: (
                lin_exp_rate(0.006, v + 90.0, 10.0),
                0.1 * (-(v + 30.0) / 10.0).exp(),
            ),
            h_a: (
                0.04 * (-(v + 70.0) / 20.0).exp(),
                0.6 / (1.0 + (-(v + 40.0) / 10.0).exp()),
            ),
        }
    }

    /// The gates in state order (m, h, c, n, a, h_A).
    fn gates(&self) -> [(f64, f64); GATES] {
        [self.m, self.h, self.c, self.n, self.a, self.h_a]
    }
}

/// Number of gating variables.
const GATES: usize = 6;

/// The state of one Fohlmeister–Miller cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FmState {
    /// Membrane potential, mV.
    pub v: f64,
    /// Gates in the order m, h, c, n, a, h_A.
    pub gates: [f64; GATES],
    /// Intracellular calcium in the shell, mM.
    pub ca: f64,
}

/// Lowest membrane potential covered by the rate table, mV.
const TABLE_MIN_V: f64 = -150.0;
/// Highest membrane potential covered by the rate table, mV.
const TABLE_MAX_V: f64 = 100.0;
/// Spacing of the rate table, mV: fine enough that interpolation errors are far below the
/// integration error at the default step.
const TABLE_STEP_V: f64 = 0.02;

/// A Fohlmeister–Miller cell model for one time step `dt`, with its rate table.
#[derive(Debug, Clone)]
pub struct FmNeuron {
    params: FmParams,
    dt: f64,
    /// Per grid voltage: (g∞, e^{−dt/τ}) for each gate, interleaved.
    table: Vec<[f64; 2 * GATES]>,
    /// Precomputed shell influx factor (mM/ms per µA/cm²).
    influx: f64,
    /// e^{−dt/τ_Ca}.
    ca_decay: f64,
    /// RT/2F in mV.
    nernst: f64,
}

impl FmNeuron {
    /// A model with `params` integrated at step `dt` ms (0.025 ms is the tested default).
    pub fn new(params: FmParams, dt: f64) -> Self {
        let points = ((TABLE_MAX_V - TABLE_MIN_V) / TABLE_STEP_V).round() as usize + 1;
        let table = (0..points)
            .map(|i| {
                let v = TABLE_MIN_V + i as f64 * TABLE_STEP_V;
                let mut row = [0.0; 2 * GATES];
                for (g, (alpha, beta)) in FmRates::at(v).gates().into_iter().enumerate() {
                    let sum = alpha + beta;
                    row[2 * g] = alpha / sum;
                    row[2 * g + 1] = (-dt * sum).exp();
                }
                row
            })
            .collect();
        Self {
            params,
            dt,
            table,
            influx: params.ca_influx_per_current(),
            ca_decay: (-dt / params.tau_ca).exp(),
            nernst: params.nernst_ca_slope(),
        }
    }

    /// The parameters.
    pub fn params(&self) -> &FmParams {
        &self.params
    }

    /// A state with every gate at its steady state for potential `v` and calcium at rest.
    pub fn state_at(&self, v: f64) -> FmState {
        let mut gates = [0.0; GATES];
        for (g, (alpha, beta)) in FmRates::at(v).gates().into_iter().enumerate() {
            gates[g] = alpha / (alpha + beta);
        }
        FmState {
            v,
            gates,
            ca: self.params.ca_res,
        }
    }

    /// Interpolated table row at `v` (clamped to the table's range).
    fn lookup(&self, v: f64) -> [f64; 2 * GATES] {
        let x = ((v - TABLE_MIN_V) / TABLE_STEP_V).clamp(0.0, (self.table.len() - 2) as f64);
        let i = x as usize;
        let f = x - i as f64;
        let (lo, hi) = (&self.table[i], &self.table[i + 1]);
        let mut row = [0.0; 2 * GATES];
        for k in 0..2 * GATES {
            row[k] = lo[k] + f * (hi[k] - lo[k]);
        }
        row
    }
}

impl SpikingModel for FmNeuron {
    type State = FmState;

    fn dt(&self) -> f64 {
        self.dt
    }

    fn rest_state(&self) -> FmState {
        // Start near the resting potential and let the cell settle, so that the first
        // milliseconds of a simulation hold no start-up transient.
        let mut s = self.state_at(-65.0);
        let steps = (200.0 / self.dt).ceil() as usize;
        for _ in 0..steps {
            self.step(&mut s, 0.0);
        }
        s
    }

    fn step(&self, s: &mut FmState, current: f64) -> Option<f64> {
        let p = &self.params;
        let v0 = s.v;
        let row = self.lookup(v0);
        for g in 0..GATES {
            let inf = row[2 * g];
            s.gates[g] = inf + (s.gates[g] - inf) * row[2 * g + 1];
        }
        let [m, h, c, n, a, h_a] = s.gates;
        let e_ca = self.nernst * (p.ca_out / s.ca).ln();
        let g_na = p.g_na * m * m * m * h;
        let g_ca = p.g_ca * c * c * c;
        let n2 = n * n;
        let g_k = p.g_k * n2 * n2 + p.g_a * a * a * a * h_a + p.g_kca * p.kca_open(s.ca);
        let g_tot = g_na + g_ca + g_k + p.g_l;
        let v_inf = (g_na * p.e_na + g_ca * e_ca + g_k * p.e_k + p.g_l * p.e_l + current) / g_tot;
        s.v = v_inf + (v0 - v_inf) * (-self.dt * g_tot / p.c_m).exp();
        // Calcium sees the current at the new potential; the pump cannot move it inward.
        let i_ca = g_ca * (s.v - e_ca);
        let ca_inf = p.ca_res + p.tau_ca * self.influx * (-i_ca).max(0.0);
        s.ca = ca_inf + (s.ca - ca_inf) * self.ca_decay;
        let th = p.spike_threshold;
        (v0 < th && s.v >= th).then(|| (th - v0) / (s.v - v0))
    }
}
