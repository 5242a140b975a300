//! Punkt's word tokens: NLTK's `PunktLanguageVars.word_tokenize` (English) and the `PunktToken`
//! properties the tokenize path reads. NLTK finds words with a backtracking regex (a lazy `\S+?`
//! ended by a lookahead); this is the same search written as a linear scan, so it needs no
//! lookaround engine and has no backtracking limit to hit on a long run of letters.

use std::sync::OnceLock;

use regex::Regex;

use super::python_space;

/// A token with its first-pass and second-pass annotations (NLTK's `PunktToken`).
#[derive(Debug, Clone)]
pub(super) struct Token<'t> {
    pub tok: &'t str,
    /// Lower-cased, or `##number##` for a number.
    pub typ: String,
    pub sentbreak: bool,
    pub abbr: bool,
    pub ellipsis: bool,
}

impl<'t> Token<'t> {
    pub fn new(tok: &'t str) -> Self {
        let lower = tok.to_lowercase();
        let typ = if patterns().numeric.is_match(&lower) {
            "##number##".to_string()
        } else {
            lower
        };
        Token {
            tok,
            typ,
            sentbreak: false,
            abbr: false,
            ellipsis: false,
        }
    }

    pub fn period_final(&self) -> bool {
        self.tok.ends_with('.')
    }

    /// The type without its final period (a lone "." keeps it).
    pub fn type_no_period(&self) -> &str {
        match self.typ.strip_suffix('.') {
            Some(stem) if !stem.is_empty() => stem,
            _ => &self.typ,
        }
    }

    /// The type without its final period if that period is a sentence break.
    pub fn type_no_sentperiod(&self) -> &str {
        if self.sentbreak {
            self.type_no_period()
        } else {
            &self.typ
        }
    }

    /// Python's `str.isupper` / `str.islower` on the first character, which use the same
    /// Uppercase / Lowercase properties as Rust; they differ only where Unicode changed a
    /// property between Python's Unicode version and Rust's (U+0295 `ʕ` is lower-case in Python
    /// 3.11's Unicode 14, a caseless letter since Unicode 16).
    pub fn first_upper(&self) -> bool {
        self.tok.chars().next().is_some_and(char::is_uppercase)
    }

    pub fn first_lower(&self) -> bool {
        self.tok.chars().next().is_some_and(char::is_lowercase)
    }

    /// Two periods or more and nothing else.
    pub fn is_ellipsis(&self) -> bool {
        self.tok.len() >= 2 && self.tok.bytes().all(|b| b == b'.')
    }

    /// A letter and a period ("J.").
    pub fn is_initial(&self) -> bool {
        patterns().initial.is_match(self.tok)
    }
}

/// NLTK's `_RE_NUMERIC` and `_RE_INITIAL`. Python's `regex` module and the `regex` crate agree
/// on `\d` and `[^\W\d]` for every code point Python's Unicode database assigns.
struct Patterns {
    numeric: Regex,
    initial: Regex,
}

fn patterns() -> &'static Patterns {
    static PATTERNS: OnceLock<Patterns> = OnceLock::new();
    PATTERNS.get_or_init(|| Patterns {
        // Constant patterns, checked by the unit tests.
        numeric: Regex::new(r"^-?[\.,]?\d[\d,\.-]*\.?$").expect("numeric pattern"),
        initial: Regex::new(r"^[^\W\d]\.$").expect("initial pattern"),
    })
}

/// Characters that end a word (NLTK's `_re_non_word_chars` for English: `?` and `!` are the
/// sentence ends other than the period).
pub(super) fn is_non_word(c: char) -> bool {
    matches!(
        c,
        ')' | '"'
            | ';'
            | '}'
            | ']'
            | '*'
            | ':'
            | '@'
            | '\''
            | '('
            | '{'
            | '['
            | '\u{2018}'
            | '\u{2019}'
            | '\u{201c}'
            | '\u{201d}'
            | '\u{ab}'
            | '\u{bb}'
            | '?'
            | '!'
    )
}

/// Characters that cannot start a word (NLTK's `_re_word_start` excludes them).
fn cannot_start_word(c: char) -> bool {
    matches!(
        c,
        '(' | '"'
            | '`'
            | '{'
            | '['
            | ':'
            | ';'
            | '&'
            | '#'
            | '*'
            | '@'
            | ')'
            | '}'
            | ']'
            | '-'
            | ','
    )
}

fn char_at(s: &str, at: usize) -> Option<char> {
    s.get(at..).and_then(|rest| rest.chars().next())
}

