//! End-to-end tests of `nerve events gif` and `nerve events raster`, on a small N-MNIST file
//! written by the library (so they never skip).

mod common;
use common::*;

use nerve::data::events::{write_nmnist, Events};

/// 200 events on the 34x34 N-MNIST sensor, `i * 477` us apart (the last at 94.923 ms), with
/// alternating polarity.
fn write_sample(path: &std::path::Path) -> Events {
    let n = 200u16;
    let events = Events::new(
        (0..n).map(|i| i % 34).collect(),
        (0..n).map(|i| (i * 7) % 34).collect(),
        (0..i64::from(n)).map(|i| i * 477).collect(),
        (0..n).map(|i| if i % 2 == 0 { 1 } else { -1 }).collect(),
        (34, 34),
    )
    .unwrap();
    write_nmnist(path, &events).unwrap();
    events
}

fn png_size(path: &std::path::Path) -> (u32, u32) {
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let reader = png::Decoder::new(file).read_info().unwrap();
    let info = reader.info();
    (info.width, info.height)
}

#[test]
fn gif_writes_an_animation_of_the_expected_size() {
    let s = Scratch::new("events-gif");
    write_sample(&s.join("in.bin"));
    let out = expect_success(&nerve(
        s.path(),
        &[
            "events",
            "gif",
            "in.bin",
            "out.gif",
            "--frame-ms",
            "10",
            "--scale",
            "2",
            "--fps",
            "25",
        ],
    ));
    // 94.923 ms in 10 ms windows: frames 0..=9.
    assert!(out.contains("200 events -> 10 frames of 68 x 68"), "{out}");
    let bytes = read(&s.join("out.gif"));
    assert_eq!(&bytes[..6], b"GIF89a");
    // The logical screen size follows the signature (little-endian u16s).
    assert_eq!(u16::from_le_bytes([bytes[6], bytes[7]]), 68);
    assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 68);
    // The NETSCAPE2.0 extension makes it loop.
    assert!(bytes.windows(11).any(|w| w == b"NETSCAPE2.0"));
}

#[test]
fn gif_refuses_bad_options_with_one_error_line() {
    let s = Scratch::new("events-gif-bad");
    write_sample(&s.join("in.bin"));
    expect_error(
        &nerve(
            s.path(),
            &["events", "gif", "in.bin", "o.gif", "--frame-ms", "0"],
        ),
        &["--frame-ms"],
    );
    expect_error(
        &nerve(
            s.path(),
            &["events", "gif", "in.bin", "o.gif", "--fps", "0"],
        ),
        &["fps"],
    );
    expect_error(
        &nerve(
            s.path(),
            &["events", "gif", "in.bin", "o.gif", "--scale", "0"],
        ),
        &["scale"],
    );
    // One microsecond per frame over 95 ms at scale 100 is far too many pixels.
    expect_error(
        &nerve(
            s.path(),
            &[
                "events",
                "gif",
                "in.bin",
                "o.gif",
                "--frame-ms",
                "0.001",
                "--scale",
                "100",
            ],
        ),
        &["frames of 3400x3400"],
    );
    expect_error(
        &nerve(s.path(), &["events", "gif", "absent.bin", "o.gif"]),
        &["absent.bin"],
    );
    assert!(!s.join("o.gif").exists());
}

#[test]
fn raster_writes_a_png_of_the_documented_size() {
    let s = Scratch::new("events-raster");
    write_sample(&s.join("in.bin"));
    let out = expect_success(&nerve(
        s.path(),
        &["events", "raster", "in.bin", "r.png", "--title", "sample"],
    ));
    assert!(out.contains("200 events (100 on, 100 off)"), "{out}");
    assert_eq!(
        png_size(&s.join("r.png")),
        nerve::viz::raster_image_size(34 * 34)
    );
    expect_error(
        &nerve(s.path(), &["events", "raster", "absent.bin", "r2.png"]),
        &["absent.bin"],
    );
    assert!(!s.join("r2.png").exists());
}
