//! Stop strings over streamed text: text is handed out as soon as it cannot be the start of a
//! stop string, and a stop string itself is never sent.

/// Holds back the text that might begin a stop string.
#[derive(Debug, Clone, Default)]
pub struct StopFilter {
    stops: Vec<String>,
    held: String,
}

impl StopFilter {
    /// A filter for `stops` (none: text passes at once).
    pub fn new(stops: Vec<String>) -> Self {
        Self {
            stops,
            held: String::new(),
        }
    }

    /// Adds generated text; returns the text that is now safe to send and whether a stop
    /// string was found (the text after it is dropped).
    pub fn push(&mut self, text: &str) -> (String, bool) {
        self.held.push_str(text);
        let first_stop = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min();
        if let Some(at) = first_stop {
            self.held.truncate(at);
            return (std::mem::take(&mut self.held), true);
        }
        // Keep the longest tail that is a proper prefix of some stop string.
        let keep = self
            .held
            .char_indices()
            .map(|(i, _)| i)
            .find(|&i| {
                let tail = &self.held[i..];
                self.stops.iter().any(|s| s.starts_with(tail))
            })
            .unwrap_or(self.held.len());
        let rest = self.held.split_off(keep);
        (std::mem::replace(&mut self.held, rest), false)
    }

    /// The text still held back (sent when the completion ends for another reason).
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (String, bool) {
        let mut f = StopFilter::new(stops.iter().map(|s| s.to_string()).collect());
        let mut out = String::new();
        for p in pieces {
            let (text, stopped) = f.push(p);
            out.push_str(&text);
            if stopped {
                return (out, true);
            }
        }
        out.push_str(&f.finish());
        (out, false)
    }

    #[test]
    fn stop_strings_split_over_pieces_are_found_and_not_sent() {
        assert_eq!(run(&["\n\n"], &["ab", "c\n", "\nde"]), ("abc".into(), true));
        assert_eq!(run(&["END"], &["xE", "N", "y"]), ("xENy".into(), false));
        assert_eq!(run(&["END", "x"], &["aE", "Nx"]), ("aEN".into(), true));
        assert_eq!(run(&[], &["a", "b"]), ("ab".into(), false));
        assert_eq!(run(&["é!"], &["caf", "é", "!"]), ("caf".into(), true));
    }

    #[test]
    fn text_that_cannot_start_a_stop_is_sent_at_once() {
        let mut f = StopFilter::new(vec!["STOP".into()]);
        assert_eq!(f.push("hello S"), ("hello ".into(), false));
        assert_eq!(f.push("T"), (String::new(), false));
        assert_eq!(f.push("x"), ("STx".into(), false));
    }
}
