//! NLTK's pre-trained English Punkt parameters (`data/punkt/english.json`, from rust-punkt's copy
//! of NLTK's model; see `data/punkt/README.md`), parsed once.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use serde::Deserialize;

/// Orthographic context flags, as NLTK's `_ORTHO_*` constants: where (beginning or middle of a
/// sentence) a word type was seen upper- or lower-case in training.
pub(super) const ORTHO_BEG_UC: u32 = 1 << 1;
pub(super) const ORTHO_MID_UC: u32 = 1 << 2;
const ORTHO_UNK_UC: u32 = 1 << 3;
pub(super) const ORTHO_BEG_LC: u32 = 1 << 4;
const ORTHO_MID_LC: u32 = 1 << 5;
const ORTHO_UNK_LC: u32 = 1 << 6;
pub(super) const ORTHO_UC: u32 = ORTHO_BEG_UC | ORTHO_MID_UC | ORTHO_UNK_UC;
pub(super) const ORTHO_LC: u32 = ORTHO_BEG_LC | ORTHO_MID_LC | ORTHO_UNK_LC;

/// NLTK's `PunktParameters`.
#[derive(Debug, Deserialize)]
pub(super) struct Params {
    /// Word types (lower-case, without the final period) that are abbreviations.
    pub abbrev_types: HashSet<String>,
    /// Pairs of types around a period that is not a sentence break ("j." "walter").
    pub collocations: HashSet<(String, String)>,
    /// Types that often start a sentence.
    #[serde(rename = "sentence_starters")]
    pub sent_starters: HashSet<String>,
    /// `ORTHO_*` flags per type; a type never seen has none (NLTK's `defaultdict(int)`).
    pub ortho_context: HashMap<String, u32>,
}

impl Params {
    pub fn ortho_context(&self, typ: &str) -> u32 {
        self.ortho_context.get(typ).copied().unwrap_or(0)
    }

    pub fn is_collocation(&self, first: &str, second: &str) -> bool {
        self.collocations
            .contains(&(first.to_string(), second.to_string()))
    }
}

/// The English parameters, parsed on first use.
pub(super) fn english() -> &'static Params {
    static ENGLISH: OnceLock<Params> = OnceLock::new();
    ENGLISH.get_or_init(|| {
        let json = include_str!("../../../data/punkt/english.json");
        // Embedded at build time and parsed by a unit test: not something input controls.
        serde_json::from_str(json).expect("data/punkt/english.json is valid")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_english_parameters_are_nltks() {
        let params = english();
        assert_eq!(params.sent_starters.len(), 39);
        assert_eq!(params.abbrev_types.len(), 156);
        assert_eq!(params.collocations.len(), 37);
        assert_eq!(params.ortho_context.len(), 20366);
        assert!(params.abbrev_types.contains("u.s"));
        assert!(params.is_collocation("j", "walter"));
        assert_eq!(params.ortho_context("four"), 46);
        assert_eq!(params.ortho_context("never-seen-type"), 0);
    }
}
