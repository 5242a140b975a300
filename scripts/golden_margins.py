"""Decision margins of transformers' generate(): how far each recorded golden output is from
flipping, and the gate every recorded case must pass (used by make_fixtures.py).

A *decision* is a comparison whose outcome decides the output tokens:
  * greedy: top-1 vs top-2 processed score at each step of each unfinished row;
  * beam search (transformers 5's vectorised search, see `BeamMarginRecorder`): at each step, the
    last running beam kept vs the best unfinished candidate dropped, whether an EOS candidate lands
    inside the top `num_beams` (the only finished candidates that may enter the pool), the last
    finished hypothesis kept in the pool vs the first one pushed out, the early-stopping heuristic
    (best possible running score vs worst finished), and at the end the best vs the second-best
    finished hypothesis: the final choice.
The *margin* of a decision is the score gap in log-prob units (for length-normalised scores, the
gap times the smaller length**length_penalty: how much one hypothesis' summed log-probs must move
to swap the two). A case's margin is the smallest over its decisions.
"""

from __future__ import annotations

import math
import statistics

import torch
from transformers import LogitsProcessor, LogitsProcessorList

# A recorded case must win every decision by at least MIN_MARGIN (log-prob units) and by at least
# NOISE_FACTOR times its float64 gap: the largest change of any of its decision gaps when the same
# case runs on a float64 copy of the model, i.e. how far transformers' own float32 arithmetic is
# from exact at those decisions (measured up to ~2e-4 for beam cases, whose gaps are sums of up to
# ~100 log-probs; ~1e-5 for greedy). precis's float32 differs from transformers' float32 by at most
# the sum of the two errors from exact, so NOISE_FACTOR = 5 leaves room for precis's own rounding
# to be four times worse than PyTorch's before a recorded decision could flip.
MIN_MARGIN = 1e-3
NOISE_FACTOR = 5.0


class GreedyMarginRecorder(LogitsProcessor):
    """Appended after transformers' own processors: records top1 - top2 of the processed scores
    (what argmax sees) for every row that has not finished yet."""

    def __init__(self, eos_token_id: int):
        self.eos = eos_token_id
        self.margins: list[float] = []

    def __call__(self, input_ids, scores):
        top = torch.topk(scores.double(), 2, dim=-1).values
        for row in range(input_ids.shape[0]):
            if (input_ids[row, 1:] == self.eos).any():
                continue
            gap = (top[row, 0] - top[row, 1]).item()
            if math.isfinite(gap):
                self.margins.append(gap)
        return scores


class BeamMarginRecorder:
    """Wraps transformers 5's vectorised beam-search helpers on one model instance and records the
    gap at every decision that determines the output:
      * which `num_beams` unfinished candidates keep running (gap between the last one kept and the
        best unfinished one dropped);
      * whether an EOS candidate lands inside the top `num_beams` (gap at that rank boundary);
      * which finished hypotheses stay in the pool (gap at rank num_beams of the merged pool, scores
        after length penalty);
      * the early-stopping heuristic comparison (best possible running score vs worst finished),
        when early_stopping is not True;
      * the final choice (best vs second-best finished hypothesis).
    Batch items whose search is already over are skipped."""

    def __init__(self, model, eos_token_id: int, max_length: int):
        self.model = model
        self.eos = eos_token_id
        self.max_length = max_length
        self.margins: list[float] = []
        self.done = None  # per batch item: search over (set after each step)
        self.last_beam_scores = None
        self.last_beam_lens = None
        self.length_penalty = 1.0

    def _add(self, gap: float) -> None:
        if math.isfinite(gap) and abs(gap) < 1e8:
            self.margins.append(abs(gap))

    def _add_normalized(self, a: tuple, b: tuple, lp: float) -> None:
        """Gap between two length-normalised scores (score, length), expressed in log-prob units:
        how much one hypothesis' summed log-probs must move to swap the two."""
        (sa, la), (sb, lb) = a, b
        self._add((sa - sb) * min(la**lp, lb**lp))

    def __enter__(self):
        model, rec = self.model, self
        orig_topk = model._get_top_k_continuations
        orig_update = model._update_finished_beams
        orig_heur = model._check_early_stop_heuristic

        def topk_wrapper(**kw):
            scores = kw["accumulated_log_probs"].double()
            nb, k = kw["num_beams"], kw["beams_to_keep"]
            vocab = scores.shape[-1] // nb
            cur_len = kw["cur_len"]
            vals, idx = torch.topk(scores, k + 1, dim=-1)
            for b in range(scores.shape[0]):
                if rec.done is not None and rec.done[b]:
                    continue
                v = [x if x > -1e8 else -math.inf for x in vals[b].tolist()]
                finished = [(i % vocab) == rec.eos or cur_len + 1 >= rec.max_length for i in idx[b].tolist()]
                if finished[nb - 1] or finished[nb]:
                    rec._add(v[nb - 1] - v[nb])
                unfinished = [r for r in range(k + 1) if not finished[r]]
                if len(unfinished) >= nb + 1:
                    rec._add(v[unfinished[nb - 1]] - v[unfinished[nb]])
                elif len(unfinished) == nb:  # the next unfinished one is beyond rank k+1
                    rec._add(v[unfinished[nb - 1]] - v[k])
            return orig_topk(**kw)

        def update_wrapper(**kw):
            nb = kw["num_beams"]
            lp = kw["length_penalty"]
            length = kw["cur_len"] + 1 - kw["decoder_prompt_len"]
            new = kw["topk_log_probs"].double() / (length**lp)
            eligible = kw["next_token_hits_stopping_criteria"] & kw["top_num_beam_mask"][None, :]
            eligible = eligible & kw["is_early_stop_heuristic_unsatisfied"]
            if kw["early_stopping"] is True:
                eligible = eligible & ~torch.all(kw["is_sent_finished"], dim=-1, keepdim=True)
            old = kw["beam_scores"].double()
            old_lens = (kw["beam_indices"] != -1).sum(-1)
            for b in range(old.shape[0]):
                if rec.done is not None and rec.done[b]:
                    continue
                pool = [(s, int(n)) for s, n in zip(old[b].tolist(), old_lens[b].tolist()) if s > -1e8]
                pool += [(s, length) for s in new[b][eligible[b]].tolist()]
                pool.sort(key=lambda x: x[0], reverse=True)
                if len(pool) > nb and eligible[b].any():
                    rec._add_normalized(pool[nb - 1], pool[nb], lp)
            result = orig_update(**kw)
            rec.last_beam_scores = result[1].double().clone()
            rec.last_beam_lens = (result[2] != -1).sum(-1)
            rec.length_penalty = lp
            return result

        def heur_wrapper(**kw):
            es, lp = kw["early_stopping"], kw["length_penalty"]
            if es is not True:
                if es == "never" and lp > 0.0:
                    length = kw["max_length"] - kw["decoder_prompt_len"]
                else:
                    length = kw["cur_len"] - kw["decoder_prompt_len"]
                best = kw["running_beam_scores"][:, 0].double() / (length**lp)
                worst, worst_at = kw["beam_scores"].double().min(dim=1)
                all_finished = kw["is_sent_finished"].all(dim=1)
                for b in range(best.shape[0]):
                    if (rec.done is None or not rec.done[b]) and all_finished[b]:
                        worst_len = int(rec.last_beam_lens[b, worst_at[b]])
                        rec._add_normalized((best[b].item(), length), (worst[b].item(), worst_len), lp)
            result = orig_heur(**kw)
            done = ~result[:, 0]
            if es is True:
                done = done | kw["is_sent_finished"].all(dim=1)
            rec.done = done.tolist()
            return result

        model._get_top_k_continuations = topk_wrapper
        model._update_finished_beams = update_wrapper
        model._check_early_stop_heuristic = heur_wrapper
        return self

    def __exit__(self, *exc):
        for name in ("_get_top_k_continuations", "_update_finished_beams", "_check_early_stop_heuristic"):
            self.model.__dict__.pop(name, None)
        if exc[0] is None and self.last_beam_scores is not None:
            for scores, lens in zip(self.last_beam_scores.tolist(), self.last_beam_lens.tolist()):
                pool = sorted(((s, n) for s, n in zip(scores, lens) if s > -1e8), key=lambda x: x[0], reverse=True)
                if len(pool) >= 2:
                    self._add_normalized(pool[0], pool[1], self.length_penalty)
        return False


