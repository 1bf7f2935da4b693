//! Pictures of spikes and events: spike rasters ([`raster`]), per-class spike-count heat maps
//! ([`class_counts`]) and event streams as animated GIFs ([`gif`](mod@gif)).
//!
//! Every writer checks its input first and returns [`crate::Error::Invalid`]
//! on bad data (non-finite times, neurons out of range, empty inputs, images too large), and
//! writes its file atomically, so a reader never sees a half-written image. Text uses the
//! DejaVu Sans font embedded for [`crate::plot`], so no system fonts are needed.

pub mod class_counts;
pub mod gif;
pub mod raster;

pub use self::gif::{
    gif_frame_count, write_events_gif, GIF_BACKGROUND, GIF_BOTH, GIF_OFF, GIF_ON, MAX_GIF_PIXELS,
};
pub use class_counts::write_class_counts_png;
pub use class_counts::{class_counts_image_size, TRUE_CLASS_OUTLINE};
pub use raster::{
    event_spikes, raster_image_size, spikes_from_slice, spikes_from_tensor, write_event_raster_png,
    write_raster_png, EVENT_OFF_COLOR, EVENT_ON_COLOR, RASTER_IMAGE_WIDTH, RASTER_SPIKE_COLOR,
};

use std::io::Write;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor;

use crate::error::{Error, Result};
use crate::fsutil::write_atomic_with;

/// The font family name the embedded font is registered under (the one `plot` uses too).
const FONT: &str = "sans-serif";

/// Height of the strip holding a figure title, in pixels.
const TITLE_HEIGHT: u32 = 40;

/// Images larger than this many pixels are refused (3 bytes each: about 100 MB).
const MAX_PIXELS: u64 = 32 << 20;

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
type DrawResult<T> = std::result::Result<T, String>;

use crate::plot::ensure_font;

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

/// Draws `title` centred in the top strip and returns the area below it.
fn draw_title<'a>(root: &Area<'a>, title: &str) -> DrawResult<Area<'a>> {
    let (top, body) = root.split_vertically(TITLE_HEIGHT);
    let (w, h) = top.dim_in_pixel();
    top.draw_text(title, &centred(20, &BLACK), (w as i32 / 2, h as i32 / 2))
        .map_err(|e| e.to_string())?;
    Ok(body)
}

/// A text style of `size` points in `color`, anchored at its centre.
fn centred(size: u32, color: &'static RGBColor) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font())
        .color(color)
        .pos(text_anchor::Pos::new(
            text_anchor::HPos::Center,
            text_anchor::VPos::Center,
        ))
}

/// A text style anchored at its left edge, vertically centred.
fn left_aligned(size: u32, color: &'static RGBColor) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font())
        .color(color)
        .pos(text_anchor::Pos::new(
            text_anchor::HPos::Left,
            text_anchor::VPos::Center,
        ))
}

/// A text style anchored at its right edge, vertically centred.
fn right_aligned(size: u32, color: &'static RGBColor) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font())
        .color(color)
        .pos(text_anchor::Pos::new(
            text_anchor::HPos::Right,
            text_anchor::VPos::Center,
        ))
}

/// A compact axis label: integers without decimals, otherwise up to 3 significant decimals.
fn format_tick(v: f64) -> String {
    if v == v.round() && v.abs() < 1e9 {
        return format!("{v:.0}");
    }
    let a = v.abs();
    let s = if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    };
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_compact() {
        assert_eq!(format_tick(250.0), "250");
        assert_eq!(format_tick(2.5), "2.5");
        assert_eq!(format_tick(0.125), "0.125");
        assert_eq!(format_tick(123.4), "123");
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