/// Length in bytes of NLTK's multi-character punctuation at `at`, `-{2,}|\.{2,}|(?:\.\s){2,}\.`,
/// tried in that order as Python does.
fn multi_char_len(s: &str, at: usize) -> Option<usize> {
    let rest = &s[at..];
    for repeated in ['-', '.'] {
        let run = rest.chars().take_while(|&c| c == repeated).count();
        if run >= 2 {
            return Some(run);
        }
    }
    // (?:\.\s){2,}\. : take every ". " pair (`\s` is any White_Space), then a final period; if
    // the next character is not a period, give back the last pair, whose period ends the match.
    let mut pair_ends = Vec::new();
    let mut chars = rest.char_indices().peekable();
    while let Some((_, '.')) = chars.peek().copied() {
        chars.next();
        match chars.peek().copied() {
            Some((i, c)) if c.is_whitespace() => {
                chars.next();
                pair_ends.push(i + c.len_utf8());
            }
            _ => break,
        }
    }
    let pairs = pair_ends.len();
    let end_of_pairs = pair_ends.last().copied().unwrap_or(0);
    if pairs >= 2 && rest[end_of_pairs..].starts_with('.') {
        Some(end_of_pairs + 1)
    } else if pairs >= 3 {
        Some(pair_ends[pairs - 2] + 1)
    } else {
        None
    }
}

/// Whether a word may end before `at`: NLTK's lookahead `\s|$|NonWord|MultiChar|,(?=$|\s|
/// NonWord|MultiChar)`.
fn word_ends_at(s: &str, at: usize) -> bool {
    let boundary = |at: usize| match char_at(s, at) {
        None => true,
        Some(c) => c.is_whitespace() || is_non_word(c) || multi_char_len(s, at).is_some(),
    };
    boundary(at) || (char_at(s, at) == Some(',') && boundary(at + 1))
}

/// NLTK's `PunktLanguageVars.word_tokenize` on one line: multi-character punctuation, words
/// (ended by white space, punctuation or a final comma), and any other single character.
pub(super) fn word_tokenize(line: &str) -> Vec<&str> {
    let mut tokens = Vec::new();
    let mut at = 0;
    while let Some(c) = char_at(line, at) {
        let len = if let Some(len) = multi_char_len(line, at) {
            len
        } else if c.is_whitespace() {
            at += c.len_utf8();
            continue;
        } else if cannot_start_word(c) {
            c.len_utf8()
        } else {
            let mut end = at + c.len_utf8();
            while !word_ends_at(line, end) {
                end += char_at(line, end).map_or(1, char::len_utf8);
            }
            end - at
        };
        tokens.push(&line[at..at + len]);
        at += len;
    }
    tokens
}

/// NLTK's `_tokenize_words`: the tokens of every line that is not blank.
pub(super) fn tokenize_words(text: &str) -> Vec<Token<'_>> {
    text.split('\n')
        .filter(|line| !line.trim_matches(python_space).is_empty())
        .flat_map(word_tokenize)
        .map(Token::new)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_off_punctuation_but_not_periods() {
        assert_eq!(
            word_tokenize("(Mr. Smith's \"cat\"), 3.5 -- ok... no, yes!"),
            [
                "(", "Mr.", "Smith", "'s", "\"", "cat", "\"", ")", ",", "3.5", "--", "ok", "...",
                "no", ",", "yes", "!"
            ]
        );
        assert_eq!(
            word_tokenize("a . . . b . .c"),
            ["a", ". . .", "b", ".", ".c"]
        );
        assert_eq!(word_tokenize(". . x"), [".", ".", "x"]);
        assert_eq!(word_tokenize(". . . . x"), [". . . .", "x"]);
        assert_eq!(word_tokenize("1,000,a,"), ["1,000,a", ","]);
        assert!(word_tokenize(" \t ").is_empty());
    }

    #[test]
    fn types_and_properties_follow_nltk() {
        let token = Token::new("3.5.");
        assert_eq!(token.typ, "##number##");
        assert_eq!(Token::new("U.S.").type_no_period(), "u.s");
        assert_eq!(Token::new(".").type_no_period(), ".");
        assert!(Token::new("J.").is_initial());
        assert!(!Token::new("3.").is_initial());
        assert!(Token::new("..").is_ellipsis());
        assert!(!Token::new(". . .").is_ellipsis());
        assert!(Token::new("Émile").first_upper());
    }
}
