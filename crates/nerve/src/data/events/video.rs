//! Video input for the event-camera emulator: [`read_video`] picks the reader for a path (a
//! directory of PNG frames, an animated GIF or a single PNG; the decoders live in
//! [`crate::data::frames`]), retimes GIF frames to a given frame rate, and explains how to
//! turn MP4 and other containers into PNG frames.
//!
//! A GIF keeps its own frame delays unless an `fps` is given (see [`crate::data::frames`]
//! for how delays, including 0, become timestamps).

use std::path::Path;

use crate::data::frames::{read_gif, read_png_frame, read_png_sequence, FrameSequence};
use crate::error::{Error, Result};

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
