//! A text corpus split into a training part and a held-out tail, tokenized once, with random
//! training windows drawn from the training part.

use std::path::{Path, PathBuf};

use rand::Rng;

use super::tokenizer::Tokenizer;
use crate::error::{Error, Result};

/// A tokenized corpus: the first part trains, the last `held_out` fraction evaluates.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// Where the text came from.
    pub path: PathBuf,
    /// Token ids of the training part.
    pub train: Vec<u32>,
    /// Token ids of the held-out part.
    pub held_out: Vec<u32>,
    /// Characters in the training part.
    pub train_chars: usize,
    /// Characters in the held-out part (the denominator of bits per character).
    pub held_out_chars: usize,
}

/// Reads a UTF-8 text file, naming it in any error.
pub fn read_text(path: impl AsRef<Path>) -> Result<String> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    String::from_utf8(bytes).map_err(|e| {
        Error::format(
            path,
            format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// Splits `text` at a character boundary so that the last `fraction` of its characters form
/// the second part.
pub fn split_tail(text: &str, fraction: f64) -> (&str, &str) {
    let chars = text.chars().count();
    let keep = chars - ((chars as f64 * fraction).round() as usize).min(chars);
    let at = text.char_indices().nth(keep).map_or(text.len(), |(i, _)| i);
    text.split_at(at)
}

impl Corpus {
    /// Tokenizes `text` read from `path`, holding out its last `held_out` fraction (0..1).
    pub fn new(
        path: impl AsRef<Path>,
        text: &str,
        tokenizer: &Tokenizer,
        held_out: f64,
    ) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if !(0.0..1.0).contains(&held_out) {
            return Err(Error::invalid(
                "held-out fraction",
                format!("{held_out} (must be in [0, 1))"),
            ));
        }
        let (train_text, test_text) = split_tail(text, held_out);
        let train = tokenizer
            .encode(train_text)
            .map_err(|e| Error::format(&path, e.to_string()))?;
        let held_out_ids = tokenizer
            .encode(test_text)
            .map_err(|e| Error::format(&path, e.to_string()))?;
        Ok(Self {
            path,
            train,
            held_out: held_out_ids,
            train_chars: train_text.chars().count(),
            held_out_chars: test_text.chars().count(),
        })
    }

    /// `batch` random windows of `len + 1` training tokens, as inputs (first `len`) and
    /// targets (last `len`), both row-major `[batch, len]`.
    pub fn sample_windows(
        &self,
        rng: &mut impl Rng,
        batch: usize,
        len: usize,
    ) -> Result<(Vec<u32>, Vec<u32>)> {
        if self.train.len() < len + 1 {
            return Err(Error::invalid(
                "sequence length",
                format!(
                    "{len} needs at least {} training tokens; {} has {}",
                    len + 1,
                    self.path.display(),
                    self.train.len()
                ),
            ));
        }
        let (mut xs, mut ys) = (
            Vec::with_capacity(batch * len),
            Vec::with_capacity(batch * len),
        );
        for _ in 0..batch {
            let start = rng.random_range(0..self.train.len() - len);
            xs.extend_from_slice(&self.train[start..start + len]);
            ys.extend_from_slice(&self.train[start + 1..start + len + 1]);
        }
        Ok((xs, ys))
    }
}

/// Cuts `tokens` into `streams` contiguous pieces of equal length (dropping the remainder), so
/// a recurrent model can read each piece in order with its state carried: returns the pieces
/// row-major `[streams, len]` and `len`. Fewer streams are used when the text is short.
pub fn contiguous_streams(tokens: &[u32], streams: usize) -> (Vec<u32>, usize, usize) {
    let streams = streams.clamp(1, tokens.len().max(1));
    let len = tokens.len() / streams;
    (tokens[..streams * len].to_vec(), streams, len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn the_tail_is_held_out_at_a_character_boundary() {
        let (a, b) = split_tail("abcdéfghij", 0.1);
        assert_eq!((a, b), ("abcdéfghi", "j"));
        let (a, b) = split_tail("ééééé", 0.4);
        assert_eq!((a, b), ("ééé", "éé"));
    }

    #[test]
    fn windows_are_shifted_by_one_and_inside_the_training_part() {
        let text = "abcdefghijklmnopqrstuvwxyz".repeat(4);
        let tok = Tokenizer::chars_from_text(&text).unwrap();
        let c = Corpus::new("t.txt", &text, &tok, 0.25).unwrap();
        assert_eq!((c.train.len(), c.held_out.len()), (78, 26));
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let (x, y) = c.sample_windows(&mut rng, 3, 5).unwrap();
        assert_eq!(x.len(), 15);
        for i in 0..15 {
            assert_eq!((x[i] + 1) % 26, y[i]);
        }
        assert!(c.sample_windows(&mut rng, 1, 200).is_err());
        assert!(Corpus::new("t.txt", &text, &tok, 1.0).is_err());
    }

    #[test]
    fn streams_cover_the_tokens_in_order() {
        let t: Vec<u32> = (0..10).collect();
        let (s, n, len) = contiguous_streams(&t, 3);
        assert_eq!((n, len), (3, 3));
        assert_eq!(s, [0, 1, 2, 3, 4, 5, 6, 7, 8]);
    }
}
