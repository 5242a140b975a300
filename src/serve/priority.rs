//! Priority between the two classes of work the scheduler runs, as pure functions.
//!
//! On a CPU a decoder step costs roughly in proportion to its rows, and encoding an input stalls
//! every running sequence; so a short article decoding beside a long one's chunks runs several
//! times slower than alone, however the queue is ordered. Only priority keeps it near its time
//! alone:
//! - **Classes.** A document that fits one pass (one chunk, no merge) is [`Class::Interactive`];
//!   the chunk passes and merge passes of a long, chunked document are [`Class::Bulk`]. Bulk
//!   passes run in a lane of their own (groups of different lanes never share a decoder call),
//!   the *paced* lane.
//! - **Stepping.** While interactive sequences run, the paced lane steps only once the
//!   interactive rows stepped since its last step reach [`INTERACTIVE_ROWS_PER_BULK_ROW`] times
//!   its own rows, and at least every [`MAX_BULK_WAIT`] steps ([`Pacer`]). So bulk work gets
//!   about a fifth of the decoder's rows and a short request's steps slow by about a quarter,
//!   however much long work runs beside it; and bulk work always moves. With one class present
//!   it steps every time: nothing is held back for nobody.
//! - **Admission.** While interactive passes run or join, queued bulk passes wait (their
//!   encoding would stall the interactive ones) unless their round has waited the queue's
//!   starvation bound ([`may_join`]); so bulk work is never starved either. And bulk passes
//!   join one per step: encoding cannot be cut short, so a short request that arrives while
//!   bulk passes are being encoded waits for all of them, and a step's whole
//!   `--max-prefill-tokens` of long-article chunks made short requests beside two
//!   long-article clients wait 3.3x their time alone at p95, against 1.4x with one chunk per
//!   step (t5-small shape, 2 cores, 1024 against 512 prefill tokens).
//! - **Saturation: the priority gives way.** Holding bulk work back only helps while there is
//!   room: when work that may join is refused for want of room in the batch (the server is
//!   *saturated*), requests wait in the queue whatever the priority does, and a paced lane only
//!   keeps batch slots busy at a fifth of their speed, which makes every request wait longer.
//!   It also splits each step into two decoder calls, and on a CPU a call has a large fixed
//!   cost (every weight is read once per call, whatever the rows): at 32 clients two calls of
//!   about 16 rows cost about 1.5x one call of 32. So while saturated the paced lane steps every
//!   time, bulk passes join in queue order, and they join the interactive lane ([`Class::lane`]),
//!   so the batch steps in one decoder call (and bulk passes join as many per step as the
//!   prefill budget takes). Bulk work that joined then stays in that lane until
//!   it finishes (moving it would copy its decoder state), so when saturation ends short
//!   requests run beside it at most one summary's length.
//!
//! The cost is the bulk work's latency while interactive traffic lasts and the server has room;
//! total throughput stays, since the machine is as busy either way.

use crate::Pass;
use crate::generation::Lane;

/// While interactive sequences run, bulk groups step once the interactive rows stepped since
/// their last step reach this many times their own rows: bulk work then takes about a fifth of
/// the decoder's rows (a step costs about in proportion to its rows on a CPU), so a short
/// request runs within about 1.25x of its steps alone.
pub const INTERACTIVE_ROWS_PER_BULK_ROW: usize = 4;

/// Bulk groups wait at most this many steps in a row (when they are far wider than the
/// interactive ones), so long work always moves.
pub const MAX_BULK_WAIT: u64 = 64;

/// The two classes of work, in the order they are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// A document summarised in one pass: someone is likely waiting on it.
    Interactive,
    /// The chunk and merge passes of a long document.
    Bulk,
}

impl Class {
    /// The class of a document's round of `passes`; `first` for its first round.
    pub fn of_round(first: bool, passes: &[Pass]) -> Self {
        match passes {
            [only] if first && only.last_pass => Self::Interactive,
            _ => Self::Bulk,
        }
    }

