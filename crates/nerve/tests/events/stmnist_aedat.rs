//! ST-MNIST `.mat` and AEDAT 2.0 / 3.1 readers: shared samples, synthetic files with known
//! events, truncated and corrupted files, and a no-panic fuzz loop (which also covers AEDAT
//! 4.0; its own tests are in `aedat4.rs`).

use std::path::Path;

use flate2::write::ZlibEncoder;
use flate2::Compression;
use nerve::data::events::{
    encode_aedat4, parse_aedat, parse_events, parse_stmnist, read_aedat, read_events, read_stmnist,
    Aedat4Compression, EventFormat, Events, DVS128_SENSOR, STMNIST_SENSOR,
};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::io::Write;

use crate::common::fuzz::{noise, overwrite, truncate, Tally};
use crate::common::{event_samples, put};

/// The shared sample directory, or `None` (after saying so) when this checkout lacks it.
/// Writes `bytes` to `name` in `dir` and returns the path.
#[test]
fn stmnist_sample_reads_with_expected_counts() {
    let Some(dir) = event_samples() else { return };
    let ev = read_stmnist(dir.join("sample_stmnist.mat")).unwrap();
    // Cross-checked by hand with scipy.io.loadmat: `spiketrain` is 101x2346 doubles (stored
    // zlib-compressed), exactly one non-zero taxel per column, 1601 entries +1 and 745 -1,
    // timestamps rising from 0.19662648 s to 0.89574499 s. The first event is row 45
    // (x 5, y 4), OFF; the last is row 46, ON.
    assert_eq!(ev.len(), 2346);
    assert_eq!(ev.sensor, STMNIST_SENSOR);
    assert_eq!(ev.time_span(), Some((196_626, 895_745)));
    assert_eq!(ev.polarity_counts(), (1601, 745));
    assert_eq!((ev.x[0], ev.y[0], ev.t[0], ev.p[0]), (5, 4, 196_626, -1));
    let last = ev.len() - 1;
    assert_eq!((ev.x[last], ev.y[last], ev.p[last]), (6, 4, 1));
    assert!(ev.t.windows(2).all(|w| w[0] <= w[1]));
    let (format, again) = read_events(dir.join("sample_stmnist.mat")).unwrap();
    assert_eq!(format, EventFormat::StMnist);
    assert_eq!(again, ev);
}

/// One MAT v5 data element with its 8-byte padding (little-endian).
fn mat_element(ty: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = ty.to_le_bytes().to_vec();
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    out.resize(out.len().div_ceil(8) * 8, 0);
    out
}

/// A MAT v5 file with one double matrix `name` (column-major `data`), compressed or not.
fn mat_file(name: &str, dims: &[i32], data: &[f64], compress: bool) -> Vec<u8> {
    let mut m = mat_element(6, &[6, 0, 0, 0, 0, 0, 0, 0]); // flags: class double
    m.extend(mat_element(
        5,
        &dims
            .iter()
            .flat_map(|d| d.to_le_bytes())
            .collect::<Vec<_>>(),
    ));
    m.extend(mat_element(1, name.as_bytes()));
    m.extend(mat_element(
        9,
        &data
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<_>>(),
    ));
    let matrix = mat_element(14, &m);
    let mut out = b"MATLAB 5.0 MAT-file, written by a nerve test".to_vec();
    out.resize(124, b' ');
    out.extend_from_slice(&[0x00, 0x01, b'I', b'M']);
    if compress {
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(&matrix).unwrap();
        let z = z.finish().unwrap();
        out.extend_from_slice(&15u32.to_le_bytes());
        out.extend_from_slice(&(z.len() as u32).to_le_bytes());
        out.extend(z);
    } else {
        out.extend(matrix);
    }
    out
}

