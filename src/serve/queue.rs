//! The passes waiting for the running batch, and the order they join it in.
//!
//! Passes come in rounds: the chunks of one document, or one merge pass, each of a [`Class`]. A
//! round that failed in a batch and must run again alone goes first; then any round that has
//! waited `starvation_steps` decoder steps, oldest first, so long work is never starved; then
//! interactive rounds before bulk ones (see [`super::priority`]), and within a class the round
//! with the fewest input tokens still queued, oldest first among equals. That is shortest work
//! first: a short article (one small pass) is not stuck behind the chunks of a long one, and a
//! long article's merge pass (small, and the last it needs) finishes it soon.

use std::collections::VecDeque;

use super::priority::Class;

/// What the queue needs to know about a pass: how much encoder work it is.
pub trait Work {
    fn tokens(&self) -> usize;
}

/// What [`Queue::take_while`] tells about the pass it offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offer {
    /// Its round's class.
    pub class: Class,
    /// Its round has waited the starvation bound.
    pub starved: bool,
}

/// Rounds of passes, in arrival order.
#[derive(Debug)]
pub struct Queue<T> {
    rounds: VecDeque<Round<T>>,
    starvation_steps: u64,
}

#[derive(Debug)]
struct Round<T> {
    passes: VecDeque<T>,
    /// The decoder step count when the round was queued.
    queued_at: u64,
    class: Class,
    /// Runs before everything else (a retry after a failed batch).
    urgent: bool,
}

impl<T: Work> Queue<T> {
    /// A queue in which no round waits more than `starvation_steps` steps behind shorter work.
    pub fn new(starvation_steps: u64) -> Self {
        Self {
            rounds: VecDeque::new(),
            starvation_steps,
        }
    }

    /// Queues one round of `class` at decoder step `now`; `urgent` ones go before everything
    /// else.
    pub fn push(
        &mut self,
        passes: impl IntoIterator<Item = T>,
        now: u64,
        class: Class,
        urgent: bool,
    ) {
        let passes: VecDeque<T> = passes.into_iter().collect();
        if !passes.is_empty() {
            self.rounds.push_back(Round {
                passes,
                queued_at: now,
                class,
                urgent,
            });
        }
    }

    /// Passes waiting.
    pub fn len(&self) -> usize {
        self.rounds.iter().map(|r| r.passes.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.rounds.is_empty()
    }

    /// Drops the passes for which `keep` is false; returns how many went.
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) -> usize {
        let before = self.len();
        for round in &mut self.rounds {
            round.passes.retain(&mut keep);
        }
        self.rounds.retain(|r| !r.passes.is_empty());
        before - self.len()
    }

    /// Takes passes in order at decoder step `now` while `accept` takes them (told the class of
    /// each one's round and whether it is starved); stops at the first it refuses, so that pass
    /// keeps its place at the head.
    pub fn take_while(&mut self, now: u64, mut accept: impl FnMut(&T, Offer) -> bool) -> Vec<T> {
        let mut taken = Vec::new();
        while let Some(index) = self.next_round(now) {
            let offer = Offer {
                class: self.rounds[index].class,
                starved: self.starved(&self.rounds[index], now),
            };
            let round = &mut self.rounds[index];
            let Some(pass) = round.passes.front() else {
                break;
            };
            if !accept(pass, offer) {
                break;
            }
            taken.extend(round.passes.pop_front());
            if round.passes.is_empty() {
                self.rounds.remove(index);
            }
        }
        taken
    }

    /// Whether `round` has waited its bound at decoder step `now`.
    fn starved(&self, round: &Round<T>, now: u64) -> bool {
        now.saturating_sub(round.queued_at) >= self.starvation_steps
    }

    /// The index of the round to serve next.
    fn next_round(&self, now: u64) -> Option<usize> {
        let first = |wanted: &dyn Fn(&Round<T>) -> bool| self.rounds.iter().position(wanted);
        first(&|r| r.urgent)
            .or_else(|| first(&|r| self.starved(r, now)))
            .or_else(|| {
                // `min_by_key` keeps the first of equals: the oldest.
                (0..self.rounds.len()).min_by_key(|&i| {
                    let round = &self.rounds[i];
                    let tokens: usize = round.passes.iter().map(Work::tokens).sum();
                    (round.class, tokens)
                })
            })
    }

