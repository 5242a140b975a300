#!/usr/bin/env python3
"""Load benchmark of `precis serve` against `precis batch` on the same articles.

    python3 scripts/make_bench_model.py --shape t5-small --out target/bench-models/t5-small  # once
    nice -n -5 python3 scripts/bench_serve.py --precis target/release/precis \
        --model target/bench-models/t5-small

Writes ARTICLES articles of mixed length (seeded; 60% short ~100 words, 25% medium ~300 words,
15% long ~800 words, which exceed T5's 512-token window and are chunked and merged), then
1. times `precis batch` over them (one process, the model loaded once, load time excluded by
   timing a second, one-line run and subtracting it);
2. starts `precis serve` with the same decoding flags and sends every article as
   `POST /summarize` from 1, 8 and 32 concurrent clients (each client takes the next article as
   soon as its last one is answered), recording each request's latency;
3. measures short-article latency in a mix with long ones: MIX_SHORTS short articles sent one at
   a time by one client, with nothing else running ("alone", before and after), and while LONG_CLIENTS
   other clients each send long articles back to back ("mix": a moderate, steady load of long
   work, as in a service whose users mostly send short texts). At a saturating load (the
   32-client run) no queue keeps a short request within 2x of its time alone; that run's
   short-article p95 is reported too.
Every summary the server returns must equal the one `precis batch` wrote (token-identical).
With --rounds N, steps 1 and 2 alternate N times (the mix runs once): these machines are
shared, and the host's load moves by tens of percent within minutes, so a ratio is only as
good as the two runs' minutes were alike; each round's ratio is reported, and their median.
Every run also reports the CPU seconds its process used per document (the server's from
/proc, `precis batch`'s from its rusage): time the host took from the machine (steal) is not
in them, so their ratio moves less than the wall-clock one, though it misses idle cores.
Prints a Markdown table (docs/s, p50/p95/p99 latency, short-article p95 in the mix vs alone)
with the CPU and the machine's load average, and writes the numbers as JSON (--json).
Standard library only: the benchmark client adds as little load as it can.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_bench_articles as articles_lib  # noqa: E402

# Decoding flags given to both `precis batch` and `precis serve` (the model's defaults
# otherwise: t5-small searches 4 beams); --decoding-flag adds more (e.g. greedy search).
DECODING = ["--max-new-tokens", "48"]


def make_articles(count: int, seed: int) -> list[tuple[str, str]]:
    """(kind, text) pairs: short, medium or long, in a shuffled order."""
    rng = random.Random(seed)
    kinds = ["short"] * int(count * 0.60) + ["medium"] * int(count * 0.25)
    kinds += ["long"] * (count - len(kinds))
    rng.shuffle(kinds)
    parts = {"short": 1, "medium": 3, "long": 8}
    out = []
    for i, kind in enumerate(kinds):
        text = " ".join(articles_lib.article(rng, i * 10 + j).strip() for j in range(parts[kind]))
        out.append((kind, text))
    return out


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_cpu_seconds(pid: int) -> float:
    """User and system CPU time of a running process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_batch(precis: str, model: str, folder: Path, out: Path,
              decoding: list[str]) -> tuple[float, float, dict[str, str]]:
    """Wall and CPU seconds `precis batch` spends summarising (a model-load-only run's
    subtracted from each) and its summaries."""
    def timed(src: Path, dst: Path) -> tuple[float, float]:
        shutil.rmtree(dst, ignore_errors=True)
        started, cpu = time.monotonic(), children_cpu_seconds()
        subprocess.run([precis, "batch", str(src), "-o", str(dst), "--model", model, "-q", *decoding],
                       check=True)
        return time.monotonic() - started, children_cpu_seconds() - cpu
    empty = folder.parent / "empty"
    empty.mkdir(exist_ok=True)
    (empty / "one.txt").write_text("A single short line to load the model.\n")
    load_wall, load_cpu = timed(empty, folder.parent / "empty-out")
    total_wall, total_cpu = timed(folder, out)
    summaries = {p.name.removesuffix(".summary.txt").removesuffix(".txt"): p.read_text().strip()
                 for p in out.rglob("*.summary.txt")}
    return total_wall - load_wall, total_cpu - load_cpu, summaries