#[test]
fn stmnist_synthetic_matrix_decodes_and_bad_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    // Two columns: taxels 0 (+1) and 99 (-1) at 1.5 µs -> rounds to 2; taxel 37 (+1) at 2 s.
    let mut data = vec![0.0; 202];
    data[0] = 1.0;
    data[99] = -1.0;
    data[100] = 1.5e-6;
    data[101 + 37] = 1.0;
    data[201] = 2.0;
    for compress in [false, true] {
        let p = put(
            dir.path(),
            "syn.mat",
            &mat_file("spiketrain", &[101, 2], &data, compress),
        );
        let ev = read_stmnist(&p).unwrap();
        assert_eq!(ev.x, vec![0, 9, 7]);
        assert_eq!(ev.y, vec![0, 9, 3]);
        assert_eq!(ev.t, vec![2, 2, 2_000_000]);
        assert_eq!(ev.p, vec![1, -1, 1]);
    }

    // Missing variable, wrong shape, non-numeric class, NaN: errors name file and variable.
    let p = put(
        dir.path(),
        "other.mat",
        &mat_file("labels", &[101, 2], &data, true),
    );
    let err = read_stmnist(&p).unwrap_err().to_string();
    assert!(
        err.contains("other.mat") && err.contains("no variable 'spiketrain'"),
        "{err}"
    );
    let p = put(
        dir.path(),
        "shape.mat",
        &mat_file("spiketrain", &[2, 101], &data, false),
    );
    let err = read_stmnist(&p).unwrap_err().to_string();
    assert!(
        err.contains("shape.mat") && err.contains("'spiketrain'") && err.contains("2x101"),
        "{err}"
    );
    let mut chars = mat_file("spiketrain", &[101, 2], &data, false);
    chars[136 + 8] = 4; // array class 4 = char
    let p = put(dir.path(), "chars.mat", &chars);
    let err = read_stmnist(&p).unwrap_err().to_string();
    assert!(
        err.contains("chars.mat") && err.contains("'spiketrain'") && err.contains("numeric"),
        "{err}"
    );
    let mut nan = data.clone();
    nan[5] = f64::NAN;
    let p = put(
        dir.path(),
        "nan.mat",
        &mat_file("spiketrain", &[101, 2], &nan, false),
    );
    let err = read_stmnist(&p).unwrap_err().to_string();
    assert!(err.contains("nan.mat") && err.contains("NaN"), "{err}");
    let p = put(dir.path(), "text.mat", b"not a mat file at all");
    let err = read_stmnist(&p).unwrap_err().to_string();
    assert!(err.contains("text.mat") && err.contains("MATLAB"), "{err}");

    // Truncated copies of the shared sample are refused, naming the file.
    if let Some(samples) = event_samples() {
        let mat = std::fs::read(samples.join("sample_stmnist.mat")).unwrap();
        for cut in [100, 200, mat.len() / 2, mat.len() - 1] {
            let p = put(dir.path(), "cut.mat", &mat[..cut]);
            let err = read_stmnist(&p).unwrap_err().to_string();
            assert!(err.contains("cut.mat"), "cut at {cut}: {err}");
        }
    }
}

#[test]
fn aedat_header_sample_holds_no_events() {
    let Some(dir) = event_samples() else { return };
    let path = dir.join("sample_aedat_header.aedat");
    let bytes = std::fs::read(&path).unwrap();
    // Inspected by hand: 599 bytes of '#' header lines (AEDAT 2.0 from a Davis346red, ending
    // inside the jAER preferences XML) and no event records.
    assert_eq!(bytes.len(), 599);
    let (format, ev) = read_events(&path).unwrap();
    assert_eq!(format, EventFormat::Aedat2);
    assert!(ev.is_empty());
    // The size of the chip its AEChip line names (DAVIS346), not the DVS128 decoding layout.
    assert_eq!(ev.sensor, (346, 260));
    // With one record appended the Davis346 address layout is refused, not misdecoded.
    let tmp = tempfile::tempdir().unwrap();
    let mut more = bytes.clone();
    more.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 5]);
    let p = put(tmp.path(), "davis.aedat", &more);
    let err = read_aedat(&p).unwrap_err().to_string();
    assert!(
        err.contains("davis.aedat") && err.contains("DVS128"),
        "{err}"
    );
}

/// A known list of `(x, y, t, on)` events used by the synthetic AEDAT files.
const KNOWN: [(u16, u16, i64, bool); 4] = [
    (0, 0, 10, true),
    (127, 5, 20, false),
    (64, 127, (1 << 31) + 4_000_000, true),
    (3, 9, (1 << 31) + 4_000_001, false),
];

/// AEDAT 2.0 bytes holding [`KNOWN`] as DVS128 addresses.
fn aedat2(chip: &str) -> Vec<u8> {
    let mut out = format!("#!AER-DAT2.0\r\n# AEChip: {chip}\r\n# comment\r\n").into_bytes();
    for (x, y, t, on) in KNOWN {
        let addr = (u32::from(y) << 8) | (u32::from(127 - x) << 1) | u32::from(on);
        out.extend_from_slice(&addr.to_be_bytes());
        out.extend_from_slice(&(t as u32).to_be_bytes());
    }
    out
}

