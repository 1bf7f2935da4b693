//! AEDAT 4.0 reader: the shared DV sample, synthetic files written by the encoder and by hand
//! with the flatbuffers builder, truncated and corrupted copies.

use std::io::Write;
use std::path::Path;

use flatbuffers::FlatBufferBuilder;
use nerve::data::events::{
    encode_aedat4, parse_aedat4, parse_aedat4_header, read_aedat, read_aedat4, read_events,
    write_aedat4, Aedat4Compression, EventFormat, Events,
};

use crate::common::{event_samples, put};

/// The shared sample directory, or `None` (after saying so) when this checkout lacks it.
/// The error message of a read that must fail (without printing a whole event set if not).
fn err_of<T>(r: nerve::Result<T>) -> String {
    match r {
        Ok(_) => panic!("read unexpectedly succeeded"),
        Err(e) => e.to_string(),
    }
}

/// Writes `bytes` to `name` in `dir` and returns the path.
#[test]
fn dv_sample_reads_with_expected_counts() {
    let Some(dir) = event_samples() else { return };
    let path = dir.join("sample.aedat4");
    let bytes = std::fs::read(&path).unwrap();
    let header = parse_aedat4_header(&bytes, &path).unwrap();
    // Cross-checked by an independent Python parse (struct + the `lz4` package, flatbuffer
    // offsets followed by hand): IOHeader of 2316 bytes, LZ4, data table at byte 945243;
    // streams 0 EVTS (320x240, DVXplorer), 2 IMUS, 3 TRIG; 59 packets of stream 0 and 59
    // of stream 2 between the header and the data table.
    assert_eq!(header.compression, Aedat4Compression::Lz4);
    assert_eq!(header.data_start, 14 + 4 + 2316);
    assert_eq!(header.data_table, Some(945_243));
    let kinds: Vec<_> = header
        .streams
        .iter()
        .map(|s| (s.id, s.type_id.as_str(), s.size))
        .collect();
    assert_eq!(
        kinds,
        [
            (0, "EVTS", Some((320, 240))),
            (2, "IMUS", None),
            (3, "TRIG", None)
        ]
    );

    let ev = read_aedat4(&path).unwrap();
    assert_eq!(ev.len(), 111_954);
    assert_eq!(ev.sensor, (320, 240));
    assert_eq!(
        ev.time_span(),
        Some((1_605_537_493_718_345, 1_605_537_494_308_262))
    );
    assert_eq!(ev.polarity_counts(), (55_023, 56_931));
    assert_eq!(
        (*ev.x.iter().max().unwrap(), *ev.y.iter().max().unwrap()),
        (319, 239)
    );
    assert_eq!(
        (ev.x[0], ev.y[0], ev.t[0], ev.p[0]),
        (154, 204, 1_605_537_493_718_345, -1)
    );
    let last = ev.len() - 1;
    assert_eq!(
        (ev.x[last], ev.y[last], ev.t[last], ev.p[last]),
        (88, 237, 1_605_537_494_308_262, 1)
    );
    assert!(ev.t.windows(2).all(|w| w[0] <= w[1]));

    let (format, again) = read_events(&path).unwrap();
    assert_eq!(format, EventFormat::Aedat4);
    assert_eq!(again, ev);
    assert_eq!(read_aedat(&path).unwrap(), ev);
}

/// A few known events on a 200x150 sensor.
fn known() -> Events {
    Events::new(
        vec![0, 199, 64, 3, 100],
        vec![0, 5, 149, 9, 100],
        vec![10, 20, 1 << 40, (1 << 40) + 1, -5],
        vec![1, -1, 1, -1, 1],
        (200, 150),
    )
    .unwrap()
}

#[test]
fn encoder_round_trips_through_the_reader() {
    let dir = tempfile::tempdir().unwrap();
    for compression in [Aedat4Compression::None, Aedat4Compression::Lz4] {
        let p = dir.path().join("rt.aedat4");
        write_aedat4(&p, &known(), compression).unwrap();
        let (format, ev) = read_events(&p).unwrap();
        assert_eq!(format, EventFormat::Aedat4);
        assert_eq!(ev, known());
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(
            parse_aedat4_header(&bytes, &p).unwrap().compression,
            compression
        );
    }
    // More than one packet (4096 events each), and an empty recording.
    let n = 10_000;
    let many = Events::new(
        (0..n).map(|i| (i % 7) as u16).collect(),
        (0..n).map(|i| (i % 5) as u16).collect(),
        (0..n as i64).collect(),
        (0..n).map(|i| if i % 3 == 0 { 1 } else { -1 }).collect(),
        (7, 5),
    )
    .unwrap();
    let bytes = encode_aedat4(&many, Aedat4Compression::Lz4).unwrap();
    assert_eq!(
        parse_aedat4(&bytes, Path::new("many.aedat4")).unwrap(),
        many
    );
    // Empty recordings keep their sensor, even 0x0 (what an empty file without sizes reads
    // as; found by the fuzzer's write-and-reread check, which once failed on it).
    for sensor in [(32, 16), (0, 0), (0, 7)] {
        let empty = Events::new(vec![], vec![], vec![], vec![], sensor).unwrap();
        let bytes = encode_aedat4(&empty, Aedat4Compression::None).unwrap();
        let ev = parse_aedat4(&bytes, Path::new("empty.aedat4")).unwrap();
        assert!(ev.is_empty());
        assert_eq!(ev.sensor, sensor);
    }
    assert!(encode_aedat4(&known(), Aedat4Compression::Zstd).is_err());
}

