//! Continuous batching: sequences join a running decoder batch between steps and leave it as
//! they finish, so a short sequence is never stuck behind a long search and a freed row is
//! refilled at the next step.
//!
//! Design:
//! - **Per-sequence settings.** Every [`Sequence`] carries its own logits processors, lengths,
//!   stopping rule and sampler, so one decoder call serves sequences with different settings and
//!   each gets exactly the tokens it would get alone (see [`super::sequence`]).
//! - **Groups by beam width and lane.** The decoder state gives every input the same number of
//!   rows (its beams share one copy of the encoder side), so sequences run in one group per
//!   beam width; each step runs one decoder call per group. The caller may also split sequences
//!   into lanes (a [`Placement`]): groups of different lanes never merge, and
//!   [`Engine::step_lanes`] steps only the lanes it is told, which is how a caller gives one
//!   class of work priority over another.
//! - **Joining and leaving.** [`Engine::admit`] encodes a padded batch and joins it to its
//!   group's running [`DecoderState`]; finished and cancelled sequences are filtered out of it
//!   (see `models::cache::rows`). Joining and filtering copy the group's whole state (about a
//!   tenth of a saturated server's time when every finish was followed by both), so a
//!   finished sequence only leaves a vacancy: sequences admitted before the next step take
//!   the vacancies in place ([`DecoderState::fill`]: only their own encoder side is written),
//!   and the state is filtered only when vacancies are left at the next step, or when filling
//!   would keep the encoder side padded a third wider than its longest input. Several padded
//!   batches admitted at once ([`Engine::admit_all`]: inputs of similar length padded
//!   together, encoded apart) join in one copy. What to admit and when (token and row budgets,
//!   fairness) is the caller's policy.
//! - **Batch-invariant on the CPU.** A sequence's logits are bit-identical whatever else is in
//!   the batch — the number of rows, how wide the encoder side is padded, the step it joined
//!   at — so it gets exactly the tokens it gets alone: the CPU kernels (float32 and q8) sum in
//!   one order for any batch (`tests/batch_invariance.rs`). That is a CPU guarantee only: GPU
//!   kernels choose their algorithms by shape, so there a near-tie may still go either way.
//! - **Failures stay in their batch.** An error or a panic in model code while encoding or
//!   stepping a group drops that group only and is reported with its sequence ids; other groups
//!   and later admissions go on. A caller can re-admit the ids one per group (`isolated`) to
//!   find which sequence fails.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use candle_core::Tensor;
use rayon::prelude::*;

use super::config::GenerationConfig;
use super::logits::decode_step;
use super::sequence::{Advance, Sequence};
use super::{check_inputs, check_token_ids};
use crate::models::with_workers_awake;
use crate::models::{DecoderState, Seq2Seq};
use crate::{Error, Result};

/// The caller's name for a sequence.
pub type SequenceId = u64;

/// The caller's name for a class of work whose groups step (or wait) together.
pub type Lane = usize;

/// Which group admitted sequences join.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Placement {
    /// They join a running group of this lane (and their beam width), or start one in it.
    pub lane: Lane,
    /// They start a group of their own that nothing else joins.
    pub isolated: bool,
}

impl Placement {
    /// A group of their own in lane 0.
    pub const ISOLATED: Self = Self {
        lane: 0,
        isolated: true,
    };
}

/// One padded batch to admit: `(rows, seq)` u32 ids and mask, and each row's sequence.
#[derive(Debug)]
pub struct Padded {
    pub input_ids: Tensor,
    pub attention_mask: Tensor,
    pub sequences: Vec<(SequenceId, GenerationConfig)>,
}

/// A padded batch with its sequences built.
type Built = (Tensor, Tensor, Vec<(SequenceId, Sequence)>);

/// A completed sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub id: SequenceId,
    /// Generated tokens, the decoder start token first, EOS last when one was generated.
    pub tokens: Vec<u32>,
    /// Model time charged to it: its share of its admission's encoder pass and of every step.
    pub seconds: f64,
}

/// Sequences lost to one error: the batch they were in was dropped.
#[derive(Debug)]
pub struct Failure {
    pub ids: Vec<SequenceId>,
    pub error: Error,
}

/// What one call did.
#[derive(Debug, Default)]
pub struct Report {
    pub finished: Vec<Finished>,
    pub failed: Vec<Failure>,
}

/// The running sequences of one model.
pub struct Engine<'m> {
    model: &'m dyn Seq2Seq,
    groups: Vec<Group>,
    /// Times a running group's whole decoder state was copied to join or filter inputs.
    state_copies: u64,
    /// Time spent in the model's encoder (and its cross-attention keys and values) admitting.
    encoding: Duration,
}

