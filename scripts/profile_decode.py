#!/usr/bin/env python3
"""Where `precis bench` spends its time, from a `perf` profile with call stacks.

    perf record -e cpu-clock -F 1000 --call-graph dwarf,32768 -o perf.data -- \\
        target/release/precis -q bench --model target/bench-models/t5-small --runs 2 --warmup 0 --threads 2
    perf script -i perf.data -F tid,time,ip,sym,srcline > perf.txt
    python3 scripts/profile_decode.py perf.txt

(Build with `debug = "line-tables-only"` for inlined frames; `cpu-clock` works where hardware
counters are not exposed, e.g. in VMs.) Each sample is put in a phase by its stack (encoder,
cross-attention K/V, decoder step, beam reorder, search); samples of pool threads take the phase
of the main thread's latest sample (for source lines, profile with --threads 1). Each phase is split by kernel (the candle
operation or library routine running), and the decoder step also by the innermost line of
precis's own source.
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
from pathlib import Path

# First match from the leaf outwards wins; matched against "symbol file:line".
KERNELS = [
    ("thread pool wait/sync", r"BarrierPool|rayon_core::(sleep|registry::WorkerThread::wait)|crossbeam|sched_yield|futex|std::thread::park|Condvar"),
    ("matmul (gemm)", r"gemm|MatMul|::matmul"),
    ("softmax", r"softmax"),
    ("concat (KV cache append)", r"Tensor::cat|cat_contiguous|cat0|cat_dim|copy2d"),
    ("index_select (embedding / reorder)", r"index_select|IndexSelect|Embedding"),
    ("strided copy (contiguous/transpose)", r"copy_strided_src|Tensor::contiguous|copy_strided"),
    ("elementwise (add/mul/affine/unary)", r"binary_map|unary_map|BinaryOp|UnaryOp|Affine|affine|broadcast_(add|mul|sub|div)|Tensor::(sqr|sqrt|recip|exp|add|mul|clamp)"),
    ("reduction (RMSNorm mean)", r"reduce|ReduceSum|ReduceIndex|sum_keepdim|mean_keepdim"),
    ("dtype conversion", r"to_dtype|ToDType"),
    ("logits to host (to_vec1)", r"to_vec1|flatten_all"),
    ("logits processing / argmax", r"precis::generation::(greedy::Argmax|processors|scores|beam::|hypotheses)"),
    ("allocation / free", r"malloc|_int_free|cfree|__libc_free|alloc::alloc|drop_in_place|munmap|mmap|RawVec"),
    ("tokenizer", r"tokenizers::"),
]
MODEL_FILES = r" (t5|bart|bart_common|pegasus|cache|activation)\.rs:"
PHASES = [
    ("cross-attention K/V (start_decoding)", lambda st: "start_decoding" in st),
    ("decoder step", lambda st: "generation::logits::decode_step" in st and re.search(MODEL_FILES, st)),
    ("logits to host", lambda st: "generation::logits::decode_step" in st),
    ("encoder", lambda st: re.search(r"\bencode\b", st) and re.search(MODEL_FILES, st)),
    ("cache reorder (beam search)", lambda st: "DecoderState::reorder" in st or "cache.rs:4" in st),
    ("search (processors, argmax, beams)", lambda st: "precis::generation::" in st),
]
PRECIS_LINE = re.compile(r" (\w+\.rs):(\d+)")
KERNEL_FAULT = re.compile(r"page_fault|clear_page|do_anonymous_page|handle_mm_fault")


def samples(lines):
    """(tid, time, frames leaf-first as "symbol file:line") from `perf script -F tid,time,ip,sym,srcline`."""
    header, frames = None, []
    for line in lines:
        line = line.rstrip("\n")
        if re.match(r"^\s*\d+\s+[\d.]+:\s*$", line):
            if header:
                yield (*header, frames)
            tid, time = line.split()[:2]
            header, frames = (int(tid), float(time.rstrip(":"))), []
        elif line.startswith("\t"):
            parts = line.strip().split(None, 1)
            frames.append(parts[1] if len(parts) > 1 else parts[0])
        elif line.strip() and frames:
            frames[-1] += " " + line.strip()  # the srcline of the frame above
    if header:
        yield (*header, frames)


def first_match(frames, table, default):
    for frame in frames:
        for name, pattern in table:
            if re.search(pattern, frame):
                return name
    return default


def src_files(root):
    found = collections.defaultdict(list)
    for path in root.rglob("*.rs"):
        found[path.name].append(path)
    return found


def precis_line(frames, files):
    """The innermost frame in precis's own source, as "file:line  code"."""
    for frame in frames:
        m = PRECIS_LINE.search(frame)
        if m and len(files.get(m.group(1), [])) == 1 and m.group(1) not in ("mod.rs", "lib.rs", "main.rs"):
            path, number = files[m.group(1)][0], int(m.group(2))
            lines = path.read_text().splitlines()
            code = lines[number - 1].strip() if 0 < number <= len(lines) else ""
            return f"{m.group(1)}:{number}  {code[:70]}"
    return "(no precis frame)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("perf_script", help="output of `perf script -F tid,time,ip,sym,srcline`")
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--src", type=Path, default=Path(__file__).resolve().parent.parent / "src")
    args = ap.parse_args()
    with open(args.perf_script, errors="replace") as f:
        all_samples = sorted(samples(f), key=lambda s: s[1])
    if not all_samples:
        sys.exit("no samples")
    files = src_files(args.src)
    main_tid = collections.Counter(s[0] for s in all_samples).most_common(1)[0][0]
    phases, lines, faults = collections.Counter(), collections.Counter(), 0
    kernels = collections.defaultdict(collections.Counter)
    phase, line = "startup / load / other", ""
    for tid, _, frames in all_samples:
        if tid == main_tid:
            stack = "\n".join(frames)
            phase = next((name for name, test in PHASES if test(stack)), "startup / load / other")
            line = precis_line(frames, files)
        phases[phase] += 1
        kernels[phase][first_match(frames, KERNELS, "other")] += 1
        if phase == "decoder step":
            # A pool thread's stack does not say which line it serves, and the main thread is not
            # sampled while it sleeps, so pool samples are not attributed to lines.
            lines[line if tid == main_tid else "(pool threads)"] += 1
            faults += any(KERNEL_FAULT.search(f) for f in frames)
    total, step = sum(phases.values()), phases["decoder step"]
    print(f"{total} samples; main thread {main_tid}")
    show("phase", phases, total, args.top)
    for name, n in phases.most_common():
        if n >= 0.05 * total and name != "startup / load / other":
            show(f"{name} by kernel", kernels[name], n, args.top)
    if step:
        show("decoder step by innermost precis source line", lines, step, args.top)
        print(f"\n{100 * faults / step:.1f}% of decoder-step samples are in kernel page-fault handling")


def show(title, counter, total, top):
    print(f"\n{title} ({total} samples)")
    for name, n in counter.most_common(top):
        print(f"  {100 * n / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()
