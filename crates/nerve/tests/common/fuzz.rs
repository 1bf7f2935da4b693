//! The seeded no-panic loop shared by the reader tests: valid files are cut short and have bytes
//! overwritten, inserted or deleted by a seeded RNG, and every reader must return `Ok` or an
//! error naming the file, never panic. (The cargo-fuzz targets in `fuzz/` run the same checks
//! without bounds.)

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Accepted and refused inputs of a no-panic loop.
#[derive(Debug, Default)]
pub struct Tally {
    /// Inputs a reader accepted.
    pub ok: usize,
    /// Inputs a reader refused with an error.
    pub err: usize,
}

impl Tally {
    /// Runs `read` on input `case` (`bytes`), failing the test if it panics or if its error
    /// names none of `names`, and counts the outcome.
    pub fn read<T>(
        &mut self,
        case: usize,
        bytes: &[u8],
        names: &[&str],
        read: impl FnOnce() -> nerve::Result<T>,
    ) {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)) {
            Ok(Ok(_)) => self.ok += 1,
            Ok(Err(e)) => {
                let msg = e.to_string();
                assert!(
                    names.iter().any(|n| msg.contains(n)),
                    "case {case}: error names none of {names:?}: {msg}"
                );
                self.err += 1;
            }
            Err(_) => panic!(
                "reader panicked on case {case}: {:?}",
                String::from_utf8_lossy(bytes)
            ),
        }
    }
}

/// Up to 63 random bytes.
pub fn noise(rng: &mut StdRng) -> Vec<u8> {
    let len = rng.random_range(0..64);
    (0..len).map(|_| rng.random()).collect()
}

/// `b` cut at a random length.
pub fn truncate(rng: &mut StdRng, b: &mut Vec<u8>) {
    b.truncate(rng.random_range(0..=b.len()));
}

/// Up to two random bytes of `b` overwritten.
pub fn overwrite(rng: &mut StdRng, b: &mut [u8]) {
    for _ in 0..rng.random_range(0..3) {
        if !b.is_empty() {
            let i = rng.random_range(0..b.len());
            b[i] = rng.random();
        }
    }
}

/// A damaged copy of `seed`: cut at a random length (every other case), then up to four
/// bytes overwritten, inserted or deleted.
pub fn mutate(rng: &mut StdRng, seed: &[u8], case: usize) -> Vec<u8> {
    let mut b = seed.to_vec();
    if case % 2 == 1 {
        b.truncate(rng.random_range(0..=b.len()));
    }
    for _ in 0..rng.random_range(1..=4) {
        if b.is_empty() {
            b.push(rng.random());
            continue;
        }
        let i = rng.random_range(0..b.len());
        match rng.random_range(0..4) {
            0 => b.insert(i, rng.random()),
            1 => {
                b.remove(i);
            }
            // Digits and JSON punctuation reach deeper into the text formats than noise.
            2 => b[i] = b"0123456789{}[]\":,-e."[rng.random_range(0..20)],
            _ => b[i] = rng.random(),
        }
    }
    b
}

/// Runs `read` on `cases` mutations of the seeds (and the seeds themselves), requiring no
/// panic and errors that contain `names`' first match; returns `(accepted, refused)`.
pub fn no_panic_loop(
    rng_seed: u64,
    seeds: &[Vec<u8>],
    cases: usize,
    names: &[&str],
    mut read: impl FnMut(&[u8]) -> nerve::Result<()>,
) -> (usize, usize) {
    let mut rng = StdRng::seed_from_u64(rng_seed);
    let mut tally = Tally::default();
    for case in 0..cases + seeds.len() {
        let bytes = match case.checked_sub(cases) {
            Some(i) => seeds[i].clone(),
            None => mutate(&mut rng, &seeds[case % seeds.len()], case),
        };
        tally.read(case, &bytes, names, || read(&bytes));
    }
    println!("{names:?}: {} accepted, {} refused", tally.ok, tally.err);
    (tally.ok, tally.err)
}