/// One AEDAT 3.1 packet header.
fn packet(kind: u16, size: u32, overflow: u32, capacity: u32, number: u32) -> Vec<u8> {
    let mut h = kind.to_le_bytes().to_vec();
    h.extend_from_slice(&1u16.to_le_bytes());
    for v in [size, 4, overflow, capacity, number, number] {
        h.extend_from_slice(&v.to_le_bytes());
    }
    h
}

/// One AEDAT 3.1 polarity event.
fn polarity(x: u16, y: u16, ts: i32, on: bool, valid: bool) -> Vec<u8> {
    let data = (u32::from(x) << 17) | (u32::from(y) << 2) | (u32::from(on) << 1) | u32::from(valid);
    let mut r = data.to_le_bytes().to_vec();
    r.extend_from_slice(&ts.to_le_bytes());
    r
}

/// AEDAT 3.1 bytes: [`KNOWN`] split over two polarity packets (the second one past a
/// timestamp overflow), an invalid event, and a special-event packet to skip.
fn aedat3(header_size: bool) -> Vec<u8> {
    let mut out = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n".to_vec();
    if header_size {
        out.extend_from_slice(b"#-Source 1: sizeX 200 sizeY 150\r\n");
    }
    out.extend_from_slice(b"#!END-HEADER\r\n");
    // Packet 1: capacity 3, two valid events and one invalid one.
    out.extend(packet(1, 8, 0, 3, 3));
    let (x, y, t, on) = KNOWN[0];
    out.extend(polarity(x, y, t as i32, on, true));
    out.extend(polarity(99, 99, 15, true, false));
    let (x, y, t, on) = KNOWN[1];
    out.extend(polarity(x, y, t as i32, on, true));
    // A special-event packet (type 0, 8-byte events, capacity 2) is skipped.
    out.extend(packet(0, 8, 0, 2, 2));
    out.extend_from_slice(&[0xAB; 16]);
    // Packet 2: after one overflow; capacity 3 with 2 events, the spare slot is ignored.
    out.extend(packet(1, 8, 1, 3, 2));
    for (x, y, t, on) in &KNOWN[2..] {
        out.extend(polarity(*x, *y, (t - (1 << 31)) as i32, *on, true));
    }
    out.extend(polarity(1, 1, 1, true, true));
    out
}

#[test]
fn aedat_synthetic_files_decode_known_events() {
    let dir = tempfile::tempdir().unwrap();
    let expect = |ev: &nerve::data::events::Events| {
        let got: Vec<_> = (0..ev.len())
            .map(|i| (ev.x[i], ev.y[i], ev.t[i], ev.p[i] == 1))
            .collect();
        assert_eq!(got, KNOWN.to_vec());
    };
    let p = put(
        dir.path(),
        "v2.aedat",
        &aedat2("ch.unizh.ini.jaer.chip.retina.DVS128"),
    );
    let (format, ev) = read_events(&p).unwrap();
    assert_eq!(format, EventFormat::Aedat2);
    assert_eq!(ev.sensor, DVS128_SENSOR);
    expect(&ev);

    // AEDAT 3.1: packet 2 stores t - 2^31 with overflow 1, read back as (1 << 31) | ts.
    let p = put(dir.path(), "v3.aedat", &aedat3(true));
    let (format, ev) = read_events(&p).unwrap();
    assert_eq!(format, EventFormat::Aedat3);
    assert_eq!(ev.sensor, (200, 150));
    expect(&ev);
    // Without sizes in the header the sensor is the largest coordinate plus one.
    let ev = read_aedat(put(dir.path(), "v3b.aedat", &aedat3(false))).unwrap();
    assert_eq!(ev.sensor, (128, 128));
    assert_eq!(ev.polarity_counts(), (2, 2));

    // AEDAT 4.0 is detected whatever the extension (a cut header is an error naming the
    // file); unknown versions are refused clearly.
    let p = put(dir.path(), "new.dat", b"#!AER-DAT4.0\r\n\x0c\x09");
    let err = read_events(&p).unwrap_err().to_string();
    assert!(
        err.contains("new.dat") && err.contains("truncated header"),
        "{err}"
    );
    let p = put(dir.path(), "odd.dat", b"#!AER-DAT9.9\r\n");
    let err = read_events(&p).unwrap_err().to_string();
    assert!(err.contains("odd.dat") && err.contains("9.9"), "{err}");
    if let Some(samples) = event_samples() {
        let (format, ev) = read_events(samples.join("sample.aedat4")).unwrap();
        assert_eq!(format, EventFormat::Aedat4);
        assert_eq!(ev.len(), 111_954);
    }
}

