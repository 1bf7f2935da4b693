//! Video input for the emulator: GIF compositing, disposal and timing, `read_video`'s input
//! kinds, and events emulated from a GIF.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use nerve::data::events::emulator::{emulate, EmulatorConfig};
use nerve::data::events::video::read_video;
use nerve::data::frames::read_gif;

/// Global palette: 0 dark grey (the background), 1 white, 2 mid grey, 3 red.
const PALETTE: [u8; 12] = [64, 64, 64, 255, 255, 255, 128, 128, 128, 255, 0, 0];
const W: usize = 8;
const H: usize = 6;

fn grey(v: u8) -> f32 {
    v as f32 / 255.0
}

/// One frame of palette indices.
struct Part {
    left: u16,
    top: u16,
    width: u16,
    height: u16,
    index: Vec<u8>,
    delay: u16,
    dispose: gif::DisposalMethod,
}

/// Writes an 8x6 GIF of `parts`, palette index 3 (red) transparent in frames that say so.
fn write_gif(path: &Path, parts: &[Part], transparent: &[bool]) {
    let file = std::fs::File::create(path).unwrap();
    let mut enc = gif::Encoder::new(file, W as u16, H as u16, &PALETTE).unwrap();
    for (p, &tr) in parts.iter().zip(transparent) {
        let frame = gif::Frame {
            left: p.left,
            top: p.top,
            width: p.width,
            height: p.height,
            delay: p.delay,
            dispose: p.dispose,
            transparent: tr.then_some(3),
            buffer: Cow::Borrowed(&p.index),
            ..gif::Frame::default()
        };
        enc.write_frame(&frame).unwrap();
    }
}

/// Four frames: a full grey frame; a 3x2 white patch with one transparent pixel, cleared to
/// the background afterwards; a 2x2 red patch restored to what was under it afterwards; a
/// single white pixel in the corner.
fn sample_gif(dir: &Path) -> PathBuf {
    use gif::DisposalMethod::{Background, Keep, Previous};
    let parts = [
        Part {
            left: 0,
            top: 0,
            width: 8,
            height: 6,
            index: vec![2; W * H],
            delay: 5,
            dispose: Keep,
        },
        Part {
            left: 2,
            top: 1,
            width: 3,
            height: 2,
            index: vec![1, 3, 1, 1, 1, 1],
            delay: 0,
            dispose: Background,
        },
        Part {
            left: 0,
            top: 0,
            width: 2,
            height: 2,
            index: vec![3; 4],
            delay: 10,
            dispose: Previous,
        },
        Part {
            left: 7,
            top: 5,
            width: 1,
            height: 1,
            index: vec![1],
            delay: 2,
            dispose: Keep,
        },
    ];
    let path = dir.join("anim.gif");
    write_gif(&path, &parts, &[false, true, false, false]);
    path
}

#[test]
fn gif_frames_are_composited_disposed_and_timed() {
    let dir = tempfile::tempdir().unwrap();
    let seq = read_gif(sample_gif(dir.path())).unwrap();
    assert_eq!((seq.width, seq.height), (W as u16, H as u16));
    // Delays 5, 0 (read as 1), 10 hundredths of a second.
    let times: Vec<i64> = seq.frames.iter().map(|f| f.1).collect();
    assert_eq!(times, [0, 50_000, 60_000, 160_000]);

    let (mid, white, bg) = (grey(128), 1.0f32, grey(64));
    let red = 0.299f32;
    let at = |f: usize, x: usize, y: usize| seq.frames[f].0[y * W + x];
    let close = |a: f32, b: f32| (a - b).abs() < 1e-5;
    // Frame 0: all mid grey.
    assert!(seq.frames[0].0.iter().all(|&v| close(v, mid)));
    // Frame 1: the white patch over grey; its transparent pixel (3, 1) shows the grey.
    assert!(close(at(1, 2, 1), white) && close(at(1, 4, 2), white));
    assert!(close(at(1, 3, 1), mid), "transparent pixel {}", at(1, 3, 1));
    assert!(close(at(1, 5, 1), mid) && close(at(1, 1, 2), mid));
    // Frame 2: frame 1's patch was cleared to the background colour (dark grey, index 0),
    // the transparent pixel included; the red patch sits at the top-left.
    assert!(close(at(2, 2, 1), bg) && close(at(2, 3, 1), bg) && close(at(2, 4, 2), bg));
    assert!(close(at(2, 0, 0), red) && close(at(2, 1, 1), red));
    assert!(close(at(2, 2, 0), mid));
    // Frame 3: the red patch was restored to grey; the cleared patch stays; one new pixel.
    assert!(close(at(3, 0, 0), mid) && close(at(3, 1, 1), mid));
    assert!(close(at(3, 2, 1), bg));
    assert!(close(at(3, 7, 5), white) && close(at(3, 6, 5), mid));
}