    /// The engine lane its sequences run in when they join now: bulk passes run in the paced
    /// lane, unless they join while the server is `saturated`.
    pub fn lane(self, saturated: bool) -> Lane {
        match self {
            Self::Bulk if !saturated => PACED,
            _ => FRONT,
        }
    }
}

/// The lane that steps every time: interactive passes, and bulk ones that joined while the
/// server was saturated.
pub const FRONT: Lane = 0;
/// The lane of bulk passes, stepped by the [`Pacer`].
pub const PACED: Lane = 1;

/// Which lanes step at one decoder step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stepping {
    pub front: bool,
    pub paced: bool,
}

impl Stepping {
    /// Whether the sequences of `lane` step.
    pub fn steps(self, lane: Lane) -> bool {
        if lane == FRONT {
            self.front
        } else {
            self.paced
        }
    }
}

/// Paces the paced lane's steps while the front lane runs.
#[derive(Debug)]
pub struct Pacer {
    ratio: usize,
    max_wait: u64,
    /// Interactive rows stepped while bulk sequences waited.
    credit: usize,
    /// Steps in a row at which bulk sequences waited.
    waited: u64,
}

impl Pacer {
    /// Bulk groups step once `ratio` interactive rows per bulk row stepped meanwhile, or after
    /// waiting `max_wait` steps.
    pub fn new(ratio: usize, max_wait: u64) -> Self {
        Self {
            ratio,
            max_wait,
            credit: 0,
            waited: 0,
        }
    }

    /// The lanes to step now, given the rows each has running; everything steps while the
    /// server is `saturated`.
    pub fn next(&mut self, front_rows: usize, paced_rows: usize, saturated: bool) -> Stepping {
        let front = front_rows > 0;
        let paced = paced_rows > 0
            && (!front
                || saturated
                || self.credit + front_rows >= self.ratio * paced_rows
                || self.waited + 1 >= self.max_wait);
        if paced || paced_rows == 0 {
            (self.credit, self.waited) = (0, 0);
        } else {
            self.credit += front_rows;
            self.waited += 1;
        }
        Stepping { front, paced }
    }
}

/// What decides whether a bulk pass may join at one admission.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Admitting {
    /// Interactive passes run, or join at this step.
    pub interactive_busy: bool,
    /// The server is saturated (see the module header).
    pub saturated: bool,
    /// A bulk pass joined at this step already.
    pub bulk_joined: bool,
}

