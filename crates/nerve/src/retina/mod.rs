//! A retina model that turns images or video into ganglion-cell spikes: the pipeline behind
//! retina-driven prostheses such as the retina-controlled upper-limb prosthesis of Arrow et al.
//! (ICECS 2020), where spike rates per region of the visual field drove the hand.
//!
//! ```text
//! pixel value ─▶ photoisomerisations ─▶ rods + cones ─▶ bipolar cells ─▶ ganglion cells ─▶ spikes
//!   [0, 1]        Φ = v·scale (R*/s)    adaptation     centre–surround,    Fohlmeister–Miller
//!                                       (Clark 2013)   ON / OFF, filtered  or LIF, per grid cell
//! ```
//!
//! - [`photoreceptor`]: rods and cones with their own sensitivity, kinetics and divisive
//!   adaptation (Clark et al. 2013);
//! - [`bipolar`]: horizontal-cell surround (difference of Gaussians), a partly transient
//!   temporal filter, rectified ON and OFF outputs;
//! - [`ganglion`]: the Fohlmeister–Miller (1997) conductance model, the default, and [`lif`],
//!   a leaky integrate-and-fire cell for large images, both behind [`SpikingModel`];
//! - [`readout`]: spike rates per region of a grid (ON and OFF apart);
//! - [`output`]: spikes as events or CSV (drawn by [`crate::viz::write_retina_raster`]).
//!
//! Each ganglion cell pools the rectified bipolar output of a `grid_step`×`grid_step` block of
//! pixels and receives `I = bias + gain·pool` (µA/cm²), plus optional white noise. The outer
//! retina (photoreceptors, horizontal and bipolar cells, all with time constants of several
//! milliseconds) advances every `outer_dt_ms` (1 ms); the ganglion cells advance every `dt_ms`
//! (0.025 ms for Fohlmeister–Miller, 0.1 ms for LIF) with their input held in between, in
//! parallel over cells. Every stage uses exact exponential updates for piecewise-constant
//! inputs, so the whole pipeline is stable at any step; the step only sets the accuracy.
//!
//! ```
//! use nerve::retina::{region_rates, Retina, RetinaConfig, Stimulus};
//!
//! # fn main() -> nerve::Result<()> {
//! // A bright 4x4 patch in the top-left corner of an 8x8 dark image, flashed for 100 ms.
//! let mut image = vec![0.0f32; 64];
//! for y in 0..4 {
//!     for x in 0..4 {
//!         image[y * 8 + x] = 1.0;
//!     }
//! }
//! let stim = Stimulus::flash(8, 8, image, 0.0, 20.0, 100.0, 80.0)?;
//! let retina = Retina::new(RetinaConfig::lif(), 8, 8)?;
//! let out = retina.run(&stim)?;
//! let rates = region_rates(&out, 2, 2, 0.0, out.duration_ms)?;
//! // ON cells under the patch (region 0, top left) fire most.
//! assert!(rates.on_hz[0] > rates.on_hz[3]);
//! # Ok(())
//! # }
//! ```

pub mod bipolar;
mod config;
pub mod ganglion;
pub mod lif;
pub mod model;
mod outer;
pub mod output;
pub mod photoreceptor;
mod pipeline;
pub mod readout;
mod stimulus;

pub use bipolar::{BipolarLayer, BipolarParams};
pub use config::{GanglionModel, RetinaConfig};
pub use ganglion::{FmNeuron, FmParams, FmRates, FmState};
pub use lif::{LifNeuron, LifParams, LifState};
pub use model::SpikingModel;
pub use output::{CellType, RetinaOutput, Spike};
pub use photoreceptor::{PhotoreceptorLayer, PhotoreceptorParams};
pub use pipeline::Retina;
pub use readout::{region_rates, RegionRates};
pub use stimulus::Stimulus;
