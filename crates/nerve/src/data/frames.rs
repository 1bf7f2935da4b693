//! Image frames as luminance in `[0, 1]`: single PNGs, directories or lists of PNG frames,
//! and animated GIFs, read into a [`FrameSequence`] (or one frame). The event-camera
//! emulator's video input ([`crate::data::events::video::read_video`]) and the stimuli of
//! `nerve retina` are read here.
//!
//! Colour becomes luminance by the Rec. 601 luma weights `0.299R + 0.587G + 0.114B`; alpha
//! is ignored in PNGs and marks transparent pixels in GIFs.
//!
//! GIF frames are composited onto the logical screen as a viewer shows them: each frame is
//! drawn at its offset (transparent pixels leave the canvas as it was), then disposed of as
//! it says (`Keep`/unspecified: left; `Background`: its rectangle cleared to the background;
//! `Previous`: its rectangle restored to what was under it) before the next one is drawn.
//! The background is the global palette's background colour, or black when the file has no
//! global palette; a first frame that does not cover the canvas therefore shows it too.
//!
//! GIF frame `i` is timestamped at the sum of the delays of frames `0..i` (GIF delays are in
//! 1/100 s). A delay of 0 counts as 10 ms, the shortest a GIF can state, so such frames keep
//! distinct, increasing times. Browsers do otherwise: Chromium and Firefox show any delay of
//! 10 ms or less as 100 ms.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Timed luminance frames: a PNG sequence or an animated GIF, as the event-camera
/// [`emulate`](crate::data::events::emulator::emulate) and the retina take them.
#[derive(Debug, Clone)]
pub struct FrameSequence {
    /// Frame width in pixels.
    pub width: u16,
    /// Frame height in pixels.
    pub height: u16,
    /// `(luminance frame, timestamp µs)` pairs: `round(i·1e6/fps)` for PNG sequences, the
    /// accumulated frame delays for a GIF.
    pub frames: Vec<(Vec<f32>, i64)>,
}

/// Luminance of an RGB colour with channels in `[0, 1]`: `0.299R + 0.587G + 0.114B` (Rec. 601
/// luma weights), shared by the PNG and GIF readers.
fn luma(r: f32, g: f32, b: f32) -> f32 {
    0.299 * r + 0.587 * g + 0.114 * b
}

/// Reads one PNG as luminance in `[0, 1]`: `(width, height, row-major pixels)`. Grayscale is
/// taken as is, RGB(A) as `0.299R + 0.587G + 0.114B` (alpha ignored); 1–16 bit depths and
/// palettes are expanded.
pub fn read_png_frame(path: impl AsRef<Path>) -> Result<(u16, u16, Vec<f32>)> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND);
    let bad = |e: png::DecodingError| Error::format(path, format!("not a readable PNG: {e}"));
    let mut reader = decoder.read_info().map_err(bad)?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| Error::format(path, "PNG too large"))?;
    let mut buf = vec![0u8; size];
    let info = reader.next_frame(&mut buf).map_err(bad)?;
    let (w, h) = (info.width, info.height);
    if w > u16::MAX as u32 || h > u16::MAX as u32 {
        return Err(Error::format(
            path,
            format!("{w}x{h} exceeds the 65535-pixel sensor limit"),
        ));
    }
    let channels = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => {
            return Err(Error::format(
                path,
                format!("unsupported PNG colour type {other:?} after expansion"),
            ))
        }
    };
    let samples: Vec<f32> = match info.bit_depth {
        png::BitDepth::Eight => buf[..info.buffer_size()]
            .iter()
            .map(|&b| b as f32 / 255.0)
            .collect(),
        png::BitDepth::Sixteen => buf[..info.buffer_size()]
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]) as f32 / 65535.0)
            .collect(),
        other => {
            return Err(Error::format(
                path,
                format!("unsupported PNG bit depth {other:?} after expansion"),
            ))
        }
    };
    let n = w as usize * h as usize;
    if samples.len() < n * channels {
        return Err(Error::format(path, "PNG image data is truncated"));
    }
    let lum = samples
        .chunks_exact(channels)
        .take(n)
        .map(|c| {
            if channels >= 3 {
                luma(c[0], c[1], c[2])
            } else {
                c[0]
            }
        })
        .collect();
    Ok((w as u16, h as u16, lum))
}

/// Reads every `.png` in `dir`, sorted by file name, as frames at `fps` frames per second.
pub fn read_png_sequence(dir: impl AsRef<Path>, fps: f64) -> Result<FrameSequence> {
    let dir = dir.as_ref();
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        let is_png = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("png"));
        if is_png && path.is_file() {
            paths.push(path);
        }
    }
    if paths.is_empty() {
        return Err(Error::format(dir, "no .png files in this directory"));
    }
    read_png_files(&paths, fps)
}