/// Sequences of one beam width sharing a decoder state; `slots[i]` decodes the state's input
/// `i`, or is `None` when that sequence left since the last step (a vacancy: the next
/// admission takes its place, or it is filtered out before the next step).
struct Group {
    beams: usize,
    /// Where it was admitted: its lane, and whether other admissions may join it.
    placement: Placement,
    state: DecoderState,
    slots: Vec<Option<Member>>,
}

struct Member {
    id: SequenceId,
    sequence: Sequence,
    seconds: f64,
}

impl<'m> Engine<'m> {
    pub fn new(model: &'m dyn Seq2Seq) -> Self {
        Self {
            model,
            groups: Vec::new(),
            state_copies: 0,
            encoding: Duration::ZERO,
        }
    }

    /// Times a running group's whole decoder state was copied to let inputs join or leave
    /// (filling vacancies in place does not count).
    pub fn state_copies(&self) -> u64 {
        self.state_copies
    }

    /// Time spent encoding admitted inputs (the model's encoder and the decoder's
    /// cross-attention keys and values), over the engine's life: what admission costs beyond
    /// joining the running state.
    pub fn encoding(&self) -> Duration {
        self.encoding
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Running sequences.
    pub fn sequences(&self) -> usize {
        self.groups.iter().map(Group::live).sum()
    }

    /// Running sequences in `lane`.
    pub fn sequences_in(&self, lane: Lane) -> usize {
        self.groups
            .iter()
            .filter(|g| g.placement.lane == lane)
            .map(Group::live)
            .sum()
    }

    /// Decoder rows of the next step (sequences × beams).
    pub fn rows(&self) -> usize {
        self.groups.iter().map(|g| g.live() * g.beams).sum()
    }

    /// Decoder rows of the next step in `lane`.
    pub fn rows_in(&self, lane: Lane) -> usize {
        self.groups
            .iter()
            .filter(|g| g.placement.lane == lane)
            .map(|g| g.live() * g.beams)
            .sum()
    }

    /// Encoder positions held for cross-attention: per group, sequences × the longest input.
    pub fn padded_tokens(&self) -> usize {
        self.groups
            .iter()
            .map(|g| g.live() * g.state.encoder_width())
            .sum()
    }

    /// The running sequences' ids.
    pub fn ids(&self) -> impl Iterator<Item = SequenceId> + '_ {
        self.groups.iter().flat_map(|g| g.members().map(|m| m.id))
    }

    /// Encodes the padded batch `input_ids`/`attention_mask` (`(rows, seq)` u32) and starts one
    /// sequence per row, row `i` decoding with `sequences[i]`. All must use the same beam width.
    /// `placement` says which group they join. Invalid settings are rejected before anything
    /// runs; a model failure is an error too, and leaves the running batch as it was.
    pub fn admit(
        &mut self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        sequences: Vec<(SequenceId, GenerationConfig)>,
        placement: Placement,
    ) -> Result<()> {
        let batch = Padded {
            input_ids: input_ids.clone(),
            attention_mask: attention_mask.clone(),
            sequences,
        };
        self.admit_all(vec![batch], placement)
    }

    /// [`Self::admit`] for several padded batches, all of one beam width, at once. Each is
    /// encoded on its own, so a caller that pads inputs of similar length together spends
    /// little encoder work on padding; they join their group together, so its running decoder
    /// state (which joining copies) is copied once however many batches join.
    pub fn admit_all(&mut self, batches: Vec<Padded>, placement: Placement) -> Result<()> {
        let spec = self.model.spec();
        let mut built = Vec::with_capacity(batches.len());
        for batch in batches {
            for (_, config) in &batch.sequences {
                config.validate()?;
                check_token_ids(self.model, config)?;
            }
            let sequences = batch
                .sequences
                .into_iter()
                .map(|(id, config)| (id, Sequence::new(&config, spec)))
                .collect();
            built.push((batch.input_ids, batch.attention_mask, sequences));
        }
        self.admit_built(built, placement)
    }

    /// [`Self::admit`] for sequences already built.
    #[cfg(test)]
    pub(crate) fn admit_sequences(
        &mut self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        sequences: Vec<(SequenceId, Sequence)>,
        placement: Placement,
    ) -> Result<()> {
        let batch = (input_ids.clone(), attention_mask.clone(), sequences);
        self.admit_built(vec![batch], placement)
    }

