//! Token ids back to text, as transformers' summarization pipeline decoded them.
//!
//! transformers 4.57 `Text2TextGenerationPipeline.postprocess` calls
//! `tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)`: the
//! `clean_up_tokenization_spaces` of the checkpoint's tokenizer_config.json (true for
//! facebook/bart-large-cnn) is never used, so summaries keep spaces such as " ," that the
//! tokenizer produced. A caller may ask for the clean-up (the server's
//! `clean_up_tokenization_spaces`): [`clean_up_tokenization`].

use crate::Result;

use super::Summarizer;

impl Summarizer {
    /// Generated ids (decoder start token included) to summary text.
    pub(super) fn decode(&self, ids: &[u32]) -> Result<String> {
        self.decode_summary(ids, false)
    }

    /// Generated ids (decoder start token included) to summary text, as transformers' pipeline
    /// decodes them with `clean_up_tokenization_spaces` set to `clean_up`.
    pub fn decode_summary(&self, ids: &[u32], clean_up: bool) -> Result<String> {
        let text = self.loaded().tokenizer.decode(ids, true)?;
        let text = if clean_up { self.clean_up(&text) } else { text };
        Ok(text.trim().to_string())
    }

    /// [`clean_up_tokenization`] as transformers 5 applies it: not for BPE tokenizers (BART's),
    /// where it would strip spaces the text really has, so there it returns `text` unchanged.
    pub fn clean_up(&self, text: &str) -> String {
        match self.loaded().tokenizer.get_model() {
            tokenizers::ModelWrapper::BPE(_) => text.to_string(),
            _ => clean_up_tokenization(text),
        }
    }
}

/// transformers' `clean_up_tokenization`: drops the spaces a tokenizer leaves before
/// punctuation and inside English contractions, in this order.
pub fn clean_up_tokenization(text: &str) -> String {
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
        .fold(text.to_string(), |text, (from, to)| text.replace(from, to))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loading::{self, HubSettings};
    use candle_core::{DType, Device};

    fn fixture(model: &str) -> Summarizer {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(model);
        let mut hub = HubSettings::from_vars(|_| None);
        hub.offline = true;
        let files = loading::resolve(dir.to_str().unwrap(), &hub).unwrap();
        Summarizer::from_files(&files, &Device::Cpu, DType::F32).unwrap()
    }

    #[test]
    fn clean_up_drops_spaces_before_punctuation_and_in_contractions_in_order() {
        assert_eq!(
            clean_up_tokenization("It is n't here , is it ? We 're sure . I 'm ' fine ' !"),
            "It isn't here, is it? We're sure. I'm'fine '!"
        );
        // Replacements apply one after another, as in transformers: " ' s" -> "'s".
        assert_eq!(clean_up_tokenization("x ' s"), "x's");
        assert_eq!(clean_up_tokenization("no change"), "no change");
    }

    /// bart-tiny's tokenizer_config.json says `clean_up_tokenization_spaces: true`, like
    /// bart-large-cnn's; the pipeline decodes without the clean-up all the same.
    #[test]
    fn summaries_keep_spaces_the_tokenizer_produced() {
        let summarizer = fixture("bart-tiny");
        let text = "It is n't here , is it ? Yes . We 're sure";
        let mut ids = vec![2, 0];
        ids.extend(
            summarizer
                .loaded()
                .tokenizer
                .encode(text, false)
                .unwrap()
                .get_ids(),
        );
        ids.push(2);
        assert_eq!(summarizer.decode(&ids).unwrap(), text);
    }

    /// As transformers 5.24 decodes with `clean_up_tokenization_spaces=True`: T5's
    /// SentencePiece (Unigram) output is cleaned, BART's byte-level BPE output is left alone
    /// (`tokenization_utils_tokenizers.py` skips the clean-up for BPE). Expected texts from
    /// `AutoTokenizer.from_pretrained(fixture).decode(ids, skip_special_tokens=True, ...)`.
    #[test]
    fn clean_up_applies_as_transformers_applies_it() {
        let text = "It is n't here , is it ? Yes . We 're sure";
        let cases = [
            (
                "t5-tiny",
                "It is nt here , is it ? Yes . We re sure",
                "It is nt here, is it? Yes. We re sure",
            ),
            ("bart-tiny", text, text),
        ];
        for (model, raw, cleaned) in cases {
            let summarizer = fixture(model);
            let tokenizer = &summarizer.loaded().tokenizer;
            let ids = tokenizer.encode(text, true).unwrap().get_ids().to_vec();
            assert_eq!(
                summarizer.decode_summary(&ids, false).unwrap(),
                raw,
                "{model}"
            );
            assert_eq!(
                summarizer.decode_summary(&ids, true).unwrap(),
                cleaned,
                "{model}"
            );
        }
    }
}
