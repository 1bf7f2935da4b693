//! Tests of `nerve::viz`: the images decode to the documented size, show marks where the data
//! says, and bad input gives errors (no panics, no files).

use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use nerve::data::events::Events;
use nerve::viz::*;

/// Decodes a PNG into `(width, height, RGB bytes)`.
fn decode_png(path: &Path) -> (u32, u32, Vec<u8>) {
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let mut reader = png::Decoder::new(file).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    assert_eq!(info.color_type, png::ColorType::Rgb);
    (info.width, info.height, buf)
}

/// The pixels (x, y) where two same-sized RGB images differ.
fn changed_pixels(a: &[u8], b: &[u8], width: u32) -> Vec<(u32, u32)> {
    assert_eq!(a.len(), b.len());
    a.chunks_exact(3)
        .zip(b.chunks_exact(3))
        .enumerate()
        .filter(|(_, (p, q))| p != q)
        .map(|(i, _)| (i as u32 % width, i as u32 / width))
        .collect()
}

fn mean(v: impl Iterator<Item = u32> + Clone) -> f64 {
    let n = v.clone().count().max(1) as f64;
    v.map(f64::from).sum::<f64>() / n
}

/// Pixels (x, y) of exactly `color`.
fn pixels_of(rgb: &[u8], width: u32, color: [u8; 3]) -> Vec<(u32, u32)> {
    rgb.chunks_exact(3)
        .enumerate()
        .filter(|(_, p)| *p == color)
        .map(|(i, _)| (i as u32 % width, i as u32 / width))
        .collect()
}

#[test]
fn raster_marks_spikes_at_their_time_and_neuron() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.png");
    let early_top = dir.path().join("early_top.png");
    let late_bottom = dir.path().join("late_bottom.png");
    write_raster_png(&empty, "spikes", &[], 10, 100.0).unwrap();
    write_raster_png(&early_top, "spikes", &[(10.0, 9), (12.0, 9)], 10, 100.0).unwrap();
    write_raster_png(&late_bottom, "spikes", &[(90.0, 0), (100.0, 0)], 10, 100.0).unwrap();
    let (w, h, base) = decode_png(&empty);
    assert_eq!((w, h), raster_image_size(10));
    // Not blank: the axes and labels are drawn.
    assert!(base.chunks_exact(3).filter(|p| p[0] < 100).count() > 500);
    let (_, _, a) = decode_png(&early_top);
    let (_, _, b) = decode_png(&late_bottom);
    let da = changed_pixels(&base, &a, w);
    let db = changed_pixels(&base, &b, w);
    // Each image differs from the empty one by exactly its dark marks (the caption also
    // changes, so count only pixels of the spike colour).
    let marks_a: Vec<_> = da
        .iter()
        .filter(|&&(x, y)| a[((y * w + x) * 3) as usize..][..3] == RASTER_SPIKE_COLOR)
        .copied()
        .collect();
    let marks_b: Vec<_> = db
        .iter()
        .filter(|&&(x, y)| b[((y * w + x) * 3) as usize..][..3] == RASTER_SPIKE_COLOR)
        .copied()
        .collect();
    assert!(
        marks_a.len() >= 8 && marks_b.len() >= 8,
        "{marks_a:?} {marks_b:?}"
    );
    let (ax, ay) = (
        mean(marks_a.iter().map(|p| p.0)),
        mean(marks_a.iter().map(|p| p.1)),
    );
    let (bx, by) = (
        mean(marks_b.iter().map(|p| p.0)),
        mean(marks_b.iter().map(|p| p.1)),
    );
    // 10 ms is near the left, 90-100 ms near the right; neuron 9 on top, neuron 0 at the bottom.
    assert!(ax < f64::from(w) * 0.3, "{ax}");
    assert!(bx > f64::from(w) * 0.8, "{bx}");
    assert!(ay + 80.0 < by, "{ay} {by}");
}

#[test]
fn raster_refuses_bad_spikes_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.png");
    for (spikes, neurons, duration) in [
        (vec![(f64::NAN, 0)], 4, 10.0),
        (vec![(1.0, 4)], 4, 10.0),
        (vec![(10.5, 0)], 4, 10.0),
        (vec![(-1.0, 0)], 4, 10.0),
        (vec![(f64::INFINITY, 0)], 4, 10.0),
        (vec![], 0, 10.0),
        (vec![], 4, 0.0),
        (vec![], 4, f64::NAN),
    ] {
        let err = write_raster_png(&p, "bad", &spikes, neurons, duration);
        assert!(err.is_err(), "{spikes:?} {neurons} {duration}");
        assert!(!p.exists());
    }
    let msg = write_raster_png(&p, "bad", &[(1.0, 7)], 4, 10.0)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("neuron 7"), "{msg}");
}

