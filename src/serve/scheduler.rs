//! The one thread that drives the model: every generation pass of every request waits in one
//! queue and joins the running decoder batch of a [`generation::Engine`] at a step boundary.
//!
//! - **Admission.** Between steps, passes join while the batch holds at most
//!   `--max-batch-size` sequences and `--max-batch-tokens` padded encoder tokens (sequences ×
//!   longest input), and while the passes joining at this step hold at most
//!   `--max-prefill-tokens` input tokens: encoding them stalls every running sequence, so a
//!   burst of long inputs joins over several steps instead of freezing the batch at once. A lone
//!   pass always runs, however long. The order is shortest work first, with a bound on waiting
//!   (see [`super::queue`]): a short request is not stuck behind a long article's chunks, and
//!   no round waits more than [`STARVATION_STEPS`] steps behind shorter ones.
//! - **Priority.** Each round is interactive (a document done in one pass) or bulk (a long
//!   document's chunk and merge passes), and bulk passes run in an engine lane of their own:
//!   while interactive sequences run, bulk ones get about a fifth of the decoder's rows (they
//!   step once [`priority::INTERACTIVE_ROWS_PER_BULK_ROW`] interactive rows per bulk row stepped
//!   meanwhile, or after [`priority::MAX_BULK_WAIT`] steps) and queued bulk passes wait unless
//!   starved, and join one per step (a short request arriving meanwhile waits for their
//!   encoding), so a short request keeps close to its time alone beside long work; with one
//!   class present everything steps (see [`super::priority`]).
//! - **Saturation.** When the last admission refused a pass for want of room (the batch is at
//!   `--max-batch-size` or `--max-batch-tokens`, not merely at this step's prefill budget), the
//!   server is saturated: queued requests wait whatever the priority does, so it gives way
//!   (bulk steps every time, joins in queue order, and joins the interactive lane, so the whole
//!   batch steps in one decoder call; see [`super::priority`]).
//! - **Cancellation.** A pass whose requester went away (its reply channel closed: the client
//!   disconnected) leaves the queue or the running batch at the next step.
//! - **Failures.** When a model call fails, the engine drops the batch it ran. Its passes are
//!   queued again to run one per batch (`isolated`), so only a pass that fails alone is answered
//!   with an error; the server and the other requests go on.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use super::Limits;
use super::metrics::{Metrics, Phase};
use super::priority::{self, Class, Pacer};
use super::queue::{Queue, Work};
use crate::batch::error_chain;
use crate::generation::engine::{Engine, Padded, Placement, Report, SequenceId};
use crate::generation::{GenerationConfig, pad_batch};
use crate::{Error, PassOutput, Summarizer};

/// Decoder steps a queued round may wait behind shorter work before it goes first: a few
/// summaries' length, so shortest-first never starves a long article.
pub const STARVATION_STEPS: u64 = 256;

/// One pass to generate.
#[derive(Debug, Clone)]
pub struct PassRequest {
    pub input_ids: Vec<u32>,
    pub config: Arc<GenerationConfig>,
}

/// The answer to one pass: its output, or the message of the model error it failed with alone.
pub type PassReply = Result<PassOutput, String>;

/// The scheduler stopped (the server is shutting down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

enum Command {
    Submit(Class, Vec<(PassRequest, oneshot::Sender<PassReply>)>),
    Stop,
}

/// The HTTP side's handle on the scheduler thread.
#[derive(Debug)]
pub struct SchedulerHandle {
    commands: mpsc::UnboundedSender<Command>,
    alive: Arc<AtomicBool>,
}

