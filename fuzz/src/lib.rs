//! What the fuzz targets check, and the seed inputs they start from: event files here, IDX
//! data sets, checkpoints, model directories and tokenizers in [`loaders`], PyTorch `.pth` files
//! in [`pth`], the server's request bodies in [`completion`].
//!
//! Every target feeds arbitrary bytes to one reader and requires that it returns (never
//! panics, never reads out of bounds: cargo-fuzz builds with AddressSanitizer and debug
//! assertions), that errors name the source, and, where the library has a writer for the
//! format, that whatever was read survives being written and read again unchanged.
//!
//! Seeds are small valid files made with the library's own encoders (and, for AEDAT 2.0/3.1
//! and MAT, by hand). Each target's `init` writes them into `fuzz/corpus/<target>/` (the
//! default corpus directory of `cargo fuzz run`), so nothing binary is committed.

pub mod completion;
pub mod loaders;
pub mod pth;

use std::io::Write;
use std::path::Path;

pub use completion::completion_request;
pub use loaders::{checkpoint, hf_checkpoint, idx, nir, nq, openspike_case, recipe, tokenizer};
pub use pth::pth;

use nerve::data::events::{
    encode_aedat4, encode_nmnist, encode_prophesee, parse_aedat, parse_aedat4, parse_events,
    parse_nmnist, parse_prophesee, parse_stmnist, Aedat4Compression, EventFormat, Events,
};

/// File names the readers see; every error must name the one it was given.
const NAMES: [&str; 5] = ["fuzz", "fuzz.bin", "fuzz.dat", "fuzz.mat", "fuzz.aedat4"];

/// Requires a read error to name the file.
fn check_err(e: &nerve::Error, name: &str) {
    let msg = e.to_string();
    assert!(msg.contains(name), "error does not name {name}: {msg}");
}

/// N-MNIST: an accepted input is exactly what the writer produces for its events.
pub fn nmnist(data: &[u8]) {
    match parse_nmnist(data, Path::new("fuzz.bin")) {
        Ok(ev) => assert_eq!(encode_nmnist(&ev).expect("re-encode N-MNIST"), data),
        Err(e) => check_err(&e, "fuzz.bin"),
    }
}

/// Prophesee `.dat`: events read, written (header with the sensor size) and read again are
/// unchanged.
pub fn prophesee(data: &[u8]) {
    let path = Path::new("fuzz.dat");
    match parse_prophesee(data, path) {
        Ok(ev) => {
            let bytes = encode_prophesee(&ev).expect("re-encode .dat");
            assert_eq!(parse_prophesee(&bytes, path).expect("re-read .dat"), ev);
        }
        Err(e) => check_err(&e, "fuzz.dat"),
    }
}

/// ST-MNIST `.mat`: accepted events lie on the 10x10 taxel grid (checked by `Events::new`).
pub fn stmnist(data: &[u8]) {
    match parse_stmnist(data, Path::new("fuzz.mat")) {
        Ok(ev) => assert_eq!(ev.sensor, (10, 10)),
        Err(e) => check_err(&e, "fuzz.mat"),
    }
}

/// AEDAT 2.0 / 3.1 / 4.0 through `parse_aedat`; AEDAT 4.0 events also survive the writer.
pub fn aedat(data: &[u8]) {
    let path = Path::new("fuzz.aedat4");
    match parse_aedat(data, path) {
        Ok(ev) => {
            let fits = ev.sensor.0 <= i16::MAX as u16 && ev.sensor.1 <= i16::MAX as u16;
            if data.starts_with(b"#!AER-DAT4.0") && fits {
                for c in [Aedat4Compression::None, Aedat4Compression::Lz4] {
                    let bytes = encode_aedat4(&ev, c).expect("re-encode AEDAT 4.0");
                    assert_eq!(parse_aedat4(&bytes, path).expect("re-read AEDAT 4.0"), ev);
                }
            }
        }
        Err(e) => check_err(&e, "fuzz.aedat4"),
    }
}

/// Format detection: the first byte picks the file name (no extension, `.bin`, `.dat`,
/// `.mat`, `.aedat4`), the rest is the content.
pub fn events_auto(data: &[u8]) {
    let Some((&pick, content)) = data.split_first() else {
        return;
    };
    let name = NAMES[pick as usize % NAMES.len()];
    match parse_events(content, Path::new(name)) {
        Ok((format, ev)) => {
            if format == EventFormat::NMnist {
                assert_eq!(ev.sensor, (34, 34));
            }
        }
        Err(e) => check_err(&e, name),
    }
}

/// A few events on a `w`x`h` sensor, with times from `t0`.
fn events(w: u16, h: u16, t0: i64) -> Events {
    let n = 6;
    Events::new(
        (0..n).map(|i| (i * 5) as u16 % w).collect(),
        (0..n).map(|i| (i * 3) as u16 % h).collect(),
        (0..n as i64).map(|i| t0 + 37 * i).collect(),
        (0..n).map(|i| if i % 2 == 0 { 1 } else { -1 }).collect(),
        (w, h),
    )
    .expect("seed events are valid")
}

/// AEDAT 2.0 with a DVS128 chip line and three events.
fn aedat2() -> Vec<u8> {
    let mut out = b"#!AER-DAT2.0\r\n# AEChip: DVS128\r\n".to_vec();
    for (addr, t) in [(0x0101u32, 10u32), (0x7F00, 20), (0x3A3B, 30)] {
        out.extend_from_slice(&addr.to_be_bytes());
        out.extend_from_slice(&t.to_be_bytes());
    }
    out
}