def start_server(precis: str, model: str, decoding: list[str],
                 extra: list[str]) -> tuple[subprocess.Popen, str]:
    server = subprocess.Popen([precis, "serve", "--model", model, "--port", "0", "-q", *decoding,
                               "--max-concurrent-requests", "64", *extra],
                              stderr=subprocess.PIPE, text=True)
    assert server.stderr is not None
    for line in server.stderr:
        if line.startswith("precis: listening on "):
            address = line.split("//")[-1].strip()
            break
    else:
        sys.exit("precis serve did not start")
    threading.Thread(target=lambda: server.stderr.read(), daemon=True).start()
    host, port = address.split(":")
    for _ in range(600):
        try:
            connection = http.client.HTTPConnection(host, int(port), timeout=5)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return server, address
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit("precis serve never became ready")


def summarize(address: str, text: str) -> tuple[float, str]:
    host, port = address.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=3600)
    body = json.dumps({"text": text})
    started = time.monotonic()
    connection.request("POST", "/summarize", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    answer = json.loads(response.read())
    latency = time.monotonic() - started
    if response.status != 200:
        sys.exit(f"HTTP {response.status}: {answer}")
    return latency, answer["summary"]


def scheduler_counters(address: str) -> dict[str, float]:
    """The scheduler's counters in /metrics (decoder steps and rows, state copies), by name."""
    host, port = address.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    connection.request("GET", "/metrics")
    text = connection.getresponse().read().decode()
    wanted = ("precis_decoder_steps_total", "precis_decoder_rows_total",
              "precis_decoder_state_copies_total",
              'precis_scheduler_busy_seconds_total{phase="encode"}',
              'precis_scheduler_busy_seconds_total{phase="join"}',
              'precis_scheduler_busy_seconds_total{phase="step"}')
    return {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
            if line.split(" ")[0] in wanted}


def load_run(address: str, server_pid: int, docs: list[tuple[str, str, str]],
             concurrency: int) -> dict:
    """Every doc through the server with `concurrency` clients."""
    results: list[tuple[str, str, float, str]] = []
    started, cpu = time.monotonic(), process_cpu_seconds(server_pid)

    def one(doc: tuple[str, str, str]) -> None:
        name, kind, text = doc
        latency, summary = summarize(address, text)
        results.append((name, kind, latency, summary))

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, docs))
    wall = time.monotonic() - started
    cpu = process_cpu_seconds(server_pid) - cpu
    latencies = [r[2] for r in results]
    return {
        "concurrency": concurrency,
        "docs": len(docs),
        "seconds": wall,
        "docs_per_second": len(docs) / wall,
        "cpu_seconds_per_doc": cpu / len(docs),
        "p50": percentile(latencies, 50),
        "p95": percentile(latencies, 95),
        "p99": percentile(latencies, 99),
        "short_p95": percentile([r[2] for r in results if r[1] == "short"], 95),
        "summaries": {r[0]: r[3] for r in results},
    }


def mix_run(address: str, shorts: list[tuple[str, str, str]], longs: list[tuple[str, str, str]],
            long_clients: int) -> dict:
    """Short articles one at a time while `long_clients` clients send long ones back to back."""
    stop = threading.Event()
    served: dict[str, str] = {}
    long_done: list[str] = []

    def long_loop(k: int) -> None:
        i = k
        while not stop.is_set():
            name, _, text = longs[i % len(longs)]
            served[name] = summarize(address, text)[1]
            long_done.append(name)
            i += long_clients

    threads = [threading.Thread(target=long_loop, args=(k,)) for k in range(long_clients)]
    for thread in threads:
        thread.start()
    time.sleep(2.0)  # the long clients' first chunks are in the batch before the first short
    latencies = []
    for name, _, text in shorts:
        latency, summary = summarize(address, text)
        latencies.append(latency)
        served[name] = summary
    stop.set()
    for thread in threads:
        thread.join()
    return {"latencies": latencies, "summaries": served, "long_served": len(long_done)}


