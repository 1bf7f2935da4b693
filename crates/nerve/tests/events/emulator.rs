//! Tests of the v2e-style event-camera emulator and its PNG frame readers.

use std::path::Path;

use nerve::data::events::emulator::{emulate, Emulator, EmulatorConfig};
use nerve::data::frames::{read_png_files, read_png_frame, read_png_sequence};
use nerve::error::Error;

/// No mismatch, leak or noise: the emulator is fully deterministic.
fn ideal() -> EmulatorConfig {
    EmulatorConfig {
        threshold_sigma: 0.0,
        leak_rate_hz: 0.0,
        shot_noise_rate_hz: 0.0,
        ..EmulatorConfig::default()
    }
}

#[test]
fn step_up_gives_six_interpolated_on_events() {
    let mut emu = Emulator::new(1, 1, ideal()).unwrap();
    assert!(emu.push_frame(&[0.1], 1000).unwrap().is_empty());
    let ev = emu.push_frame(&[0.4], 2000).unwrap();
    // Δ = ln(0.401/0.101) = 1.37884 → floor(Δ/0.2) = 6 events; the k-th at
    // 1000 + round(1000·0.2k/Δ) µs.
    assert_eq!(ev.t, vec![1145, 1290, 1435, 1580, 1725, 1870]);
    assert!(ev.p.iter().all(|&p| p == 1));
    assert!(ev.x.iter().chain(&ev.y).all(|&c| c == 0));
    // Nothing left over: the next identical frame adds no events.
    assert!(emu.push_frame(&[0.4], 3000).unwrap().is_empty());
}

#[test]
fn step_down_gives_off_events() {
    let mut emu = Emulator::new(1, 1, ideal()).unwrap();
    emu.push_frame(&[0.4], 0).unwrap();
    let ev = emu.push_frame(&[0.1], 1000).unwrap();
    assert_eq!(ev.t, vec![145, 290, 435, 580, 725, 870]);
    assert!(ev.p.iter().all(|&p| p == -1));
}

#[test]
fn constant_frames_without_leak_or_noise_are_silent() {
    let frames = (0..50).map(|i| (vec![0.3f32; 12], i * 10_000));
    let ev = emulate(frames, 4, 3, ideal()).unwrap();
    assert!(ev.is_empty());
    assert_eq!(ev.sensor, (4, 3));
}

#[test]
fn leak_gives_on_events_at_configured_rate() {
    let cfg = EmulatorConfig {
        leak_rate_hz: 1.0,
        ..ideal()
    };
    // 20 s of constant light at 10 fps on 4 pixels.
    let frames = (0..=200).map(|i| (vec![0.5f32; 4], i * 100_000));
    let ev = emulate(frames, 2, 2, cfg).unwrap();
    let (on, off) = ev.polarity_counts();
    assert_eq!(off, 0);
    let rate = on as f64 / (4.0 * 20.0);
    assert!(
        (0.9..=1.0).contains(&rate),
        "leak rate {rate} Hz, {on} events"
    );
}

#[test]
fn refractory_period_drops_close_events() {
    let cfg = EmulatorConfig {
        refractory_us: 300,
        ..ideal()
    };
    let mut emu = Emulator::new(1, 1, cfg).unwrap();
    emu.push_frame(&[0.1], 1000).unwrap();
    let ev = emu.push_frame(&[0.4], 2000).unwrap();
    // Candidates at 1145, 1290, ...; each one within 300 µs of the last kept event is dropped.
    // Candidates 1145, 1290, 1435, 1580, 1725, 1870: 1290 and 1435 fall within 300 µs of
    // 1145, 1725 and 1870 within 300 µs of 1580.
    assert_eq!(ev.t, vec![1145, 1580]);
    // The missed change stays in the pixel and fires after the refractory period.
    let later = emu.push_frame(&[0.4], 3000).unwrap();
    assert!(!later.is_empty() && later.p.iter().all(|&p| p == 1));
    let all: Vec<i64> = ev.t.iter().chain(&later.t).copied().collect();
    assert!(all.windows(2).all(|w| w[1] - w[0] >= 300), "{all:?}");
}