    /// Every waiting pass, in the order they would be taken.
    #[cfg(test)]
    fn order(&mut self, now: u64) -> Vec<T> {
        self.take_while(now, |_, _| true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pass of `.0` tokens, named `.1`.
    type Pass = (usize, char);

    impl Work for Pass {
        fn tokens(&self) -> usize {
            self.0
        }
    }

    fn names(passes: Vec<Pass>) -> String {
        passes.into_iter().map(|p| p.1).collect()
    }

    fn queue(rounds: &[&[Pass]]) -> Queue<Pass> {
        let mut queue = Queue::new(100);
        for round in rounds {
            queue.push(round.iter().copied(), 0, Class::Bulk, false);
        }
        queue
    }

    #[test]
    fn fewest_queued_tokens_first_and_a_round_stays_together() {
        // A long article's three chunks came first; a short article after them goes first.
        let mut q = queue(&[
            &[(500, 'a'), (500, 'b'), (300, 'c')],
            &[(120, 's')],
            &[(400, 'm')],
        ]);
        assert_eq!(names(q.order(1)), "smabc");
    }

    #[test]
    fn equal_work_keeps_arrival_order() {
        let mut q = Queue::new(100);
        for (pass, now) in [
            ((200, 'a'), 0),
            ((200, 'b'), 1),
            ((200, 'c'), 2),
            ((199, 'd'), 3),
        ] {
            q.push([pass], now, Class::Bulk, false);
        }
        assert_eq!(names(q.order(4)), "dabc");
    }

    #[test]
    fn a_starved_round_goes_before_shorter_work() {
        let fill = || {
            let mut q = Queue::new(10);
            q.push([(500, 'a'), (500, 'b')], 0, Class::Bulk, false);
            q.push([(50, 's')], 5, Class::Bulk, false);
            q
        };
        assert_eq!(names(fill().order(9)), "sab", "not starved yet");
        assert_eq!(names(fill().order(10)), "abs", "waited 10 steps");
    }

    #[test]
    fn interactive_rounds_go_before_shorter_bulk_ones_but_not_before_starved_ones() {
        let fill = || {
            let mut q = Queue::new(10);
            q.push([(500, 'a'), (500, 'b')], 0, Class::Bulk, false);
            q.push([(60, 'm')], 5, Class::Bulk, false);
            q.push([(400, 'i')], 5, Class::Interactive, false);
            q.push([(50, 's')], 6, Class::Interactive, false);
            q
        };
        assert_eq!(names(fill().order(9)), "simab");
        assert_eq!(names(fill().order(10)), "absim", "a and b waited 10 steps");
        let mut offers = Vec::new();
        fill().take_while(10, |&(_, name), offer| {
            offers.push((name, offer.class, offer.starved));
            true
        });
        let (i, b) = (Class::Interactive, Class::Bulk);
        let expected = [
            ('a', b, true),
            ('b', b, true),
            ('s', i, false),
            ('i', i, false),
        ];
        assert_eq!(offers[..4], expected);
    }

    #[test]
    fn urgent_rounds_go_first() {
        let mut q = queue(&[&[(10, 's')]]);
        q.push([(900, 'r')], 0, Class::Bulk, true);
        assert_eq!(names(q.order(0)), "rs");
    }

    #[test]
    fn take_while_stops_at_the_first_refusal_and_keeps_it_at_the_head() {
        let mut q = queue(&[&[(300, 'a'), (200, 'b')], &[(100, 's')]]);
        let mut budget = 350;
        let taken = q.take_while(0, |&(tokens, _), _| {
            let fits = tokens <= budget;
            budget = budget.saturating_sub(tokens);
            fits
        });
        assert_eq!(names(taken), "s");
        assert_eq!(q.len(), 2);
        assert_eq!(names(q.order(0)), "ab");
    }

    #[test]
    fn retain_drops_passes_and_empty_rounds() {
        let mut q = queue(&[&[(1, 'a'), (2, 'b')], &[(3, 'c')]]);
        assert_eq!(q.retain(|p| p.1 == 'b'), 2);
        assert_eq!(q.len(), 1);
        assert!(!q.is_empty());
        assert_eq!(names(q.order(0)), "b");
        assert!(q.is_empty());
    }
}
