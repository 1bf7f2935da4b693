//! PNG plots: training curves and spike rasters.
//!
//! Text is drawn with an embedded DejaVu Sans font (see `assets/fonts/`), so plotting needs
//! no system fonts. Files are written atomically: a reader never sees a half-written PNG.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor;
use plotters::style::FontStyle;

use crate::error::{Error, Result};

/// Width of one panel drawn by [`panels`], in pixels.
pub const PANEL_WIDTH: u32 = 640;
/// Height of one panel drawn by [`panels`], in pixels (title strip excluded).
pub const PANEL_HEIGHT: u32 = 440;
/// Height of the strip holding the figure title, in pixels.
pub const TITLE_HEIGHT: u32 = 40;
/// Width of a spike raster drawn by [`spike_raster`], in pixels.
pub const RASTER_WIDTH: u32 = 1000;

/// DejaVu Sans 2.37 from Debian's fonts-dejavu-core; licence in assets/fonts/LICENSE.
static FONT_BYTES: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");

const FONT: &str = "sans-serif";

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

/// Series with at most this many points get a marker on each point.
const MAX_MARKED_POINTS: usize = 60;

/// A named curve of `(x, y)` points; non-finite points are skipped when drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The legend entry.
    pub name: String,
    /// The points, in drawing order.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// A series named `name` through `points`.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points,
        }
    }
}

/// One chart: a title, a y-axis label and the curves drawn on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Shown above the chart.
    pub title: String,
    /// The y-axis description, e.g. "loss" or "accuracy (%)".
    pub y_label: String,
    /// The curves; all share the panel's axes.
    pub series: Vec<Series>,
    /// A fixed y range (e.g. `(0.0, 100.0)` for accuracy); `None`, or a range that is not
    /// finite and increasing, fits the data.
    pub y_range: Option<(f64, f64)>,
}

impl Panel {
    /// A panel with a y range fitted to its data.
    pub fn new(title: impl Into<String>, y_label: impl Into<String>, series: Vec<Series>) -> Self {
        Self {
            title: title.into(),
            y_label: y_label.into(),
            series,
            y_range: None,
        }
    }

    /// The same panel with a fixed y range.
    pub fn with_y_range(mut self, min: f64, max: f64) -> Self {
        self.y_range = Some((min, max));
        self
    }
}

/// One layer of a spike raster: which neuron fired at which time step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RasterLayer {
    /// Shown above the layer's panel.
    pub name: String,
    /// Neurons in the layer; every spike's neuron is below it.
    pub num_neurons: usize,
    /// Time steps simulated; every spike's step is below it.
    pub num_steps: usize,
    /// The spikes as `(step, neuron)` pairs.
    pub spikes: Vec<(usize, usize)>,
}

/// Draws `series` on one chart with x labelled "epoch" and a fitted y range.
pub fn training_curves(path: &Path, title: &str, series: &[Series]) -> Result<()> {
    let panel = Panel::new("", "", series.to_vec());
    panels(path, title, "epoch", std::slice::from_ref(&panel))
}

/// The pixel size of the image that [`panels`] draws for `num_panels` panels.
pub fn panels_size(num_panels: usize) -> (u32, u32) {
    let n = u32::try_from(num_panels).unwrap_or(u32::MAX);
    (PANEL_WIDTH.saturating_mul(n), TITLE_HEIGHT + PANEL_HEIGHT)
}

/// Draws `panels` side by side under `title`, sharing the x-axis description `x_label`.
pub fn panels(path: &Path, title: &str, x_label: &str, panels: &[Panel]) -> Result<()> {
    if panels.is_empty() {
        return Err(Error::invalid(
            "plot panels",
            "at least one panel is needed",
        ));
    }
    if panels.len() > 16 {
        return Err(Error::invalid(
            "plot panels",
            format!("at most 16 panels fit side by side, got {}", panels.len()),
        ));
    }
    ensure_font()?;
    let (width, height) = panels_size(panels.len());
    render_png(path, width, height, |root| {
        let body = draw_title(root, title)?;
        for (area, panel) in body.split_evenly((1, panels.len())).iter().zip(panels) {
            draw_panel(area, x_label, panel)?;
        }
        Ok(())
    })
}

/// The plot area height of a raster layer: tall enough to separate small layers' neurons,
/// bounded so that big layers do not make the image huge.
fn raster_plot_height(num_neurons: usize) -> u32 {
    u32::try_from(num_neurons.saturating_mul(8))
        .unwrap_or(u32::MAX)
        .clamp(80, 360)
}