#[test]
fn threshold_mismatch_is_reproducible_with_a_seed() {
    let cfg = |seed| EmulatorConfig {
        seed,
        leak_rate_hz: 0.0,
        ..EmulatorConfig::default()
    };
    let a = Emulator::new(16, 16, cfg(7)).unwrap();
    let b = Emulator::new(16, 16, cfg(7)).unwrap();
    let c = Emulator::new(16, 16, cfg(8)).unwrap();
    assert_eq!(a.thresholds(), b.thresholds());
    assert_ne!(a.thresholds(), c.thresholds());
    let (pos, neg) = a.thresholds();
    assert!(pos.iter().chain(neg).all(|&t| t >= 0.01));
    let mean = pos.iter().sum::<f64>() / pos.len() as f64;
    let sd = (pos.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / pos.len() as f64).sqrt();
    assert!((mean - 0.2).abs() < 0.01, "mean threshold {mean}");
    assert!((0.02..0.04).contains(&sd), "threshold sd {sd}");

    let frames = || {
        (0..5).map(|i| {
            let f: Vec<f32> = (0..256)
                .map(|p| 0.1 + 0.8 * ((p * 7 + i * 13) % 17) as f32 / 16.0)
                .collect();
            (f, i as i64 * 1000)
        })
    };
    let ea = emulate(frames(), 16, 16, cfg(7)).unwrap();
    let eb = emulate(frames(), 16, 16, cfg(7)).unwrap();
    assert!(!ea.is_empty());
    assert_eq!(ea, eb);
}

#[test]
fn shot_noise_rate_is_about_right() {
    let cfg = EmulatorConfig {
        shot_noise_rate_hz: 5.0,
        seed: 3,
        ..ideal()
    };
    // 1024 pixels for 1 s at 5 Hz: Poisson mean 5120, sd ≈ 72; allow 5 sd.
    let frames = (0..=10).map(|i| (vec![0.5f32; 32 * 32], i * 100_000));
    let ev = emulate(frames, 32, 32, cfg).unwrap();
    let n = ev.len() as f64;
    assert!((n - 5120.0).abs() < 360.0, "{n} noise events");
    let (on, _) = ev.polarity_counts();
    assert!((on as f64 / n - 0.5).abs() < 0.05);
    assert!(ev.t.windows(2).all(|w| w[0] <= w[1]), "events not sorted");
    let (t0, t1) = ev.time_span().unwrap();
    assert!(t0 > 0 && t1 <= 1_000_000);
}

#[test]
fn bad_frames_and_configs_are_refused() {
    let mut emu = Emulator::new(3, 2, ideal()).unwrap();
    assert!(matches!(
        emu.push_frame(&[0.0; 5], 0),
        Err(Error::Shape { .. })
    ));
    emu.push_frame(&[0.0; 6], 100).unwrap();
    for t in [100, 50] {
        let err = emu.push_frame(&[0.0; 6], t).unwrap_err();
        assert!(err.to_string().contains("frame time"), "{err}");
    }
    assert!(emu.push_frame(&[f32::NAN; 6], 200).is_err());

    let bad = EmulatorConfig {
        pos_threshold: -0.1,
        ..EmulatorConfig::default()
    };
    let err = bad.validate().unwrap_err().to_string();
    assert!(err.contains("pos_threshold"), "{err}");
    let bad = EmulatorConfig {
        leak_rate_hz: f64::NAN,
        ..EmulatorConfig::default()
    };
    assert!(Emulator::new(2, 2, bad)
        .unwrap_err()
        .to_string()
        .contains("leak_rate_hz"));
    assert!(Emulator::new(0, 2, EmulatorConfig::default()).is_err());
}

#[test]
fn moving_square_has_on_leading_and_off_trailing_edges() {
    let (w, h) = (32usize, 16usize);
    let frame = |k: usize| {
        let mut f = vec![0.1f32; w * h];
        for y in 5..11 {
            for x in 2 * k..2 * k + 6 {
                f[y * w + x] = 0.8;
            }
        }
        f
    };
    let dt = 10_000i64;
    let mut emu = Emulator::new(w as u16, h as u16, ideal()).unwrap();
    emu.push_frame(&frame(0), 0).unwrap();
    for k in 1..10 {
        let ev = emu.push_frame(&frame(k), k as i64 * dt).unwrap();
        let (on, off) = ev.polarity_counts();
        assert!(on > 0 && off > 0, "frame {k}: {on} ON, {off} OFF");
        for i in 0..ev.len() {
            let x = ev.x[i] as usize;
            assert!((5..11).contains(&ev.y[i]));
            assert!(ev.t[i] > (k as i64 - 1) * dt && ev.t[i] <= k as i64 * dt);
            if ev.p[i] > 0 {
                assert!(x == 2 * k + 4 || x == 2 * k + 5, "ON at x={x}, frame {k}");
            } else {
                assert!(x == 2 * k - 2 || x == 2 * k - 1, "OFF at x={x}, frame {k}");
            }
        }
    }
}