#[test]
fn gif_drives_the_emulator() {
    let dir = tempfile::tempdir().unwrap();
    let seq = read_gif(sample_gif(dir.path())).unwrap();
    let cfg = EmulatorConfig {
        threshold_sigma: 0.0,
        leak_rate_hz: 0.0,
        ..EmulatorConfig::default()
    };
    let ev = emulate(seq.frames, seq.width, seq.height, cfg).unwrap();
    let of = |x: u16, y: u16| -> Vec<(i64, i8)> {
        (0..ev.len())
            .filter(|&i| (ev.x[i], ev.y[i]) == (x, y))
            .map(|i| (ev.t[i], ev.p[i]))
            .collect()
    };
    // (2, 1): grey -> white (ON, ln(1/0.502)/0.2 = 3 events within the first 50 ms), then
    // white -> dark grey (OFF, within the next 10 ms), then unchanged.
    let e = of(2, 1);
    let on: Vec<_> = e.iter().filter(|(_, p)| *p == 1).collect();
    let off: Vec<_> = e.iter().filter(|(_, p)| *p == -1).collect();
    assert_eq!(on.len(), 3, "{e:?}");
    assert!(on.iter().all(|(t, _)| (1..=50_000).contains(t)));
    assert!(!off.is_empty() && off.iter().all(|(t, _)| (50_001..=60_000).contains(t)));
    // (3, 1) was transparent in frame 1, so it only goes dark when the patch is cleared.
    assert!(of(3, 1)
        .iter()
        .all(|&(t, p)| p == -1 && (50_001..=60_000).contains(&t)));
    assert!(!of(3, 1).is_empty());
    // (7, 5) only changes in the last interval; (6, 4) never does.
    assert!(of(7, 5)
        .iter()
        .all(|&(t, p)| p == 1 && (60_001..=160_000).contains(&t)));
    assert!(!of(7, 5).is_empty());
    assert!(of(6, 4).is_empty());
}

fn write_png(path: &Path, w: u32, h: u32, data: &[u8]) {
    let file = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header().unwrap().write_image_data(data).unwrap();
}

#[test]
fn read_video_accepts_directories_gifs_and_pngs_and_explains_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let gif = sample_gif(dir.path());
    // A given fps replaces the GIF's delays.
    let seq = read_video(&gif, Some(10.0)).unwrap();
    let times: Vec<i64> = seq.frames.iter().map(|f| f.1).collect();
    assert_eq!(times, [0, 100_000, 200_000, 300_000]);
    assert_eq!(read_video(&gif, None).unwrap().frames[2].1, 60_000);

    let frames = dir.path().join("frames");
    std::fs::create_dir(&frames).unwrap();
    write_png(&frames.join("b.png"), 2, 1, &[255, 0]);
    write_png(&frames.join("a.png"), 2, 1, &[0, 255]);
    let seq = read_video(&frames, Some(4.0)).unwrap();
    assert_eq!(seq.frames.len(), 2);
    assert_eq!(seq.frames[0].0, vec![0.0, 1.0]);
    assert_eq!(seq.frames[1].1, 250_000);
    let err = read_video(&frames, None).unwrap_err().to_string();
    assert!(err.contains("fps") && err.contains("frames"), "{err}");

    let one = read_video(frames.join("b.png"), None).unwrap();
    assert_eq!((one.width, one.height, one.frames.len()), (2, 1, 1));
    assert_eq!(one.frames[0], (vec![1.0, 0.0], 0));

    let mp4 = dir.path().join("clip.mp4");
    std::fs::write(&mp4, b"not decoded").unwrap();
    let err = read_video(&mp4, Some(30.0)).unwrap_err().to_string();
    assert!(
        err.contains("clip.mp4") && err.contains("ffmpeg -i") && err.contains("%06d.png"),
        "{err}"
    );
    let txt = dir.path().join("notes.txt");
    std::fs::write(&txt, b"hello").unwrap();
    let err = read_video(&txt, None).unwrap_err().to_string();
    assert!(err.contains("notes.txt") && err.contains(".gif"), "{err}");
    assert!(read_video(&gif, Some(0.0)).is_err());
    assert!(read_video(dir.path().join("absent.gif"), None)
        .unwrap_err()
        .to_string()
        .contains("absent.gif"));

    // A cut or garbled GIF is an error naming the file.
    let bytes = std::fs::read(&gif).unwrap();
    for (name, data) in [
        ("cut.gif", bytes[..bytes.len() / 2].to_vec()),
        ("junk.gif", b"GIF89a\x08\x00".to_vec()),
        ("text.gif", b"hello".to_vec()),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, data).unwrap();
        let err = read_gif(&p).unwrap_err().to_string();
        assert!(err.contains(name), "{name}: {err}");
    }
}
