//! Every picture the crate draws: training curves ([`curves`]), spike rasters of network
//! layers, event streams and retina runs ([`raster`]), per-class spike-count heat maps
//! ([`class_counts`]) and event streams as animated GIFs ([`gif`](mod@gif)).
//!
//! Every writer checks its input first and returns [`crate::Error::Invalid`]
//! on bad data (non-finite times, neurons out of range, empty inputs, images too large), and
//! writes its file atomically, so a reader never sees a half-written image. Text uses an
//! embedded DejaVu Sans font (see `assets/fonts/`), so no system fonts are needed.

pub mod class_counts;
pub mod curves;
pub mod energy;
mod font;
pub mod gif;
pub mod raster;
pub mod regression;

pub use self::gif::{
    gif_frame_count, write_events_gif, GIF_BACKGROUND, GIF_BOTH, GIF_OFF, GIF_ON, MAX_GIF_PIXELS,
};
pub use class_counts::{
    class_counts_image_size, write_class_counts_png, write_eval_class_counts, TRUE_CLASS_OUTLINE,
};
pub use curves::{
    panels, panels_size, smooth, training_curves, write_history_curves, write_lm_curves, LmCurves,
    Panel, Series, PANEL_HEIGHT, PANEL_WIDTH,
};
pub use energy::write_energy_png;
pub use raster::{
    event_spikes, raster_image_size, raster_layers, raster_size, spike_raster, spikes_from_slice,
    spikes_from_tensor, write_event_raster_png, write_raster_png, write_retina_raster,
    write_sample_raster, RasterLayer, EVENT_OFF_COLOR, EVENT_ON_COLOR, RASTER_IMAGE_WIDTH,
    RASTER_SPIKE_COLOR, RETINA_OFF_COLOR, RETINA_ON_COLOR,
};

use std::io::Write;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor;

use crate::error::{Error, Result};
use crate::fsutil::write_atomic_with;
use font::{ensure_font, FONT};

/// Height of the strip holding a figure's title, in pixels.
pub const TITLE_HEIGHT: u32 = 40;

/// Images larger than this many pixels are refused (3 bytes each: about 100 MB).
const MAX_PIXELS: u64 = 32 << 20;

/// Matplotlib's "tab10" colours: distinct, and readable on white.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
type DrawResult<T> = std::result::Result<T, String>;

/// An RGB image that plotters draws into and that the callers also paint directly (plotters'
/// per-pixel calls are too slow for millions of spikes).
struct Canvas {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

impl Canvas {
    /// A white canvas, refusing sizes whose buffer would be unreasonably large.
    fn new(what: &str, width: u32, height: u32) -> Result<Self> {
        let pixels = u64::from(width) * u64::from(height);
        if width == 0 || height == 0 || pixels > MAX_PIXELS {
            return Err(Error::invalid(
                what,
                format!("an image of {width}x{height} pixels is too large to draw"),
            ));
        }
        ensure_font()?;
        Ok(Self {
            width,
            height,
            rgb: vec![255; pixels as usize * 3],
        })
    }

    /// Runs plotters drawing code on the whole canvas; `path` only names the file in errors.
    fn draw<R>(&mut self, path: &Path, f: impl FnOnce(&Area<'_>) -> DrawResult<R>) -> Result<R> {
        let root = BitMapBackend::with_buffer(&mut self.rgb, (self.width, self.height))
            .into_drawing_area();
        let out = f(&root).map_err(|e| render_error(path, e))?;
        root.present().map_err(|e| render_error(path, e))?;
        Ok(out)
    }

    /// Paints one pixel; coordinates outside the canvas are ignored.
    fn put(&mut self, x: i64, y: i64, color: [u8; 3]) {
        if x < 0 || y < 0 || x >= i64::from(self.width) || y >= i64::from(self.height) {
            return;
        }
        let i = (y as usize * self.width as usize + x as usize) * 3;
        self.rgb[i..i + 3].copy_from_slice(&color);
    }

    /// Encodes the canvas as an 8-bit RGB PNG and writes it atomically.
    fn write_png(&self, path: &Path) -> Result<()> {
        write_atomic_with(path, |w| {
            let mut encoder = png::Encoder::new(&mut *w, self.width, self.height);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header().map_err(png_io_error)?;
            writer.write_image_data(&self.rgb).map_err(png_io_error)?;
            writer.finish().map_err(png_io_error)?;
            w.flush()
        })
    }
}

fn render_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::io(
        path,
        std::io::Error::other(format!("cannot render plot: {e}")),
    )
}

fn png_io_error(e: png::EncodingError) -> std::io::Error {
    match e {
        png::EncodingError::IoError(e) => e,
        other => std::io::Error::other(other),
    }
}

/// Draws `title` in `size` points, centred in the top strip, and returns the area below it.
fn draw_title<'a>(root: &Area<'a>, title: &str, size: u32) -> DrawResult<Area<'a>> {
    let (top, body) = root.split_vertically(TITLE_HEIGHT);
    let (w, h) = top.dim_in_pixel();
    top.draw_text(title, &centred(size, &BLACK), (w as i32 / 2, h as i32 / 2))
        .map_err(|e| e.to_string())?;
    Ok(body)
}

/// A text style of `size` points in `color`, anchored at its centre.
fn centred(size: u32, color: &'static RGBColor) -> TextStyle<'static> {
    anchored(size, color, text_anchor::HPos::Center)
}

/// A text style anchored at its left edge, vertically centred.
fn left_aligned(size: u32, color: &'static RGBColor) -> TextStyle<'static> {
    anchored(size, color, text_anchor::HPos::Left)
}

/// A text style anchored at its right edge, vertically centred.
fn right_aligned(size: u32, color: &'static RGBColor) -> TextStyle<'static> {
    anchored(size, color, text_anchor::HPos::Right)
}

fn anchored(size: u32, color: &'static RGBColor, h: text_anchor::HPos) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font())
        .color(color)
        .pos(text_anchor::Pos::new(h, text_anchor::VPos::Center))
}

/// A compact tick label: no trailing zeros, integers when the axis counts whole steps.
fn format_tick(v: f64, whole: bool) -> String {
    if whole {
        return format!("{}", v.round());
    }
    let a = v.abs();
    let s = if a == 0.0 {
        "0".to_string()
    } else if !(1e-3..1e5).contains(&a) {
        format!("{v:.1e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    };
    if s.contains('.') && !s.contains('e') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_compact() {
        assert_eq!(format_tick(3.0, true), "3");
        assert_eq!(format_tick(0.25, false), "0.25");
        assert_eq!(format_tick(97.5, false), "97.5");
        assert_eq!(format_tick(100.0, false), "100");
        assert_eq!(format_tick(0.0, false), "0");
        assert_eq!(format_tick(2e-5, false), "2.0e-5");
        assert_eq!(format_tick(250.0, false), "250");
        assert_eq!(format_tick(2.5, false), "2.5");
        assert_eq!(format_tick(0.125, false), "0.125");
        assert_eq!(format_tick(123.4, false), "123");
    }

    #[test]
    fn huge_canvases_are_refused() {
        let err = Canvas::new("test image", 100_000, 100_000)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("100000x100000"), "{err}");
        assert!(Canvas::new("test image", 0, 10).is_err());
    }
}
