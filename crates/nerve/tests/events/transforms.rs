//! Event-stream transforms on small hand-made streams with hand-computed results.

use nerve::data::events::transforms::{
    Compose, CropTime, Denoise, Downsample, DropEvent, RefractoryPeriod, SpatialJitter, TimeJitter,
    ToFrame, ToTimeSurface, ToVoxelGrid, Transform,
};
use nerve::data::events::Events;
use nerve::error::Error;
use rand::rngs::StdRng;
use rand::SeedableRng;

fn ev(list: &[(u16, u16, i64, i8)], sensor: (u16, u16)) -> Events {
    Events::new(
        list.iter().map(|e| e.0).collect(),
        list.iter().map(|e| e.1).collect(),
        list.iter().map(|e| e.2).collect(),
        list.iter().map(|e| e.3).collect(),
        sensor,
    )
    .unwrap()
}

fn empty(sensor: (u16, u16)) -> Events {
    ev(&[], sensor)
}

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Sum of each frame's values, to check per-bin counts.
fn frame_sums(f: &nerve::data::events::transforms::Frames) -> Vec<f32> {
    let per = f.shape[1] * f.shape[2] * f.shape[3];
    f.data.chunks(per).map(|c| c.iter().sum()).collect()
}

fn assert_invalid<T: std::fmt::Debug>(r: Result<T, Error>, name: &str) {
    match r {
        Err(Error::Invalid { what, .. }) => assert_eq!(what, name),
        other => panic!("expected invalid {name}, got {other:?}"),
    }
}

fn many(n: usize, sensor: (u16, u16)) -> Events {
    let list: Vec<_> = (0..n)
        .map(|i| {
            (
                (i % sensor.0 as usize) as u16,
                (i / 7 % sensor.1 as usize) as u16,
                (i * 10) as i64,
                if i % 3 == 0 { -1 } else { 1 },
            )
        })
        .collect();
    ev(&list, sensor)
}

#[test]
fn to_frame_time_window_counts_and_layout() {
    let e = ev(
        &[(0, 0, 0, 1), (1, 0, 5, -1), (1, 1, 10, 1), (0, 1, 25, -1)],
        (2, 2),
    );
    let f = ToFrame::time_window(10).apply(&e).unwrap();
    // Span 25 µs with 10 µs windows: frames [0,10), [10,20), [20,30).
    assert_eq!(f.shape, [3, 2, 2, 2]);
    assert_eq!(frame_sums(&f), vec![2.0, 1.0, 1.0]);
    // Layout [frame, polarity (0 = OFF), y, x].
    let at = |fr: usize, c: usize, y: usize, x: usize| f.data[((fr * 2 + c) * 2 + y) * 2 + x];
    assert_eq!(at(0, 1, 0, 0), 1.0);
    assert_eq!(at(0, 0, 0, 1), 1.0);
    assert_eq!(at(1, 1, 1, 1), 1.0);
    assert_eq!(at(2, 0, 1, 0), 1.0);
}

#[test]
fn to_frame_event_count_and_time_bins() {
    let e = ev(
        &[
            (0, 0, 0, 1),
            (0, 0, 10, 1),
            (0, 0, 20, 1),
            (0, 0, 50, 1),
            (0, 0, 51, 1),
        ],
        (1, 1),
    );
    let f = ToFrame::event_count(2).apply(&e).unwrap();
    assert_eq!(f.shape, [3, 2, 1, 1]);
    assert_eq!(frame_sums(&f), vec![2.0, 2.0, 1.0]);
    // Span [0, 51] is 52 µs; bin = ⌊t·2/52⌋: 0,0,0,1,1.
    let f = ToFrame::time_bins(2).apply(&e).unwrap();
    assert_eq!(f.shape, [2, 2, 1, 1]);
    assert_eq!(frame_sums(&f), vec![3.0, 2.0]);
    // All in the ON channel.
    assert_eq!(f.data, vec![0.0, 3.0, 0.0, 2.0]);
}

