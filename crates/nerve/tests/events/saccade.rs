//! Emulated N-MNIST: saccade rendering through the event-camera emulator and the N-MNIST
//! directory layout.

use nerve::data::events::emulator::EmulatorConfig;
use nerve::data::events::read_nmnist;
use nerve::data::events::saccade::{
    saccade_events, sample_seed, write_emulated_nmnist, SaccadeConfig,
};

/// A ring-shaped "zero": bright stroke between radii 6 and 10 around the digit center.
fn ring() -> Vec<u8> {
    let mut img = vec![0u8; 28 * 28];
    for y in 0..28 {
        for x in 0..28 {
            let r = ((x as f64 - 13.5).powi(2) + (y as f64 - 13.5).powi(2)).sqrt();
            if (6.0..10.0).contains(&r) {
                img[y * 28 + x] = 230;
            }
        }
    }
    img
}

/// Fast settings: 10 frames per saccade, no leak or noise so only motion makes events.
fn quiet() -> SaccadeConfig {
    SaccadeConfig {
        steps_per_saccade: 10,
        emulator: EmulatorConfig {
            leak_rate_hz: 0.0,
            shot_noise_rate_hz: 0.0,
            ..EmulatorConfig::default()
        },
        ..SaccadeConfig::default()
    }
}

#[test]
fn blank_image_gives_no_events_without_leak() {
    let ev = saccade_events(&[0u8; 784], &quiet(), 1).unwrap();
    assert_eq!(ev.len(), 0);
    assert_eq!(ev.sensor, (34, 34));
}

#[test]
fn digit_gives_both_polarities_inside_sensor_and_saccade_window() {
    let cfg = quiet();
    let ev = saccade_events(&ring(), &cfg, 7).unwrap();
    let (on, off) = ev.polarity_counts();
    assert!(on > 100 && off > 100, "on {on}, off {off}");
    assert_eq!(ev.sensor, (34, 34));
    assert!(ev.x.iter().all(|&x| x < 34) && ev.y.iter().all(|&y| y < 34));
    let end = 3 * cfg.saccade_us;
    assert!(ev.t.iter().all(|&t| t > 0 && t <= end));
    // Frame batches follow one another in time and each is sorted, so the whole is sorted.
    assert!(ev.t.windows(2).all(|w| w[0] <= w[1]));
    // Every saccade moves the digit, so each of the three windows has events.
    for s in 0..3 {
        let (a, b) = (s * cfg.saccade_us, (s + 1) * cfg.saccade_us);
        assert!(ev.t.iter().any(|&t| t > a && t <= b), "saccade {s} silent");
    }
}

#[test]
fn same_seed_reproduces_and_other_seed_differs() {
    let cfg = quiet();
    let a = saccade_events(&ring(), &cfg, 3).unwrap();
    let b = saccade_events(&ring(), &cfg, 3).unwrap();
    let c = saccade_events(&ring(), &cfg, 4).unwrap();
    assert_eq!(a, b);
    // Different threshold mismatch gives different events.
    assert_ne!(a, c);
}

#[test]
fn bad_inputs_are_refused() {
    let cfg = quiet();
    assert!(saccade_events(&[0u8; 783], &cfg, 0).is_err());
    let zero_steps = SaccadeConfig {
        steps_per_saccade: 0,
        ..quiet()
    };
    assert!(saccade_events(&ring(), &zero_steps, 0).is_err());
    let too_long = SaccadeConfig {
        saccade_us: 3_000_000,
        ..quiet()
    };
    let err = saccade_events(&ring(), &too_long, 0).unwrap_err();
    assert!(err.to_string().contains("saccade_us"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let imgs = ring();
    assert!(
        write_emulated_nmnist(&imgs, &[1, 2], dir.path(), "Train", &cfg, 0, |_, _| {}).is_err()
    );
    assert!(write_emulated_nmnist(&imgs, &[1], dir.path(), "../x", &cfg, 0, |_, _| {}).is_err());
}

#[test]
fn written_files_follow_nmnist_layout_and_read_back_equal() {
    let cfg = quiet();
    let mut blank = vec![0u8; 784];
    blank[100] = 10;
    let images: Vec<u8> = [ring(), blank, ring()].concat();
    let labels = [0u8, 7, 3];
    let dir = tempfile::tempdir().unwrap();
    let mut calls = vec![];
    let total = write_emulated_nmnist(&images, &labels, dir.path(), "Test", &cfg, 42, |d, n| {
        calls.push((d, n))
    })
    .unwrap();
    assert_eq!(calls.last(), Some(&(3, 3)));
    let mut sum = 0u64;
    for (i, &l) in labels.iter().enumerate() {
        let path = dir.path().join(format!("Test/{l}/{i:05}.bin"));
        let back = read_nmnist(&path).unwrap();
        let img = &images[i * 784..(i + 1) * 784];
        let expected = saccade_events(img, &cfg, sample_seed(42, "Test", i)).unwrap();
        assert_eq!(back, expected, "sample {i}");
        sum += back.len() as u64;
    }
    assert_eq!(sum, total);
    assert!(total > 0);
    // Samples get distinct seeds.
    assert_ne!(sample_seed(42, "Test", 0), sample_seed(42, "Test", 1));
    assert_ne!(sample_seed(42, "Test", 0), sample_seed(42, "Train", 0));
}
