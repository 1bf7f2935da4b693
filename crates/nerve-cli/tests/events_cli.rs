//! End-to-end tests of `nerve events info`.

mod common;
use common::*;

#[test]
fn info_prints_count_sensor_span_and_polarities() {
    let s = Scratch::new("events-info");
    // Three N-MNIST events (5 bytes each): (1,2) ON at 10 us, (3,4) OFF at 20 us, (33,33) ON at 2^16 us.
    let bytes = [
        1u8, 2, 0x80, 0, 10, //
        3, 4, 0x00, 0, 20, //
        33, 33, 0x81, 0, 0,
    ];
    write(&s.join("three.bin"), &bytes);
    let out = expect_success(&nerve(s.path(), &["events", "info", "three.bin"]));
    for needle in [
        "format: NMnist",
        "events: 3",
        "sensor: 34 x 34",
        "time span: 10 .. 65536 us",
        "polarity: 2 on, 1 off",
    ] {
        assert!(out.contains(needle), "missing '{needle}' in\n{out}");
    }
    write(&s.join("cut.bin"), &bytes[..12]);
    expect_error(
        &nerve(s.path(), &["events", "info", "cut.bin"]),
        &["cut.bin"],
    );
    expect_error(
        &nerve(s.path(), &["events", "info", "absent.bin"]),
        &["absent.bin"],
    );
}

#[test]
fn info_reads_the_shared_nmnist_sample() {
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/events/sample_nmnist.bin");
    if !sample.exists() {
        println!("skipping: {} is absent", sample.display());
        return;
    }
    let s = Scratch::new("events-sample");
    let out = expect_success(&nerve(
        s.path(),
        &["events", "info", sample.to_str().unwrap()],
    ));
    assert!(
        out.contains("events: 4325") && out.contains("sensor: 34 x 34"),
        "{out}"
    );
}

/// `nerve events info` on a shared sample, or `None` (after saying so) when it is absent.
fn info_of_sample(name: &str) -> Option<String> {
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/events")
        .join(name);
    if !sample.exists() {
        println!("skipping: {} is absent", sample.display());
        return None;
    }
    let s = Scratch::new(&format!("events-{name}"));
    Some(expect_success(&nerve(
        s.path(),
        &["events", "info", sample.to_str().unwrap()],
    )))
}

#[test]
fn info_takes_the_aedat_sensor_from_the_header_chip() {
    let Some(out) = info_of_sample("sample_aedat_header.aedat") else {
        return;
    };
    assert!(
        out.contains("format: Aedat2")
            && out.contains("events: 0")
            && out.contains("sensor: 346 x 260 (width x height), from the header's AEChip")
            && out.contains("Davis346red")
            && !out.contains("128 x 128"),
        "{out}"
    );
}

#[test]
fn info_says_the_ncars_sensor_size_is_not_in_the_header() {
    let Some(out) = info_of_sample("sample_ncars.dat") else {
        return;
    };
    assert!(
        out.contains("events: 2009")
            && out.contains(
                "sensor: unknown (the header gives no Width/Height); \
                 the events span 78 x 42 (width x height)"
            ),
        "{out}"
    );
}

/// Writes an 8-bit grayscale PNG.
fn write_png(path: &std::path::Path, w: u32, h: u32, pixels: &[u8]) {
    let file = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()
        .unwrap()
        .write_image_data(pixels)
        .unwrap();
}

