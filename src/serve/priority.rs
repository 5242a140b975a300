//! Priority between the two classes of work the scheduler runs, as pure functions.
//!
//! On a CPU a decoder step costs roughly in proportion to its rows, and encoding an input stalls
//! every running sequence; so a short article decoding beside a long one's chunks runs several
//! times slower than alone, however the queue is ordered. Only priority keeps it near its time
//! alone:
//! - **Classes.** A document that fits one pass (one chunk, no merge) is [`Class::Interactive`];
//!   the chunk passes and merge passes of a long, chunked document are [`Class::Bulk`]. Each
//!   class runs in its own engine lane (groups of different lanes never share a decoder call).
//! - **Stepping.** While interactive sequences run, bulk groups step only every
//!   [`BULK_EVERY`]th step ([`Pacer`]), so bulk work always moves, at a quarter of its pace or
//!   more. With one class present it steps every time: nothing is held back for nobody.
//! - **Admission.** While interactive passes run or join, queued bulk passes wait (their
//!   encoding would stall the interactive ones) unless their round has waited the queue's
//!   starvation bound ([`may_join`]); so bulk work is never starved either.
//!
//! The cost is the bulk work's latency while interactive traffic lasts; total throughput stays,
//! since the machine is as busy either way.

use crate::Pass;
use crate::generation::Lane;

/// While interactive sequences run, bulk groups step once every this many steps: a short
/// request's steps then carry the long work's rows a quarter of the time, and long work still
/// moves at a quarter of its pace or more.
pub const BULK_EVERY: u64 = 4;

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

    /// The engine lane its sequences run in.
    pub fn lane(self) -> Lane {
        self as Lane
    }
}

/// Which classes step at one decoder step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stepping {
    pub interactive: bool,
    pub bulk: bool,
}

impl Stepping {
    /// Whether the sequences of `lane` step.
    pub fn steps(self, lane: Lane) -> bool {
        if lane == Class::Interactive.lane() {
            self.interactive
        } else {
            self.bulk
        }
    }
}

/// Paces bulk steps while interactive sequences run.
#[derive(Debug)]
pub struct Pacer {
    every: u64,
    /// Steps in a row at which bulk sequences waited.
    skipped: u64,
}

impl Pacer {
    /// Bulk groups step every `every`th step while interactive ones run.
    pub fn new(every: u64) -> Self {
        Self { every, skipped: 0 }
    }

    /// The classes to step now, given which have running sequences.
    pub fn next(&mut self, interactive: bool, bulk: bool) -> Stepping {
        let bulk_steps = bulk && (!interactive || self.skipped + 1 >= self.every);
        self.skipped = if bulk && !bulk_steps {
            self.skipped + 1
        } else {
            0
        };
        Stepping {
            interactive,
            bulk: bulk_steps,
        }
    }
}

/// Whether a queued pass of `class` may join the running batch now: interactive ones always
/// (the budgets permitting); bulk ones while no interactive pass runs or joins at this step, or
/// once their round waited the queue's starvation bound (`starved`).
pub fn may_join(class: Class, starved: bool, interactive_busy: bool) -> bool {
    class == Class::Interactive || starved || !interactive_busy
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
        assert_ne!(Class::Interactive.lane(), Class::Bulk.lane());
    }

    fn schedule(pacer: &mut Pacer, interactive: bool, bulk: bool, steps: usize) -> String {
        (0..steps)
            .map(|_| {
                let s = pacer.next(interactive, bulk);
                match (s.interactive, s.bulk) {
                    (true, true) => 'A',
                    (true, false) => 'i',
                    (false, true) => 'b',
                    (false, false) => '-',
                }
            })
            .collect()
    }

    #[test]
    fn bulk_steps_every_nth_step_while_interactive_runs() {
        let mut pacer = Pacer::new(4);
        assert_eq!(schedule(&mut pacer, true, true, 9), "iiiAiiiAi");
        // Alone, each class steps every time; the count starts over after bulk ran alone.
        assert_eq!(schedule(&mut pacer, false, true, 3), "bbb");
        assert_eq!(schedule(&mut pacer, true, false, 3), "iii");
        assert_eq!(schedule(&mut pacer, true, true, 4), "iiiA");
        assert_eq!(schedule(&mut pacer, false, false, 1), "-");
        assert_eq!(schedule(&mut Pacer::new(1), true, true, 3), "AAA");
    }

    #[test]
    fn bulk_waits_for_interactive_work_unless_starved() {
        assert!(may_join(Class::Interactive, false, true));
        assert!(may_join(Class::Bulk, false, false));
        assert!(!may_join(Class::Bulk, false, true));
        assert!(may_join(Class::Bulk, true, true));
    }
}
