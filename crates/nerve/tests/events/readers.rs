//! Event-camera readers: the shared sample files, corrupted copies, and a no-panic fuzz loop.

use std::path::Path;

use nerve::data::events::{
    aedat, encode_prophesee, parse_aedat, parse_nmnist, parse_prophesee, prophesee, read_events,
    read_nmnist, read_prophesee, write_nmnist, EventFormat, Events,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::common::fuzz::{noise, overwrite, truncate, Tally};
use crate::common::{event_samples, put};

/// The shared sample directory, or `None` (after saying so) when this checkout lacks it.
#[test]
fn nmnist_sample_reads_with_expected_counts() {
    let Some(dir) = event_samples() else { return };
    let ev = read_nmnist(dir.join("sample_nmnist.bin")).unwrap();
    assert_eq!(ev.len(), 4325);
    assert_eq!(ev.sensor, (34, 34));
    // Span and polarity split cross-checked by an independent Python parse run by hand.
    assert_eq!(ev.time_span(), Some((654, 311_175)));
    assert_eq!(ev.polarity_counts(), (2145, 2180));
    assert_eq!(*ev.x.iter().max().unwrap(), 33);
    assert_eq!(*ev.y.iter().max().unwrap(), 33);
    let (format, again) = read_events(dir.join("sample_nmnist.bin")).unwrap();
    assert_eq!(format, EventFormat::NMnist);
    assert_eq!(again, ev);
}

#[test]
fn ncars_sample_reads_with_expected_counts() {
    let Some(dir) = event_samples() else { return };
    let ev = read_prophesee(dir.join("sample_ncars.dat")).unwrap();
    // Numbers cross-checked once by hand with an independent Python (struct.unpack) parse:
    // 2009 records after a 91-byte header and the type/size bytes (0, 8); x in 0..=77,
    // y in 0..=41, so with no Width/Height in the header the reader reports the events'
    // span, 78 wide and 42 high, as the sensor (the shared README says the same: no size in
    // the header, events spanning 78 x 42); t in 0..=99952 µs; 1350 ON events.
    assert_eq!(ev.len(), 2009);
    assert_eq!(ev.sensor, (78, 42));
    // The header itself declares no size, which callers can tell from a declared one.
    let bytes = std::fs::read(dir.join("sample_ncars.dat")).unwrap();
    assert_eq!(prophesee::header_sensor(&bytes), None);
    assert_eq!(ev.time_span(), Some((0, 99_952)));
    assert_eq!(ev.polarity_counts(), (1350, 659));
    // The first record: t = 0, data 0x00020019 -> x 25, y 8, OFF.
    assert_eq!((ev.x[0], ev.y[0], ev.t[0], ev.p[0]), (25, 8, 0, -1));
    assert!(
        ev.t.windows(2).all(|w| w[0] <= w[1]),
        "N-CARS timestamps are sorted"
    );
    let (format, again) = read_events(dir.join("sample_ncars.dat")).unwrap();
    assert_eq!(format, EventFormat::PropheseeDat);
    assert_eq!(again, ev);
}

#[test]
fn prophesee_header_size_is_used_and_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = b"% Width 120\n% Height 100\n% Version 2\n".to_vec();
    bytes.extend_from_slice(&[0, 8]);
    let rec = |t: u32, x: u32, y: u32, p: u32| {
        let mut r = t.to_le_bytes().to_vec();
        r.extend_from_slice(&(x | (y << 14) | (p << 28)).to_le_bytes());
        r
    };
    bytes.extend(rec(5, 119, 99, 1));
    bytes.extend(rec(9, 0, 0, 0));
    let path = dir.path().join("ok.dat");
    std::fs::write(&path, &bytes).unwrap();
    let ev = read_prophesee(&path).unwrap();
    assert_eq!(ev.sensor, (120, 100));
    assert_eq!(ev.x, vec![119, 0]);
    assert_eq!(ev.y, vec![99, 0]);
    assert_eq!(ev.p, vec![1, -1]);
    assert_eq!(ev.time_span(), Some((5, 9)));

    // A coordinate outside the declared sensor is refused, naming the file.
    bytes.extend(rec(10, 120, 0, 0));
    let bad = dir.path().join("outside.dat");
    std::fs::write(&bad, &bytes).unwrap();
    let err = read_prophesee(&bad).unwrap_err().to_string();
    assert!(
        err.contains("outside.dat") && err.contains("outside"),
        "{err}"
    );
}

