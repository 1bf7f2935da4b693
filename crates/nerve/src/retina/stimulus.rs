//! What the retina watches: timed frames of luminance, built as a sequence, a flash or a
//! video.

use crate::error::{Error, Result};

/// What the retina watches: frames of luminance (row-major, nominally in `[0, 1]`), each shown
/// from its start time until the next frame's.
#[derive(Debug, Clone, PartialEq)]
pub struct Stimulus {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// The frames, `width·height` values each.
    pub frames: Vec<Vec<f32>>,
    /// Start time of each frame, ms, increasing from 0.
    pub starts_ms: Vec<f64>,
    /// Total duration, ms; the last frame lasts until then.
    pub duration_ms: f64,
}

impl Stimulus {
    /// Frames shown from the given start times (the first must be 0) until `duration_ms`.
    pub fn new(
        width: usize,
        height: usize,
        frames: Vec<(Vec<f32>, f64)>,
        duration_ms: f64,
    ) -> Result<Self> {
        if width == 0 || height == 0 {
            return Err(Error::invalid(
                "stimulus",
                format!("the image is {width}x{height}; it needs at least one pixel"),
            ));
        }
        if frames.is_empty() {
            return Err(Error::invalid("stimulus", "no frames"));
        }
        if !(duration_ms.is_finite() && duration_ms > 0.0) {
            return Err(Error::invalid(
                "stimulus duration",
                format!("must be finite and > 0 ms, got {duration_ms}"),
            ));
        }
        let mut starts = Vec::with_capacity(frames.len());
        let mut pixels = Vec::with_capacity(frames.len());
        for (i, (frame, start)) in frames.into_iter().enumerate() {
            if frame.len() != width * height {
                return Err(Error::Shape {
                    what: format!("stimulus frame {i}"),
                    expected: format!("{width}x{height} = {} values", width * height),
                    got: format!("{} values", frame.len()),
                });
            }
            if let Some(v) = frame.iter().find(|v| !v.is_finite() || **v < 0.0) {
                return Err(Error::invalid(
                    format!("stimulus frame {i}"),
                    format!("luminance must be finite and >= 0, found {v}"),
                ));
            }
            let prev = starts.last().copied();
            let ordered = match prev {
                None => start == 0.0,
                Some(p) => start.is_finite() && start > p && start < duration_ms,
            };
            if !ordered {
                return Err(Error::invalid(
                    format!("stimulus frame {i}"),
                    format!(
                        "start {start} ms: the first frame starts at 0 and the others at \
                         increasing times before the end ({duration_ms} ms)"
                    ),
                ));
            }
            starts.push(start);
            pixels.push(frame);
        }
        Ok(Self {
            width,
            height,
            frames: pixels,
            starts_ms: starts,
            duration_ms,
        })
    }

    /// A flash: `background` everywhere for `pre_ms`, then `image` for `on_ms`, then the
    /// background again for `post_ms`, so both ON (onset) and OFF (offset) responses show.
    pub fn flash(
        width: usize,
        height: usize,
        image: Vec<f32>,
        background: f32,
        pre_ms: f64,
        on_ms: f64,
        post_ms: f64,
    ) -> Result<Self> {
        for (what, v) in [("pre_ms", pre_ms), ("post_ms", post_ms)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::invalid(
                    what,
                    format!("must be finite and >= 0, got {v}"),
                ));
            }
        }
        if !(on_ms.is_finite() && on_ms > 0.0) {
            return Err(Error::invalid(
                "flash duration",
                format!("must be finite and > 0 ms, got {on_ms}"),
            ));
        }
        let bg = vec![background; width * height];
        let mut frames = Vec::new();
        if pre_ms > 0.0 {
            frames.push((bg.clone(), 0.0));
        }
        frames.push((image, pre_ms));
        if post_ms > 0.0 {
            frames.push((bg, pre_ms + on_ms));
        }
        Self::new(width, height, frames, pre_ms + on_ms + post_ms)
    }

    /// A video: `frames` at `fps` frames per second, the last shown for one frame period.
    pub fn video(width: usize, height: usize, frames: Vec<Vec<f32>>, fps: f64) -> Result<Self> {
        if !(fps.is_finite() && fps > 0.0) {
            return Err(Error::invalid(
                "fps",
                format!("must be finite and > 0, got {fps}"),
            ));
        }
        let period = 1000.0 / fps;
        let n = frames.len();
        let timed = frames
            .into_iter()
            .enumerate()
            .map(|(i, f)| (f, i as f64 * period))
            .collect();
        Self::new(width, height, timed, n as f64 * period)
    }

    /// Index of the frame shown at `t_ms`.
    pub(super) fn frame_index(&self, t_ms: f64) -> usize {
        self.starts_ms
            .partition_point(|&s| s <= t_ms)
            .saturating_sub(1)
    }
}