impl SchedulerHandle {
    /// Starts the scheduler thread over `summarizer`'s model.
    pub fn start(
        summarizer: Arc<Summarizer>,
        limits: Limits,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self> {
        let (commands, receiver) = mpsc::unbounded_channel();
        let alive = Arc::new(AtomicBool::new(true));
        let flag = AliveFlag(alive.clone());
        std::thread::Builder::new()
            .name("precis-scheduler".into())
            .spawn(move || {
                let _flag = flag;
                Scheduler::new(&summarizer, limits, &metrics).run(receiver);
            })?;
        Ok(Self { commands, alive })
    }

    /// Whether the scheduler thread is still running.
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    /// Queues `passes` (one document's round, of `class`); each reply comes on its own channel.
    /// Dropping a receiver cancels its pass.
    pub fn submit(
        &self,
        class: Class,
        passes: Vec<PassRequest>,
    ) -> Result<Vec<oneshot::Receiver<PassReply>>, Stopped> {
        let (items, receivers): (Vec<_>, Vec<_>) = passes
            .into_iter()
            .map(|pass| {
                let (reply, receiver) = oneshot::channel();
                ((pass, reply), receiver)
            })
            .unzip();
        self.commands
            .send(Command::Submit(class, items))
            .map_err(|_| Stopped)?;
        Ok(receivers)
    }

    /// Asks the thread to drop all work and end; pending replies see their channel close.
    pub fn stop(&self) {
        let _ = self.commands.send(Command::Stop);
    }
}

/// Clears the `alive` flag when the thread ends, even by a panic.
struct AliveFlag(Arc<AtomicBool>);

impl Drop for AliveFlag {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// What may still join the running batch at this step boundary.
struct Budget<'l> {
    limits: &'l Limits,
    /// Sequences in the batch, counting those taken at this step.
    sequences: usize,
    /// The longest input among them.
    width: usize,
    /// Input tokens taken at this step (to encode before the next decoder step).
    prefill: usize,
}

impl<'l> Budget<'l> {
    fn new(limits: &'l Limits, sequences: usize, padded_tokens: usize) -> Self {
        Self {
            limits,
            sequences,
            width: padded_tokens / sequences.max(1),
            prefill: 0,
        }
    }

    /// Whether a pass of `tokens` input tokens joins now; counts it if so.
    fn take(&mut self, tokens: usize) -> Admission {
        let limits = self.limits;
        let wider = self.width.max(tokens);
        let room = self.sequences < limits.max_batch_size
            && (self.sequences + 1) * wider <= limits.max_batch_tokens;
        // The first pass of a step joins whatever its length, when there is room.
        let prefill = self.prefill == 0 || self.prefill + tokens <= limits.max_prefill_tokens;
        // A lone pass runs whatever its size.
        if self.sequences > 0 && !room {
            return Admission::NoRoom;
        }
        if self.sequences > 0 && !prefill {
            return Admission::NotThisStep;
        }
        self.sequences += 1;
        self.width = wider;
        self.prefill += tokens;
        Admission::Joins
    }
}

/// One admission's decisions, pass by pass: the priority between classes, then the budgets.
struct Admitter<'l> {
    budget: Budget<'l>,
    now: priority::Admitting,
    /// The batch refused a pass for want of room: the server is saturated.
    full: bool,
}

impl Admitter<'_> {
    /// Whether the next queued pass (of `class`, `tokens` input tokens, `starved` or not)
    /// joins now; counts it if so.
    fn offer(&mut self, class: Class, starved: bool, tokens: usize) -> bool {
        if !priority::may_join(class, starved, self.now) {
            return false;
        }
        let admission = self.budget.take(tokens);
        self.full = admission == Admission::NoRoom;
        let joins = admission == Admission::Joins;
        self.now.interactive_busy |= joins && class == Class::Interactive;
        self.now.bulk_joined |= joins && class == Class::Bulk;
        joins
    }
}

/// What [`Budget::take`] says about a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admission {
    Joins,
    /// The batch is full: it waits for running sequences to finish.
    NoRoom,
    /// This step's prefill budget is spent: it joins at a later step.
    NotThisStep,
}

/// A padded batch takes inputs down to this fraction of its longest (as numerator /
/// denominator): the encoder's work on padding stays under a quarter of the batch.
const SIMILAR_LENGTH: (usize, usize) = (3, 4);

/// Indices of `lengths` in padded batches of similar length, longest first, as `precis batch`
/// sorts its batches: passes joining at one step may be a long article's 512-token chunks and
/// 100-token short articles, and padding them together would spend most of the encoder's work
/// on padding.
fn similar_lengths(lengths: &[usize]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
    let mut parts: Vec<Vec<usize>> = Vec::new();
    for i in order {
        let (num, den) = SIMILAR_LENGTH;
        match parts.last_mut() {
            Some(part) if lengths[i] * den >= lengths[part[0]] * num => part.push(i),
            _ => parts.push(vec![i]),
        }
    }
    parts
}

/// A pass waiting or running, with what is needed to run it again after a failure.
struct Item {
    pass: PassRequest,
    reply: oneshot::Sender<PassReply>,
    enqueued: Instant,
    class: Class,
    /// Run in a batch of its own: it was in a batch that failed.
    isolated: bool,
}

