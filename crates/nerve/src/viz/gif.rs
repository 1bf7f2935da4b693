//! Event streams as animated GIFs: the events of each time window accumulated into one frame,
//! ON and OFF in two colours on a dark background, scaled up by a whole factor, looping.

use std::borrow::Cow;
use std::path::Path;

use ::gif::{Encoder, EncodingError, Frame, Repeat};

use crate::data::events::Events;
use crate::error::{Error, Result};
use crate::fsutil::write_atomic_with;

/// Colour of pixels without events in the frame's window (near black).
pub const GIF_BACKGROUND: [u8; 3] = [16, 16, 24];
/// Colour of pixels with more ON than OFF events in the window (amber).
pub const GIF_ON: [u8; 3] = [255, 190, 40];
/// Colour of pixels with more OFF than ON events in the window (blue).
pub const GIF_OFF: [u8; 3] = [50, 140, 255];
/// Colour of pixels with as many ON as OFF events (at least one each) in the window (white).
pub const GIF_BOTH: [u8; 3] = [235, 235, 235];

/// Frames × scaled pixels above which a GIF is refused: encoding takes seconds per 100 M
/// pixels, and a longer animation is better made with a wider window or a smaller scale.
pub const MAX_GIF_PIXELS: u64 = 1 << 28;

/// Palette indices of the four colours above.
const BACKGROUND: u8 = 0;
const ON: u8 = 1;
const OFF: u8 = 2;
const BOTH: u8 = 3;

/// The number of frames [`write_events_gif`] draws: windows of `frame_us` from the first
/// event until the one holding the last event (`⌊(t_max - t_min)/frame_us⌋ + 1`), as
/// [`ToFrame::time_window`](crate::data::events::transforms::ToFrame::time_window) counts them.
pub fn gif_frame_count(events: &Events, frame_us: i64) -> Result<u64> {
    if frame_us <= 0 {
        return Err(Error::invalid(
            "frame_us",
            format!("{frame_us} must be positive"),
        ));
    }
    let (t0, t1) = events
        .time_span()
        .ok_or_else(|| Error::invalid("events", "there are no events to animate"))?;
    let span = t1.checked_sub(t0).ok_or_else(|| {
        Error::invalid(
            "events",
            format!("the time span {t0} .. {t1} us is too long"),
        )
    })?;
    Ok(span as u64 / frame_us as u64 + 1)
}

/// Writes `events` to `path` as a looping animated GIF: frame `k` shows the events with
/// `t_min + k·frame_us <= t < t_min + (k+1)·frame_us`, each pixel in [`GIF_ON`], [`GIF_OFF`] or
/// [`GIF_BOTH`] by the majority polarity of its events in that window, [`GIF_BACKGROUND`]
/// without events; every sensor pixel becomes a `scale × scale` block. Frames are shown
/// `1/fps` s each, rounded to the GIF's whole centiseconds.
///
/// Refuses an empty stream, `frame_us <= 0`, `scale` of 0 or an image side over 65535 pixels,
/// `fps` not in `(0, 100]`, and animations over [`MAX_GIF_PIXELS`] frames × pixels (the error
/// says how many frames and pixels were asked for). The file is written atomically.
pub fn write_events_gif(
    path: impl AsRef<Path>,
    events: &Events,
    frame_us: i64,
    scale: u32,
    fps: f64,
) -> Result<()> {
    let path = path.as_ref();
    events.validate()?;
    let n = events.len();
    let (w, h) = (usize::from(events.sensor.0), usize::from(events.sensor.1));
    let frames = gif_frame_count(events, frame_us)?;
    if !(fps.is_finite() && fps > 0.0 && fps <= 100.0) {
        return Err(Error::invalid(
            "fps",
            format!("{fps} must lie in (0, 100]: GIF delays are whole hundredths of a second"),
        ));
    }
    let (sw, sh) = (w as u64 * u64::from(scale), h as u64 * u64::from(scale));
    if scale == 0 || sw > u64::from(u16::MAX) || sh > u64::from(u16::MAX) {
        return Err(Error::invalid(
            "scale",
            format!("{scale} must be positive and keep the {w}x{h} sensor within 65535 pixels"),
        ));
    }
    let total = u128::from(frames) * u128::from(sw * sh);
    if total > u128::from(MAX_GIF_PIXELS) {
        return Err(Error::invalid(
            "events gif",
            format!(
                "{frames} frames of {sw}x{sh} pixels ({total} in all) exceed the limit of \
                 {MAX_GIF_PIXELS}; use a longer frame window or a smaller scale"
            ),
        ));
    }
    let frames = frames as usize;
    let t0 = events.time_span().map_or(0, |s| s.0);
    let frame_of = |i: usize| ((events.t[i] - t0) as u64 / frame_us as u64) as usize;
    // Events need not be sorted: a counting sort by frame lets each frame be built in turn.
    let mut starts = vec![0usize; frames + 1];
    for i in 0..n {
        starts[frame_of(i) + 1] += 1;
    }
    for k in 0..frames {
        starts[k + 1] += starts[k];
    }
    let mut fill = starts.clone();
    let mut order = vec![0usize; n];
    for i in 0..n {
        let f = frame_of(i);
        order[fill[f]] = i;
        fill[f] += 1;
    }
    let delay = (100.0 / fps).round().clamp(1.0, f64::from(u16::MAX)) as u16;
    let palette: Vec<u8> = [GIF_BACKGROUND, GIF_ON, GIF_OFF, GIF_BOTH].concat();
    let (sw, sh, scale) = (sw as usize, sh as usize, scale as usize);
    write_atomic_with(path, |out| {
        let mut encoder =
            Encoder::new(&mut *out, sw as u16, sh as u16, &palette).map_err(gif_io)?;
        encoder.set_repeat(Repeat::Infinite).map_err(gif_io)?;
        // Net polarity and event count per sensor pixel within the current window.
        let mut net = vec![0i64; w * h];
        let mut seen = vec![false; w * h];
        let mut pixels = vec![BACKGROUND; sw * sh];
        for k in 0..frames {
            net.fill(0);
            seen.fill(false);
            for &i in &order[starts[k]..starts[k + 1]] {
                let px = usize::from(events.y[i]) * w + usize::from(events.x[i]);
                net[px] += i64::from(events.p[i].signum());
                seen[px] = true;
            }
            for y in 0..h {
                let row = &mut pixels[y * scale * sw..(y * scale + 1) * sw];
                for x in 0..w {
                    let px = y * w + x;
                    let code = match (seen[px], net[px].signum()) {
                        (false, _) => BACKGROUND,
                        (true, 1) => ON,
                        (true, -1) => OFF,
                        _ => BOTH,
                    };
                    row[x * scale..(x + 1) * scale].fill(code);
                }
                // The other rows of the block repeat the first.
                for r in 1..scale {
                    let (done, rest) = pixels.split_at_mut((y * scale + r) * sw);
                    rest[..sw].copy_from_slice(&done[y * scale * sw..(y * scale + 1) * sw]);
                }
            }
            let frame = Frame {
                delay,
                width: sw as u16,
                height: sh as u16,
                buffer: Cow::Borrowed(&pixels),
                ..Frame::default()
            };
            encoder.write_frame(&frame).map_err(gif_io)?;
        }
        encoder.into_inner().map_err(gif_io)?;
        Ok(())
    })
}

fn gif_io(e: EncodingError) -> std::io::Error {
    match e {
        EncodingError::Io(e) => e,
        other => std::io::Error::other(other),
    }
}
