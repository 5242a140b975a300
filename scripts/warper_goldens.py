"""Golden kept sets of transformers' sampling warpers, for precis' own (src/generation/warpers.rs).

For fixed float32 score vectors (ties, near-ties, exact probability boundaries, -inf entries, a
vocabulary-sized row), this runs transformers' `TemperatureLogitsWarper`, `TopKLogitsWarper` and
`TopPLogitsWarper`, alone and composed in `_get_logits_processor`'s order (temperature, top-k,
top-p; each left out exactly when transformers leaves it out: temperature 1.0, top_k 0, top_p 1.0),
and records which tokens each leaves finite, and the scores it leaves them (float32, exactly).

A top-p case is only recorded when no cumulative probability lies within 1e-6 of the threshold
unless it equals it exactly (ties of powers of two): otherwise float rounding in the softmax could
decide, and the golden would pin noise.

Which of several tied tokens top-p drops depends on the order torch's CPU `sort` leaves ties in:
insertion order up to 16 elements, beyond that whatever libstdc++'s `std::sort` (introsort:
median-of-three quicksort, heapsort past a depth limit, a final insertion sort) makes of them.
`sort_orders` records torch's order for tie-heavy rows, including two built by McIlroy's
"antiqsort" adversary so that the heapsort fallback runs; the emulation below must agree with
torch on every one of them before anything is written.

Run: .venv/bin/python scripts/warper_goldens.py > tests/fixtures/golden/warpers.json
"""

import itertools
import json
import math
import sys

