//! Tokenizers: a character vocabulary built from a corpus, or any Hugging Face `tokenizer.json`
//! (through the `tokenizers` crate). Both are stored in a model directory beside its weights.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// File name of a character vocabulary in a model directory.
pub const CHARS_FILE: &str = "chars.json";
/// File name of a Hugging Face tokenizer in a model directory.
pub const HF_FILE: &str = "tokenizer.json";
/// File name of the GPT-NeoX tokenizer released with SpikeGPT (a Hugging Face tokenizer).
pub const RELEASED_BPE_FILE: &str = "20B_tokenizer.json";
/// File names of the character vocabularies SpikeGPT's training script writes (`vocab.json`)
/// and releases (`vocab_book.json`): JSON `{"0": "\n", "1": ...}`, id to character, UTF-16.
pub const RELEASED_CHAR_FILES: [&str; 2] = ["vocab.json", "vocab_book.json"];
/// File name of a SentencePiece model, which this crate does not read directly.
pub const SENTENCEPIECE_FILE: &str = "tokenizer.model";

/// The on-disk form of a character vocabulary.
#[derive(Serialize, Deserialize)]
struct CharsFile {
    format: String,
    chars: Vec<char>,
}

const CHARS_FORMAT: &str = "nerve-chars-v1";

/// Maps text to token ids and back.
pub enum Tokenizer {
    /// One token per Unicode character of a fixed alphabet (sorted), as char-level models use.
    Chars {
        /// The alphabet; token id = index.
        chars: Vec<char>,
        /// Reverse lookup.
        index: HashMap<char, u32>,
    },
    /// A Hugging Face tokenizer (BPE, WordPiece, Unigram, ...) read from `tokenizer.json`.
    HuggingFace(Box<tokenizers::Tokenizer>),
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({} tokens)", self.describe(), self.vocab_size())
    }
}

impl Tokenizer {
    /// A character tokenizer whose alphabet is every distinct character of `text`.
    pub fn chars_from_text(text: &str) -> Result<Self> {
        let mut chars: Vec<char> = text.chars().collect();
        chars.sort_unstable();
        chars.dedup();
        if chars.is_empty() {
            return Err(Error::invalid(
                "text",
                "is empty; no characters to build a vocabulary",
            ));
        }
        Ok(Self::from_chars(chars))
    }

    fn from_chars(chars: Vec<char>) -> Self {
        let index = chars
            .iter()
            .enumerate()
            .map(|(i, &c)| (c, i as u32))
            .collect();
        Tokenizer::Chars { chars, index }
    }