/// The `EVTS` flatbuffer of `(t, x, y, on)` events, built with the flatbuffers builder
/// independently of the library's encoder.
fn evts_packet(events: &[(i64, i16, i16, bool)]) -> Vec<u8> {
    let mut fbb = FlatBufferBuilder::new();
    // A vector of 16-byte structs, pushed as two u64 words each (the builder writes
    // back to front, so the last event and its second word go first).
    fbb.start_vector::<u64>(events.len() * 2);
    for &(t, x, y, on) in events.iter().rev() {
        let word = u64::from(x as u16) | (u64::from(y as u16) << 16) | (u64::from(on) << 32);
        fbb.push(word);
        fbb.push(t as u64);
    }
    let vector = fbb.end_vector::<u64>(events.len());
    let table = fbb.start_table();
    fbb.push_slot_always(4, vector);
    let root = fbb.end_table(table);
    fbb.finish_size_prefixed(root, Some("EVTS"));
    fbb.finished_data().to_vec()
}

/// An AEDAT 4.0 file assembled by hand: header with `xml`, then `(stream, payload)` packets
/// compressed with LZ4 when `code` is 1, and an optional trailing data table.
fn hand_file(code: i32, xml: &str, packets: &[(i32, Vec<u8>)], table: Option<&[u8]>) -> Vec<u8> {
    let compress = |raw: &[u8]| -> Vec<u8> {
        if code == 0 {
            return raw.to_vec();
        }
        let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
        enc.write_all(raw).unwrap();
        enc.finish().unwrap()
    };
    let mut body = Vec::new();
    for (id, raw) in packets {
        let c = compress(raw);
        body.extend_from_slice(&id.to_le_bytes());
        body.extend_from_slice(&(c.len() as i32).to_le_bytes());
        body.extend(c);
    }
    // The header's size does not depend on the data-table position's value, so build it
    // once to learn where packets start.
    let header = |pos: i64| {
        let mut fbb = FlatBufferBuilder::new();
        let info = fbb.create_string(xml);
        let t = fbb.start_table();
        fbb.push_slot_always::<i32>(4, code);
        fbb.push_slot_always::<i64>(6, pos);
        fbb.push_slot_always(8, info);
        let root = fbb.end_table(t);
        fbb.finish_size_prefixed(root, Some("IOHE"));
        fbb.finished_data().to_vec()
    };
    let start = 14 + header(0).len();
    let pos = table.map_or(-1, |_| (start + body.len()) as i64);
    let mut out = b"#!AER-DAT4.0\r\n".to_vec();
    out.extend(header(pos));
    out.extend(body);
    if let Some(t) = table {
        out.extend_from_slice(t);
    }
    out
}

/// Declares stream 1 as IMU data and stream 4 as events, without a sensor size.
const XML: &str = r#"<dv version="2.0"><node name="outInfo" path="/outInfo/">
<node name="1" path="/outInfo/1/"><attr key="typeIdentifier" type="string">IMUS</attr></node>
<node name="4" path="/outInfo/4/"><attr key="typeIdentifier" type="string">EVTS</attr>
<node name="info" path="/outInfo/4/info/"><attr key="source" type="string">test</attr></node>
</node></node></dv>"#;

