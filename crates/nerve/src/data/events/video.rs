//! Video input for the event-camera emulator: animated GIFs, PNG sequences and single PNGs,
//! all turned into a [`FrameSequence`] of luminance frames in `[0, 1]`.
//!
//! GIF frames are composited onto the logical screen as a viewer shows them: each frame is
//! drawn at its offset (transparent pixels leave the canvas as it was), then disposed of as
//! it says (`Keep`/unspecified: left; `Background`: its rectangle cleared to the background;
//! `Previous`: its rectangle restored to what was under it) before the next one is drawn.
//! The background is the global palette's background colour, or black when the file has no
//! global palette; a first frame that does not cover the canvas therefore shows it too.
//!
//! Frame `i` is timestamped at the sum of the delays of frames `0..i` (GIF delays are in
//! 1/100 s). A delay of 0 counts as 10 ms, the shortest a GIF can state, so such frames keep
//! distinct, increasing times. Browsers do otherwise: Chromium and Firefox show any delay of
//! 10 ms or less as 100 ms. Pass an `fps` to [`read_video`] to ignore the delays.

use std::path::Path;

use super::emulator::{luma, read_png_frame, read_png_sequence, FrameSequence};
use crate::error::{Error, Result};

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

/// File extensions of containers that need an external decoder.
const VIDEO_CONTAINERS: [&str; 8] = ["mp4", "mov", "avi", "mkv", "webm", "m4v", "mpg", "mpeg"];

/// Reads video for the emulator from `path`:
///
/// - a directory: its `.png` files sorted by name at `fps` frames per second (`fps` required);
/// - a `.gif`: [`read_gif`], retimed to `round(i·1e6/fps)` µs when `fps` is given;
/// - a `.png`: one frame at time 0 (`fps` is ignored).
///
/// Other containers (MP4 and the like) are refused with the `ffmpeg` command that extracts
/// their frames as PNGs.
pub fn read_video(path: impl AsRef<Path>, fps: Option<f64>) -> Result<FrameSequence> {
    let path = path.as_ref();
    if let Some(f) = fps {
        if !f.is_finite() || f <= 0.0 {
            return Err(Error::invalid(
                "fps",
                format!("must be finite and > 0, got {f}"),
            ));
        }
    }
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        let fps = fps.ok_or_else(|| {
            Error::invalid(
                "fps",
                format!(
                    "{} is a directory of PNG frames, which carry no timing: give the frame rate",
                    path.display()
                ),
            )
        })?;
        return read_png_sequence(path, fps);
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "gif" => {
            let mut seq = read_gif(path)?;
            if let Some(fps) = fps {
                for (i, frame) in seq.frames.iter_mut().enumerate() {
                    frame.1 = (i as f64 * 1e6 / fps).round() as i64;
                }
                // The emulator needs increasing times; a huge fps would collapse them.
                if seq.frames.windows(2).any(|f| f[1].1 <= f[0].1) {
                    return Err(Error::invalid(
                        "fps",
                        format!("{fps} is too high for microsecond timestamps"),
                    ));
                }
            }
            Ok(seq)
        }
        "png" => {
            let (width, height, lum) = read_png_frame(path)?;
            Ok(FrameSequence {
                width,
                height,
                frames: vec![(lum, 0)],
            })
        }
        e if VIDEO_CONTAINERS.contains(&e) => {
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("frames");
            Err(Error::format(
                path,
                format!(
                    "{} video is not decoded here: extract its frames as PNGs with ffmpeg \
                     first, `mkdir {stem}_frames && ffmpeg -i {} {stem}_frames/%06d.png`, then \
                     pass the directory {stem}_frames with the video's frame rate as fps",
                    e.to_ascii_uppercase(),
                    path.display()
                ),
            ))
        }
        _ => Err(Error::format(
            path,
            "unsupported video input: expected a directory of PNG frames, a .gif or a .png",
        )),
    }
}