/// Vertical space around a raster layer's plot area: caption, margins and x-axis labels.
const RASTER_LAYER_CHROME: u32 = 70;
/// Extra room under the last raster layer for the x-axis description.
const RASTER_X_DESC: u32 = 22;

/// The pixel size of the image that [`spike_raster`] draws for `layers`.
pub fn raster_size(layers: &[RasterLayer]) -> (u32, u32) {
    let body: u32 = layers
        .iter()
        .map(|l| raster_plot_height(l.num_neurons) + RASTER_LAYER_CHROME)
        .fold(0, u32::saturating_add);
    (
        RASTER_WIDTH,
        TITLE_HEIGHT
            .saturating_add(body)
            .saturating_add(RASTER_X_DESC),
    )
}

/// Draws one stacked raster panel per layer: x is the time step, y the neuron index,
/// and each spike a mark (1 pixel for big layers).
pub fn spike_raster(path: &Path, title: &str, layers: &[RasterLayer]) -> Result<()> {
    if layers.is_empty() {
        return Err(Error::invalid(
            "spike raster",
            "at least one layer is needed",
        ));
    }
    for l in layers {
        check_layer(l)?;
    }
    let (width, height) = raster_size(layers);
    // Bounds the pixel buffer (3 bytes a pixel) to about 150 MB.
    if height > 50_000 {
        return Err(Error::invalid(
            "spike raster",
            format!(
                "{} layers make an image {height} pixels high; plot fewer",
                layers.len()
            ),
        ));
    }
    ensure_font()?;
    render_png(path, width, height, |root| {
        let mut rest = draw_title(root, title)?;
        for (i, layer) in layers.iter().enumerate() {
            let last = i + 1 == layers.len();
            let mut h = raster_plot_height(layer.num_neurons) + RASTER_LAYER_CHROME;
            if last {
                h += RASTER_X_DESC;
            }
            let (area, below) = rest.split_vertically(h);
            draw_raster_layer(root, &area, layer, PALETTE[i % PALETTE.len()], last)?;
            rest = below;
        }
        Ok(())
    })
}

/// Rejects empty layers and spikes outside the layer.
fn check_layer(l: &RasterLayer) -> Result<()> {
    let what = format!("spike raster layer '{}'", l.name);
    if l.num_neurons == 0 || l.num_steps == 0 {
        return Err(Error::invalid(
            what,
            format!(
                "needs at least one neuron and one step, got {} and {}",
                l.num_neurons, l.num_steps
            ),
        ));
    }
    if let Some(&(s, n)) = l
        .spikes
        .iter()
        .find(|&&(s, n)| s >= l.num_steps || n >= l.num_neurons)
    {
        return Err(Error::invalid(
            what,
            format!(
                "spike at step {s}, neuron {n} lies outside {} steps x {} neurons",
                l.num_steps, l.num_neurons
            ),
        ));
    }
    Ok(())
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
type DrawResult<T> = std::result::Result<T, String>;

/// Registers the embedded font with plotters under `sans-serif`, once per process (every
/// module that draws text calls this, so the font is embedded once).
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

/// Renders with `draw` into an RGB buffer and writes it to `path` as a PNG, atomically.
fn render_png(
    path: &Path,
    width: u32,
    height: u32,
    draw: impl FnOnce(&Area<'_>) -> DrawResult<()>,
) -> Result<()> {
    let mut rgb = vec![255u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| render_error(path, e))?;
        draw(&root).map_err(|e| render_error(path, e))?;
        root.present().map_err(|e| render_error(path, e))?;
    }
    write_png_atomic(path, width, height, &rgb)
}

fn render_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::io(
        path,
        std::io::Error::other(format!("cannot render plot: {e}")),
    )
}

/// Writes an RGB image to a temporary file beside `path`, then renames it over `path`.
fn write_png_atomic(path: &Path, width: u32, height: u32, rgb: &[u8]) -> Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let file_name = path.file_name().ok_or_else(|| {
        Error::invalid(
            "plot path",
            format!("'{}' does not name a file", path.display()),
        )
    })?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}-{}.tmp",
        file_name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let write = || -> std::io::Result<()> {
        let file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        let mut out = BufWriter::new(file);
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(png_io_error)?;
        writer.write_image_data(rgb).map_err(png_io_error)?;
        writer.finish().map_err(png_io_error)?;
        out.flush()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        // Best effort: the temporary file may not even exist, and the original error matters more.
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

fn png_io_error(e: png::EncodingError) -> std::io::Error {
    match e {
        png::EncodingError::IoError(e) => e,
        other => std::io::Error::other(other),
    }
}

/// Draws the figure title and returns the area below it.
fn draw_title<'a>(root: &Area<'a>, title: &str) -> DrawResult<Area<'a>> {
    let (top, body) = root.split_vertically(TITLE_HEIGHT);
    let style = TextStyle::from((FONT, 24).into_font())
        .color(&BLACK)
        .pos(text_anchor::Pos::new(
            text_anchor::HPos::Center,
            text_anchor::VPos::Center,
        ));
    let (w, h) = top.dim_in_pixel();
    top.draw_text(title, &style, (w as i32 / 2, h as i32 / 2))
        .map_err(|e| e.to_string())?;
    Ok(body)
}

