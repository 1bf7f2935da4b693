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
