//! Text for the language models: tokenizers (characters or a Hugging Face `tokenizer.json`),
//! corpora split into training and held-out parts, random training windows, and sampling of
//! the next token (temperature, top-k, top-p).

pub mod corpus;
pub mod sample;
pub mod tokenizer;

pub use corpus::Corpus;
pub use sample::{Sampler, SamplerConfig};
pub use tokenizer::{IncrementalDecoder, Tokenizer};