/// AEDAT 3.1 with one polarity packet of two events and one special-event packet.
fn aedat3() -> Vec<u8> {
    let mut out = b"#!AER-DAT3.1\r\n#-Source 1: sizeX 64 sizeY 48\r\n#!END-HEADER\r\n".to_vec();
    let packet = |kind: u16, size: u32, n: u32| {
        let mut h = kind.to_le_bytes().to_vec();
        h.extend_from_slice(&1u16.to_le_bytes());
        for v in [size, 4, 0, n, n, n] {
            h.extend_from_slice(&v.to_le_bytes());
        }
        h
    };
    out.extend(packet(1, 8, 2));
    for (x, y, t, on) in [(3u32, 4u32, 100i32, 1u32), (63, 47, 200, 0)] {
        out.extend_from_slice(&((x << 17) | (y << 2) | (on << 1) | 1).to_le_bytes());
        out.extend_from_slice(&t.to_le_bytes());
    }
    out.extend(packet(0, 8, 1));
    out.extend_from_slice(&[7; 8]);
    out
}

/// One MAT v5 data element with its 8-byte padding.
fn mat_element(ty: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = ty.to_le_bytes().to_vec();
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    out.resize(out.len().div_ceil(8) * 8, 0);
    out
}

/// An ST-MNIST `.mat`: a 101x2 double `spiketrain`, stored plain or zlib-compressed.
fn stmnist_mat(compress: bool) -> Vec<u8> {
    let mut data = vec![0.0f64; 202];
    data[4] = 1.0;
    data[57] = -1.0;
    data[100] = 0.25;
    data[101 + 99] = 1.0;
    data[201] = 0.5;
    let mut m = mat_element(6, &[6, 0, 0, 0, 0, 0, 0, 0]);
    m.extend(mat_element(
        5,
        &[101i32, 2]
            .iter()
            .flat_map(|d| d.to_le_bytes())
            .collect::<Vec<_>>(),
    ));
    m.extend(mat_element(1, b"spiketrain"));
    m.extend(mat_element(
        9,
        &data
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<_>>(),
    ));
    let matrix = mat_element(14, &m);
    let mut out = b"MATLAB 5.0 MAT-file, nerve fuzz seed".to_vec();
    out.resize(124, b' ');
    out.extend_from_slice(&[0x00, 0x01, b'I', b'M']);
    if compress {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&matrix).expect("zlib in memory");
        let z = z.finish().expect("zlib in memory");
        out.extend_from_slice(&15u32.to_le_bytes());
        out.extend_from_slice(&(z.len() as u32).to_le_bytes());
        out.extend(z);
    } else {
        out.extend(matrix);
    }
    out
}

/// The seed files of `target`, as `(name, bytes)`.
pub fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let nm = encode_nmnist(&events(34, 34, 1000)).expect("N-MNIST seed");
    let dat = encode_prophesee(&events(120, 100, 0)).expect(".dat seed");
    let a4 = |c| encode_aedat4(&events(64, 48, 1 << 40), c).expect("AEDAT 4.0 seed");
    let all = vec![
        ("nmnist", nm),
        ("prophesee", dat),
        ("stmnist-plain", stmnist_mat(false)),
        ("stmnist-zlib", stmnist_mat(true)),
        ("aedat2", aedat2()),
        ("aedat3", aedat3()),
        ("aedat4-none", a4(Aedat4Compression::None)),
        ("aedat4-lz4", a4(Aedat4Compression::Lz4)),
    ];
    let keep: &[&str] = match target {
        "nmnist" => &["nmnist"],
        "prophesee" => &["prophesee"],
        "stmnist" => &["stmnist-plain", "stmnist-zlib"],
        "aedat" => &["aedat2", "aedat3", "aedat4-none", "aedat4-lz4"],
        _ => &[],
    };
    match target {
        "idx" => return loaders::idx_seeds(),
        "checkpoint" => return loaders::checkpoint_seeds(),
        "hf_checkpoint" => return loaders::hf_seeds(),
        "tokenizer" => return loaders::tokenizer_seeds(),
        "nq" => return loaders::nq_seeds(),
        "nir" => return loaders::nir_seeds(),
        "openspike_case" => return loaders::openspike_case_seeds(),
        "recipe" => return loaders::recipe_seeds(),
        "pth" => return pth::pth_seeds(),
        "completion_request" => return completion::completion_seeds(),
        _ => {}
    }
    if target == "events_auto" {
        // Each file behind every name selector, so detection by extension and by content
        // both start from valid inputs.
        let mut out = Vec::new();
        for (name, bytes) in &all {
            for pick in 0..NAMES.len() as u8 {
                let mut b = vec![pick];
                b.extend_from_slice(bytes);
                out.push((format!("{name}-{pick}"), b));
            }
        }
        return out;
    }
    all.into_iter()
        .filter(|(n, _)| keep.contains(n))
        .map(|(n, b)| (n.to_string(), b))
        .collect()
}

/// Writes `target`'s seeds into `fuzz/corpus/<target>/` (best effort: a read-only checkout
/// simply fuzzes without them).
pub fn write_seeds(target: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    for (name, bytes) in seeds(target) {
        let _ = std::fs::write(dir.join(format!("seed-{name}")), bytes);
    }
}