/// Whether a queued pass of `class` may join the running batch now: interactive ones always
/// (the budgets permitting); bulk ones while the server is saturated, and otherwise one per
/// step, while no interactive pass runs or joins or once their round waited the queue's
/// starvation bound (`starved`).
pub fn may_join(class: Class, starved: bool, now: Admitting) -> bool {
    match class {
        Class::Interactive => true,
        Class::Bulk => now.saturated || (!now.bulk_joined && (starved || !now.interactive_busy)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(last_pass: bool) -> Pass {
        Pass {
            input_ids: vec![5, 6, 1],
            last_pass,
        }
    }

    #[test]
    fn only_a_document_done_in_one_pass_is_interactive() {
        assert_eq!(Class::of_round(true, &[pass(true)]), Class::Interactive);
        // A long document's chunks, a lone chunk whose summary is merged, its merge passes.
        assert_eq!(
            Class::of_round(true, &[pass(false), pass(false)]),
            Class::Bulk
        );
        assert_eq!(Class::of_round(true, &[pass(false)]), Class::Bulk);
        assert_eq!(Class::of_round(false, &[pass(true)]), Class::Bulk);
        assert_eq!(Class::of_round(false, &[pass(false)]), Class::Bulk);
    }

    #[test]
    fn bulk_runs_in_the_paced_lane_unless_it_joins_a_saturated_server() {
        assert_eq!(Class::Interactive.lane(false), FRONT);
        assert_eq!(Class::Bulk.lane(false), PACED);
        assert_ne!(FRONT, PACED);
        assert_eq!(Class::Bulk.lane(true), FRONT);
        assert_eq!(Class::Interactive.lane(true), FRONT);
    }

    /// The lanes stepped at each of `steps` steps with these rows running (`A` both, `i` the
    /// front one, `b` the paced one).
    fn schedule(pacer: &mut Pacer, interactive: usize, bulk: usize, steps: usize) -> String {
        schedule_at(pacer, (interactive, bulk), false, steps)
    }

    fn schedule_at(
        pacer: &mut Pacer,
        (interactive, bulk): (usize, usize),
        saturated: bool,
        steps: usize,
    ) -> String {
        (0..steps)
            .map(|_| {
                let s = pacer.next(interactive, bulk, saturated);
                match (s.front, s.paced) {
                    (true, true) => 'A',
                    (true, false) => 'i',
                    (false, true) => 'b',
                    (false, false) => '-',
                }
            })
            .collect()
    }

    #[test]
    fn bulk_steps_once_interactive_rows_reach_its_share() {
        let mut pacer = Pacer::new(4, 100);
        // 4 interactive rows, 12 bulk rows: bulk steps once 48 interactive rows stepped.
        assert_eq!(schedule(&mut pacer, 4, 12, 13), "iiiiiiiiiiiAi");
        // Wider interactive work lets bulk step more often; narrower bulk work too.
        let mut pacer = Pacer::new(4, 100);
        assert_eq!(schedule(&mut pacer, 16, 12, 6), "iiAiiA");
        let mut pacer = Pacer::new(4, 100);
        assert_eq!(schedule(&mut pacer, 4, 1, 3), "AAA");
        assert_eq!(schedule(&mut Pacer::new(1, 100), 4, 4, 3), "AAA");
    }

    #[test]
    fn bulk_never_waits_more_than_the_bound_and_alone_each_class_steps_every_time() {
        let mut pacer = Pacer::new(4, 5);
        assert_eq!(schedule(&mut pacer, 1, 128, 10), "iiiiAiiiiA");
        assert_eq!(schedule(&mut pacer, 1, 128, 2), "ii");
        // The count starts over after bulk ran alone.
        assert_eq!(schedule(&mut pacer, 0, 128, 3), "bbb");
        assert_eq!(schedule(&mut pacer, 1, 128, 5), "iiiiA");
        assert_eq!(schedule(&mut pacer, 4, 0, 3), "iii");
        assert_eq!(schedule(&mut pacer, 0, 0, 1), "-");
    }

    #[test]
    fn a_saturated_server_steps_the_paced_lane_every_time() {
        let mut pacer = Pacer::new(4, 100);
        assert_eq!(schedule_at(&mut pacer, (16, 16), true, 4), "AAAA");
        // Pacing starts afresh when saturation ends.
        assert_eq!(schedule_at(&mut pacer, (16, 16), false, 5), "iiiAi");
        assert_eq!(schedule_at(&mut pacer, (0, 16), true, 2), "bb");
    }

    fn at(interactive_busy: bool, saturated: bool, bulk_joined: bool) -> Admitting {
        Admitting {
            interactive_busy,
            saturated,
            bulk_joined,
        }
    }

    #[test]
    fn bulk_waits_for_interactive_work_unless_starved_or_saturated() {
        assert!(may_join(Class::Interactive, false, at(true, false, false)));
        assert!(may_join(Class::Bulk, false, at(false, false, false)));
        assert!(!may_join(Class::Bulk, false, at(true, false, false)));
        assert!(may_join(Class::Bulk, true, at(true, false, false)));
        assert!(may_join(Class::Bulk, false, at(true, true, false)));
    }

    #[test]
    fn bulk_passes_join_one_per_step_unless_saturated() {
        assert!(!may_join(Class::Bulk, false, at(false, false, true)));
        assert!(!may_join(Class::Bulk, true, at(true, false, true)));
        assert!(may_join(Class::Bulk, false, at(false, true, true)));
        assert!(may_join(Class::Bulk, true, at(true, true, true)));
        // Interactive passes join whatever bulk work did.
        assert!(may_join(Class::Interactive, false, at(true, false, true)));
    }
}
