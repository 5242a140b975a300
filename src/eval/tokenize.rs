//! rouge-score's default tokenizer (`rouge_score/tokenize.py`): lowercase, every character outside
//! `[a-z0-9]` separates tokens, and with the stemmer on, tokens longer than three characters go
//! through NLTK's Porter stemmer.
//!
//! Letters outside ASCII are separators, so "café" gives "caf" and Cyrillic or CJK text gives no
//! tokens at all, exactly as rouge-score scores them. Lowercasing is Unicode's, as Python's
//! `str.lower`: two characters outside ASCII become ASCII letters there ('İ' → "i" plus a
//! combining dot, the Kelvin sign 'K' → "k"), and so they do here.

use super::porter;

/// Tokens of `text` as rouge-score's `tokenize.tokenize(text, stemmer)` returns them.
pub fn tokenize(text: &str, stemmer: bool) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut end_token = |current: &mut String| {
        if current.is_empty() {
            return;
        }
        let token = std::mem::take(current);
        // rouge-score stems only tokens of more than three characters.
        tokens.push(if stemmer && token.len() > 3 {
            porter::stem(&token)
        } else {
            token
        });
    };
    for c in text.chars() {
        if c.is_ascii() {
            push_or_split(c.to_ascii_lowercase(), &mut current, &mut end_token);
        } else {
            for lower in c.to_lowercase() {
                push_or_split(lower, &mut current, &mut end_token);
            }
        }
    }
    end_token(&mut current);
    // rouge-score's last check keeps only tokens matching ^[a-z0-9]+$; a stem always does.
    tokens.retain(|t| !t.is_empty() && t.bytes().all(is_token_byte));
    tokens
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn push_or_split(c: char, current: &mut String, end_token: &mut impl FnMut(&mut String)) {
    if c.is_ascii_lowercase() || c.is_ascii_digit() {
        current.push(c);
    } else {
        end_token(current);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_everything_but_ascii_letters_and_digits() {
        assert_eq!(
            tokenize("Hello, World! It's 2024-05-01.", false),
            ["hello", "world", "it", "s", "2024", "05", "01"]
        );
        assert_eq!(tokenize("café naïve Привет", false), ["caf", "na", "ve"]);
        assert!(tokenize(" ... !? ", false).is_empty());
    }

    #[test]
    fn lowercases_like_python() {
        assert_eq!(
            tokenize("\u{212A}m İstanbul", false),
            ["km", "i", "stanbul"]
        );
    }

    #[test]
    fn stems_only_tokens_longer_than_three() {
        assert_eq!(
            tokenize("The cats were running; dies", true),
            ["the", "cat", "were", "run", "die"]
        );
        // "ties" (4) is stemmed, "has" (3) is not although the stemmer would change it.
        assert_eq!(tokenize("ties has", true), ["tie", "has"]);
    }
}