/// A `(min, max)` range around `values` with a little padding; `(0, 1)` when there are none.
fn fitted_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return (0.0, 1.0);
    }
    let span = hi - lo;
    let pad = if span > 0.0 {
        span * 0.05
    } else {
        lo.abs().max(1.0) * 0.1
    };
    (lo - pad, hi + pad)
}

/// Draws one chart of curves into `area`.
fn draw_panel(area: &Area<'_>, x_label: &str, panel: &Panel) -> DrawResult<()> {
    let finite = |s: &Series| -> Vec<(f64, f64)> {
        s.points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect()
    };
    let curves: Vec<(String, Vec<(f64, f64)>)> = panel
        .series
        .iter()
        .map(|s| (s.name.clone(), finite(s)))
        .collect();
    let (x0, x1) = fitted_range(curves.iter().flat_map(|(_, p)| p.iter().map(|p| p.0)));
    let (y0, y1) = match panel.y_range {
        Some((lo, hi)) if lo.is_finite() && hi.is_finite() && lo < hi => (lo, hi),
        _ => fitted_range(curves.iter().flat_map(|(_, p)| p.iter().map(|p| p.1))),
    };
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(12)
        .x_label_area_size(46)
        .y_label_area_size(64);
    if !panel.title.is_empty() {
        builder.caption(&panel.title, (FONT, 20));
    }
    let mut chart = builder
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| e.to_string())?;
    let whole_x = curves
        .iter()
        .all(|(_, p)| p.iter().all(|&(x, _)| x.fract() == 0.0));
    // Whole-number axes (epochs) get one tick per value so no label repeats after rounding.
    let x_ticks = if whole_x {
        ((x1 - x0).floor() as usize + 1).clamp(2, 12)
    } else {
        10
    };
    // Plotters draws about ten labelled ticks per axis by default.
    let y_decimals = decimals_for_step((y1 - y0) / 10.0);
    chart
        .configure_mesh()
        .light_line_style(RGBColor(245, 245, 245))
        .bold_line_style(RGBColor(215, 215, 215))
        .x_desc(x_label)
        .y_desc(&panel.y_label)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .x_labels(x_ticks)
        .x_label_formatter(&|x| format_tick(*x, whole_x))
        .y_label_formatter(&|y| format_tick_decimals(*y, y_decimals))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (name, points)) in curves.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let line = color.stroke_width(2);
        chart
            .draw_series(LineSeries::new(points.iter().copied(), line))
            .map_err(|e| e.to_string())?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], line));
        if points.len() <= MAX_MARKED_POINTS {
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(|e| e.to_string())?;
        }
    }
    if curves.iter().any(|(name, _)| !name.is_empty()) {
        chart
            .configure_series_labels()
            .position(legend_position(&curves, y0, y1))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(160, 160, 160))
            .label_font((FONT, 14))
            .draw()
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Puts the legend in the corner the curves' right ends stay away from.
fn legend_position(curves: &[(String, Vec<(f64, f64)>)], y0: f64, y1: f64) -> SeriesLabelPosition {
    let ends: Vec<f64> = curves
        .iter()
        .filter_map(|(_, p)| p.last())
        .map(|&(_, y)| (y - y0) / (y1 - y0))
        .collect();
    let mean_end = ends.iter().sum::<f64>() / ends.len().max(1) as f64;
    if mean_end > 0.5 {
        SeriesLabelPosition::LowerRight
    } else {
        SeriesLabelPosition::UpperRight
    }
}

/// Decimals needed so ticks `step` apart print differently (at least 0, at most 6).
fn decimals_for_step(step: f64) -> usize {
    if !(step.is_finite() && step > 0.0) {
        return 2;
    }
    (-step.log10()).ceil().clamp(0.0, 6.0) as usize
}

