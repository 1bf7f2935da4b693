//! Text corpora, tokenizers and sampling for the language models.
