//! The retina's parameters: light scaling, photoreceptors, bipolar cells, the ganglion model
//! and its integration steps, input currents and noise.

use super::bipolar::BipolarParams;
use super::ganglion::FmParams;
use super::lif::LifParams;
use super::photoreceptor::PhotoreceptorParams;
use crate::error::{Error, Result};

/// Which spiking model the ganglion cells use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GanglionModel {
    /// The Fohlmeister–Miller conductance model (default).
    Fm(FmParams),
    /// Leaky integrate-and-fire, much cheaper.
    Lif(LifParams),
}

/// Everything that defines a retina except the image size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetinaConfig {
    /// Photoisomerisation rate (R*/s per photoreceptor) at pixel value 1; a pixel value `v`
    /// gives `Φ = v·intensity_scale` in rods and cones alike.
    pub intensity_scale: f64,
    /// Cone parameters.
    pub cone: PhotoreceptorParams,
    /// Rod parameters.
    pub rod: PhotoreceptorParams,
    /// Share of rods in the signal passed to bipolar cells (cones get `1 − rod_weight`).
    pub rod_weight: f64,
    /// Bipolar and horizontal cells.
    pub bipolar: BipolarParams,
    /// The ganglion cell model.
    pub ganglion: GanglionModel,
    /// One ganglion cell of each type per `grid_step`×`grid_step` block of pixels.
    pub grid_step: usize,
    /// Ganglion integration step, ms.
    pub dt_ms: f64,
    /// Step of the photoreceptor and bipolar layers, ms (a whole multiple of `dt_ms`).
    pub outer_dt_ms: f64,
    /// Constant input current of every ganglion cell, µA/cm².
    pub bias: f64,
    /// Input current per unit of pooled, rectified bipolar signal, µA/cm².
    pub gain: f64,
    /// Standard deviation of a white-noise input current redrawn every outer step, µA/cm².
    pub noise_sd: f64,
    /// Seed of the noise.
    pub seed: u64,
    /// Time simulated before `t = 0` under the first frame, with spikes discarded, so cells
    /// start from their steady state under the background, ms.
    pub warmup_ms: f64,
}

impl Default for RetinaConfig {
    fn default() -> Self {
        Self::fm()
    }
}

impl RetinaConfig {
    /// Fohlmeister–Miller ganglion cells at 0.025 ms.
    pub fn fm() -> Self {
        Self {
            intensity_scale: 4000.0,
            cone: PhotoreceptorParams::cone(),
            rod: PhotoreceptorParams::rod(),
            rod_weight: 0.2,
            bipolar: BipolarParams::default(),
            ganglion: GanglionModel::Fm(FmParams::default()),
            grid_step: 1,
            dt_ms: 0.025,
            outer_dt_ms: 1.0,
            bias: 0.0,
            gain: 30.0,
            noise_sd: 0.0,
            seed: 0,
            warmup_ms: 50.0,
        }
    }

    /// LIF ganglion cells at 0.1 ms, with the same input scaling as [`RetinaConfig::fm`].
    pub fn lif() -> Self {
        Self {
            ganglion: GanglionModel::Lif(LifParams::default()),
            dt_ms: 0.1,
            ..Self::fm()
        }
    }

    /// Number of ganglion steps per outer step.
    pub(super) fn substeps(&self) -> usize {
        (self.outer_dt_ms / self.dt_ms).round() as usize
    }

    /// Checks every value, naming the first one out of range.
    pub fn validate(&self) -> Result<()> {
        let finite_positive = [
            ("intensity scale", self.intensity_scale),
            ("dt_ms", self.dt_ms),
            ("outer_dt_ms", self.outer_dt_ms),
        ];
        for (what, v) in finite_positive {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::invalid(
                    what,
                    format!("must be finite and > 0, got {v}"),
                ));
            }
        }
        if self.dt_ms > 1.0 {
            return Err(Error::invalid(
                "dt_ms",
                format!(
                    "{} ms is too coarse for spiking cells (at most 1 ms)",
                    self.dt_ms
                ),
            ));
        }
        let n = self.outer_dt_ms / self.dt_ms;
        if n < 0.999 || (n - n.round()).abs() > 1e-6 * n {
            return Err(Error::invalid(
                "outer_dt_ms",
                format!(
                    "{} ms must be a whole multiple of dt_ms = {} ms",
                    self.outer_dt_ms, self.dt_ms
                ),
            ));
        }
        for (what, v) in [
            ("bias", self.bias),
            ("gain", self.gain),
            ("noise_sd", self.noise_sd),
            ("warmup_ms", self.warmup_ms),
        ] {
            if !v.is_finite() || (what != "bias" && v < 0.0) {
                return Err(Error::invalid(
                    what,
                    format!(
                        "must be finite{}, got {v}",
                        if what == "bias" { "" } else { " and >= 0" }
                    ),
                ));
            }
        }
        if !(0.0..=1.0).contains(&self.rod_weight) {
            return Err(Error::invalid(
                "rod_weight",
                format!("must be in [0, 1], got {}", self.rod_weight),
            ));
        }
        if self.grid_step == 0 {
            return Err(Error::invalid("grid step", "must be at least 1 pixel"));
        }
        self.cone.validate("cone")?;
        self.rod.validate("rod")?;
        self.bipolar.validate()?;
        match &self.ganglion {
            GanglionModel::Fm(p) => {
                let values = [
                    p.g_na,
                    p.g_ca,
                    p.g_k,
                    p.g_a,
                    p.g_kca,
                    p.g_l,
                    p.c_m,
                    p.ca_out,
                    p.ca_res,
                    p.tau_ca,
                    p.shell_depth_um,
                    p.ca_diss,
                ];
                if values.iter().any(|v| !v.is_finite() || *v < 0.0)
                    || p.c_m <= 0.0
                    || p.ca_res <= 0.0
                    || p.tau_ca <= 0.0
                    || p.shell_depth_um <= 0.0
                    || p.ca_diss <= 0.0
                    || p.g_l <= 0.0
                {
                    return Err(Error::invalid(
                        "Fohlmeister-Miller parameters",
                        "conductances must be >= 0 (leak > 0); capacitance, calcium levels, \
                         tau_Ca and shell depth > 0",
                    ));
                }
            }
            GanglionModel::Lif(p) => {
                let ok = p.tau_m > 0.0
                    && p.r_m > 0.0
                    && p.t_ref >= 0.0
                    && p.v_reset < p.v_threshold
                    && [p.tau_m, p.r_m, p.t_ref, p.v_rest, p.v_reset, p.v_threshold]
                        .iter()
                        .all(|v| v.is_finite());
                if !ok {
                    return Err(Error::invalid(
                        "LIF parameters",
                        "need tau_m > 0, r_m > 0, t_ref >= 0 and reset below threshold",
                    ));
                }
            }
        }
        Ok(())
    }
}