#[test]
fn to_frame_empty_and_invalid() {
    let e = empty((3, 2));
    assert_eq!(
        ToFrame::time_window(5).apply(&e).unwrap().shape,
        [0, 2, 2, 3]
    );
    assert_eq!(
        ToFrame::event_count(5).apply(&e).unwrap().shape,
        [0, 2, 2, 3]
    );
    let f = ToFrame::time_bins(4).apply(&e).unwrap();
    assert_eq!(f.shape, [4, 2, 2, 3]);
    assert!(f.data.iter().all(|&v| v == 0.0));
    assert_invalid(ToFrame::time_window(0).apply(&e), "time_window_us");
    assert_invalid(ToFrame::event_count(0).apply(&e), "event_count");
    assert_invalid(ToFrame::time_bins(0).apply(&e), "n_time_bins");
    assert_invalid(ToFrame::default().apply(&e), "ToFrame");
    let both = ToFrame {
        event_count: Some(3),
        ..ToFrame::time_window(5)
    };
    assert_invalid(both.apply(&e), "ToFrame");
    // A 1 µs window over a huge span is refused rather than allocated.
    let long = ev(&[(0, 0, 0, 1), (0, 0, 1 << 40, 1)], (1, 1));
    assert_invalid(ToFrame::time_window(1).apply(&long), "ToFrame");
}

#[test]
fn voxel_grid_bilinear_weights() {
    // 3 bins over [0, 10]: position = 2·t/10.
    let e = ev(&[(0, 0, 0, 1), (1, 0, 3, -1), (0, 0, 10, 1)], (2, 1));
    let g = ToVoxelGrid { n_time_bins: 3 }.apply(&e).unwrap();
    assert_eq!(g.shape, [3, 1, 2]);
    let want = [
        1.0, -0.4, // bin 0: first event whole, t=3 (pos 0.6) gives 1-0.6 of -1
        0.0, -0.6, // bin 1
        1.0, 0.0, // bin 2: last event at pos 2
    ];
    for (a, b) in g.data.iter().zip(want) {
        assert!((a - b).abs() < 1e-6, "{:?}", g.data);
    }
    // One bin, or a single timestamp: everything lands in bin 0 with full weight.
    let g = ToVoxelGrid { n_time_bins: 1 }.apply(&e).unwrap();
    assert_eq!(g.data, vec![2.0, -1.0]);
    let g = ToVoxelGrid { n_time_bins: 2 }
        .apply(&empty((2, 2)))
        .unwrap();
    assert_eq!(g.shape, [2, 2, 2]);
    assert!(g.data.iter().all(|&v| v == 0.0));
    assert_invalid(ToVoxelGrid { n_time_bins: 0 }.apply(&e), "n_time_bins");
}

#[test]
fn time_surface_decays_from_last_event() {
    let e = ev(&[(0, 0, 0, 1), (1, 0, 10, -1), (0, 0, 5, -1)], (2, 1));
    let s = ToTimeSurface { tau_us: 10.0 }.apply(&e).unwrap();
    assert_eq!(s.shape, [2, 1, 2]);
    // Channel 0 (OFF): (0,0) last at 5, (1,0) at 10; channel 1 (ON): (0,0) at 0. t_end = 10.
    let want = [(-0.5f32).exp(), 1.0, (-1.0f32).exp(), 0.0];
    for (a, b) in s.data.iter().zip(want) {
        assert!((a - b).abs() < 1e-6, "{:?}", s.data);
    }
    let s = ToTimeSurface { tau_us: 1.0 }.apply(&empty((2, 2))).unwrap();
    assert_eq!(s.data, vec![0.0; 8]);
    assert_invalid(ToTimeSurface { tau_us: -1.0 }.apply(&e), "tau_us");
    assert_invalid(ToTimeSurface { tau_us: 0.0 }.apply(&e), "tau_us");
}