impl Item {
    /// Where it runs when it joins now, `saturated` or not.
    fn placement(&self, saturated: bool) -> Placement {
        Placement {
            lane: self.class.lane(saturated),
            isolated: self.isolated,
        }
    }
}

impl Work for (SequenceId, Item) {
    fn tokens(&self) -> usize {
        self.1.pass.input_ids.len()
    }
}

struct Scheduler<'a> {
    engine: Engine<'a>,
    pad: u32,
    device: candle_core::Device,
    limits: Limits,
    metrics: &'a Metrics,
    queue: Queue<(SequenceId, Item)>,
    running: HashMap<SequenceId, Item>,
    next_id: SequenceId,
    /// Decoder steps run so far: the queue's clock.
    steps: u64,
    pacer: Pacer,
    /// The last admission refused a pass for want of room in the batch.
    saturated: bool,
}

impl<'a> Scheduler<'a> {
    fn new(summarizer: &'a Summarizer, limits: Limits, metrics: &'a Metrics) -> Self {
        let loaded = summarizer.loaded();
        Self {
            engine: Engine::new(loaded.model.as_ref()),
            pad: loaded.model.spec().pad_token_id,
            device: loaded.device.clone(),
            limits,
            metrics,
            queue: Queue::new(STARVATION_STEPS),
            running: HashMap::new(),
            next_id: 0,
            steps: 0,
            pacer: Pacer::new(
                priority::INTERACTIVE_ROWS_PER_BULK_ROW,
                priority::MAX_BULK_WAIT,
            ),
            saturated: false,
        }
    }

    fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        loop {
            if self.engine.is_empty() && self.queue.is_empty() {
                // Idle: sleep until work comes, or the server goes.
                match commands.blocking_recv() {
                    Some(command) => {
                        if !self.take(command) {
                            return;
                        }
                    }
                    None => return,
                }
            }
            while let Ok(command) = commands.try_recv() {
                if !self.take(command) {
                    return;
                }
            }
            self.drop_cancelled();
            let started = Instant::now();
            let encoding = self.engine.encoding();
            self.admit();
            let encoded = self.engine.encoding() - encoding;
            self.metrics.record_busy(Phase::Encode, encoded);
            self.metrics
                .record_busy(Phase::Join, started.elapsed().saturating_sub(encoded));
            if !self.engine.is_empty() {
                let started = Instant::now();
                self.step();
                self.metrics.record_busy(Phase::Step, started.elapsed());
            }
            self.update_gauges();
        }
    }

    /// One decoder step for the lanes the pacer picks.
    fn step(&mut self) {
        let front = self.engine.rows_in(priority::FRONT);
        let paced = self.engine.rows_in(priority::PACED);
        let stepping = self.pacer.next(front, paced, self.saturated);
        let rows = usize::from(stepping.front) * front + usize::from(stepping.paced) * paced;
        self.metrics.decoder_steps.inc();
        self.metrics.decoder_rows.inc_by(rows as u64);
        let report = self.engine.step_lanes(|lane| stepping.steps(lane));
        self.steps += 1;
        self.deliver(report);
    }

    /// Queues a submission; `false` on a stop request.
    fn take(&mut self, command: Command) -> bool {
        let Command::Submit(class, passes) = command else {
            return false;
        };
        let enqueued = Instant::now();
        let round: Vec<_> = passes
            .into_iter()
            .map(|(pass, reply)| {
                let item = Item {
                    pass,
                    reply,
                    enqueued,
                    class,
                    isolated: false,
                };
                (self.new_id(), item)
            })
            .collect();
        self.queue.push(round, self.steps, class, false);
        true
    }

    fn new_id(&mut self) -> SequenceId {
        self.next_id += 1;
        self.next_id
    }

    /// Forgets passes whose requester is gone.
    fn drop_cancelled(&mut self) {
        let dropped = self.queue.retain(|(_, item)| !item.reply.is_closed());
        let running = &self.running;
        let gone = |id: SequenceId| running.get(&id).is_none_or(|item| item.reply.is_closed());
        let (stopped, report) = self.engine.cancel(gone);
        self.metrics.cancelled.inc_by((dropped + stopped) as u64);
        if stopped > 0 {
            tracing::debug!("{stopped} sequences cancelled: their clients went away");
            self.running.retain(|_, item| !item.reply.is_closed());
        }
        self.deliver(report);
    }

    /// Moves passes from the queue into the running batch while the budgets and the priority
    /// between classes allow, and notes whether the batch refused one for want of room.
    fn admit(&mut self) {
        let budget = Budget::new(
            &self.limits,
            self.engine.sequences(),
            self.engine.padded_tokens(),
        );
        let now = priority::Admitting {
            interactive_busy: self
                .running
                .values()
                .any(|item| item.class == Class::Interactive),
            saturated: self.saturated,
            bulk_joined: false,
        };
        let mut admitter = Admitter {
            budget,
            now,
            full: false,
        };
        let chosen = self.queue.take_while(self.steps, |pass, offer| {
            admitter.offer(offer.class, offer.starved, pass.tokens())
        });
        let full = admitter.full;
        if !chosen.is_empty() {
            self.start(chosen);
        }
        self.saturated = full;
    }

    /// Encodes and joins `chosen`: one admission per beam width and lane, one per isolated
    /// pass.
    fn start(&mut self, chosen: Vec<(SequenceId, Item)>) {
        let saturated = self.saturated;
        let mut batches: Vec<Vec<(SequenceId, Item)>> = Vec::new();
        for (id, item) in chosen {
            let beams = item.pass.config.beam_width();
            let shared = batches.iter_mut().find(|b| {
                let (_, first) = &b[0];
                !item.isolated
                    && first.placement(saturated) == item.placement(saturated)
                    && first.pass.config.beam_width() == beams
            });
            match shared {
                Some(batch) => batch.push((id, item)),
                None => batches.push(vec![(id, item)]),
            }
        }
        for batch in batches {
            let placement = batch[0].1.placement(saturated);
            let admitted = self.admit_batch(&batch, placement);
            let ids: Vec<SequenceId> = batch.iter().map(|(id, _)| *id).collect();
            self.running.extend(batch);
            if let Err(error) = admitted {
                self.fail(ids, &error);
            }
        }
    }

    fn admit_batch(
        &mut self,
        batch: &[(SequenceId, Item)],
        placement: Placement,
    ) -> crate::Result<()> {
        let now = Instant::now();
        for (_, item) in batch {
            let waited = now.duration_since(item.enqueued).as_secs_f64();
            self.metrics.queue_seconds.observe(waited);
            self.metrics
                .input_tokens
                .inc_by(item.pass.input_ids.len() as u64);
        }
        let lengths: Vec<usize> = batch
            .iter()
            .map(|(_, item)| item.pass.input_ids.len())
            .collect();
        let mut padded = Vec::new();
        for part in similar_lengths(&lengths) {
            let rows: Vec<&[u32]> = part
                .iter()
                .map(|&i| batch[i].1.pass.input_ids.as_slice())
                .collect();
            let (input_ids, attention_mask) = pad_batch(&rows, self.pad, &self.device)?;
            let sequences = part
                .iter()
                .map(|&i| (batch[i].0, GenerationConfig::clone(&batch[i].1.pass.config)))
                .collect();
            padded.push(Padded {
                input_ids,
                attention_mask,
                sequences,
            });
        }
        self.engine.admit_all(padded, placement)
    }

    /// Answers finished passes; failed ones run again alone, or are answered with the error
    /// when they already failed alone.
    fn deliver(&mut self, report: Report) {
        // Before any reply: a client that reads /metrics on its answer sees its work gone.
        self.update_gauges();
        for finished in report.finished {
            let Some(item) = self.running.remove(&finished.id) else {
                continue;
            };
            let generated = finished.tokens.len().saturating_sub(1);
            self.metrics.generated_tokens.inc_by(generated as u64);
            let output = PassOutput {
                ids: finished.tokens,
                seconds: finished.seconds,
            };
            // The requester may have gone meanwhile; nothing to do then.
            let _ = item.reply.send(Ok(output));
        }
        for failure in report.failed {
            self.fail(failure.ids, &failure.error);
        }
    }

    fn fail(&mut self, ids: Vec<SequenceId>, error: &Error) {
        let message = error_chain(error);
        tracing::error!("model failure for {} passes: {message}", ids.len());
        for id in ids {
            let Some(mut item) = self.running.remove(&id) else {
                continue;
            };
            if item.isolated {
                let _ = item.reply.send(Err(message.clone()));
            } else {
                item.isolated = true;
                // Ahead of everything else: it already waited its turn.
                let class = item.class;
                let retry = [(self.new_id(), item)];
                self.queue.push(retry, self.steps, class, true);
            }
        }
    }

    fn update_gauges(&self) {
        let copies = self.engine.state_copies();
        let counted = self.metrics.state_copies.get();
        self.metrics
            .state_copies
            .inc_by(copies.saturating_sub(counted));
        self.metrics.queue_length.set(self.queue.len() as i64);
        self.metrics
            .batch_sequences
            .set(self.engine.sequences() as i64);
        self.metrics.batch_rows.set(self.engine.rows() as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(size: usize, tokens: usize, prefill: usize) -> Limits {
        Limits {
            max_batch_size: size,
            max_batch_tokens: tokens,
            max_prefill_tokens: prefill,
            ..Limits::default()
        }
    }

    fn taken(budget: &mut Budget, passes: &[usize]) -> Vec<bool> {
        passes
            .iter()
            .map(|&tokens| budget.take(tokens) == Admission::Joins)
            .collect()
    }

    #[test]
    fn passes_of_similar_length_are_padded_together_longest_first() {
        let lengths = [120, 512, 130, 400, 100, 512, 384];
        let parts = similar_lengths(&lengths);
        assert_eq!(parts, [vec![1, 5, 3, 6], vec![2, 0, 4]]);
        assert_eq!(similar_lengths(&[10]), [vec![0]]);
        assert!(similar_lengths(&[]).is_empty());
        // 89 is under three quarters of 120.
        assert_eq!(similar_lengths(&[120, 89]), [vec![0], vec![1]]);
    }

    #[test]
    fn a_full_batch_is_told_apart_from_a_spent_prefill_budget() {
        // Only a full batch makes the server saturated: a spent prefill budget clears at the
        // next step.
        let limits = limits(3, 1000, 300);
        let mut budget = Budget::new(&limits, 1, 100);
        assert_eq!(budget.take(200), Admission::Joins);
        assert_eq!(budget.take(200), Admission::NotThisStep);
        assert_eq!(budget.take(50), Admission::Joins);
        assert_eq!(budget.take(10), Admission::NoRoom);
        let mut budget = Budget::new(&limits, 2, 2 * 300);
        assert_eq!(budget.take(400), Admission::NoRoom, "3 x 400 > 1000 tokens");
    }

    #[test]
    fn prefill_tokens_bound_one_step_but_its_first_pass_always_joins() {
        let limits = limits(8, 100_000, 1000);
        let mut budget = Budget::new(&limits, 2, 2 * 300);
        assert_eq!(taken(&mut budget, &[1200, 10]), [true, false]);
        let mut budget = Budget::new(&limits, 2, 2 * 300);
        assert_eq!(taken(&mut budget, &[500, 500, 1]), [true, true, false]);
    }

    #[test]
    fn batch_size_and_padded_tokens_bound_the_batch() {
        let limits = limits(3, 1000, 100_000);
        let mut budget = Budget::new(&limits, 1, 100);
        assert_eq!(taken(&mut budget, &[100, 10, 10]), [true, true, false]);
        // 3 sequences padded to 400 would be 1200 tokens.
        let mut budget = Budget::new(&limits, 1, 100);
        assert_eq!(taken(&mut budget, &[100, 400]), [true, false]);
    }

    #[test]
    fn bulk_passes_join_one_per_step_after_interactive_ones_and_all_once_saturated() {
        let limits = limits(8, 100_000, 100_000);
        let offers = |now: priority::Admitting, passes: &[(Class, bool)]| {
            let mut admitter = Admitter {
                budget: Budget::new(&limits, 1, 100),
                now,
                full: false,
            };
            let joined: Vec<bool> = passes
                .iter()
                .map(|&(class, starved)| admitter.offer(class, starved, 100))
                .collect();
            joined
        };
        let (bulk, interactive) = ((Class::Bulk, false), (Class::Interactive, false));
        let idle = priority::Admitting::default();
        assert_eq!(
            offers(idle, &[bulk, bulk, interactive]),
            [true, false, true]
        );
        // An interactive pass that joins first holds the bulk ones back, unless starved.
        assert_eq!(
            offers(
                idle,
                &[interactive, bulk, (Class::Bulk, true), (Class::Bulk, true)]
            ),
            [true, false, true, false]
        );
        let saturated = priority::Admitting {
            saturated: true,
            ..idle
        };
        assert_eq!(
            offers(saturated, &[bulk, bulk, interactive]),
            [true, true, true]
        );
    }

    #[test]
    fn a_lone_pass_runs_over_every_budget() {
        let limits = limits(1, 10, 10);
        let mut budget = Budget::new(&limits, 0, 0);
        assert_eq!(taken(&mut budget, &[5000, 1]), [true, false]);
    }
}