/// Reads the listed PNG files, sorted by file name, as frames at `fps` frames per second;
/// all must share one size.
pub fn read_png_files(paths: &[impl AsRef<Path>], fps: f64) -> Result<FrameSequence> {
    if !fps.is_finite() || fps <= 0.0 {
        return Err(Error::invalid(
            "fps",
            format!("must be finite and > 0, got {fps}"),
        ));
    }
    if paths.is_empty() {
        return Err(Error::invalid("PNG sequence", "no files given"));
    }
    let mut sorted: Vec<PathBuf> = paths.iter().map(|p| p.as_ref().to_path_buf()).collect();
    sorted.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    let mut frames = Vec::with_capacity(sorted.len());
    let mut size = None;
    for (i, path) in sorted.iter().enumerate() {
        let (w, h, lum) = read_png_frame(path)?;
        match size {
            None => size = Some((w, h)),
            Some((w0, h0)) if (w0, h0) != (w, h) => {
                return Err(Error::Shape {
                    what: format!("PNG frame {}", path.display()),
                    expected: format!("{w0}x{h0}"),
                    got: format!("{w}x{h}"),
                })
            }
            Some(_) => {}
        }
        frames.push((lum, (i as f64 * 1e6 / fps).round() as i64));
    }
    // Distinct timestamps are needed by the emulator; a huge fps would collapse them.
    if frames.windows(2).any(|f| f[1].1 <= f[0].1) {
        return Err(Error::invalid(
            "fps",
            format!("{fps} is too high for microsecond timestamps"),
        ));
    }
    let (width, height) = size.unwrap_or((0, 0));
    Ok(FrameSequence {
        width,
        height,
        frames,
    })
}

/// Microseconds used for a GIF frame whose delay is 0.
const ZERO_DELAY_US: i64 = 10_000;
/// Most luminance values a GIF may expand to (all frames together), so a small file cannot
/// claim an unbounded number of full-canvas frames: 2^28 `f32`s is 1 GiB.
const MAX_GIF_VALUES: usize = 1 << 28;

/// Reads an animated (or still) GIF as composited luminance frames timed by their delays; see
/// the module docs for compositing, disposal and the 0-delay rule.
pub fn read_gif(path: impl AsRef<Path>) -> Result<FrameSequence> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let bad = |e: gif::DecodingError| Error::format(path, format!("not a readable GIF: {e}"));
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::RGBA);
    let mut decoder = options
        .read_info(std::io::BufReader::new(file))
        .map_err(bad)?;
    let (w, h) = (decoder.width(), decoder.height());
    if w == 0 || h == 0 {
        return Err(Error::format(
            path,
            format!("GIF canvas {w}x{h} has no pixels"),
        ));
    }
    let (wu, hu) = (w as usize, h as usize);
    let background = decoder
        .global_palette()
        .zip(decoder.bg_color())
        .and_then(|(pal, i)| pal.get(3 * i..3 * i + 3))
        .map_or(0.0, |c| {
            luma(
                c[0] as f32 / 255.0,
                c[1] as f32 / 255.0,
                c[2] as f32 / 255.0,
            )
        });
    let mut canvas = vec![background; wu * hu];
    let mut frames: Vec<(Vec<f32>, i64)> = Vec::new();
    let mut t = 0i64;
    while let Some(frame) = decoder.read_next_frame().map_err(bad)? {
        if (frames.len() + 1).saturating_mul(wu * hu) > MAX_GIF_VALUES {
            return Err(Error::format(
                path,
                format!(
                    "GIF has more than {} frames of {w}x{h}; too large to hold in memory",
                    frames.len()
                ),
            ));
        }
        // The frame's rectangle clipped to the canvas (offsets may reach past its edge).
        let (left, top) = (frame.left as usize, frame.top as usize);
        let (fw, fh) = (frame.width as usize, frame.height as usize);
        let x1 = (left + fw).min(wu);
        let y1 = (top + fh).min(hu);
        let saved: Vec<f32> = if frame.dispose == gif::DisposalMethod::Previous {
            (top.min(y1)..y1)
                .flat_map(|y| canvas[y * wu + left.min(x1)..y * wu + x1].to_vec())
                .collect()
        } else {
            Vec::new()
        };
        let rgba = &frame.buffer;
        if rgba.len() < fw * fh * 4 {
            return Err(Error::format(
                path,
                format!("GIF frame {} holds too few pixels", frames.len()),
            ));
        }
        for y in top..y1 {
            for x in left..x1 {
                let i = ((y - top) * fw + (x - left)) * 4;
                // Alpha 0 marks the frame's transparent colour: the canvas shows through.
                if rgba[i + 3] != 0 {
                    canvas[y * wu + x] = luma(
                        rgba[i] as f32 / 255.0,
                        rgba[i + 1] as f32 / 255.0,
                        rgba[i + 2] as f32 / 255.0,
                    );
                }
            }
        }
        frames.push((canvas.clone(), t));
        t += match frame.delay {
            0 => ZERO_DELAY_US,
            d => i64::from(d) * 10_000,
        };
        match frame.dispose {
            gif::DisposalMethod::Background => {
                for y in top..y1 {
                    canvas[y * wu + left.min(x1)..y * wu + x1].fill(background);
                }
            }
            gif::DisposalMethod::Previous => {
                let span = x1 - left.min(x1);
                for (row, y) in (top.min(y1)..y1).enumerate() {
                    canvas[y * wu + left.min(x1)..y * wu + x1]
                        .copy_from_slice(&saved[row * span..(row + 1) * span]);
                }
            }
            gif::DisposalMethod::Any | gif::DisposalMethod::Keep => {}
        }
    }
    if frames.is_empty() {
        return Err(Error::format(path, "GIF holds no frames"));
    }
    Ok(FrameSequence {
        width: w,
        height: h,
        frames,
    })
}
