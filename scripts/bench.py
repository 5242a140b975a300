#!/usr/bin/env python3
"""precis against transformers (PyTorch) and CTranslate2 on CPU, on models with real checkpoints'
shapes and random weights.

    bash scripts/setup_venv.sh && .venv/bin/python scripts/bench.py            # everything
    .venv/bin/python scripts/bench.py --quick --models t5-small                # a first look
    .venv/bin/python scripts/bench.py --json target/bench.json --markdown target/bench.md

Steps: build precis (`cargo build --release`, or `--precis BIN`); make each model with
scripts/make_bench_model.py under target/bench-models/ (never committed) and convert it with
CTranslate2's converter to float32 and int8; measure memory bandwidth (scripts/membw.c); then for
every model (t5-small and distilbart-cnn-12-6 unless --models names others: every preset's
shape is there) x {greedy, beam 4} x {batch 1, batch 8} run precis (`precis bench`), transformers and
CTranslate2 float32 / int8 (scripts/bench_engines.py), each in its own process, on the same input
ids (checked by checksum), decoding exactly --new-tokens tokens from 512-token inputs for
t5-small and 1024-token inputs for distilbart-cnn-12-6. Prints a Markdown table; --json and
--markdown are rewritten after every engine, so an interrupted run keeps what it measured.
The number that counts is the whole `generate` call ("precis speed: total"); the encoder / decode
split is only there to see where the time goes.

Numbers only mean something on an idle machine: the table reports, per run, the CPU that other
processes used meanwhile ("other load", in cores).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts"
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
# The README's tables; the other presets' shapes (scripts/make_bench_model.py) on request, to
# check that nothing is tuned to these two.
SHAPES = ["t5-small", "distilbart-cnn-12-6"]
OTHER_SHAPES = ["flan-t5-small", "t5-base", "flan-t5-base", "bart-large-cnn", "distilbart-cnn-6-6", "pegasus-cnn_dailymail"]
# Input length per shape (--input-tokens overrides): each model's usual article window.
INPUT_TOKENS = {
    "t5-small": 512,
    "flan-t5-small": 512,
    "t5-base": 512,
    "flan-t5-base": 512,
    "distilbart-cnn-12-6": 1024,
    "distilbart-cnn-6-6": 1024,
    "bart-large-cnn": 1024,
    "pegasus-cnn_dailymail": 1024,
}
ENGINES = [
    "precis",
    "precis-q8",
    "precis-bf16",
    "transformers",
    "transformers-bf16",
    "ct2-float32",
    "ct2-int8",
]
# Run only when asked (--engines): bfloat16 is opt-in in precis, and CTranslate2 has no
# bfloat16 on the CPU.
OPT_IN_ENGINES = {"precis-bf16", "transformers-bf16"}
LABELS = {
    "precis": "precis",
    "precis-q8": "precis q8",
    "precis-bf16": "precis bf16",
    "transformers": "transformers",
    "transformers-bf16": "transformers bf16",
    "ct2-float32": "CT2 f32",
    "ct2-int8": "CT2 int8",
}


def ensure_venv() -> None:
    """Re-run under .venv's Python (creating the venv first if needed)."""
    if Path(sys.prefix).resolve() == (REPO / ".venv").resolve():
        return
    if not VENV_PYTHON.exists():
        print("bench: creating .venv with scripts/setup_venv.sh", file=sys.stderr)
        subprocess.run(["bash", str(SCRIPTS / "setup_venv.sh")], check=True)
    os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def build_precis() -> Path:
    log("building precis (cargo build --release --locked)")
    subprocess.run(["cargo", "build", "--release", "--locked"], cwd=REPO, check=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return (target if target.is_absolute() else REPO / target) / "release" / "precis"


def ensure_models(shape: str, models_dir: Path, engines: list[str]) -> dict[str, Path]:
    """The Hugging Face folder and the CTranslate2 conversions `engines` use, made when missing."""
    hf = models_dir / shape
    if not (hf / "model.safetensors").exists():
        log(f"making {shape} in {hf}")
        run_checked([sys.executable, str(SCRIPTS / "make_bench_model.py"), "--shape", shape, "--out", str(hf)])
    dirs = {"hf": hf}
    converter = Path(sys.executable).parent / "ct2-transformers-converter"
    for quantization in (e.removeprefix("ct2-") for e in engines if e.startswith("ct2-")):
        out = models_dir / f"{shape}-ct2-{quantization}"
        if not (out / "model.bin").exists():
            log(f"converting {shape} to CTranslate2 {quantization}")
            run_checked([str(converter), "--model", str(hf), "--output_dir", str(out), "--quantization", quantization, "--force"])
        dirs[f"ct2-{quantization}"] = out
    return dirs


def run_checked(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"bench: {' '.join(command)} failed:\n{result.stderr[-4000:]}")


def memory_bandwidth(threads: int, work: Path) -> dict:
    """Read and copy bandwidth of a 1 GiB array (scripts/membw.c with OpenMP; numpy if no cc)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc:
        binary = work / "membw"
        flags = ["-O3", "-march=native", "-ffast-math", "-fopenmp"]
        subprocess.run([cc, *flags, str(SCRIPTS / "membw.c"), "-o", str(binary)], check=True)
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        out = subprocess.run([str(binary)], capture_output=True, text=True, check=True, env=env).stdout
        return {**json.loads(out), "method": "scripts/membw.c (OpenMP, best of 7)"}
    import numpy as np

    a = np.ones(2**28, dtype=np.float32)
    b = np.empty_like(a)
    best = min(timed_copy(np, a, b) for _ in range(5))
    return {"read_gbs": None, "copy_gbs": 2 * a.nbytes / best / 1e9, "threads": 1, "method": "numpy copy, 1 thread"}


def timed_copy(np, a, b) -> float:
    start = time.perf_counter()
    np.copyto(b, a)
    return time.perf_counter() - start


def safetensors_shapes(path: Path) -> dict[str, list[int]]:
    with path.open("rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
    return {name: meta["shape"] for name, meta in header.items() if name != "__metadata__"}


CROSS_KV = ("EncDecAttention.k.", "EncDecAttention.v.", "encoder_attn.k_proj", "encoder_attn.v_proj")
EMBEDDINGS = ("embed_tokens", "embed_positions")
HEADS = ("lm_head.weight", "final_logits_bias", "shared.weight", "model.shared.weight")


def decode_step_bytes(model_dir: Path, input_tokens: int) -> dict:
    """float32 bytes one batch-1 decoder step must read: decoder weights (less the cross-attention
    key/value projections, applied once per input, and the embeddings, of which one row is
    read), the output projection, and the cached cross-attention keys/values."""
    shapes = safetensors_shapes(model_dir / "model.safetensors")
    count = lambda names: sum(prod(shapes[n]) for n in names)  # noqa: E731
    decoder = [n for n in shapes if "decoder." in n and not any(p in n for p in CROSS_KV + EMBEDDINGS)]
    head = [n for n in shapes if n in ("lm_head.weight", "final_logits_bias")]
    if "lm_head.weight" not in head:  # tied to the shared embedding
        head += [n for n in ("shared.weight", "model.shared.weight") if n in shapes][:1]
    cross = [n for n in shapes if "decoder." in n and any(p in n for p in CROSS_KV) and n.endswith("weight")]
    cross_kv_values = sum(shapes[n][0] for n in cross) * input_tokens
    return {
        "decoder_params": count(decoder),
        "head_params": count(head),
        "weight_bytes": 4 * (count(decoder) + count(head)),
        "cross_kv_bytes": 4 * cross_kv_values,
    }


def prod(dims: list[int]) -> int:
    out = 1
    for d in dims:
        out *= d
    return out


class LoadMeter:
    """CPU used by other processes while a child runs: machine busy time minus the children's."""

    def __enter__(self):
        self.stat, self.children, self.wall = cpu_times(), children_cpu(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        busy0, total0 = self.stat
        busy1, total1 = cpu_times()
        wall = time.perf_counter() - self.wall
        cores = os.cpu_count() or 1
        machine = (busy1 - busy0) / max(total1 - total0, 1) * cores
        ours = (children_cpu() - self.children) / max(wall, 1e-9)
        self.other_cores = max(machine - ours, 0.0)
        return False


def cpu_times() -> tuple[int, int]:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields[:8]) - idle, sum(fields[:8])


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_engine(engine: str, dirs: dict[str, Path], case: dict, args, precis: Path) -> dict:
    common = [
        "--input-tokens", str(case["input_tokens"]), "--new-tokens", str(args.new_tokens),
        "--num-beams", str(case["num_beams"]), "--batch", str(case["batch"]),
        "--runs", str(args.runs), "--warmup", str(args.warmup), "--threads", str(args.threads),
    ]  # fmt: skip
    if engine.startswith("precis"):
        command = [str(precis), "-q", "bench", "--model", str(dirs["hf"]), "--format", "json", *common]
        if engine == "precis-q8":
            command += ["--quantize", "q8"]
        if engine == "precis-bf16":
            command += ["--dtype", "bf16"]
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    else:
        worker = [sys.executable, str(SCRIPTS / "bench_engines.py")]
        if engine.startswith("transformers"):
            kind = ["transformers", "--dtype", "bfloat16" if engine == "transformers-bf16" else "float32"]
        else:
            kind = ["ct2", "--ct2-model", str(dirs[engine])]
        command = [*worker, *kind, "--model", str(dirs["hf"]), *common]
        # One process per engine; keep torch / CTranslate2 to the asked threads and no spinning
        # OpenMP workers between calls.
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    with LoadMeter() as meter:
        result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        sys.exit(f"bench: {engine} failed ({' '.join(command)}):\n{result.stderr[-4000:]}")
    out = json.loads(result.stdout)
    out["other_load_cores"] = meter.other_cores
    return out


def cases(args) -> list[dict]:
    return [
        {
            "model": shape,
            "search": "greedy" if beams == 1 else f"beam {beams}",
            "num_beams": beams,
            "batch": batch,
            "input_tokens": args.input_tokens or INPUT_TOKENS[shape],
        }
        for shape in args.models
        for beams in args.beams
        for batch in args.batches
    ]


def ratio(mine: float, other: float) -> str:
    return f"{mine / other:.2f}x" if other else "-"


def markdown_table(results: list[dict]) -> str:
    lines = [
        "| model | search | batch | engine | total ms | encoder ms | decode tok/s | peak RSS MiB "
        "| precis speed: total | precis speed: encoder | precis speed: decode | other load |",
        "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in results:
        precis = row["engines"]["precis"]
        for engine, r in row["engines"].items():
            enc, dec, total = r["encoder_ms"]["median"], r["decode_tokens_per_s"]["median"], r["total_ms"]["median"]
            vs = engine != "precis"
            total_ratio = ratio(total, precis["total_ms"]["median"]) if vs else ""
            enc_ratio = ratio(enc, precis["encoder_ms"]["median"]) if vs else ""
            dec_ratio = ratio(precis["decode_tokens_per_s"]["median"], dec) if vs else ""
            rss = r.get("peak_rss_mib") or 0
            lines.append(
                f"| {row['model']} | {row['search']} | {row['batch']} | {LABELS[engine]} | {total:.0f} | {enc:.0f} "
                f"| {dec:.1f} | {rss:.0f} | {total_ratio} | {enc_ratio} | {dec_ratio} | {r['other_load_cores']:.2f} |"
            )
    return "\n".join(lines)


def bandwidth_summary(results: list[dict], bandwidth: dict, steps: dict) -> list[str]:
    lines = []
    gbs = bandwidth.get("read_gbs") or bandwidth["copy_gbs"]
    for row in results:
        if row["batch"] != 1 or row["num_beams"] != 1:
            continue
        s = steps[row["model"]]
        weights_only = gbs * 1e9 / s["weight_bytes"]
        with_kv = gbs * 1e9 / (s["weight_bytes"] + s["cross_kv_bytes"])
        for engine, r in row["engines"].items():
            got = r["decode_tokens_per_s"]["median"]
            lines.append(
                f"{row['model']} batch-1 greedy {LABELS[engine]}: {got:.1f} tok/s = {100 * got / weights_only:.0f}% of "
                f"the weights-only bound {weights_only:.1f} tok/s ({s['weight_bytes'] / 1e6:.0f} MB/step), "
                f"{100 * got / with_kv:.0f}% of {with_kv:.1f} tok/s with cross-attention K/V "
                f"(+{s['cross_kv_bytes'] / 1e6:.1f} MB/step)"
            )
    return lines


def machine_info() -> dict:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1]
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(int(mem) / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", choices=SHAPES + OTHER_SHAPES, default=SHAPES)
    ap.add_argument("--beams", nargs="+", type=int, default=[1, 4])
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    ap.add_argument(
        "--engines", nargs="+", choices=ENGINES, default=[e for e in ENGINES if e not in OPT_IN_ENGINES]
    )
    ap.add_argument("--input-tokens", type=int, help="input length for every shape (default: 512 t5-small, 1024 distilbart)")
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3, help="timed runs per engine and case (median reported)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="1 timed run after the warm-up")
    ap.add_argument("--precis", type=Path, help="a built precis binary (default: cargo build --release)")
    ap.add_argument("--models-dir", type=Path, default=REPO / "target" / "bench-models")
    ap.add_argument("--json", type=Path, help="save every measurement here")
    ap.add_argument("--markdown", type=Path, help="save the table here")
    ap.add_argument(
        "--isa", choices=["native", "avx2"], default="native",
        help="avx2: restrict every engine to AVX2+FMA (precis, CTranslate2 and its MKL/oneDNN, "
        "PyTorch), to compare them as on an AVX2-only CPU; caches and bandwidth stay this machine's",
    )  # fmt: skip
    args = ap.parse_args()
    if args.quick:
        args.runs = 1
    if "precis" not in args.engines:
        args.engines.insert(0, "precis")  # every ratio is against precis
    return args


# Environment that keeps each engine's own runtime dispatch to AVX2+FMA: precis's kernel path,
# CTranslate2's kernels and the MKL / oneDNN it links, PyTorch's ATen kernels.
AVX2_ONLY = {
    "PRECIS_CPU_KERNELS": "avx2",
    "CT2_FORCE_CPU_ISA": "AVX2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "DNNL_MAX_CPU_ISA": "AVX2",
    "ATEN_CPU_CAPABILITY": "avx2",
}


def main() -> None:
    ensure_venv()
    args = parse_args()
    if args.isa == "avx2":
        os.environ.update(AVX2_ONLY)
    precis = args.precis.resolve() if args.precis else build_precis()
    args.models_dir.mkdir(parents=True, exist_ok=True)
    started = datetime.datetime.now().astimezone()
    load_before = os.getloadavg()
    bandwidth = memory_bandwidth(args.threads, args.models_dir)
    log(f"memory bandwidth: {bandwidth}")
    results, steps = [], {}
    report = Report(args, started, load_before, bandwidth, results, steps)
    for case in cases(args):
        dirs = ensure_models(case["model"], args.models_dir, args.engines)
        steps[case["model"]] = decode_step_bytes(dirs["hf"], case["input_tokens"])
        row = {**case, "engines": {}}
        results.append(row)
        for engine in args.engines:
            log(f"{case['model']} {case['search']} batch {case['batch']}: {engine}")
            row["engines"][engine] = run_engine(engine, dirs, case, args, precis)
            report.save()
        checksums = {e: r["input_checksum"] for e, r in row["engines"].items()}
        if len(set(checksums.values())) != 1:
            sys.exit(f"bench: engines got different input ids: {checksums}")
    print(f"\n{report.settings()}\n\n{markdown_table(results)}\n")
    print("\n".join(bandwidth_summary(results, bandwidth, steps)))


class Report:
    """The --markdown and --json files, rewritten after every measurement."""

    def __init__(self, args, started, load_before, bandwidth, results, steps):
        self.args, self.started, self.load_before = args, started, load_before
        self.bandwidth, self.results, self.steps = bandwidth, results, steps

    def settings(self) -> str:
        args, bandwidth, load = self.args, self.bandwidth, self.load_before
        inputs = ", ".join(f"{shape} {args.input_tokens or INPUT_TOKENS[shape]}" for shape in args.models)
        return (
            f"{self.started:%Y-%m-%d %H:%M %Z}; {machine_info()['cpu']}, {os.cpu_count()} cores; "
            f"{args.threads} threads; input tokens {inputs}; {args.new_tokens} new tokens; median of "
            f"{args.runs} runs after {args.warmup} warm-up; load average before {load[0]:.2f}, "
            f"now {os.getloadavg()[0]:.2f}; memory bandwidth {bandwidth.get('read_gbs')} GB/s read, "
            f"{bandwidth['copy_gbs']} GB/s copy ({bandwidth['threads']} threads); precis kernels: {self.kernels()}"
            + ("; every engine restricted to AVX2+FMA (--isa avx2)" if args.isa == "avx2" else "")
        )

    def kernels(self) -> str:
        paths = {r["engines"]["precis"].get("cpu_kernels") for r in self.results if "precis" in r["engines"]}
        return ", ".join(sorted(str(p) for p in paths)) or "-"

    def save(self) -> None:
        args = self.args
        summary = bandwidth_summary(self.results, self.bandwidth, self.steps)
        if args.markdown:
            table = markdown_table(self.results)
            lines = "\n".join(f"- {s}" for s in summary)
            args.markdown.write_text(f"{self.settings()}\n\n{table}\n\n{lines}\n")
        if args.json:
            record = {
                "started": self.started.isoformat(),
                "machine": machine_info(),
                "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                "load_average_before": self.load_before,
                "load_average_now": os.getloadavg(),
                "memory_bandwidth": self.bandwidth,
                "decode_step_bytes": self.steps,
                "results": self.results,
                "bandwidth_summary": summary,
            }
            args.json.write_text(json.dumps(record, indent=2) + "\n")

if __name__ == "__main__":
    main()
