//! The embedded DejaVu Sans font, so pictures carry readable text on machines without any
//! system fonts.

use std::sync::OnceLock;

use plotters::style::FontStyle;

use crate::error::{Error, Result};

/// DejaVu Sans 2.37 from Debian's fonts-dejavu-core; licence in assets/fonts/LICENSE.
static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The family name the embedded font is registered under; every picture's text uses it.
pub(crate) const FONT: &str = "sans-serif";

/// Registers the embedded font with plotters under [`FONT`], once per process (every writer
/// that draws text calls this before drawing).
pub(crate) fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "plot font",
            "the embedded DejaVu Sans font could not be parsed",
        ))
    }
}