    /// Encodes every batch, joins their fresh states into one, and that to its group.
    fn admit_built(&mut self, batches: Vec<Built>, placement: Placement) -> Result<()> {
        let beams = batches
            .iter()
            .find_map(|(_, _, sequences)| sequences.first())
            .map_or(1, |(_, s)| s.rows());
        let mut fresh: Option<DecoderState> = None;
        let mut members = Vec::new();
        for (input_ids, attention_mask, sequences) in batches {
            let rows = check_inputs(&input_ids, &attention_mask)?;
            if rows != sequences.len() || sequences.iter().any(|(_, s)| s.rows() != beams) {
                return Err(candle_core::Error::Msg(format!(
                    "admitting {rows} rows needs as many sequences of one beam width, got {}",
                    sequences.len()
                ))
                .into());
            }
            if rows == 0 {
                continue;
            }
            let started = Instant::now();
            let model = self.model;
            let state = guarded(|| {
                let encoded = model.encode(&input_ids, &attention_mask)?;
                let mut state = model.start_decoding(&encoded, &attention_mask)?;
                state.expand_beams(beams)?;
                Ok(state)
            })?;
            let spent = started.elapsed();
            self.encoding += spent;
            let share = spent.as_secs_f64() / rows as f64;
            members.extend(sequences.into_iter().map(|(id, sequence)| Member {
                id,
                sequence,
                seconds: share,
            }));
            match &mut fresh {
                // Both fresh: only their encoder sides are copied, not the running batch.
                Some(joined) => joined.join(state)?,
                None => fresh = Some(state),
            }
        }
        let Some(state) = fresh else {
            return Ok(());
        };
        let joinable = (!placement.isolated)
            .then(|| {
                self.groups
                    .iter_mut()
                    .find(|g| g.beams == beams && g.placement == placement)
            })
            .flatten();
        match joinable {
            Some(group) => self.state_copies += group.admit(state, members)?,
            None => self.groups.push(Group {
                beams,
                placement,
                state,
                slots: members.into_iter().map(Some).collect(),
            }),
        }
        Ok(())
    }

    /// One decoder step for every running sequence. Finished sequences leave; a group whose
    /// step fails is dropped and reported.
    pub fn step(&mut self) -> Report {
        self.step_lanes(|_| true)
    }

    /// [`Self::step`] for the sequences of the lanes for which `stepping` holds only; the
    /// others wait, unchanged.
    pub fn step_lanes(&mut self, stepping: impl Fn(Lane) -> bool) -> Report {
        let mut report = Report::default();
        let model = self.model;
        let copies = &mut self.state_copies;
        self.groups.retain_mut(|group| {
            if !stepping(group.placement.lane) {
                return true;
            }
            // Vacancies nobody took are filtered out first: a step decodes live rows only.
            match guarded(|| Ok((group.compact()?, group.step(model)?))) {
                Ok((copied, finished)) => {
                    *copies += copied;
                    report.finished.extend(finished);
                }
                Err(error) => {
                    report.failed.push(group.failure(error));
                    return false;
                }
            }
            group.live() > 0
        });
        report
    }

    /// Stops the running sequences for which `cancelled` holds; returns how many stopped (and
    /// any group that could not be shrunk, dropped whole).
    pub fn cancel(&mut self, cancelled: impl Fn(SequenceId) -> bool) -> (usize, Report) {
        let mut stopped = 0;
        let mut report = Report::default();
        let copies = &mut self.state_copies;
        self.groups.retain_mut(|group| {
            let before = stopped;
            for slot in &mut group.slots {
                if slot.as_ref().is_some_and(|m| cancelled(m.id)) {
                    *slot = None;
                    stopped += 1;
                }
            }
            if group.live() == 0 {
                return false;
            }
            // Vacancies left by sequences that finished at the last step stay for the next
            // admission to fill in place: a caller checks for cancellations before every
            // admission, and filtering here would copy the state each time instead.
            if stopped == before {
                return true;
            }
            // Cancelling is rare: filter at once, so the budgets see the batch as it will step.
            match group.compact() {
                Ok(copied) => {
                    *copies += copied;
                    true
                }
                Err(error) => {
                    report.failed.push(group.failure(error));
                    false
                }
            }
        });
        (stopped, report)
    }
}