#[test]
fn from_video_emulates_a_moving_square_and_writes_readable_files() {
    let s = Scratch::new("events-from-video");
    let frames = s.join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    // A bright 8x8 square moving 2 pixels right per frame over a dark 34x34 background.
    for f in 0..6u32 {
        let mut px = vec![20u8; 34 * 34];
        for y in 10..18 {
            for x in (4 + 2 * f as usize)..(12 + 2 * f as usize) {
                px[y * 34 + x] = 220;
            }
        }
        write_png(&frames.join(format!("frame{f:02}.png")), 34, 34, &px);
    }
    let out = expect_success(&nerve(
        s.path(),
        &[
            "events",
            "from-video",
            "frames",
            "moving.dat",
            "--leak-rate-hz",
            "0",
        ],
    ));
    assert!(out.contains("6 frames of 34 x 34"), "{out}");
    let info = expect_success(&nerve(s.path(), &["events", "info", "moving.dat"]));
    assert!(
        info.contains("sensor: 34 x 34") && info.contains("format: PropheseeDat"),
        "{info}"
    );
    // The leading edge brightens and the trailing edge darkens: both polarities appear.
    let counts = info.lines().find(|l| l.starts_with("polarity:")).unwrap();
    assert!(
        !counts.contains(" 0 on") && !counts.contains(" 0 off"),
        "{info}"
    );

    expect_success(&nerve(
        s.path(),
        &["events", "from-video", "frames", "moving.bin"],
    ));
    let info = expect_success(&nerve(s.path(), &["events", "info", "moving.bin"]));
    assert!(info.contains("format: NMnist"), "{info}");

    expect_error(
        &nerve(s.path(), &["events", "from-video", "frames", "out.txt"]),
        &["out.txt"],
    );
    std::fs::create_dir_all(s.join("none")).unwrap();
    expect_error(
        &nerve(s.path(), &["events", "from-video", "none", "x.dat"]),
        &["none"],
    );
    write(&frames.join("frame99.png"), b"not a png");
    expect_error(
        &nerve(s.path(), &["events", "from-video", "frames", "x.dat"]),
        &["frame99.png"],
    );
}

#[test]
fn nmnist_emulates_embedded_digits_in_the_nmnist_layout() {
    let s = Scratch::new("events-nmnist");
    let out = expect_success(&nerve(
        s.path(),
        &[
            "events", "nmnist", "--out", "em", "--limit", "3", "--seed", "5",
        ],
    ));
    assert!(
        out.contains("Train: 3 digits") && out.contains("Test: 3 digits"),
        "{out}"
    );
    for split in ["Train", "Test"] {
        let mut files = vec![];
        for label in std::fs::read_dir(s.join("em").join(split)).unwrap() {
            for f in std::fs::read_dir(label.unwrap().path()).unwrap() {
                files.push(f.unwrap().path());
            }
        }
        files.sort_by_key(|p| p.file_name().unwrap().to_owned());
        let names: Vec<_> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["00000.bin", "00001.bin", "00002.bin"], "{split}");
        let info = expect_success(&nerve(
            s.path(),
            &["events", "info", files[0].to_str().unwrap()],
        ));
        assert!(
            info.contains("format: NMnist") && !info.contains("events: 0\n"),
            "{info}"
        );
    }
    expect_error(
        &nerve(
            s.path(),
            &["events", "nmnist", "--out", "x", "--dataset", "cifar"],
        ),
        &["cifar"],
    );
}

#[test]
fn train_and_eval_on_an_emulated_nmnist_folder() {
    let s = Scratch::new("events-train");
    expect_success(&nerve(
        s.path(),
        &["events", "nmnist", "--out", "nm", "--limit", "48"],
    ));
    let out = expect_success(&nerve(
        s.path(),
        &[
            "train",
            "--dataset",
            "nmnist",
            "--data",
            "nm",
            "--arch",
            "4C5-MP4-FC10",
            "--steps",
            "4",
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--out",
            "run",
        ],
    ));
    for needle in ["48 train / 48 test recordings", "2x34x34", "test accuracy:"] {
        assert!(out.contains(needle), "missing '{needle}' in\n{out}");
    }
    assert!(s.join("run/checkpoint.safetensors").exists());
    // eval finds the data set kind in the checkpoint; the folder is given again.
    let out = expect_success(&nerve(
        s.path(),
        &[
            "eval",
            "--checkpoint",
            "run/checkpoint.safetensors",
            "--data",
            "nm",
        ],
    ));
    assert!(
        out.contains("test accuracy:") && out.contains("(48 samples)"),
        "{out}"
    );
    // An event data set needs its folder.
    expect_error(
        &nerve(s.path(), &["train", "--dataset", "nmnist", "--out", "run2"]),
        &["--data"],
    );
}