def machine() -> str:
    info = open("/proc/cpuinfo").read().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")),
               "unknown CPU")
    flags = next((line.split(":", 1)[1].split() for line in info if line.startswith("flags")), [])
    simd = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{cpu} ({simd}), {os.cpu_count()} logical CPUs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--precis", default="target/release/precis")
    parser.add_argument("--model", required=True, help="a t5-small-shaped folder (make_bench_model.py)")
    parser.add_argument("--articles", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--concurrency", default="1,8,32",
                        help="comma-separated client counts; 'none' runs the short-article mix only")
    parser.add_argument("--sequential-every", type=int, default=1,
                        help="the 1-client run sends every Nth article only (the order is "
                             "shuffled, so the mix of lengths stays); docs/s is per article sent")
    parser.add_argument("--mix-shorts", type=int, default=40,
                        help="short articles timed alone and in the mix")
    parser.add_argument("--long-clients", default="1,2",
                        help="comma-separated: for each, a mix run with that many clients "
                             "sending long articles back to back; 'none' skips the mix")
    parser.add_argument("--server-flag", action="append", default=[],
                        help="extra flag for `precis serve` (repeat), e.g. --server-flag=--max-batch-size=16")
    parser.add_argument("--decoding-flag", action="append", default=[],
                        help="extra decoding flag for both `precis batch` and `precis serve` "
                             "(repeat), e.g. --decoding-flag=--num-beams=1 for greedy search")
    parser.add_argument("--rounds", type=int, default=1,
                        help="time `precis batch` and the concurrency runs this many times, "
                             "alternating (the mix runs once); the ratios are per round")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    args = parser.parse_args()
    decoding = DECODING + args.decoding_flag
    concurrencies = [] if args.concurrency == "none" else [int(c) for c in args.concurrency.split(",")]

    docs = make_articles(args.articles, args.seed)
    work = Path(tempfile.mkdtemp(prefix="precis-bench-serve-"))
    folder = work / "articles"
    folder.mkdir()
    named = []
    for i, (kind, text) in enumerate(docs):
        name = f"{kind}-{i:04d}.txt"
        (folder / name).write_text(text + "\n")
        named.append((name.removesuffix(".txt"), kind, text))
    load_before = os.getloadavg()
    print(f"{machine()}; load average before: {load_before[0]:.1f}", flush=True)

    print(f"decoding: {' '.join(decoding)}; server: {' '.join(args.server_flag) or 'defaults'}",
          flush=True)
    batches = []
    batch_summaries: dict[str, str] = {}

    def time_batch() -> None:
        seconds, cpu, summaries = run_batch(args.precis, args.model, folder, work / "out", decoding)
        differing = sorted(n for n, s in summaries.items()
                           if batch_summaries.setdefault(n, s) != s)
        if differing:
            sys.exit(f"`precis batch` wrote other summaries than in its first run: {differing}")
        batches.append({"docs_per_second": len(docs) / seconds, "seconds": seconds,
                        "cpu_seconds_per_doc": cpu / len(docs)})
        print(f"precis batch: {len(docs) / seconds:.2f} docs/s ({seconds:.0f} s, "
              f"{cpu / len(docs):.2f} CPU s/doc)", flush=True)

    time_batch()
    server, address = start_server(args.precis, args.model, decoding, args.server_flag)
    runs = []
    try:
        shorts = [d for d in named if d[1] == "short"][:args.mix_shorts]
        longs = [d for d in named if d[1] == "long"]
        summarize(address, shorts[0][2])  # warm-up
        long_clients = [] if args.long_clients == "none" else args.long_clients.split(",")
        alone = [summarize(address, text)[0] for _, _, text in shorts] if long_clients else [0.0]
        mixes = [mix_run(address, shorts, longs, int(k)) for k in long_clients]
        # Alone again after the mixes, so a change in the machine's other load shows in both.
        if long_clients:
            alone += [summarize(address, text)[0] for _, _, text in shorts]
        alone_p = {p: percentile(alone, p) for p in (50, 95)}
        print(f"short articles alone: p50 {alone_p[50]:.2f} s, p95 {alone_p[95]:.2f} s", flush=True)
        for k, mix in zip(long_clients, mixes):
            mix["long_clients"] = int(k)
            mix["mismatched"] = [n for n, s in mix.pop("summaries").items()
                                 if batch_summaries.get(n) != s]
            mix.update({p: percentile(mix["latencies"], p) for p in (50, 95)})
            mix["ratio"] = mix[95] / alone_p[95]
            print(f"with {k} long-article clients: p50 {mix[50]:.2f} s, p95 {mix[95]:.2f} s "
                  f"({mix['ratio']:.2f}x alone); summaries differing from batch: "
                  f"{mix['mismatched'] or 'none'}", flush=True)
        for round_ in range(args.rounds):
            if round_ > 0:
                time_batch()
            for concurrency in concurrencies:
                sent = named[::args.sequential_every] if concurrency == 1 else named
                before = scheduler_counters(address)
                run = load_run(address, server.pid, sent, concurrency)
                run["round"] = round_
                after = scheduler_counters(address)
                run["counters"] = {name: after[name] - before.get(name, 0.0) for name in after}
                mismatched = [n for n, s in run.pop("summaries").items() if batch_summaries.get(n) != s]
                run["mismatched"] = len(mismatched)
                run["mismatched_names"] = mismatched
                runs.append(run)
                print(f"concurrency {concurrency}: {run['docs_per_second']:.2f} docs/s "
                      f"({run['cpu_seconds_per_doc']:.2f} CPU s/doc), "
                      f"p50 {run['p50']:.2f} s, p95 {run['p95']:.2f} s, p99 {run['p99']:.2f} s, "
                      f"short p95 {run['short_p95']:.2f} s, summaries differing from batch: {mismatched or 'none'}",
                      flush=True)
                counters = ", ".join(f"{name.removeprefix('precis_')} {value:.0f}"
                                     for name, value in run["counters"].items())
                print(f"  scheduler: {counters}", flush=True)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=600)
    load_after = os.getloadavg()

    print()
    print(f"{machine()}; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after; "
          f"decoding: {' '.join(decoding)}; server: {' '.join(args.server_flag) or 'defaults'}")
    print()
    print("| round | clients | docs/s | × `precis batch` | × 1 client | CPU s/doc | CPU × batch "
          "| p50 s | p95 s | p99 s | short p95 s | summaries ≠ batch |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for round_, batch in enumerate(batches):
        print(f"| {round_ + 1} | `precis batch` | {batch['docs_per_second']:.2f} | 1.00 | | "
              f"{batch['cpu_seconds_per_doc']:.2f} | 1.00 | | | | | |")
        in_round = [r for r in runs if r["round"] == round_]
        sequential = next((r["docs_per_second"] for r in in_round if r["concurrency"] == 1), None)
        for run in in_round:
            # Both ratios read "above 1 is better than `precis batch`".
            run["versus_batch"] = run["docs_per_second"] / batch["docs_per_second"]
            run["cpu_versus_batch"] = batch["cpu_seconds_per_doc"] / run["cpu_seconds_per_doc"]
            versus = f"{run['docs_per_second'] / sequential:.2f}" if sequential else ""
            print(f"| {round_ + 1} | {run['concurrency']} | {run['docs_per_second']:.2f} | "
                  f"{run['versus_batch']:.2f} | {versus} | {run['cpu_seconds_per_doc']:.2f} | "
                  f"{run['cpu_versus_batch']:.2f} | {run['p50']:.2f} | "
                  f"{run['p95']:.2f} | {run['p99']:.2f} | {run['short_p95']:.2f} | {run['mismatched']} |")
    if len(batches) > 1:
        print()
        for concurrency in concurrencies:
            ratios = [r["versus_batch"] for r in runs if r["concurrency"] == concurrency]
            cpu = [r["cpu_versus_batch"] for r in runs if r["concurrency"] == concurrency]
            print(f"{concurrency} clients over {len(ratios)} rounds: median {statistics.median(ratios):.2f}× "
                  f"`precis batch` (rounds: {', '.join(f'{x:.2f}' for x in ratios)}); CPU time "
                  f"median {statistics.median(cpu):.2f}×")
    if mixes:
        print()
        print(f"| {len(shorts)} short articles, one at a time | p50 s | p95 s | × alone (p95) "
              "| long articles served meanwhile | summaries ≠ batch |")
        print("|---|---:|---:|---:|---:|---:|")
        print(f"| alone | {alone_p[50]:.2f} | {alone_p[95]:.2f} | 1.00 | | |")
        for mix in mixes:
            print(f"| with {mix['long_clients']} client(s) sending long articles back to back | "
                  f"{mix[50]:.2f} | {mix[95]:.2f} | {mix['ratio']:.2f} | {mix['long_served']} | "
                  f"{len(mix['mismatched'])} |")
    if args.json:
        args.json.write_text(json.dumps({
            "machine": machine(), "load_before": load_before, "load_after": load_after,
            "articles": len(docs), "decoding": decoding, "server_flags": args.server_flag,
            "batches": batches, "short_alone": alone_p, "mixes": mixes,
            "runs": runs,
            "sequential_every": args.sequential_every, "work": str(work),
        }, indent=2))


if __name__ == "__main__":
    main()
