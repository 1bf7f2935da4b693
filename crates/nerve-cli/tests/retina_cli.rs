//! End-to-end tests of `nerve retina`.

mod common;
use common::*;

use std::path::Path;

/// Writes an 8-bit grayscale PNG.
fn write_png(path: &Path, w: u32, h: u32, pixels: &[u8]) {
    let file = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()
        .unwrap()
        .write_image_data(pixels)
        .unwrap();
}

/// A dark `w`×`h` image with a bright square `[x0, x0+size)×[y0, y0+size)`.
fn square(w: usize, h: usize, x0: usize, y0: usize, size: usize) -> Vec<u8> {
    let mut px = vec![0u8; w * h];
    for y in y0..y0 + size {
        for x in x0..x0 + size {
            px[y * w + x] = 255;
        }
    }
    px
}

fn png_size(path: &Path) -> (u32, u32) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let info = decoder.read_info().unwrap();
    (info.info().width, info.info().height)
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&read(path)).unwrap()
}

/// Index of the largest value of a JSON array of numbers.
fn argmax(v: &serde_json::Value) -> usize {
    let xs: Vec<f64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    (0..xs.len()).fold(0, |b, i| if xs[i] > xs[b] { i } else { b })
}

#[test]
fn a_flash_gives_events_a_raster_and_region_rates_where_the_patch_is() {
    let s = Scratch::new("retina-flash");
    // A bright patch in the bottom-right region of a 3x3 grid over a 24x24 image.
    write_png(&s.join("patch.png"), 24, 24, &square(24, 24, 18, 17, 4));
    let out = expect_success(&nerve(
        s.path(),
        &[
            "retina",
            "patch.png",
            "spikes.dat",
            "--pre-ms",
            "50",
            "--duration-ms",
            "200",
            "--post-ms",
            "150",
        ],
    ));
    assert!(out.contains("Fohlmeister-Miller"), "{out}");
    assert!(out.contains("region rates, Hz (ON/OFF), 3 x 3:"), "{out}");
    let regions = json(&s.join("spikes.regions.json"));
    assert_eq!(regions["grid"], serde_json::json!([24, 24]));
    assert_eq!(argmax(&regions["regions"]["on_hz"]), 8, "{regions}");
    assert_eq!(argmax(&regions["regions"]["off_hz"]), 8, "{regions}");
    let on = regions["spikes"]["on"].as_u64().unwrap();
    let off = regions["spikes"]["off"].as_u64().unwrap();
    assert!(on > 0 && off > 0);
    assert_eq!(png_size(&s.join("spikes.raster.png")).0, 1000);

    // The spikes read back as events on the ganglion grid: ON = +1, OFF = -1.
    let info = expect_success(&nerve(s.path(), &["events", "info", "spikes.dat"]));
    for needle in [
        format!("events: {}", on + off),
        "sensor: 24 x 24".to_string(),
        format!("polarity: {on} on, {off} off"),
    ] {
        assert!(info.contains(&needle), "missing '{needle}' in\n{info}");
    }
}

#[test]
fn csv_output_with_lif_cells_on_a_coarser_grid() {
    let s = Scratch::new("retina-csv");
    write_png(&s.join("img.png"), 20, 10, &square(20, 10, 2, 2, 6));
    let out = expect_success(&nerve(
        s.path(),
        &[
            "retina",
            "img.png",
            "out.csv",
            "--ganglion",
            "lif",
            "--grid-step",
            "2",
            "--regions",
            "1x2",
            "--pre-ms",
            "20",
            "--duration-ms",
            "150",
            "--post-ms",
            "100",
        ],
    ));
    assert!(out.contains("LIF") && out.contains("10 x 5 grid"), "{out}");
    let text = String::from_utf8(read(&s.join("out.csv"))).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("t_us,cell,type,x,y"));
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    assert!(!rows.is_empty());
    let mut last_t = 0i64;
    for row in &rows {
        let t: i64 = row[0].parse().unwrap();
        let cell: usize = row[1].parse().unwrap();
        let (x, y): (usize, usize) = (row[3].parse().unwrap(), row[4].parse().unwrap());
        assert!(t >= last_t && t < 270_000, "{row:?}");
        last_t = t;
        assert!(x < 10 && y < 5);
        let want = if cell < 50 { "on" } else { "off" };
        assert_eq!(row[2], want);
        assert_eq!(cell % 50, y * 10 + x);
    }
    // The patch is in the left half.
    let regions = json(&s.join("out.regions.json"));
    assert_eq!(argmax(&regions["regions"]["on_hz"]), 0, "{regions}");
    assert!(s.join("out.raster.png").exists());
}