#[test]
fn denoise_keeps_supported_and_drops_isolated() {
    let e = ev(
        &[
            (0, 0, 0, 1),    // no earlier neighbour: dropped
            (1, 1, 5, 1),    // diagonal neighbour 5 µs before: kept
            (5, 5, 6, 1),    // isolated: dropped
            (5, 5, 7, -1),   // same pixel is not a neighbour: dropped
            (0, 0, 100, 1),  // neighbour (1,1) fired 95 µs ago: dropped
            (0, 1, 104, -1), // (0,0) fired 4 µs ago: kept
        ],
        (8, 8),
    );
    let out = Denoise { filter_time_us: 10 }
        .apply(e.clone(), &mut rng(0))
        .unwrap();
    assert_eq!(out.t, vec![5, 104]);
    assert_eq!(out.x, vec![1, 0]);
    assert_eq!(out.p, vec![1, -1]);
    assert_eq!(out.sensor, (8, 8));
    let out = Denoise { filter_time_us: 1 }
        .apply(empty((2, 2)), &mut rng(0))
        .unwrap();
    assert!(out.is_empty());
    assert_invalid(
        Denoise { filter_time_us: 0 }.apply(e, &mut rng(0)),
        "filter_time_us",
    );
}

#[test]
fn refractory_period_drops_fast_repeats() {
    let e = ev(
        &[
            (0, 0, 0, 1),
            (0, 0, 5, -1),
            (1, 0, 6, 1),
            (0, 0, 10, 1),
            (0, 0, 12, 1),
            (0, 0, 25, 1),
        ],
        (2, 1),
    );
    let out = RefractoryPeriod { delta_us: 10 }
        .apply(e.clone(), &mut rng(0))
        .unwrap();
    assert_eq!(out.t, vec![0, 6, 10, 25]);
    assert_eq!(out.x, vec![0, 1, 0, 0]);
    let out = RefractoryPeriod { delta_us: 0 }
        .apply(e.clone(), &mut rng(0))
        .unwrap();
    assert_eq!(out, e);
    assert_invalid(
        RefractoryPeriod { delta_us: -1 }.apply(e, &mut rng(0)),
        "delta_us",
    );
}

#[test]
fn downsample_scales_coordinates_time_and_sensor() {
    let e = ev(&[(4, 2, 10, 1), (3, 1, 21, -1), (1, 0, -3, 1)], (5, 3));
    let out = Downsample {
        spatial_factor: 0.5,
        time_factor: 0.5,
    }
    .apply(e.clone(), &mut rng(0))
    .unwrap();
    assert_eq!(out.sensor, (3, 2));
    assert_eq!(out.x, vec![2, 1, 0]);
    assert_eq!(out.y, vec![1, 0, 0]);
    assert_eq!(out.t, vec![5, 10, -2]);
    assert_eq!(out.p, e.p);
    for (s, t) in [(0.0, 1.0), (1.5, 1.0), (f64::NAN, 1.0)] {
        let d = Downsample {
            spatial_factor: s,
            time_factor: t,
        };
        assert_invalid(d.apply(e.clone(), &mut rng(0)), "spatial_factor");
    }
    let d = Downsample {
        spatial_factor: 1.0,
        time_factor: 0.0,
    };
    assert_invalid(d.apply(e, &mut rng(0)), "time_factor");
}

#[test]
fn crop_time_is_inclusive() {
    let e = ev(
        &[
            (0, 0, 0, 1),
            (0, 0, 5, 1),
            (0, 0, 7, -1),
            (0, 0, 10, 1),
            (0, 0, 11, 1),
        ],
        (1, 1),
    );
    let out = CropTime {
        min_us: 5,
        max_us: 10,
    }
    .apply(e.clone(), &mut rng(0))
    .unwrap();
    assert_eq!(out.t, vec![5, 7, 10]);
    assert_eq!(out.p, vec![1, -1, 1]);
    assert_invalid(
        CropTime {
            min_us: 10,
            max_us: 5,
        }
        .apply(e, &mut rng(0)),
        "max_us",
    );
}

