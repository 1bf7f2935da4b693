//! Target for PyTorch `.pth` state dicts: the zip archive and its pickle.

use std::path::Path;

use nerve::store::pth::{parse_pth, pickle};

use crate::check_err;

/// `.pth` bytes: an accepted file's tensors hold exactly as many values as their shapes say;
/// a refused one is named. The same bytes also go to the pickle interpreter alone, which
/// reaches its opcodes far more often than mutated zip archives do.
pub fn pth(data: &[u8]) {
    match parse_pth(data, Path::new("fuzz.pth")) {
        Ok(dict) => {
            for (name, t) in dict.iter() {
                assert_eq!(t.values.len(), t.shape.iter().product::<usize>(), "{name}");
            }
        }
        Err(e) => check_err(&e, "fuzz.pth"),
    }
    let _ = pickle::unpickle_with(data, |_| ());
}

/// The checked-in file written by `torch.save` and its pickle program alone.
pub fn pth_seeds() -> Vec<(String, Vec<u8>)> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/nerve/tests/lm/files/tiny_state_dict.pth");
    let Ok(bytes) = std::fs::read(file) else {
        return Vec::new();
    };
    let mut seeds = vec![("tiny_state_dict.pth".to_string(), bytes.clone())];
    if let Some(pkl) = data_pkl(&bytes) {
        seeds.push(("data.pkl".to_string(), pkl));
    }
    seeds
}

/// The `data.pkl` entry of a `.pth` archive.
fn data_pkl(bytes: &[u8]) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).ok()?;
    let mut entry = zip.by_name("tiny_state_dict/data.pkl").ok()?;
    let mut out = Vec::new();
    entry.read_to_end(&mut out).ok()?;
    Some(out)
}