fn write_png(path: &Path, w: u32, h: u32, color: png::ColorType, depth: png::BitDepth, d: &[u8]) {
    let file = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    enc.set_color(color);
    enc.set_depth(depth);
    let mut writer = enc.write_header().unwrap();
    writer.write_image_data(d).unwrap();
}

#[test]
fn png_frames_are_read_as_luminance() {
    let dir = tempfile::tempdir().unwrap();
    let rgb = dir.path().join("rgb.png");
    #[rustfmt::skip]
    let data = [255, 0, 0,  0, 255, 0,  0, 0, 255,
                255, 255, 255,  0, 0, 0,  128, 128, 128];
    write_png(&rgb, 3, 2, png::ColorType::Rgb, png::BitDepth::Eight, &data);
    let (w, h, lum) = read_png_frame(&rgb).unwrap();
    assert_eq!((w, h), (3, 2));
    let want = [0.299, 0.587, 0.114, 1.0, 0.0, 128.0 / 255.0];
    for (got, want) in lum.iter().zip(want) {
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    }

    let gray16 = dir.path().join("gray16.png");
    let data: Vec<u8> = [0u16, 65535, 32768]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    write_png(
        &gray16,
        3,
        1,
        png::ColorType::Grayscale,
        png::BitDepth::Sixteen,
        &data,
    );
    let (_, _, lum) = read_png_frame(&gray16).unwrap();
    assert_eq!(lum[0], 0.0);
    assert_eq!(lum[1], 1.0);
    assert!((lum[2] - 0.5).abs() < 1e-4);

    let rgba = dir.path().join("rgba.png");
    write_png(
        &rgba,
        1,
        1,
        png::ColorType::Rgba,
        png::BitDepth::Eight,
        &[0, 255, 0, 7],
    );
    let (_, _, lum) = read_png_frame(&rgba).unwrap();
    assert!((lum[0] - 0.587).abs() < 1e-5);
}

#[test]
fn corrupt_png_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken_frame.png");
    std::fs::write(&bad, b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let err = read_png_frame(&bad).unwrap_err().to_string();
    assert!(err.contains("broken_frame.png"), "{err}");
    let missing = dir.path().join("missing.png");
    let err = read_png_frame(&missing).unwrap_err().to_string();
    assert!(err.contains("missing.png"), "{err}");
}

#[test]
fn png_sequence_is_sorted_by_name_and_timed_by_fps() {
    let dir = tempfile::tempdir().unwrap();
    let gray = png::ColorType::Grayscale;
    let eight = png::BitDepth::Eight;
    write_png(&dir.path().join("f002.png"), 2, 1, gray, eight, &[255, 255]);
    write_png(&dir.path().join("f001.png"), 2, 1, gray, eight, &[0, 0]);
    std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
    let seq = read_png_sequence(dir.path(), 10.0).unwrap();
    assert_eq!((seq.width, seq.height), (2, 1));
    assert_eq!(seq.frames.len(), 2);
    assert_eq!(seq.frames[0], (vec![0.0, 0.0], 0));
    assert_eq!(seq.frames[1], (vec![1.0, 1.0], 100_000));
    // Dark → bright gives ON events in both pixels.
    let ev = emulate(seq.frames, seq.width, seq.height, EmulatorConfig::default()).unwrap();
    assert!(ev.len() >= 2 && ev.p.iter().all(|&p| p == 1));

    let other = dir.path().join("f003.png");
    write_png(&other, 1, 1, gray, eight, &[9]);
    let list = [dir.path().join("f001.png"), other];
    assert!(matches!(
        read_png_files(&list, 10.0),
        Err(Error::Shape { .. })
    ));
    assert!(read_png_files(&list, 0.0).is_err());
}
