//! Token ids back to text, as transformers' `tokenizer.decode(ids, skip_special_tokens=True)`
//! does, including its optional clean-up of spaces before punctuation.

use crate::Result;
use crate::loading::ModelFiles;

use super::Summarizer;

/// The `clean_up_tokenization_spaces` setting of the checkpoint's `tokenizer_config.json`
/// (beside `config.json`); transformers treats a missing setting as off.
pub(super) fn cleanup_spaces_setting(files: &ModelFiles) -> bool {
    let Some(dir) = files.config.parent() else {
        return false;
    };
    let Ok(text) = std::fs::read_to_string(dir.join("tokenizer_config.json")) else {
        return false;
    };
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("clean_up_tokenization_spaces")?.as_bool())
        .unwrap_or(false)
}

/// transformers' `clean_up_tokenization`: English contractions and punctuation lose the space
/// that word-piece decoding put before them.
pub(super) fn clean_up_tokenization(text: &str) -> String {
    const REPLACEMENTS: [(&str, &str); 10] = [
        (" .", "."),
        (" ?", "?"),
        (" !", "!"),
        (" ,", ","),
        (" ' ", "'"),
        (" n't", "n't"),
        (" 'm", "'m"),
        (" 's", "'s"),
        (" 've", "'ve"),
        (" 're", "'re"),
    ];
    REPLACEMENTS
        .iter()
        .fold(text.to_string(), |acc, (from, to)| acc.replace(from, to))
}

impl Summarizer {
    /// Generated ids (decoder start token included) to summary text.
    pub(super) fn decode(&self, ids: &[u32]) -> Result<String> {
        let text = self.tokenizer.decode(ids, true)?;
        let text = if self.cleanup_spaces {
            clean_up_tokenization(&text)
        } else {
            text
        };
        Ok(text.trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleanup_removes_spaces_before_punctuation_and_contractions() {
        assert_eq!(
            clean_up_tokenization("It is n't here , is it ? Yes . We 're sure ' ok '"),
            "It isn't here, is it? Yes. We're sure'ok '"
        );
    }
}