#[test]
fn spike_lists_from_tensor_and_slice_agree() {
    let device = Device::flex();
    let values = vec![
        0.0f32, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0,
    ];
    let t = Tensor::<2>::from_data(TensorData::new(values.clone(), [4, 3]), &device);
    let from_tensor = spikes_from_tensor(t, 2.0).unwrap();
    assert_eq!(
        from_tensor,
        vec![(0.0, 1), (2.0, 0), (4.0, 2), (6.0, 0), (6.0, 1)]
    );
    assert_eq!(spikes_from_slice(&values, 3, 2.0).unwrap(), from_tensor);
    // The list draws with N neurons over T·step ms.
    let dir = tempfile::tempdir().unwrap();
    write_raster_png(dir.path().join("r.png"), "t", &from_tensor, 3, 8.0).unwrap();
}

fn events(x: Vec<u16>, y: Vec<u16>, t: Vec<i64>, p: Vec<i8>, sensor: (u16, u16)) -> Events {
    Events::new(x, y, t, p, sensor).unwrap()
}

#[test]
fn event_raster_draws_on_and_off_in_their_colours() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ev.png");
    // ON events early, OFF events late, on a 4x4 sensor.
    let n = 40;
    let ev = events(
        (0..n).map(|i| (i % 4) as u16).collect(),
        (0..n).map(|i| (i / 10) as u16).collect(),
        (0..n).map(|i| i as i64 * 1000).collect(),
        (0..n).map(|i| if i < 20 { 1 } else { -1 }).collect(),
        (4, 4),
    );
    write_event_raster_png(&path, "events", &ev).unwrap();
    let (w, h, rgb) = decode_png(&path);
    assert_eq!((w, h), raster_image_size(16));
    let on = pixels_of(&rgb, w, EVENT_ON_COLOR);
    let off = pixels_of(&rgb, w, EVENT_OFF_COLOR);
    // Both colours appear (more than the legend squares' 100 or so pixels each).
    assert!(
        on.len() > 150 && off.len() > 150,
        "{} {}",
        on.len(),
        off.len()
    );
    let spikes = event_spikes(&ev).unwrap();
    assert_eq!(spikes[0], (0.0, 0));
    assert_eq!(spikes[13], (13.0, 4 + 1)); // x = 13 % 4, y = 13 / 10
    let empty = events(vec![], vec![], vec![], vec![], (4, 4));
    assert!(write_event_raster_png(dir.path().join("none.png"), "e", &empty).is_err());
    assert!(!dir.path().join("none.png").exists());
}

#[test]
fn class_counts_heat_map_has_size_outline_and_cells() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("counts.png");
    let names: Vec<String> = (0..10).map(|c| format!("digit {c}")).collect();
    let counts: Vec<Vec<f64>> = (0..10)
        .map(|c| {
            (0..10)
                .map(|k| {
                    if k == c {
                        20.0 + c as f64
                    } else {
                        0.5 * k as f64
                    }
                })
                .collect()
        })
        .collect();
    write_class_counts_png(&path, "output spikes", &names, &counts).unwrap();
    let (w, h, rgb) = decode_png(&path);
    assert_eq!((w, h), class_counts_image_size(10, 10));
    // Ten outlined cells of about 72x44 pixels, 3 pixels wide.
    let outline = pixels_of(&rgb, w, TRUE_CLASS_OUTLINE);
    assert!(outline.len() > 10 * 600, "{}", outline.len());
    // The largest count is drawn in the darkest colour.
    let darkest = rgb
        .chunks_exact(3)
        .filter(|p| p[0] < 30 && p[1] < 70 && p[2] > 90)
        .count();
    assert!(darkest > 1000, "{darkest}");

    let bad = |names: &[String], counts: &[Vec<f64>]| {
        write_class_counts_png(dir.path().join("bad.png"), "bad", names, counts).is_err()
    };
    assert!(bad(&names[..9], &counts));
    assert!(bad(&[], &[]));
    let mut neg = counts.clone();
    neg[3][2] = -1.0;
    assert!(bad(&names, &neg));
    let mut inf = counts.clone();
    inf[0][0] = f64::INFINITY;
    assert!(bad(&names, &inf));
    let mut ragged = counts.clone();
    ragged[5].pop();
    assert!(bad(&names, &ragged));
    assert!(!dir.path().join("bad.png").exists());
    // A class without samples (NaN means) is drawn, not refused.
    let mut nan = counts;
    nan[4] = vec![f64::NAN; 10];
    write_class_counts_png(dir.path().join("nan.png"), "nan", &names, &nan).unwrap();
}