#[test]
fn prophesee_header_sensor_is_told_apart_from_the_event_span() {
    let ev = Events::new(vec![1, 4], vec![2, 0], vec![0, 9], vec![1, -1], (120, 100)).unwrap();
    let declared = encode_prophesee(&ev).unwrap();
    assert_eq!(prophesee::header_sensor(&declared), Some((120, 100)));
    // The same events under a header without Width/Height: the span stands in for the size.
    let at = declared.windows(2).position(|w| w == [0, 8]).unwrap();
    let mut bare = b"% Data file containing CD events.\n% Version 2\n".to_vec();
    bare.extend_from_slice(&declared[at..]);
    assert_eq!(prophesee::header_sensor(&bare), None);
    let read = parse_prophesee(&bare, Path::new("bare.dat")).unwrap();
    assert_eq!(read.sensor, (5, 3));
}

#[test]
fn aedat2_sensor_comes_from_the_header_chip() {
    for (chip, size) in [
        ("eu.seebetter.ini.chips.davis.Davis346red", Some((346, 260))),
        ("eu.seebetter.ini.chips.davis.Davis346B", Some((346, 260))),
        ("eu.seebetter.ini.chips.davis.DAVIS240C", Some((240, 180))),
        ("eu.seebetter.ini.chips.davis.Davis640", Some((640, 480))),
        ("ch.unizh.ini.jaer.chip.retina.DVS128", Some((128, 128))),
        ("DVS128", Some((128, 128))),
        ("eu.seebetter.ini.chips.davis.Davis208PixelParade", None),
    ] {
        assert_eq!(aedat::chip_sensor(chip), size, "{chip}");
        let bytes = format!("#!AER-DAT2.0\r\n# AEChip: {chip}\r\n").into_bytes();
        assert_eq!(aedat::aedat2_chip(&bytes).as_deref(), Some(chip));
        let ev = parse_aedat(&bytes, Path::new("empty.aedat")).unwrap();
        // Without events an unknown chip leaves the size unknown: 0 x 0.
        assert_eq!(ev.sensor, size.unwrap_or((0, 0)), "{chip}");
    }
    // No AEChip line: the events are decoded, and sized, as a DVS128's.
    let bytes = b"#!AER-DAT2.0\r\n\x00\x00\x01\x01\x00\x00\x00\x05".to_vec();
    assert_eq!(aedat::aedat2_chip(&bytes), None);
    assert_eq!(
        parse_aedat(&bytes, Path::new("a.aedat")).unwrap().sensor,
        (128, 128)
    );
}

#[test]
fn aedat_header_sample_takes_its_sensor_from_the_davis346_chip() {
    let Some(dir) = event_samples() else { return };
    let bytes = std::fs::read(dir.join("sample_aedat_header.aedat")).unwrap();
    assert_eq!(
        aedat::aedat2_chip(&bytes).as_deref(),
        Some("eu.seebetter.ini.chips.davis.Davis346red")
    );
    let (format, ev) = read_events(dir.join("sample_aedat_header.aedat")).unwrap();
    assert_eq!(format, EventFormat::Aedat2);
    assert!(ev.is_empty());
    assert_eq!(ev.sensor, (346, 260));
}

#[test]
fn nmnist_write_read_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let ev = Events::new(
        vec![0, 33, 7],
        vec![33, 0, 12],
        vec![0, (1 << 23) - 1, 70_000],
        vec![1, -1, 1],
        (34, 34),
    )
    .unwrap();
    let path = dir.path().join("rt.bin");
    write_nmnist(&path, &ev).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 15);
    assert_eq!(read_nmnist(&path).unwrap(), ev);

    // Events the format cannot hold are refused rather than silently wrapped.
    let late = Events::new(vec![0], vec![0], vec![1 << 23], vec![1], (34, 34)).unwrap();
    assert!(write_nmnist(dir.path().join("late.bin"), &late).is_err());
    let wide = Events::new(vec![40], vec![0], vec![0], vec![1], (64, 64)).unwrap();
    assert!(write_nmnist(dir.path().join("wide.bin"), &wide).is_err());
}

#[test]
fn events_constructor_validates() {
    assert!(Events::new(vec![0], vec![0, 1], vec![0], vec![1], (2, 2)).is_err());
    assert!(Events::new(vec![2], vec![0], vec![0], vec![1], (2, 2)).is_err());
    assert!(Events::new(vec![0], vec![0], vec![0], vec![0], (2, 2)).is_err());
    let empty = Events::new(vec![], vec![], vec![], vec![], (2, 2)).unwrap();
    assert!(empty.is_empty());
    assert_eq!(empty.time_span(), None);
    assert_eq!(empty.polarity_counts(), (0, 0));
}