import numpy as np
import torch
import transformers
from transformers.generation.logits_process import (
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

F32_NEXT_AFTER_ONE = float(np.nextafter(np.float32(1.0), np.float32(2.0)))


def vectors() -> dict[str, list[float]]:
    rng = np.random.default_rng(20261201)
    killer = adversarial_input(1000)
    return {
        # Plateaus: top-k and top-p boundaries fall inside groups of equal scores.
        "ties": [2.0, 0.5, 2.0, 1.0, -1.0, 2.0, 0.5, 1.0, 0.5, 0.5, -3.0, 1.0],
        # Scores one float32 step apart: ranks must come from exact comparisons.
        "near_ties": [1.0, F32_NEXT_AFTER_ONE, 0.99999994, 1.0, 0.5, 0.50000006, 0.5, -2.0],
        # Four equal scores: probabilities 0.25 exactly, so top-p thresholds land on sums.
        "uniform4": [0.0, 0.0, 0.0, 0.0],
        "uniform8": [3.0] * 8,
        # One token takes almost everything.
        "peaked": [9.0, 1.0, 0.5, 0.25, 0.0, -0.5, -1.0, -2.0],
        # What earlier processors leave: forbidden tokens at -inf (min length, n-grams).
        "with_neg_inf": [1.5, float("-inf"), 0.2, 1.5, float("-inf"), -0.7, 0.9, float("-inf")],
        # Fewer finite scores than top_k.
        "mostly_neg_inf": [float("-inf"), 0.3, float("-inf"), float("-inf"), -1.0, float("-inf")],
        # A realistic row: enough tokens for the default top_k of 50 to matter.
        "gaussian_120": (rng.standard_normal(120) * 2.0).astype(np.float32).tolist(),
        # A vocabulary-sized row (the fixtures have ~1100 tokens) with a plateau at the top-50 edge.
        "vocab_1152": plateau_row(rng),
        # Tie-heavy rows for the sort order: just past insertion sort, and longer.
        "ties_17": rng.integers(0, 4, 17).astype(np.float32).tolist(),
        "ties_300": (rng.integers(0, 12, 300).astype(np.float32) / 4).tolist(),
        # Rows that drive std::sort into its heapsort fallback, with and without ties.
        "killer_1000": killer.tolist(),
        "killer_ties_1000": (killer // 7 / 20).astype(np.float32).tolist(),
    }


SORTED_VECTORS = ["ties", "ties_17", "ties_300", "vocab_1152", "killer_1000", "killer_ties_1000"]


def less(a: tuple[float, int], b: tuple[float, int]) -> bool:
    """torch's `KeyValueCompAsc` on (value, index) pairs: NaN last, else by value."""
    return (not math.isnan(a[0]) and math.isnan(b[0])) or a[0] < b[0]


class LibstdcxxSort:
    """libstdc++'s `std::sort` (bits/stl_algo.h), step for step, counting heapsort fallbacks."""

    THRESHOLD = 16

    def __init__(self, comp=less):
        self.comp = comp
        self.heapsorts = 0

    def sort(self, v: list) -> None:
        if v:
            self.loop(v, 0, len(v), 2 * (len(v).bit_length() - 1))
            self.final_insertion_sort(v)

    def loop(self, v, first, last, depth):
        while last - first > self.THRESHOLD:
            if depth == 0:
                self.heapsorts += 1
                v[first:last] = self.heap_sort(v[first:last])
                return
            depth -= 1
            mid = first + (last - first) // 2
            self.median_to_first(v, first, first + 1, mid, last - 1)
            cut = self.partition(v, first + 1, last, first)
            self.loop(v, cut, last, depth)
            last = cut

    def median_to_first(self, v, result, a, b, c):
        comp = self.comp
        if comp(v[a], v[b]):
            pick = b if comp(v[b], v[c]) else (c if comp(v[a], v[c]) else a)
        else:
            pick = a if comp(v[a], v[c]) else (c if comp(v[b], v[c]) else b)
        v[result], v[pick] = v[pick], v[result]

    def partition(self, v, first, last, pivot):
        while True:
            while self.comp(v[first], v[pivot]):
                first += 1
            last -= 1
            while self.comp(v[pivot], v[last]):
                last -= 1
            if not first < last:
                return first
            v[first], v[last] = v[last], v[first]
            first += 1

    def heap_sort(self, h: list) -> list:
        n = len(h)
        for parent in range((n - 2) // 2, -1, -1) if n >= 2 else []:
            self.adjust_heap(h, parent, n, h[parent])
        for end in range(n - 1, 0, -1):
            value, h[end] = h[end], h[0]
            self.adjust_heap(h, 0, end, value)
        return h

    def adjust_heap(self, h, hole, length, value):
        top = second = hole
        while second < (length - 1) // 2:
            second = 2 * (second + 1)
            if self.comp(h[second], h[second - 1]):
                second -= 1
            h[hole] = h[second]
            hole = second
        if length % 2 == 0 and second == (length - 2) // 2:
            second = 2 * (second + 1)
            h[hole] = h[second - 1]
            hole = second - 1
        parent = (hole - 1) // 2
        while hole > top and self.comp(h[parent], value):
            h[hole] = h[parent]
            hole = parent
            parent = (hole - 1) // 2
        h[hole] = value

    def final_insertion_sort(self, v):
        head = min(len(v), self.THRESHOLD)
        for i in range(1, head):
            if self.comp(v[i], v[0]):
                v[: i + 1] = [v[i]] + v[:i]
            else:
                self.linear_insert(v, i)
        for i in range(head, len(v)):
            self.linear_insert(v, i)

    def linear_insert(self, v, last):
        value = v[last]
        while self.comp(value, v[last - 1]):
            v[last] = v[last - 1]
            last -= 1
        v[last] = value


def adversarial_input(n: int) -> np.ndarray:
    """McIlroy's "A killer adversary for quicksort": values fixed lazily as the sort compares
    them, so that it keeps picking bad pivots; the result makes std::sort fall back to heapsort."""
    gas = n
    value = [gas] * n
    solid = [0]
    candidate = [0]

    def freeze(i):
        value[i] = solid[0]
        solid[0] += 1

    def comp(a, b):
        x, y = a[1], b[1]
        if value[x] == gas and value[y] == gas:
            freeze(x if x == candidate[0] else y)
        if value[x] == gas:
            candidate[0] = x
        elif value[y] == gas:
            candidate[0] = y
        return value[x] < value[y]

    sorter = LibstdcxxSort(comp)
    sorter.sort([(0.0, i) for i in range(n)])
    assert sorter.heapsorts > 0, "the adversary did not reach the heapsort fallback"
    return np.array(value, dtype=np.float32)


def torch_order(row: list[float]) -> list[int]:
    """torch's ascending sort order, checked against the emulation."""
    order = torch.sort(torch.tensor([row], dtype=torch.float32), descending=False).indices[0]
    pairs = [(v, i) for i, v in enumerate(np.array(row, dtype=np.float32).tolist())]
    sorter = LibstdcxxSort()
    sorter.sort(pairs)
    assert [i for _, i in pairs] == order.tolist(), "std::sort emulation disagrees with torch"
    return order.tolist()


def plateau_row(rng) -> list[float]:
    row = (rng.standard_normal(1152) * 3.0).astype(np.float32)
    order = np.argsort(-row, kind="stable")
    row[order[45:56]] = row[order[45]]  # ranks 46..56 tie: top-50 keeps all of them
    return row.tolist()


SMALL_GRID = {
    "temperature": [1.0, 0.7, 1.5, 3.0],
    "top_k": [0, 1, 2, 3, 5, 50],
    "top_p": [1.0, 0.9, 0.75, 0.5, 0.3, 0.0],
    "min_tokens_to_keep": [1, 2],
}
LARGE_GRID = {
    "temperature": [1.0, 0.7, 2.0],
    "top_k": [0, 5, 50],
    "top_p": [1.0, 0.95, 0.9, 0.5],
    "min_tokens_to_keep": [1],
}


def warpers(temperature, top_k, top_p, min_keep):
    """The warpers `_get_logits_processor` builds for these settings, in its order."""
    out = []
    if temperature != 1.0:
        out.append(TemperatureLogitsWarper(temperature))
    if top_k != 0:
        out.append(TopKLogitsWarper(top_k=top_k, min_tokens_to_keep=min_keep))
    if top_p < 1.0:
        out.append(TopPLogitsWarper(top_p=top_p, min_tokens_to_keep=min_keep))
    return out


def top_p_margin(scores: torch.Tensor, top_p: float) -> float:
    """Distance from the top-p threshold to the nearest cumulative probability, as
    TopPLogitsWarper computes them (0.0 when one equals it exactly)."""
    sorted_logits, _ = torch.sort(scores, descending=False)
    cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    threshold = torch.tensor(1 - top_p, dtype=torch.float32)
    return float((cumulative - threshold).abs().min())


def run(scores: list[float], temperature, top_k, top_p, min_keep):
    row = torch.tensor([scores], dtype=torch.float32)
    margin = None
    for warper in warpers(temperature, top_k, top_p, min_keep):
        if isinstance(warper, TopPLogitsWarper):
            margin = top_p_margin(row[0], top_p)
        row = warper(None, row)
    values = row[0].tolist()
    kept = [i for i, v in enumerate(values) if v != float("-inf")]
    return kept, [values[i] for i in kept], margin


def main() -> int:
    torch.set_num_threads(1)
    cases, dropped = [], 0
    for name, scores in vectors().items():
        grid = LARGE_GRID if len(scores) > 100 else SMALL_GRID
        for temperature, top_k, top_p, min_keep in itertools.product(*grid.values()):
            kept, values, margin = run(scores, temperature, top_k, top_p, min_keep)
            if margin is not None and 0.0 < margin < 1e-6:
                dropped += 1
                continue
            case = {
                "vector": name,
                "temperature": temperature,
                "top_k": top_k,
                "top_p": top_p,
                "min_tokens_to_keep": min_keep,
                "kept": kept,
            }
            # The scores themselves only where they are few; kept sets pin the rest.
            if len(scores) <= 12:
                case["kept_scores"] = values
            cases.append(case)
    rows = vectors()
    encode = {k: [None if v == float("-inf") else v for v in row] for k, row in rows.items()}
    golden = {
        "about": "kept tokens of transformers' sampling warpers; see scripts/warper_goldens.py",
        "versions": {"transformers": transformers.__version__, "torch": torch.__version__},
        "vectors": encode,
        "sort_orders": {name: torch_order(rows[name]) for name in SORTED_VECTORS},
        "cases": cases,
    }
    json.dump(golden, sys.stdout, indent=None, separators=(",", ":"))
    sys.stdout.write("\n")
    print(f"{len(cases)} cases, {dropped} dropped as too close to call", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
