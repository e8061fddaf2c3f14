//! User-written text as social accepts it: counted in Unicode scalar values (what a reader sees
//! as characters, not bytes), with no control characters and no bidirectional formatting
//! characters (which can make text display as something other than what it says).

/// Whether `c` reorders or isolates the text around it when displayed: the bidirectional
/// embeddings, overrides, isolates and marks.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Why a text is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextProblem {
    /// Nothing but white space.
    Empty,
    /// More characters than allowed.
    TooLong {
        /// Characters given.
        chars: usize,
        /// Characters allowed.
        max: usize,
    },
    /// A control or bidirectional formatting character, at this character position.
    Forbidden(usize),
}

/// Check `text`: at most `max` characters, not blank unless `blank_ok`, no control character
/// (line feeds only where `newlines` allows them) and no bidirectional formatting character.
pub fn check(text: &str, max: usize, blank_ok: bool, newlines: bool) -> Result<(), TextProblem> {
    let chars = text.chars().count();
    if chars > max {
        return Err(TextProblem::TooLong { chars, max });
    }
    if let Some(at) = text.chars().position(|c| (c.is_control() && !(newlines && c == '\n')) || is_bidi_control(c)) {
        return Err(TextProblem::Forbidden(at));
    }
    if !blank_ok && text.trim().is_empty() {
        return Err(TextProblem::Empty);
    }
    Ok(())
}

impl std::fmt::Display for TextProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => f.write_str("is empty"),
            Self::TooLong { chars, max } => write!(f, "has {chars} characters, more than {max}"),
            Self::Forbidden(at) => write!(f, "holds a control or bidirectional formatting character at position {at}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_are_counted_not_bytes_and_hidden_ones_are_refused() {
        assert_eq!(check("héllo wörld", 11, false, false), Ok(()));
        assert_eq!(check(&"é".repeat(500), 500, false, false), Ok(()));
        assert_eq!(check(&"é".repeat(501), 500, false, false), Err(TextProblem::TooLong { chars: 501, max: 500 }));
        assert_eq!(check("👩‍👩‍👧", 5, false, false), Ok(()));
        assert_eq!(check("   ", 10, false, false), Err(TextProblem::Empty));
        assert_eq!(check("", 10, true, false), Ok(()));
        assert_eq!(check("a\u{202E}b", 10, false, false), Err(TextProblem::Forbidden(1)));
        assert_eq!(check("a\u{2067}b", 10, false, false), Err(TextProblem::Forbidden(1)));
        assert_eq!(check("a\u{0007}", 10, false, false), Err(TextProblem::Forbidden(1)));
        assert_eq!(check("line\nnext", 10, false, false), Err(TextProblem::Forbidden(4)));
        assert_eq!(check("line\nnext", 10, false, true), Ok(()));
        assert_eq!(check("tab\there", 10, false, true), Err(TextProblem::Forbidden(3)));
    }
}