#[test]
fn drop_event_is_seeded() {
    let e = many(1000, (16, 16));
    let d = DropEvent { p: 0.5 };
    let a = d.apply(e.clone(), &mut rng(1)).unwrap();
    let b = d.apply(e.clone(), &mut rng(1)).unwrap();
    let c = d.apply(e.clone(), &mut rng(2)).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert!((400..600).contains(&a.len()), "{}", a.len());
    assert_eq!(
        DropEvent { p: 0.0 }.apply(e.clone(), &mut rng(1)).unwrap(),
        e
    );
    assert!(DropEvent { p: 1.0 }
        .apply(e.clone(), &mut rng(1))
        .unwrap()
        .is_empty());
    assert_invalid(DropEvent { p: 1.5 }.apply(e.clone(), &mut rng(1)), "p");
    assert_invalid(DropEvent { p: -0.1 }.apply(e, &mut rng(1)), "p");
}

#[test]
fn time_jitter_is_seeded_sorts_and_clips() {
    let e = many(200, (8, 8));
    let j = TimeJitter {
        std_us: 50.0,
        clip_negative: false,
        sort: false,
    };
    let a = j.apply(e.clone(), &mut rng(1)).unwrap();
    assert_eq!(a, j.apply(e.clone(), &mut rng(1)).unwrap());
    assert_ne!(a, j.apply(e.clone(), &mut rng(2)).unwrap());
    assert_ne!(a.t, e.t);
    assert_eq!(a.x, e.x);
    // std 50 µs over events 10 µs apart must reorder some; sorting fixes that.
    assert!(a.t.windows(2).any(|w| w[0] > w[1]));
    let sorted = TimeJitter { sort: true, ..j }
        .apply(e.clone(), &mut rng(1))
        .unwrap();
    assert!(sorted.t.windows(2).all(|w| w[0] <= w[1]));
    let mut ts = a.t.clone();
    ts.sort();
    assert_eq!(sorted.t, ts);
    let clipped = TimeJitter {
        clip_negative: true,
        ..j
    }
    .apply(e.clone(), &mut rng(1))
    .unwrap();
    assert!(clipped.t.iter().all(|&t| t >= 0));
    assert!(
        a.t.iter().any(|&t| t < 0),
        "jitter at t≈0 should go negative"
    );
    assert!(clipped.len() < e.len());
    let zero = TimeJitter {
        std_us: 0.0,
        clip_negative: false,
        sort: false,
    };
    assert_eq!(zero.apply(e.clone(), &mut rng(1)).unwrap(), e);
    assert_invalid(
        TimeJitter { std_us: -1.0, ..j }.apply(e, &mut rng(1)),
        "std_us",
    );
}

#[test]
fn spatial_jitter_is_seeded_and_clips_or_clamps() {
    let e = many(300, (4, 4));
    let j = SpatialJitter {
        sigma_x: 2.0,
        sigma_y: 2.0,
        clip_outliers: false,
    };
    let a = j.apply(e.clone(), &mut rng(1)).unwrap();
    assert_eq!(a, j.apply(e.clone(), &mut rng(1)).unwrap());
    assert_ne!(a, j.apply(e.clone(), &mut rng(2)).unwrap());
    assert_eq!(a.len(), e.len());
    assert!(a.x.iter().all(|&x| x < 4) && a.y.iter().all(|&y| y < 4));
    // Events::new re-validates the result.
    Events::new(a.x, a.y, a.t, a.p, a.sensor).unwrap();
    let c = SpatialJitter {
        clip_outliers: true,
        ..j
    }
    .apply(e.clone(), &mut rng(1))
    .unwrap();
    // Sigma 2 on a 4x4 sensor pushes many events off it.
    assert!(c.len() < e.len() && !c.is_empty(), "{}", c.len());
    let zero = SpatialJitter {
        sigma_x: 0.0,
        sigma_y: 0.0,
        clip_outliers: true,
    };
    assert_eq!(zero.apply(e.clone(), &mut rng(1)).unwrap(), e);
    assert_invalid(
        SpatialJitter { sigma_y: -1.0, ..j }.apply(e, &mut rng(1)),
        "sigma_y",
    );
}

