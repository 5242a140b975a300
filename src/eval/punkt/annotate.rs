//! Punkt's decisions on a run of tokens (NLTK's `_annotate_first_pass` and
//! `_annotate_second_pass`): which periods end a sentence, which end an abbreviation, an
//! initial or an ordinal. Kiss & Strunk (2006), "Unsupervised Multilingual Sentence Boundary
//! Detection", sections 4.1-4.3.

use super::params::{self, ORTHO_BEG_LC, ORTHO_LC, ORTHO_MID_UC, ORTHO_UC, Params};
use super::words::Token;

/// What the orthographic heuristic says of a word: NLTK returns True, False or "unknown".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Starts {
    Sentence,
    NoSentence,
    Unknown,
}

/// First pass, on the token alone: `.`, `?` and `!` are breaks, runs of periods are ellipses, a
/// period-final known abbreviation (or hyphenated word ending in one) is an abbreviation, and any
/// other period-final token is a break.
fn first_pass(token: &mut Token, params: &Params) {
    let tok = token.tok;
    if matches!(tok, "." | "?" | "!") {
        token.sentbreak = true;
    } else if token.is_ellipsis() {
        token.ellipsis = true;
    } else if token.period_final() && !tok.ends_with("..") {
        let stem = tok[..tok.len() - 1].to_lowercase();
        let last_part = stem.rsplit('-').next().unwrap_or(&stem);
        if params.abbrev_types.contains(&stem) || params.abbrev_types.contains(last_part) {
            token.abbr = true;
        } else {
            token.sentbreak = true;
        }
    }
}

/// Whether `token` starts a sentence, judged from the cases its type was seen in (4.1.1).
fn ortho_heuristic(token: &Token, params: &Params) -> Starts {
    if matches!(token.tok, ";" | ":" | "," | "." | "!" | "?") {
        return Starts::NoSentence;
    }
    let context = params.ortho_context(token.type_no_sentperiod());
    // Capitalised here, seen lower-case, never capitalised inside a sentence: it starts one.
    if token.first_upper() && context & ORTHO_LC != 0 && context & ORTHO_MID_UC == 0 {
        return Starts::Sentence;
    }
    // Lower-case here, and seen capitalised or never lower-case at a sentence start: it does not.
    if token.first_lower() && (context & ORTHO_UC != 0 || context & ORTHO_BEG_LC == 0) {
        return Starts::NoSentence;
    }
    Starts::Unknown
}

/// Second pass on a period-final `token` given the `next` one (whose own second pass has not
/// run yet, as in NLTK's pipelined generators): collocations, abbreviations and ellipses that
/// also end a sentence, and initials or numbers whose period does not.
fn second_pass(token: &mut Token, next: &Token, params: &Params) {
    if !token.period_final() {
        return;
    }
    let is_initial = token.is_initial();
    let next_typ = next.type_no_sentperiod();
    // 4.1.2: a known collocation across the period.
    if params.is_collocation(token.type_no_period(), next_typ) {
        token.sentbreak = false;
        token.abbr = true;
        return;
    }
    // 4.2: an abbreviation or ellipsis followed by a word that starts a sentence.
    if (token.abbr || token.ellipsis) && !is_initial {
        if ortho_heuristic(next, params) == Starts::Sentence {
            token.sentbreak = true;
            return;
        }
        // 4.1.3: a capitalised frequent sentence starter.
        if next.first_upper() && params.sent_starters.contains(next_typ) {
            token.sentbreak = true;
            return;
        }
    }
    // 4.3: initials and ordinals.
    if is_initial || token.type_no_period() == "##number##" {
        let starts = ortho_heuristic(next, params);
        if starts == Starts::NoSentence {
            token.sentbreak = false;
            token.abbr = true;
            return;
        }
        // An initial before a word never seen lower-case ("J. Bach") is not a break.
        if starts == Starts::Unknown
            && is_initial
            && next.first_upper()
            && params.ortho_context(next_typ) & ORTHO_LC == 0
        {
            token.sentbreak = false;
            token.abbr = true;
        }
    }
}

/// Both passes over `tokens`, with NLTK's English parameters.
pub(super) fn annotate(tokens: &mut [Token]) {
    let params = params::english();
    for token in tokens.iter_mut() {
        first_pass(token, params);
    }
    for i in 1..tokens.len() {
        let (done, rest) = tokens.split_at_mut(i);
        second_pass(&mut done[i - 1], &rest[0], params);
    }
}

#[cfg(test)]
mod tests {
    use super::super::words::tokenize_words;
    use super::*;

    fn breaks(text: &str) -> Vec<&str> {
        let mut tokens = tokenize_words(text);
        annotate(&mut tokens);
        tokens
            .iter()
            .filter(|t| t.sentbreak)
            .map(|t| t.tok)
            .collect()
    }

    #[test]
    fn abbreviations_initials_and_numbers_are_not_breaks() {
        assert_eq!(
            breaks("Mr. Smith met Dr. Jones in the U.S. today."),
            ["today."]
        );
        assert_eq!(
            breaks("Johann S. Bach wrote it. Then he left."),
            ["it.", "left."]
        );
        assert_eq!(breaks("It rose 3.5 percent. on the 3. day"), ["percent."]);
        assert_eq!(breaks("Wait... Then what? Go!"), ["?", "!"]);
    }
}