    /// Reads a Hugging Face `tokenizer.json`.
    pub fn from_hf_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if !path.exists() {
            return Err(Error::io(
                path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let bad = |e: &dyn std::fmt::Display| {
            Error::format(path, format!("not a Hugging Face tokenizer.json: {e}"))
        };
        // The tokenizers crate panics (an `expect` in its decoder deserializer) on some JSON
        // syntax errors, so the syntax is checked here first.
        serde_json::from_str::<serde::de::IgnoredAny>(&text).map_err(|e| bad(&e))?;
        let tok: tokenizers::Tokenizer = text.parse().map_err(|e| bad(&e))?;
        // The crate accepts two tokens under one id, but decodes only one of them and saves
        // a file it cannot read back; such a vocabulary is corrupt.
        let mut by_id: HashMap<u32, String> = HashMap::new();
        for (token, id) in tok.get_vocab(false) {
            if let Some(other) = by_id.insert(id, token.clone()) {
                let (a, b) = if other < token {
                    (other, token)
                } else {
                    (token, other)
                };
                return Err(bad(&format!(
                    "tokens {a:?} and {b:?} share the id {id} in the model's vocabulary"
                )));
            }
        }
        Ok(Tokenizer::HuggingFace(Box::new(tok)))
    }

    /// Loads the tokenizer stored in a model directory: `tokenizer.json`, else `chars.json`, else
    /// SpikeGPT's released `20B_tokenizer.json`, `vocab.json` or `vocab_book.json`.
    /// A directory holding only a SentencePiece `tokenizer.model` gets an error explaining how
    /// to convert it.
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let hf = dir.join(HF_FILE);
        if hf.exists() {
            return Self::from_hf_file(hf);
        }
        let chars = dir.join(CHARS_FILE);
        if chars.exists() {
            return Self::load_chars(&chars);
        }
        let released = dir.join(RELEASED_BPE_FILE);
        if released.exists() {
            return Self::from_hf_file(released);
        }
        for name in RELEASED_CHAR_FILES {
            let path = dir.join(name);
            if path.exists() {
                return Self::from_index_chars_file(&path);
            }
        }
        if dir.join(SENTENCEPIECE_FILE).exists() {
            return Err(Error::format(
                dir.join(SENTENCEPIECE_FILE),
                format!(
                    "a SentencePiece model is not read directly; convert it once to {HF_FILE} with \
                     Python: `pip install transformers sentencepiece protobuf && python -c \
                     \"from transformers import AutoTokenizer; \
                     AutoTokenizer.from_pretrained('{d}').save_pretrained('{d}')\"` \
                     (this writes {d}/{HF_FILE})",
                    d = dir.display()
                ),
            ));
        }
        Err(Error::format(
            dir,
            format!(
                "no tokenizer: expected {HF_FILE}, {CHARS_FILE}, {RELEASED_BPE_FILE} or {} in \
                 the model directory",
                RELEASED_CHAR_FILES.join(" or ")
            ),
        ))
    }

    /// Reads a SpikeGPT character vocabulary: a JSON object from ids `"0"`..`"n-1"` to single
    /// characters, UTF-16 with a byte-order mark as the released code writes it (UTF-8 is
    /// accepted too).
    pub fn from_index_chars_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let bad = |msg: String| {
            Error::format(path, format!("not a SpikeGPT character vocabulary: {msg}"))
        };
        let utf16 = |bytes: &[u8], le: bool| -> Result<String> {
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| {
                    if le {
                        u16::from_le_bytes([c[0], c[1]])
                    } else {
                        u16::from_be_bytes([c[0], c[1]])
                    }
                })
                .collect();
            String::from_utf16(&units).map_err(|_| bad("invalid UTF-16".into()))
        };
        let text = match bytes.as_slice() {
            [0xFF, 0xFE, rest @ ..] => utf16(rest, true)?,
            [0xFE, 0xFF, rest @ ..] => utf16(rest, false)?,
            [0xEF, 0xBB, 0xBF, rest @ ..] => {
                String::from_utf8(rest.to_vec()).map_err(|_| bad("invalid UTF-8".into()))?
            }
            _ => String::from_utf8(bytes)
                .map_err(|_| bad("neither UTF-16 with a byte-order mark nor UTF-8".into()))?,
        };
        let map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let mut chars = vec![None; map.len()];
        for (key, value) in &map {
            let id: usize = key
                .parse()
                .ok()
                .filter(|&i| i < map.len())
                .ok_or_else(|| bad(format!("key {key:?} is not an id below {}", map.len())))?;
            let mut it = value.as_str().unwrap_or_default().chars();
            match (it.next(), it.next()) {
                (Some(c), None) => chars[id] = Some(c),
                _ => return Err(bad(format!("id {id} maps to {value}, not one character"))),
            }
        }
        let chars: Vec<char> = chars.into_iter().flatten().collect();
        let mut distinct = chars.clone();
        distinct.sort_unstable();
        distinct.dedup();
        if chars.len() != map.len() || distinct.len() != chars.len() || chars.is_empty() {
            return Err(bad(
                "ids repeat, leave gaps or map two ids to one character".into(),
            ));
        }
        Ok(Self::from_chars(chars))
    }

    fn load_chars(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let file: CharsFile = serde_json::from_str(&text)
            .map_err(|e| Error::format(path, format!("not a character vocabulary: {e}")))?;
        if file.format != CHARS_FORMAT {
            return Err(Error::format(
                path,
                format!("format '{}', expected '{CHARS_FORMAT}'", file.format),
            ));
        }
        let mut sorted = file.chars.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != file.chars.len() || file.chars.is_empty() {
            return Err(Error::format(
                path,
                "the alphabet is empty or repeats a character",
            ));
        }
        Ok(Self::from_chars(file.chars))
    }

    /// Writes this tokenizer into a model directory (`chars.json` or `tokenizer.json`);
    /// returns the file written.
    pub fn save_dir(&self, dir: impl AsRef<Path>) -> Result<PathBuf> {
        let dir = dir.as_ref();
        match self {
            Tokenizer::Chars { chars, .. } => {
                let path = dir.join(CHARS_FILE);
                let file = CharsFile {
                    format: CHARS_FORMAT.into(),
                    chars: chars.clone(),
                };
                let text = serde_json::to_string(&file).expect("alphabet serialises");
                crate::fsutil::write_atomic(&path, text.as_bytes())?;
                Ok(path)
            }
            Tokenizer::HuggingFace(tok) => {
                let path = dir.join(HF_FILE);
                let text = tok.to_string(false).map_err(|e| {
                    Error::format(&path, format!("cannot serialise tokenizer: {e}"))
                })?;
                crate::fsutil::write_atomic(&path, text.as_bytes())?;
                Ok(path)
            }
        }
    }

    /// Number of token ids.
    pub fn vocab_size(&self) -> usize {
        match self {
            Tokenizer::Chars { chars, .. } => chars.len(),
            Tokenizer::HuggingFace(tok) => tok.get_vocab_size(true),
        }
    }

    /// The token that ends a text, if a Hugging Face tokenizer names one (`<|endoftext|>`,
    /// `</s>`, `<eos>`, `<|end_of_text|>`); character vocabularies have none.
    pub fn end_of_text(&self) -> Option<u32> {
        match self {
            Tokenizer::Chars { .. } => None,
            Tokenizer::HuggingFace(tok) => ["<|endoftext|>", "</s>", "<eos>", "<|end_of_text|>"]
                .iter()
                .find_map(|t| tok.token_to_id(t)),
        }
    }

    /// A short description for reports.
    pub fn describe(&self) -> String {
        match self {
            Tokenizer::Chars { chars, .. } => format!("characters ({} symbols)", chars.len()),
            Tokenizer::HuggingFace(tok) => {
                format!(
                    "Hugging Face tokenizer ({} tokens)",
                    tok.get_vocab_size(true)
                )
            }
        }
    }

    /// Token ids of `text` (no special tokens added); a character outside a character
    /// vocabulary is an error naming it.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        match self {
            Tokenizer::Chars { index, .. } => text
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    index.get(&c).copied().ok_or_else(|| {
                        Error::invalid(
                            "text",
                            format!(
                                "character {c:?} at position {i} is not in the model's vocabulary"
                            ),
                        )
                    })
                })
                .collect(),
            Tokenizer::HuggingFace(tok) => tok
                .encode(text, false)
                .map(|e| e.get_ids().to_vec())
                .map_err(|e| Error::invalid("text", format!("tokenizer failed: {e}"))),
        }
    }

    /// The text of `ids`; an id outside the vocabulary is an error.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        match self {
            Tokenizer::Chars { chars, .. } => ids
                .iter()
                .map(|&id| {
                    chars.get(id as usize).copied().ok_or_else(|| {
                        Error::invalid(
                            "token id",
                            format!("{id} is outside the vocabulary of {}", chars.len()),
                        )
                    })
                })
                .collect(),
            Tokenizer::HuggingFace(tok) => tok
                .decode(ids, false)
                .map_err(|e| Error::invalid("token ids", format!("tokenizer failed: {e}"))),
        }
    }
}