impl Group {
    /// Sequences running (vacancies not counted).
    fn live(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    fn members(&self) -> impl Iterator<Item = &Member> {
        self.slots.iter().flatten()
    }

    /// Joins the fresh `state` of `members` (input `i` of it decoding `members[i]`), in
    /// vacancies where there are any; returns how many times the running state was copied.
    fn admit(&mut self, state: DecoderState, members: Vec<Member>) -> Result<u64> {
        let mut copies = 0;
        // Filling keeps the encoder side as wide as it is; when the longest input left, filter
        // instead, so cross-attention does not run over padding a third wider than the inputs.
        let live_lens = self.state.input_lens().iter().zip(&self.slots);
        let longest = live_lens
            .filter(|(_, slot)| slot.is_some())
            .map(|(&len, _)| len)
            .chain(state.input_lens().iter().copied())
            .max()
            .unwrap_or(0);
        let (num, den) = KEEP_WIDTH;
        if longest * den < self.state.encoder_width() * num {
            copies += self.compact()?;
        }
        let vacant: Vec<usize> = (0..self.slots.len())
            .filter(|&i| self.slots[i].is_none())
            .collect();
        // Inputs beyond the vacancies join (a copy); a wider input pads the state (another).
        let joins = state.inputs() > vacant.len();
        let widens = !vacant.is_empty() && state.encoder_width() > self.state.encoder_width();
        let places = self.state.fill(&vacant, state)?;
        copies += u64::from(joins) + u64::from(widens);
        for (place, member) in places.into_iter().zip(members) {
            match self.slots.get_mut(place) {
                Some(slot) => *slot = Some(member),
                None => self.slots.push(Some(member)),
            }
        }
        Ok(copies)
    }

    /// Filters vacancies out of the decoder state; returns how many times it was copied.
    fn compact(&mut self) -> Result<u64> {
        let keep: Vec<usize> = (0..self.slots.len())
            .filter(|&i| self.slots[i].is_some())
            .collect();
        if keep.len() == self.slots.len() || keep.is_empty() {
            return Ok(0);
        }
        self.state.retain_inputs(&keep)?;
        self.slots.retain(Option::is_some);
        Ok(1)
    }

    /// Decode one token for every row (every slot is live: the caller compacted), advance
    /// every sequence, and let finished ones leave a vacancy.
    fn step(&mut self, model: &dyn Seq2Seq) -> Result<Vec<Finished>> {
        let started = Instant::now();
        let mut last = Vec::with_capacity(self.slots.len() * self.beams);
        for member in self.members() {
            member.sequence.push_last_tokens(&mut last);
        }
        // The cache is then sized once for the longest any row can still run, not grown (and
        // copied) on the way.
        let steps_left = self.members().map(|m| m.sequence.steps_left()).max();
        self.state.plan_steps(steps_left.unwrap_or(0));
        let mut logits = decode_step(model, &mut self.state, &last)?;
        let vocab = logits.vocab();
        // Each sequence reads and rewrites only its own rows, so they advance in parallel: a
        // beam step's log-softmax over every row's vocabulary is most of its host-side time.
        let rows = logits.values_mut().par_chunks_exact_mut(self.beams * vocab);
        let advances: Vec<Result<Advance>> = self
            .slots
            .par_iter_mut()
            .zip(rows)
            .map(|(slot, scores)| match slot {
                Some(member) => member.sequence.advance(scores, vocab),
                None => Err(candle_core::Error::Msg("a vacancy was stepped".into()).into()),
            })
            .collect();
        let mut sources = Vec::with_capacity(last.len());
        let mut done = Vec::new();
        for (i, advance) in advances.into_iter().enumerate() {
            let advance = advance?;
            let first = (i * self.beams) as u32;
            match advance.sources {
                Some(within) => sources.extend(within.iter().map(|&s| first + s as u32)),
                None => sources.extend(first..first + self.beams as u32),
            }
            if advance.finished {
                done.push(i);
            }
        }
        let share = started.elapsed().as_secs_f64() / self.slots.len() as f64;
        self.slots
            .iter_mut()
            .flatten()
            .for_each(|m| m.seconds += share);
        // Most steps keep every beam in place; skip rewriting the beam table then.
        if sources.iter().enumerate().any(|(i, &s)| s as usize != i) {
            self.state.reorder_beams(&sources)?;
        }
        let finished = done.into_iter().filter_map(|i| self.slots[i].take());
        Ok(finished
            .map(|member| Finished {
                id: member.id,
                tokens: member.sequence.into_tokens(),
                seconds: member.seconds,
            })
            .collect())
    }

    fn failure(&self, error: Error) -> Failure {
        Failure {
            ids: self.members().map(|m| m.id).collect(),
            error,
        }
    }
}

/// Vacancies are filled in place while the longest input in the group stays at least this
/// fraction (numerator / denominator) of the encoder side's padded width.
const KEEP_WIDTH: (usize, usize) = (3, 4);

/// Runs model code on a thread of the kernels' rayon pool, turning a panic into an error: a
/// server must outlive one bad batch, and the caller drops whatever state the panic may have
/// left half-written.
///
/// The kernels split every product, norm and attention over the rayon pool. Called from a thread
/// outside it, each of a decoder step's hundred-odd parallel operations would hand its work to
/// the pool and sleep on a condition variable until done; from a pool thread they split in
/// place, so a batch-1 step decodes about a fifth faster. One hand-off per call here instead,
/// and the pool's other threads stay awake while it lasts (see [`with_workers_awake`]).
/// Which thread runs a task never changes how it sums: results are the same bits.
fn guarded<T: Send>(f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    with_workers_awake(|| catch_unwind(AssertUnwindSafe(f))).unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic without a message".to_string());
        Err(Error::ModelPanic { message })
    })
}