#[test]
fn truncated_and_corrupted_aedat_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let check = |name: &str, bytes: &[u8], needle: &str| {
        let p = put(dir.path(), name, bytes);
        let err = read_aedat(&p).unwrap_err().to_string();
        assert!(err.contains(name) && err.contains(needle), "{name}: {err}");
    };
    let v2 = aedat2("DVS128");
    check("v2_cut.aedat", &v2[..v2.len() - 3], "partial record");
    check("v2_head.aedat", b"#!AER-DAT2.0\r\n# no newline", "header");
    let v3 = aedat3(true);
    check("v3_cut.aedat", &v3[..v3.len() - 5], "truncated packet");
    let end = v3
        .windows(14)
        .position(|w| w == b"#!END-HEADER\r\n")
        .unwrap()
        + 14;
    check("v3_phead.aedat", &v3[..end + 10], "truncated packet header");
    check("v3_noend.aedat", &v3[..end - 14], "END-HEADER");
    // A polarity packet claiming more events than its capacity, or 16-byte events.
    let mut over = v3[..end].to_vec();
    over.extend(packet(1, 8, 0, 1, 2));
    over.extend(polarity(1, 1, 1, true, true));
    check("v3_over.aedat", &over, "capacity");
    let mut wide = v3[..end].to_vec();
    wide.extend(packet(1, 16, 0, 1, 1));
    wide.extend_from_slice(&[0; 16]);
    check("v3_size.aedat", &wide, "event size");
    // A header-declared sensor smaller than the events.
    let mut small = v3.clone();
    let at = small.windows(9).position(|w| w == b"sizeX 200").unwrap();
    small[at + 6..at + 9].copy_from_slice(b"050");
    check("v3_small.aedat", &small, "outside");
}

#[test]
fn random_and_truncated_bytes_never_panic() {
    let mut rng = StdRng::seed_from_u64(0xAEDA7);
    let path = Path::new("fuzz.input");
    let mut data = vec![0.0; 202];
    data[3] = 1.0;
    data[100] = 0.5;
    data[201] = 0.75;
    let ev4 = Events::new(
        vec![1, 30, 7],
        vec![2, 0, 19],
        vec![5, 6, 1 << 33],
        vec![1, -1, 1],
        (32, 20),
    )
    .unwrap();
    let mut seeds: Vec<Vec<u8>> = vec![
        aedat2("DVS128"),
        aedat3(true),
        aedat3(false),
        mat_file("spiketrain", &[101, 2], &data, false),
        mat_file("spiketrain", &[101, 2], &data, true),
        encode_aedat4(&ev4, Aedat4Compression::None).unwrap(),
        encode_aedat4(&ev4, Aedat4Compression::Lz4).unwrap(),
    ];
    if let Some(samples) = event_samples() {
        let mat = std::fs::read(samples.join("sample_stmnist.mat")).unwrap();
        seeds.push(mat[..600.min(mat.len())].to_vec());
    }
    let mut tally = Tally::default();
    for case in 0..2000 {
        let bytes: Vec<u8> = if case % 4 == 0 {
            noise(&mut rng)
        } else {
            let mut b = seeds[case / 4 % seeds.len()].clone();
            if case % 4 != 1 {
                truncate(&mut rng, &mut b);
            }
            overwrite(&mut rng, &mut b);
            b
        };
        let detect = |b: &[u8], p: &Path| parse_events(b, p).map(|(_, ev)| ev);
        for parse in [parse_aedat, parse_stmnist, detect] {
            tally.read(case, &bytes, &["fuzz.input"], || parse(&bytes, path));
        }
    }
    let Tally { ok, err } = tally;
    println!("fuzz: {ok} accepted, {err} refused");
    // Both outcomes must occur, or the loop is not exercising the readers.
    assert!(ok > 50 && err > 2000, "ok {ok}, err {err}");
}