/// A tick label with a fixed number of decimals (scientific for very large or small values).
fn format_tick_decimals(v: f64, decimals: usize) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-4..1e6).contains(&a) {
        return format!("{v:.1e}");
    }
    format!("{v:.decimals$}")
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

/// Draws one raster layer into `area`; spikes go straight to `root`'s pixels.
fn draw_raster_layer(
    root: &Area<'_>,
    area: &Area<'_>,
    layer: &RasterLayer,
    color: RGBColor,
    last: bool,
) -> DrawResult<()> {
    let caption = format!(
        "{} — {} neurons, {} spikes",
        layer.name,
        layer.num_neurons,
        layer.spikes.len()
    );
    let steps = layer.num_steps as f64;
    let neurons = layer.num_neurons as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 16))
        .margin_left(12)
        .margin_right(16)
        .margin_top(6)
        .margin_bottom(6)
        .x_label_area_size(if last { 30 + RASTER_X_DESC } else { 30 })
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..steps, 0.0..neurons)
        .map_err(|e| e.to_string())?;
    let mut mesh = chart.configure_mesh();
    mesh.disable_mesh()
        .y_desc("neuron")
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .x_labels(12)
        .y_labels(5)
        .x_label_formatter(&|x| format_tick(*x, true))
        .y_label_formatter(&|y| format_tick(*y, true));
    if last {
        mesh.x_desc("time step");
    }
    mesh.draw().map_err(|e| e.to_string())?;
    let (left, top) = chart.backend_coord(&(0.0, neurons));
    let (right, bottom) = chart.backend_coord(&(steps, 0.0));
    let cell_w = f64::from(right - left) / steps;
    let cell_h = f64::from(bottom - top) / neurons;
    // Marks fill part of their cell, so small layers show ticks and big ones single pixels.
    let mark_w = (cell_w * 0.5).clamp(1.0, 4.0) as i32;
    let mark_h = (cell_h * 0.8).clamp(1.0, 8.0) as i32;
    for &(step, neuron) in &layer.spikes {
        let cx = f64::from(left) + (step as f64 + 0.5) * cell_w;
        // Neuron 0 at the bottom, like the y axis.
        let cy = f64::from(bottom) - (neuron as f64 + 0.5) * cell_h;
        let x0 = (cx - f64::from(mark_w) / 2.0).round() as i32;
        let y0 = (cy - f64::from(mark_h) / 2.0).round() as i32;
        for y in y0..y0 + mark_h {
            for x in x0..x0 + mark_w {
                root.draw_pixel((x, y), &color).map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(())
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
    }

    #[test]
    fn ranges_are_padded_and_never_empty() {
        assert_eq!(fitted_range([].into_iter()), (0.0, 1.0));
        let (lo, hi) = fitted_range([2.0, 2.0].into_iter());
        assert!(lo < 2.0 && hi > 2.0);
        let (lo, hi) = fitted_range([0.0, f64::NAN, 10.0].into_iter());
        assert!(lo < 0.0 && hi > 10.0 && hi < 11.0);
    }

    #[test]
    fn raster_checks_spikes() {
        let layer = RasterLayer {
            name: "out".into(),
            num_neurons: 10,
            num_steps: 5,
            spikes: vec![(5, 0)],
        };
        let msg = check_layer(&layer).unwrap_err().to_string();
        assert!(
            msg.contains("step 5, neuron 0 lies outside 5 steps x 10 neurons"),
            "{msg}"
        );
    }

    #[test]
    fn sizes_follow_the_layout() {
        assert_eq!(
            panels_size(2),
            (2 * PANEL_WIDTH, TITLE_HEIGHT + PANEL_HEIGHT)
        );
        let layer = |n| RasterLayer {
            name: String::new(),
            num_neurons: n,
            num_steps: 3,
            spikes: vec![],
        };
        let (w, h) = raster_size(&[layer(10), layer(1728)]);
        assert_eq!(w, RASTER_WIDTH);
        assert_eq!(
            h,
            TITLE_HEIGHT + 80 + 360 + 2 * RASTER_LAYER_CHROME + RASTER_X_DESC
        );
    }
}

#[cfg(test)]
mod tick_tests {
    use super::*;

    #[test]
    fn close_ticks_stay_distinct() {
        let d = decimals_for_step(0.009);
        assert_eq!(d, 3);
        assert_ne!(
            format_tick_decimals(1.505, d),
            format_tick_decimals(1.514, d)
        );
        assert_eq!(format_tick_decimals(98.5, decimals_for_step(0.1)), "98.5");
    }
}