#[test]
fn a_directory_of_frames_is_a_video() {
    let s = Scratch::new("retina-video");
    let frames = s.join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    // Dark, then a bright right half, at 20 fps.
    write_png(&frames.join("f0.png"), 8, 6, &[0u8; 48]);
    let mut right = [0u8; 48];
    for y in 0..6 {
        for x in 4..8 {
            right[y * 8 + x] = 255;
        }
    }
    write_png(&frames.join("f1.png"), 8, 6, &right);
    write_png(&frames.join("f2.png"), 8, 6, &right);
    let out = expect_success(&nerve(
        s.path(),
        &[
            "retina",
            "frames",
            "v.dat",
            "--fps",
            "20",
            "--regions",
            "1x2",
            "--ganglion",
            "lif",
        ],
    ));
    assert!(out.contains("3 frame(s), 150 ms"), "{out}");
    let regions = json(&s.join("v.regions.json"));
    assert_eq!(argmax(&regions["regions"]["on_hz"]), 1, "{regions}");
}

#[test]
fn bad_inputs_and_options_fail_cleanly_and_write_nothing() {
    let s = Scratch::new("retina-errors");
    write_png(&s.join("ok.png"), 6, 6, &square(6, 6, 1, 1, 2));
    write(&s.join("broken.png"), b"\x89PNG\r\n\x1a\nnot really");
    // The empty directory lives in a scratch of its own: `snapshot` compares files only.
    let elsewhere = Scratch::new("retina-errors-empty");
    let empty = elsewhere.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let empty = empty.to_str().unwrap();
    let before = snapshot(s.path());
    let cases: &[(&[&str], &[&str])] = &[
        (&["retina", "absent.png", "o.dat"], &["absent.png"]),
        (&["retina", "broken.png", "o.dat"], &["broken.png"]),
        (&["retina", empty, "o.dat"], &["empty", "no .png"]),
        (&["retina", "ok.png", "o.txt"], &["o.txt", ".dat or .csv"]),
        (
            &["retina", "ok.png", "o.dat", "--regions", "0x3"],
            &["--regions"],
        ),
        (
            &["retina", "ok.png", "o.dat", "--regions", "7x1"],
            &["--regions", "6x6"],
        ),
        (
            &["retina", "ok.png", "o.dat", "--grid-step", "0"],
            &["--grid-step"],
        ),
        (&["retina", "ok.png", "o.dat", "--dt-ms=-1"], &["--dt-ms"]),
        (
            &["retina", "ok.png", "o.dat", "--duration-ms", "0"],
            &["--duration-ms"],
        ),
        (
            &["retina", "ok.png", "o.dat", "--intensity-scale", "nan"],
            &["--intensity-scale"],
        ),
        (&["retina", "ok.png", "o.dat", "--noise=-1"], &["--noise"]),
        (&["retina", empty, "o.dat", "--fps", "0"], &["--fps"]),
    ];
    for (args, needles) in cases {
        expect_error(&nerve(s.path(), args), needles);
    }
    assert_unchanged(s.path(), &before);
    // A malformed option value is the argument parser's business (status 2).
    let out = nerve(s.path(), &["retina", "ok.png", "o.dat", "--ganglion", "hh"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
}