/// Writes `bytes` to `name` in `dir` and returns the path.
#[test]
fn truncated_and_corrupted_files_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // N-MNIST: one byte short of two events, and an x outside 34.
    let p = put(dir.path(), "short.bin", &[1, 2, 0x80, 0, 5, 3, 4, 0]);
    let err = read_nmnist(&p).unwrap_err().to_string();
    assert!(
        err.contains("short.bin") && err.contains("truncated"),
        "{err}"
    );
    let p = put(dir.path(), "wide.bin", &[34, 2, 0x80, 0, 5]);
    let err = read_nmnist(&p).unwrap_err().to_string();
    assert!(err.contains("wide.bin") && err.contains("outside"), "{err}");

    // Prophesee: partial record, header without newline, wrong event size, bad polarity.
    let mut good = b"% Version 2\n".to_vec();
    good.extend_from_slice(&[0, 8, 1, 0, 0, 0, 3, 0, 0, 0]);
    let mut partial = good.clone();
    partial.extend_from_slice(&[1, 2, 3]);
    let p = put(dir.path(), "partial.dat", &partial);
    let err = read_prophesee(&p).unwrap_err().to_string();
    assert!(
        err.contains("partial.dat") && err.contains("partial record"),
        "{err}"
    );
    let p = put(dir.path(), "nonl.dat", b"% Version 2");
    let err = read_prophesee(&p).unwrap_err().to_string();
    assert!(err.contains("nonl.dat") && err.contains("header"), "{err}");
    let mut size = good.clone();
    size[13] = 16;
    let p = put(dir.path(), "size.dat", &size);
    let err = read_prophesee(&p).unwrap_err().to_string();
    assert!(
        err.contains("size.dat") && err.contains("event size"),
        "{err}"
    );
    let mut pol = good.clone();
    pol[21] = 0x20;
    let p = put(dir.path(), "pol.dat", &pol);
    let err = read_prophesee(&p).unwrap_err().to_string();
    assert!(err.contains("pol.dat") && err.contains("polarity"), "{err}");
    assert_eq!(
        read_prophesee(put(dir.path(), "good.dat", &good))
            .unwrap()
            .len(),
        1
    );

    // Unknown extension without a '%' header, and a missing file.
    let p = put(dir.path(), "mystery.xyz", &[0, 1, 2]);
    let err = read_events(&p).unwrap_err().to_string();
    assert!(err.contains("mystery.xyz"), "{err}");
    let err = read_events(dir.path().join("absent.bin"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("absent.bin"), "{err}");

    // Truncated copies of the real samples.
    if let Some(samples) = event_samples() {
        let nm = std::fs::read(samples.join("sample_nmnist.bin")).unwrap();
        let p = put(dir.path(), "nm_cut.bin", &nm[..nm.len() - 2]);
        assert!(read_nmnist(&p)
            .unwrap_err()
            .to_string()
            .contains("nm_cut.bin"));
        let nc = std::fs::read(samples.join("sample_ncars.dat")).unwrap();
        let p = put(dir.path(), "nc_cut.dat", &nc[..nc.len() - 3]);
        assert!(read_prophesee(&p)
            .unwrap_err()
            .to_string()
            .contains("nc_cut.dat"));
        let p = put(dir.path(), "nc_head.dat", &nc[..50]);
        assert!(read_prophesee(&p)
            .unwrap_err()
            .to_string()
            .contains("nc_head.dat"));
    }
}

#[test]
fn random_and_truncated_bytes_never_panic() {
    let mut rng = StdRng::seed_from_u64(0x5EED);
    let path = Path::new("fuzz.input");
    // Seed inputs: valid-looking files that random truncation and byte flips then damage.
    let mut seeds: Vec<Vec<u8>> = vec![
        vec![1, 2, 0x80, 0, 5, 3, 4, 0, 1, 2],
        b"% Width 4\n% Height 3\n\x00\x08\x01\x00\x00\x00\x03\x00\x00\x00".to_vec(),
    ];
    if let Some(samples) = event_samples() {
        let nc = std::fs::read(samples.join("sample_ncars.dat")).unwrap();
        seeds.push(nc[..200].to_vec());
        let nm = std::fs::read(samples.join("sample_nmnist.bin")).unwrap();
        seeds.push(nm[..200].to_vec());
    }
    let mut tally = Tally::default();
    for case in 0..2000 {
        let bytes: Vec<u8> = if case % 2 == 0 {
            noise(&mut rng)
        } else {
            let mut b = seeds[case / 2 % seeds.len()].clone();
            truncate(&mut rng, &mut b);
            overwrite(&mut rng, &mut b);
            b
        };
        for parse in [parse_nmnist, parse_prophesee] {
            tally.read(case, &bytes, &["fuzz.input"], || parse(&bytes, path));
        }
    }
    let Tally { ok, err } = tally;
    println!("fuzz: {ok} accepted, {err} refused");
    // Both outcomes must occur, or the loop is not exercising the readers.
    assert!(ok > 20 && err > 1000, "ok {ok}, err {err}");
}