/// Decodes a GIF into RGBA frames, with the size, the first frame's delay and the repeat mode.
fn decode_gif(path: &Path) -> (u16, u16, Vec<Vec<u8>>, u16, ::gif::Repeat) {
    let mut opts = ::gif::DecodeOptions::new();
    opts.set_color_output(::gif::ColorOutput::RGBA);
    let mut dec = opts.read_info(std::fs::File::open(path).unwrap()).unwrap();
    let (w, h) = (dec.width(), dec.height());
    let mut frames = Vec::new();
    let mut delay = 0;
    while let Some(f) = dec.read_next_frame().unwrap() {
        assert_eq!((f.width, f.height), (w, h));
        delay = f.delay;
        frames.push(f.buffer.to_vec());
    }
    (w, h, frames, delay, dec.repeat())
}

fn rgba_at(frame: &[u8], width: u16, x: usize, y: usize) -> [u8; 3] {
    let i = (y * width as usize + x) * 4;
    [frame[i], frame[i + 1], frame[i + 2]]
}

#[test]
fn gif_frames_show_each_window_in_polarity_colours() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ev.gif");
    // 8x6 sensor, 1 ms frames from t = 100 us: ON at (2,1) in frame 0; ON and OFF at (0,0) in
    // frame 1; OFF at (5,4) in frame 2 (stored out of time order on purpose).
    let ev = events(
        vec![5, 2, 0, 0],
        vec![4, 1, 0, 0],
        vec![2600, 100, 1200, 1900],
        vec![-1, 1, 1, -1],
        (8, 6),
    );
    assert_eq!(gif_frame_count(&ev, 1000).unwrap(), 3);
    write_events_gif(&path, &ev, 1000, 3, 20.0).unwrap();
    let (w, h, frames, delay, repeat) = decode_gif(&path);
    assert_eq!((w, h), (24, 18));
    assert_eq!(frames.len(), 3);
    assert_eq!(delay, 5);
    assert_eq!(repeat, ::gif::Repeat::Infinite);
    // Every pixel of the 3x3 block of (2,1) is ON in frame 0 only.
    for dy in 0..3 {
        for dx in 0..3 {
            assert_eq!(rgba_at(&frames[0], w, 6 + dx, 3 + dy), GIF_ON);
            assert_eq!(rgba_at(&frames[1], w, 6 + dx, 3 + dy), GIF_BACKGROUND);
            assert_eq!(rgba_at(&frames[1], w, dx, dy), GIF_BOTH);
            assert_eq!(rgba_at(&frames[2], w, 15 + dx, 12 + dy), GIF_OFF);
        }
    }
    // Everything else is background.
    let lit = |f: &[u8]| {
        f.chunks_exact(4)
            .filter(|p| p[..3] != GIF_BACKGROUND)
            .count()
    };
    assert_eq!(frames.iter().map(|f| lit(f)).collect::<Vec<_>>(), [9, 9, 9]);
}

#[test]
fn gif_refuses_bad_parameters_and_huge_animations() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.gif");
    let ev = events(
        vec![0, 1],
        vec![0, 1],
        vec![0, 1_000_000_000],
        vec![1, -1],
        (34, 34),
    );
    for (frame_us, scale, fps) in [
        (0, 1, 10.0),
        (-5, 1, 10.0),
        (1_000_000, 0, 10.0),
        (1_000_000, 1, 0.0),
        (1_000_000, 1, f64::NAN),
        (1_000_000, 1, 1000.0),
        (1_000_000, 2000, 10.0),
    ] {
        assert!(
            write_events_gif(&path, &ev, frame_us, scale, fps).is_err(),
            "{frame_us} {scale} {fps}"
        );
    }
    // A billion 1 us frames: refused up front, with the numbers in the message.
    let msg = write_events_gif(&path, &ev, 1, 1, 10.0)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("1000000001 frames of 34x34"), "{msg}");
    let empty = events(vec![], vec![], vec![], vec![], (34, 34));
    assert!(write_events_gif(&path, &empty, 1000, 1, 10.0).is_err());
    assert!(!path.exists());
}