/// Decodes a growing token sequence and hands out only the new text, so generation can be
/// streamed even when one character spans several tokens. Each push decodes only the last
/// couple of tokens (as Hugging Face's text-generation-inference does), not the whole output.
#[derive(Debug, Clone, Default)]
pub struct IncrementalDecoder {
    ids: Vec<u32>,
    /// Start of the tokens decoded for context (a tokenizer may print a token differently at
    /// the start of a text).
    prefix: usize,
    /// End of the tokens whose text was handed out.
    read: usize,
}

impl IncrementalDecoder {
    /// A decoder for output that follows the prompt (whose tokens are not printed).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one token; returns the text that became final.
    pub fn push(&mut self, tokenizer: &Tokenizer, id: u32) -> Result<String> {
        self.ids.push(id);
        let before = tokenizer.decode(&self.ids[self.prefix..self.read])?;
        let text = tokenizer.decode(&self.ids[self.prefix..])?;
        // An incomplete multi-byte character decodes to U+FFFD at the end; wait for the rest.
        if text.len() <= before.len() || text.ends_with('\u{FFFD}') {
            return Ok(String::new());
        }
        let new = text.get(before.len()..).unwrap_or_default().to_string();
        self.prefix = self.read;
        self.read = self.ids.len();
        Ok(new)
    }
}

