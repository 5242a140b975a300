//! Summaries of many documents at once, in rounds: round one summarises whole documents (those
//! within the window) and the chunks of long ones; each reduce round then summarises, for every
//! document still merging, its summaries joined in window-sized groups. Each document's steps
//! are those of [`SummaryPlan`]; what this adds is running every document's passes of a round
//! together in padded batches, longest first.

use std::time::Instant;

use super::batching::Batches;
use super::plan::{Pass, PassOutput, PendingSummary, SummaryPlan};
use super::{Progress, Summary};
use crate::Result;
use crate::generation;

/// Summarise every text; a text that cannot be summarised (empty, say) fails alone, an error of
/// the model fails the call.
pub(super) fn run(
    plan: &SummaryPlan,
    batches: &Batches,
    texts: &[&str],
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<Result<Summary>>> {
    let mut docs: Vec<Result<PendingSummary>> = Vec::with_capacity(texts.len());
    let mut passes: Vec<(usize, Pass)> = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        docs.push(plan.start(i + 1, text).map(|(pending, first)| {
            passes.extend(first.into_iter().map(|pass| (i, pass)));
            pending
        }));
    }
    let total = passes.len();
    let mut done = 0;
    let mut first_round = true;
    while !passes.is_empty() {
        let outputs = run_passes(plan, batches, &passes, &mut |n| {
            if first_round {
                done += n;
                progress(Progress::Chunks { done, total });
            }
        })?;
        first_round = false;
        let mut per_doc: Vec<Vec<PassOutput>> = docs.iter().map(|_| Vec::new()).collect();
        for ((doc, _), output) in passes.iter().zip(outputs) {
            per_doc[*doc].push(output);
        }
        passes.clear();
        for (i, (doc, outputs)) in docs.iter_mut().zip(per_doc).enumerate() {
            let Ok(pending) = doc else { continue };
            if outputs.is_empty() {
                continue;
            }
            let next = plan.advance(pending, outputs)?;
            passes.extend(next.into_iter().map(|pass| (i, pass)));
        }
        for pending in docs.iter().flatten() {
            if let Some(inputs) = pending.merging() {
                progress(Progress::Merging { inputs });
            }
        }
    }
    Ok(docs
        .into_iter()
        .map(|doc| doc.map(PendingSummary::into_summary))
        .collect())
}

/// Generates `passes` (last passes and intermediate ones in separate batches, since they decode
/// differently), returning outputs in pass order with each pass's share of its batch's time.
fn run_passes(
    plan: &SummaryPlan,
    batches: &Batches,
    passes: &[(usize, Pass)],
    on_batch: &mut dyn FnMut(usize),
) -> Result<Vec<PassOutput>> {
    let loaded = plan.summarizer().loaded();
    let pad = loaded.model.spec().pad_token_id;
    let mut outputs: Vec<Option<PassOutput>> = vec![None; passes.len()];
    for (last_pass, config) in [(true, plan.last_pass()), (false, plan.intermediate())] {
        let members: Vec<usize> = (0..passes.len())
            .filter(|&i| passes[i].1.last_pass == last_pass)
            .collect();
        for batch in batches.split(&members, |i| passes[i].1.input_ids.len()) {
            let started = Instant::now();
            let rows: Vec<&[u32]> = batch
                .iter()
                .map(|&i| passes[i].1.input_ids.as_slice())
                .collect();
            let (ids, mask) = generation::pad_batch(&rows, pad, &loaded.device)?;
            let sequences = generation::generate(loaded.model.as_ref(), &ids, &mask, config)?;
            let seconds = started.elapsed().as_secs_f64() / batch.len() as f64;
            for (&i, ids) in batch.iter().zip(sequences) {
                outputs[i] = Some(PassOutput { ids, seconds });
            }
            on_batch(batch.len());
        }
    }
    Ok(outputs.into_iter().flatten().collect())
}