#[test]
fn compose_applies_in_order_and_is_reproducible() {
    let e = ev(&[(0, 0, 10, 1), (1, 0, 20, 1)], (2, 1));
    let crop = || CropTime {
        min_us: 0,
        max_us: 10,
    };
    let down = || Downsample {
        spatial_factor: 1.0,
        time_factor: 0.5,
    };
    let crop_first = Compose(vec![Box::new(crop()), Box::new(down())]);
    let down_first = Compose(vec![Box::new(down()), Box::new(crop())]);
    assert_eq!(crop_first.apply(e.clone(), &mut rng(0)).unwrap().t, vec![5]);
    assert_eq!(down_first.apply(e, &mut rng(0)).unwrap().t, vec![5, 10]);

    let random = Compose(vec![
        Box::new(DropEvent { p: 0.3 }),
        Box::new(TimeJitter {
            std_us: 20.0,
            clip_negative: true,
            sort: true,
        }),
    ]);
    let big = many(500, (8, 8));
    let a = random.apply(big.clone(), &mut rng(7)).unwrap();
    assert_eq!(a, random.apply(big.clone(), &mut rng(7)).unwrap());
    assert_ne!(a, random.apply(big.clone(), &mut rng(8)).unwrap());
    // An error inside the chain surfaces.
    let bad = Compose(vec![Box::new(DropEvent { p: 2.0 })]);
    assert_invalid(bad.apply(big, &mut rng(0)), "p");
}

#[test]
fn event_transforms_handle_empty_streams() {
    let ts: Vec<Box<dyn Transform>> = vec![
        Box::new(Denoise { filter_time_us: 5 }),
        Box::new(Downsample {
            spatial_factor: 0.5,
            time_factor: 1.0,
        }),
        Box::new(CropTime {
            min_us: 0,
            max_us: 1,
        }),
        Box::new(RefractoryPeriod { delta_us: 5 }),
        Box::new(DropEvent { p: 0.5 }),
        Box::new(TimeJitter {
            std_us: 1.0,
            clip_negative: true,
            sort: true,
        }),
        Box::new(SpatialJitter {
            sigma_x: 1.0,
            sigma_y: 1.0,
            clip_outliers: true,
        }),
    ];
    for t in &ts {
        assert!(t.apply(empty((4, 4)), &mut rng(0)).unwrap().is_empty());
    }
}

#[test]
fn transforms_refuse_out_of_sensor_events() {
    // Fields are public, so a malformed stream can bypass Events::new; no panic allowed.
    let bad = Events {
        x: vec![5],
        y: vec![0],
        t: vec![0],
        p: vec![1],
        sensor: (2, 2),
    };
    assert_invalid(ToFrame::event_count(1).apply(&bad), "events");
    assert_invalid(ToVoxelGrid { n_time_bins: 2 }.apply(&bad), "events");
    assert_invalid(
        Denoise { filter_time_us: 5 }.apply(bad, &mut rng(0)),
        "events",
    );
}

#[test]
#[ignore = "throughput benchmark; run in release with --ignored --nocapture"]
fn to_frame_throughput() {
    let n = 10_000_000usize;
    let (w, h) = (346u16, 260u16);
    // A cheap deterministic pseudo-random scatter; timestamps increase over 1 s.
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut x = Vec::with_capacity(n);
    let mut y = Vec::with_capacity(n);
    let mut p = Vec::with_capacity(n);
    for _ in 0..n {
        let r = next();
        x.push((r % w as u64) as u16);
        y.push((r >> 16) as u16 % h);
        p.push(if r >> 40 & 1 == 1 { 1 } else { -1 });
    }
    let t: Vec<i64> = (0..n as i64).map(|i| i / 10).collect();
    let e = Events::new(x, y, t, p, (w, h)).unwrap();
    for (name, tf) in [
        ("time_window 50 ms", ToFrame::time_window(50_000)),
        ("event_count 500k", ToFrame::event_count(500_000)),
        ("n_time_bins 20", ToFrame::time_bins(20)),
    ] {
        let start = std::time::Instant::now();
        let f = tf.apply(&e).unwrap();
        let secs = start.elapsed().as_secs_f64();
        let total: f64 = f.data.iter().map(|&v| v as f64).sum();
        assert_eq!(total as usize, n);
        println!(
            "ToFrame {name}: {n} events in {secs:.3} s = {:.1} M events/s (shape {:?})",
            n as f64 / secs / 1e6,
            f.shape
        );
    }
}
