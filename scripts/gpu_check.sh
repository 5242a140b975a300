#!/usr/bin/env bash
# One-call GPU check, for a machine with an NVIDIA GPU and a CUDA build of precis
# (scripts/build_cuda.sh): the fixture models must give the same summaries on CUDA (f32) as on
# the CPU, bf16 must run, and the benchmark reports GPU speed. Writes its results to
# ${OUT:-gpu-check}/. Exits non-zero on any mismatch.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${PRECIS_BIN:-target/release/precis}"
out="${OUT:-gpu-check}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"

status=0
article="$out/article.txt"
printf '%s\n' "The harbour town voted on Tuesday to rebuild its old stone pier, which storms" \
    "damaged last winter. Fishermen said the repairs would let larger boats land their" \
    "catch again, and the council expects the work to finish before the summer." > "$article"
for model in tests/fixtures/*/; do
    [ -f "$model/config.json" ] || continue
    name="$(basename "$model")"
    for beams in 1 4; do
        cpu="$("$bin" summarize --quiet --device cpu --num-beams "$beams" --model "$model" "$article")"
        gpu="$("$bin" summarize --quiet --device cuda --dtype f32 --num-beams "$beams" --model "$model" "$article")"
        if [ "$cpu" == "$gpu" ]; then
            echo "parity ok: $name beams=$beams" | tee -a "$out/parity.txt"
        else
            echo "PARITY MISMATCH: $name beams=$beams" | tee -a "$out/parity.txt"
            printf 'cpu: %s\ngpu: %s\n' "$cpu" "$gpu" >> "$out/parity.txt"
            status=1
        fi
    done
    "$bin" summarize --quiet --device cuda --dtype bf16 --model "$model" "$article" > /dev/null \
        && echo "bf16 ok: $name" | tee -a "$out/parity.txt"
done

if "$bin" bench --help > /dev/null 2>&1 && [ -d target/bench-models ]; then
    for model in target/bench-models/*/; do
        for batch in 1 8 32; do
            for beams in 1 4; do
                "$bin" bench --device cuda --model "$model" --batch "$batch" --num-beams "$beams" \
                    --format json | tee -a "$out/bench.jsonl"
            done
        done
    done
fi
exit $status
