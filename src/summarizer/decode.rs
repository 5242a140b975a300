//! Token ids back to text, as transformers' summarization pipeline decoded them.
//!
//! transformers 4.57 `Text2TextGenerationPipeline.postprocess` calls
//! `tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)`: the
//! `clean_up_tokenization_spaces` of the checkpoint's tokenizer_config.json (true for
//! facebook/bart-large-cnn) is never used, so summaries keep spaces such as " ," that the
//! tokenizer produced.

use crate::Result;

use super::Summarizer;

impl Summarizer {
    /// Generated ids (decoder start token included) to summary text.
    pub(super) fn decode(&self, ids: &[u32]) -> Result<String> {
        let text = self.loaded().tokenizer.decode(ids, true)?;
        Ok(text.trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loading::{self, HubSettings};
    use candle_core::{DType, Device};

    /// bart-tiny's tokenizer_config.json says `clean_up_tokenization_spaces: true`, like
    /// bart-large-cnn's; the pipeline decodes without the clean-up all the same.
    #[test]
    fn summaries_keep_spaces_the_tokenizer_produced() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bart-tiny");
        let mut hub = HubSettings::from_vars(|_| None);
        hub.offline = true;
        let files = loading::resolve(dir.to_str().unwrap(), &hub).unwrap();
        let summarizer = Summarizer::from_files(&files, &Device::Cpu, DType::F32).unwrap();
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
}