def margin_summary(margins: list[float]) -> dict:
    if not margins:
        return {"min": None, "median": None, "n": 0}
    return {"min": min(margins), "median": statistics.median(margins), "n": len(margins)}


def effective_max_length(params: dict) -> int:
    if "max_new_tokens" in params:
        return 1 + params["max_new_tokens"]
    return params.get("max_length", 20 + 1)


def strip_after_eos(row: list[int], eos: int) -> list[int]:
    for i in range(1, len(row)):
        if row[i] == eos:
            return row[: i + 1]
    return row


def run_generate(model, enc: dict, params: dict, eos: int) -> tuple[list[list[int]], list[float]]:
    """Call generate() with exactly `params`; returns the sequences and every decision margin."""
    with torch.no_grad():
        if params.get("num_beams", 1) == 1:
            rec = GreedyMarginRecorder(eos)
            out = model.generate(**enc, **params, logits_processor=LogitsProcessorList([rec]))
        else:
            with BeamMarginRecorder(model, eos, effective_max_length(params)) as rec:
                out = model.generate(**enc, **params)
    return out.tolist(), rec.margins


class Fragile(Exception):
    """A case whose recorded tokens float rounding could change; the message says why."""


def check_robust(
    first: tuple[list[list[int]], list[float]], model64, enc: dict, params: dict, eos: int
) -> dict:
    """The margin summary of `first` (run_generate on the float32 model), if it passes the gate:
    a float64 copy of the model generates the same tokens through the same decisions, and every
    margin is at least max(MIN_MARGIN, NOISE_FACTOR x the case's float64 gap). Raises Fragile
    otherwise. (generate() casts logits to float32 either way; what changes is every product and
    norm inside the model.)"""
    out, margins = first
    summary = margin_summary(margins)
    if margins and summary["min"] < MIN_MARGIN:
        raise Fragile(f"margin {summary['min']:.2e} < {MIN_MARGIN:g}")
    out64, margins64 = run_generate(model64, enc, params, eos)
    if out64 != out:
        raise Fragile("a float64 copy of the model generates other tokens")
    if len(margins64) != len(margins):
        raise Fragile(f"a float64 copy takes other decisions ({len(margins64)} vs {len(margins)})")
    gap = max((abs(a - b) for a, b in zip(margins, margins64)), default=0.0)
    summary["float64_gap"] = gap
    if margins and summary["min"] < NOISE_FACTOR * gap:
        raise Fragile(f"margin {summary['min']:.2e} < {NOISE_FACTOR:g} x float64 gap {gap:.2e}")
    return summary