/// An [`IncrementalDecoder`] bound to its tokenizer.
pub struct StreamDecoder<'a> {
    tokenizer: &'a Tokenizer,
    inner: IncrementalDecoder,
}

impl<'a> StreamDecoder<'a> {
    /// A decoder for output that follows the prompt (whose tokens are not printed).
    pub fn new(tokenizer: &'a Tokenizer) -> Self {
        Self {
            tokenizer,
            inner: IncrementalDecoder::new(),
        }
    }

    /// Adds one token; returns the text that became final.
    pub fn push(&mut self, id: u32) -> Result<String> {
        self.inner.push(self.tokenizer, id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chars_round_trip_and_reject_unknown_characters() {
        let tok = Tokenizer::chars_from_text("hello world").unwrap();
        assert_eq!(tok.vocab_size(), 8);
        let ids = tok.encode("low").unwrap();
        assert_eq!(tok.decode(&ids).unwrap(), "low");
        let err = tok.encode("lox").unwrap_err().to_string();
        assert!(err.contains("'x'") && err.contains("position 2"), "{err}");
        assert!(tok.decode(&[99]).is_err());
        let dir = tempfile::tempdir().unwrap();
        tok.save_dir(dir.path()).unwrap();
        let back = Tokenizer::load_dir(dir.path()).unwrap();
        assert_eq!(back.encode("hello").unwrap(), tok.encode("hello").unwrap());
    }

    #[test]
    fn sentencepiece_only_directory_explains_the_conversion() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(SENTENCEPIECE_FILE), b"\x0a\x03abc").unwrap();
        let err = Tokenizer::load_dir(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("save_pretrained") && err.contains("tokenizer.json"),
            "{err}"
        );
        let empty = tempfile::tempdir().unwrap();
        let err = Tokenizer::load_dir(empty.path()).unwrap_err().to_string();
        assert!(err.contains("no tokenizer"), "{err}");
    }

    #[test]
    fn hugging_face_tokenizer_json_loads_and_round_trips() {
        // A minimal WordLevel tokenizer in the tokenizer.json format.
        let json = r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],
            "normalizer":null,"pre_tokenizer":{"type":"Whitespace"},"post_processor":null,
            "decoder":null,"model":{"type":"WordLevel","vocab":{"[UNK]":0,"to":1,"be":2,"or":3,"not":4},
            "unk_token":"[UNK]"}}"#;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(HF_FILE), json).unwrap();
        let tok = Tokenizer::load_dir(dir.path()).unwrap();
        assert_eq!(tok.vocab_size(), 5);
        assert_eq!(
            tok.encode("to be or not to be").unwrap(),
            [1, 2, 3, 4, 1, 2]
        );
        let shared_id = json.replace(r#""not":4"#, r#""not":3"#);
        std::fs::write(dir.path().join(HF_FILE), shared_id).unwrap();
        let err = Tokenizer::load_dir(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("tokenizer.json")
                && err.contains(r#"tokens "not" and "or" share the id 3"#),
            "{err}"
        );
        std::fs::write(dir.path().join(HF_FILE), "{ not json").unwrap();
        let err = Tokenizer::load_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("tokenizer.json"), "{err}");
    }

    #[test]
    fn stream_decoder_prints_each_new_piece_once() {
        let tok = Tokenizer::chars_from_text("abc").unwrap();
        let mut s = StreamDecoder::new(&tok);
        let out: String = [0u32, 1, 2, 0]
            .iter()
            .map(|&i| s.push(i).unwrap())
            .collect();
        assert_eq!(out, "abca");
    }
}
