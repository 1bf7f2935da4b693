//! One memory image as `$readmemh` text: words of a fixed width, one per line, most
//! significant hex digit first; read with `@addr` directives, comments and `_` separators.

/// One memory's file name, word width in bits and address space in words.
pub(super) struct Spec {
    pub(super) file: &'static str,
    pub(super) width: usize,
    pub(super) capacity: usize,
}

/// One memory's contents: words of `width` bits, 64 to a limb, least significant limb first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sram {
    width: usize,
    words: Vec<Vec<u64>>,
}

impl Sram {
    /// `depth` zero words of `width` bits.
    pub fn new(width: usize, depth: usize) -> Self {
        Sram {
            width,
            words: vec![vec![0; width.div_ceil(64)]; depth],
        }
    }

    /// Bits per word.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Words held.
    pub fn depth(&self) -> usize {
        self.words.len()
    }

    /// `len` bits (at most 64) of word `addr` from bit `lo` (zero outside the memory).
    pub fn field(&self, addr: usize, lo: usize, len: usize) -> u64 {
        let Some(word) = self.words.get(addr) else {
            return 0;
        };
        (0..len).fold(0, |acc, k| {
            let b = lo + k;
            let bit = word.get(b / 64).map_or(0, |limb| limb >> (b % 64) & 1);
            acc | bit << k
        })
    }

    pub(super) fn set_field(&mut self, addr: usize, lo: usize, len: usize, value: u64) {
        let word = &mut self.words[addr];
        for k in 0..len {
            let b = lo + k;
            let mask = 1u64 << (b % 64);
            if value >> k & 1 == 1 {
                word[b / 64] |= mask;
            } else {
                word[b / 64] &= !mask;
            }
        }
    }

    /// The `$readmemh` text: one word per line, `width / 4` hex digits, most significant first.
    pub fn to_hex(&self) -> String {
        let digits = self.width.div_ceil(4);
        let mut out = String::with_capacity(self.words.len() * (digits + 1));
        for word in &self.words {
            for n in (0..digits).rev() {
                let nibble = word[n / 16] >> ((n % 16) * 4) & 0xf;
                out.push(char::from_digit(nibble as u32, 16).unwrap_or('0'));
            }
            out.push('\n');
        }
        out
    }

    /// Reads `$readmemh` text (words separated by white space, `@addr` directives, `//` and
    /// `/* */` comments, `_` separators) into a memory of `capacity` words at most; words
    /// `0..need` must all be given.
    pub(super) fn parse_hex(
        text: &str,
        spec: &Spec,
        need: usize,
    ) -> std::result::Result<Sram, String> {
        let limbs = spec.width.div_ceil(64);
        let digits = spec.width.div_ceil(4);
        let mut words: Vec<Vec<u64>> = Vec::new();
        let mut given: Vec<bool> = Vec::new();
        let mut addr = 0usize;
        for (n, line) in strip_comments(text)?.lines().enumerate() {
            let at = |msg: String| format!("line {}: {msg}", n + 1);
            for token in line.split_whitespace() {
                if let Some(hex) = token.strip_prefix('@') {
                    addr = usize::from_str_radix(hex, 16)
                        .ok()
                        .filter(|&a| a < spec.capacity)
                        .ok_or_else(|| at(format!("bad address {token:?}")))?;
                    continue;
                }
                if addr >= spec.capacity {
                    return Err(at(format!("more than {} words", spec.capacity)));
                }
                let mut word = vec![0u64; limbs];
                let clean: Vec<char> = token.chars().filter(|&c| c != '_').collect();
                let significant = clean.iter().skip_while(|&&c| c == '0').count();
                if clean.is_empty() || significant > digits {
                    return Err(at(format!(
                        "word {addr} {:?} is not 1 to {digits} hex digits",
                        cut(token)
                    )));
                }
                for (k, c) in clean.iter().rev().take(digits).enumerate() {
                    let v = c.to_digit(16).ok_or_else(|| {
                        at(format!("word {addr} {:?} has a non-hex digit", cut(token)))
                    })?;
                    word[k / 16] |= u64::from(v) << ((k % 16) * 4);
                }
                if addr >= words.len() {
                    words.resize(addr + 1, vec![0; limbs]);
                    given.resize(addr + 1, false);
                }
                words[addr] = word;
                given[addr] = true;
                addr += 1;
            }
        }
        if let Some(missing) = (0..need).find(|&a| !given.get(a).copied().unwrap_or(false)) {
            return Err(format!("word {missing} is missing ({need} words needed)"));
        }
        words.resize(need.max(words.len()), vec![0; limbs]);
        Ok(Sram {
            width: spec.width,
            words,
        })
    }
}

/// A token cut to 24 characters for messages.
fn cut(token: &str) -> String {
    token.chars().take(24).collect()
}

/// The text with `//` and `/* */` comments blanked (newlines kept, so line numbers hold).
fn strip_comments(text: &str) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let line_c = rest.find("//");
        let block_c = rest.find("/*");
        match (line_c, block_c) {
            (Some(i), b) if b.is_none_or(|b| i < b) => {
                out.push_str(&rest[..i]);
                rest = &rest[i..];
                rest = &rest[rest.find('\n').unwrap_or(rest.len())..];
            }
            (_, Some(b)) => {
                out.push_str(&rest[..b]);
                let end = rest[b + 2..]
                    .find("*/")
                    .ok_or_else(|| "unterminated /* comment".to_string())?;
                let comment = &rest[b..b + 2 + end + 2];
                out.extend(comment.chars().filter(|&c| c == '\n'));
                out.push(' ');
                rest = &rest[b + 2 + end + 2..];
            }
            _ => {
                out.push_str(rest);
                rest = "";
            }
        }
    }
    Ok(out)
}