#[test]
fn hand_built_files_skip_other_streams_and_stop_at_the_data_table() {
    let dir = tempfile::tempdir().unwrap();
    let a = evts_packet(&[(5, 3, 4, true), (6, 10, 0, false)]);
    let b = evts_packet(&[(9, 0, 20, true)]);
    let imu = vec![0xAB; 40]; // never decompressed or parsed: any bytes will do
    for code in [0, 1] {
        let packets = [(4, a.clone()), (1, imu.clone()), (4, b.clone())];
        // The data table is garbage here: the reader must stop in front of it.
        let bytes = hand_file(code, XML, &packets, Some(b"\x04\x22\x4d\x18 data table"));
        let p = put(dir.path(), "hand.aedat4", &bytes);
        let ev = read_aedat4(&p).unwrap();
        assert_eq!(ev.t, vec![5, 6, 9]);
        assert_eq!(ev.x, vec![3, 10, 0]);
        assert_eq!(ev.y, vec![4, 0, 20]);
        assert_eq!(ev.p, vec![1, -1, 1]);
        // No sizeX/sizeY: the sensor is the largest coordinates plus one.
        assert_eq!(ev.sensor, (11, 21));
    }

    let check = |name: &str, bytes: &[u8], needle: &str| {
        let p = put(dir.path(), name, bytes);
        let err = err_of(read_aedat4(&p));
        assert!(err.contains(name) && err.contains(needle), "{name}: {err}");
    };
    // ZSTD is refused by name; unknown codes too.
    check(
        "zstd.aedat4",
        &hand_file(3, XML, &[(4, a.clone())], None),
        "ZSTD",
    );
    check("zstdh.aedat4", &hand_file(4, XML, &[], None), "ZSTD");
    check(
        "code9.aedat4",
        &hand_file(9, XML, &[], None),
        "compression type 9",
    );
    // No EVTS stream, an undeclared stream id, a negative coordinate, a wrong identifier.
    let imu_only = r#"<dv><node name="outInfo"><node name="1"><attr key="typeIdentifier">IMUS</attr></node></node></dv>"#;
    check(
        "noevts.aedat4",
        &hand_file(0, imu_only, &[], None),
        "no event (EVTS) stream",
    );
    check(
        "undeclared.aedat4",
        &hand_file(1, XML, &[(7, a.clone())], None),
        "stream 7",
    );
    let neg = evts_packet(&[(1, -2, 0, true)]);
    check(
        "neg.aedat4",
        &hand_file(1, XML, &[(4, neg)], None),
        "negative",
    );
    let mut wrong = a.clone();
    wrong[8..12].copy_from_slice(b"FRME");
    check(
        "ident.aedat4",
        &hand_file(0, XML, &[(4, wrong)], None),
        "EVTS",
    );
    // A declared size smaller than the events.
    let small = XML.replace(
        r#"<attr key="source" type="string">test</attr>"#,
        r#"<attr key="sizeX" type="int">4</attr><attr key="sizeY" type="int">30</attr>"#,
    );
    check(
        "small.aedat4",
        &hand_file(0, &small, &[(4, a.clone())], None),
        "outside",
    );
    let neg = small.replace(">4<", ">-4<");
    check(
        "negsize.aedat4",
        &hand_file(0, &neg, &[], None),
        "sizeX '-4'",
    );
    // A declared width of 0 reads without events and refuses any event.
    let zero = small.replace(">4<", ">0<");
    let p = put(dir.path(), "zero.aedat4", &hand_file(0, &zero, &[], None));
    assert_eq!(read_aedat4(&p).unwrap().sensor, (0, 30));
    check(
        "zero2.aedat4",
        &hand_file(0, &zero, &[(4, a.clone())], None),
        "outside",
    );
}

#[test]
fn truncated_and_corrupted_copies_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = encode_aedat4(&known(), Aedat4Compression::Lz4).unwrap();
    let start = parse_aedat4_header(&bytes, Path::new("x"))
        .unwrap()
        .data_start;
    let check = |name: &str, bytes: &[u8], needle: &str| {
        let p = put(dir.path(), name, bytes);
        let err = err_of(read_events(&p));
        assert!(err.contains(name) && err.contains(needle), "{name}: {err}");
    };
    check("magic.aedat4", &bytes[..16], "truncated header");
    check("head.aedat4", &bytes[..start - 3], "truncated header");
    check(
        "phead.aedat4",
        &bytes[..start + 5],
        "truncated packet header",
    );
    check("body.aedat4", &bytes[..bytes.len() - 1], "truncated packet");
    // The IOHeader's root offset pointed past the end; a flipped byte inside the LZ4 frame.
    let mut root = bytes.clone();
    root[18..22].copy_from_slice(&0xFFFFu32.to_le_bytes());
    check("root.aedat4", &root, "IOHeader");
    let mut frame = bytes.clone();
    frame[start + 8] ^= 0xFF; // the LZ4 magic number
    check("frame.aedat4", &frame, "LZ4");
    // A negative packet size.
    let mut size = bytes.clone();
    size[start + 4..start + 8].copy_from_slice(&(-8i32).to_le_bytes());
    check("size.aedat4", &size, "size -8");

    // Cuts of the shared sample: in the header, mid-packet, and just before the data table
    // (whose recorded position then lies past the end).
    if let Some(samples) = event_samples() {
        let s = std::fs::read(samples.join("sample.aedat4")).unwrap();
        for cut in [20, 2000, 2400, 500_000, 945_243 - 1] {
            let p = put(dir.path(), "cut.aedat4", &s[..cut]);
            let err = err_of(read_events(&p));
            assert!(err.contains("cut.aedat4"), "cut at {cut}: {err}");
        }
        // The data table is an index the reader does not need: a cut inside it still reads.
        let p = put(dir.path(), "cut.aedat4", &s[..s.len() - 1]);
        assert_eq!(read_aedat4(&p).unwrap().len(), 111_954);
        // Every byte flipped at a stride through the first packets: an error or events,
        // never a panic.
        for at in (0..20_000).step_by(331) {
            let mut c = s.clone();
            c[at] ^= 0x5A;
            let _ = parse_aedat4(&c, Path::new("flip.aedat4"));
        }
    }
}
