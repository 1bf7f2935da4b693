//! The outer retina: photoreceptors, horizontal and bipolar cells, which the ganglion cells
//! read from.

use super::bipolar::BipolarLayer;
use super::config::RetinaConfig;
use super::photoreceptor::PhotoreceptorLayer;

/// Photoreceptors, horizontal and bipolar cells, advanced together every outer step.
pub(super) struct OuterRetina {
    cones: PhotoreceptorLayer,
    rods: PhotoreceptorLayer,
    bipolar: BipolarLayer,
    phi: Vec<f64>,
    p: Vec<f64>,
}

impl OuterRetina {
    /// Every layer at its steady state for `frame`.
    pub(super) fn adapted(cfg: &RetinaConfig, width: usize, height: usize, frame: &[f32]) -> Self {
        let phi: Vec<f64> = frame
            .iter()
            .map(|&v| f64::from(v) * cfg.intensity_scale)
            .collect();
        let cones = PhotoreceptorLayer::adapted(cfg.cone, &phi, cfg.outer_dt_ms);
        let rods = PhotoreceptorLayer::adapted(cfg.rod, &phi, cfg.outer_dt_ms);
        let mut me = Self {
            cones,
            rods,
            bipolar: BipolarLayer::new(&cfg.bipolar, width, height, cfg.outer_dt_ms),
            p: vec![0.0; phi.len()],
            phi,
        };
        me.mix(cfg.rod_weight);
        me.bipolar.adapt(&me.p);
        me
    }

    /// Rod and cone responses weighted into the signal that bipolar cells see.
    fn mix(&mut self, rod_weight: f64) {
        let (c, r) = (self.cones.response(), self.rods.response());
        for i in 0..self.p.len() {
            self.p[i] = (1.0 - rod_weight) * c[i] + rod_weight * r[i];
        }
    }

    pub(super) fn step(&mut self, cfg: &RetinaConfig, frame: &[f32]) {
        for (phi, &v) in self.phi.iter_mut().zip(frame) {
            *phi = f64::from(v) * cfg.intensity_scale;
        }
        self.cones.step(&self.phi);
        self.rods.step(&self.phi);
        self.mix(cfg.rod_weight);
        self.bipolar.step(&self.p);
    }

    pub(super) fn signal(&self) -> &[f64] {
        self.bipolar.signal()
    }
}
