#!/usr/bin/env bash
# Device check of every loadable fixture model (tests/fixtures/*/ with config.json and weights).
#
#   scripts/gpu_check.sh              on a machine with an NVIDIA GPU and a CUDA build of precis
#                                     (scripts/build_cuda.sh): everything below, plus CUDA f32
#                                     summaries identical to the CPU's (one by one and batched),
#                                     CUDA bf16 and f16 runs, and a GPU benchmark if bench models
#                                     exist under target/bench-models/
#   scripts/gpu_check.sh --cpu-only   no GPU needed (run by .ci/run): on the CPU, in f32, greedy
#                                     and beam-4, `precis batch` (chunks and articles in shared
#                                     padded batches) and every CPU kernel path the CPU supports
#                                     (PRECIS_CPU_KERNELS) give the summaries of one default
#                                     `precis summarize` per article; bf16 batched gives the
#                                     one-by-one summaries on every path; bf16 and f16 summarise
#
# On the GPU machine the CUDA libraries may come from Python's NVIDIA wheels rather than the
# system: their library folders are put on LD_LIBRARY_PATH. Without target/bench-models/, and
# where python3 has torch and transformers, the benchmark models of $GPU_CHECK_BENCH_SHAPES
# (default t5-small distilbart-cnn-12-6) are made there first (scripts/make_bench_model.py), and
# transformers runs the same benchmark on the GPU where its torch sees one (bench-transformers.jsonl).
# GPU_CHECK_CPU_PATHS="avx2 portable" (or "none") replaces the probed list of CPU kernel paths,
# and GPU_CHECK_BENCH=0 leaves the benchmark out, to spend a short GPU lease on the GPU's
# summaries rather than on checks CI already makes on the CPU.
#
# Every fixture folder is checked; a folder without weights (the tokenizer-only *-spiece ones)
# is listed as skipped. Any mismatch or failed run sets a non-zero exit status; the last line
# is one summary. Binary: $PRECIS_BIN (default target/release/precis). Results and the texts
# that differ go to ${OUT:-gpu-check}/.
set -uo pipefail
cd "$(dirname "$0")/.."

cpu_only=0
case "${1:-}" in
    --cpu-only) cpu_only=1 ;;
    "") ;;
    *) echo "usage: $0 [--cpu-only]" >&2; exit 2 ;;
esac
bin="${PRECIS_BIN:-target/release/precis}"
out="${OUT:-gpu-check}"
if [ ! -x "$bin" ]; then
    echo "gpu_check: no precis binary at $bin (build it, or set PRECIS_BIN)" >&2
    exit 2
fi
rm -rf "$out/articles" "$out/runs"
mkdir -p "$out/articles" "$out/runs"
log="$out/parity.txt"
: > "$log"
export HF_HUB_OFFLINE=1

# Two articles: a short one, and one several times longer than every fixture's window at
# --chunk-tokens 64, so that chunking, batched chunk summaries and the reduce merge all run.
printf '%s\n' "The harbour town voted on Tuesday to rebuild its old stone pier, which storms" \
    "damaged last winter. Fishermen said the repairs would let larger boats land their" \
    "catch again, and the council expects the work to finish before the summer." \
    > "$out/articles/short.txt"
for i in 1 2 3 4 5 6; do
    printf '%s\n\n' "Paragraph $i. The ferry company added an evening crossing to the island after a" \
        "busy spring. Residents had asked for later boats so that nurses could finish their" \
        "shifts in town, and shop owners hope the change brings visitors who stay for dinner."
done > "$out/articles/long.txt"
common=(--quiet --chunk-tokens 64 --max-new-tokens 12 --min-length 4)

checks=0
failures=()
pass() { checks=$((checks + 1)); echo "ok: $*" >> "$log"; }
fail() { checks=$((checks + 1)); failures+=("$*"); echo "FAILED: $*" | tee -a "$log" >&2; }

# summarize DEVICE DTYPE MODEL BEAMS ARTICLE: the summary on stdout; non-zero status on failure.
summarize() {
    "$bin" summarize "${common[@]}" --device "$1" --dtype "$2" --model "$3" --num-beams "$4" "$5"
}

# batch DEVICE DTYPE MODEL BEAMS DIR: every article in one `precis batch` run into DIR.
batch() {
    "$bin" batch "$out/articles" -o "$5" "${common[@]}" --device "$1" --dtype "$2" \
        --model "$3" --num-beams "$4" > /dev/null
}

# written DIR ARTICLE: the summary `precis batch` wrote for ARTICLE, or a marker that cannot
# equal a summary when it wrote none.
written() {
    local file="$1/$2.txt.summary.txt"
    if [ -f "$file" ]; then cat "$file"; else echo "<no $file>"; fi
}

# same NAME A B: records whether the texts A and B are identical.
same() {
    if [ "$2" == "$3" ]; then
        pass "$1"
    else
        fail "$1"
        printf '  a: %s\n  b: %s\n' "$2" "$3" >> "$log"
    fi
}

# check_model MODEL: every check for one fixture folder.
check_model() {
    local model="$1" name beams article base ref got dtype
    name="$(basename "$model")"
    for beams in 1 4; do
        base="$out/runs/$name-beams$beams"
        # CPU f32, one by one and batched: the reference every other run is compared with.
        if ! batch cpu f32 "$model" "$beams" "$base-cpu-batch" 2>> "$log"; then
            fail "$name beams=$beams: cpu f32 batch run"
            continue
        fi
        for article in "$out"/articles/*.txt; do
            article="$(basename "$article" .txt)"
            if ! ref="$(summarize cpu f32 "$model" "$beams" "$out/articles/$article.txt" 2>> "$log")"; then
                fail "$name beams=$beams $article: cpu f32 run"
                continue
            fi
            same "$name beams=$beams $article: cpu f32 batch = one by one" \
                "$ref" "$(written "$base-cpu-batch" "$article")"
            for path in "${kernel_paths[@]}"; do
                if got="$(PRECIS_CPU_KERNELS="$path" summarize cpu f32 "$model" "$beams" \
                    "$out/articles/$article.txt" 2>> "$log")"; then
                    same "$name beams=$beams $article: cpu kernels $path = default" "$ref" "$got"
                else
                    fail "$name beams=$beams $article: cpu kernels $path run"
                fi
            done
            if [ "$cpu_only" == 0 ]; then
                if got="$(summarize cuda f32 "$model" "$beams" "$out/articles/$article.txt" 2>> "$log")"; then
                    same "$name beams=$beams $article: cuda f32 = cpu f32" "$ref" "$got"
                else
                    fail "$name beams=$beams $article: cuda f32 run"
                fi
            fi
        done
        if [ "$cpu_only" == 0 ]; then
            if batch cuda f32 "$model" "$beams" "$base-cuda-batch" 2>> "$log"; then
                for article in "$out"/articles/*.txt; do
                    article="$(basename "$article" .txt)"
                    same "$name beams=$beams $article: cuda f32 batch = cpu f32 batch" \
                        "$(written "$base-cpu-batch" "$article")" \
                        "$(written "$base-cuda-batch" "$article")"
                done
            else
                fail "$name beams=$beams: cuda f32 batch run"
            fi
        fi
    done
    # bf16 on the CPU (float32 with bfloat16 products): batched = one by one on every kernel
    # path, as in f32. Its text is not compared with f32's (random models round differently in
    # 16 bits; tests/quantize.rs bounds its logits against f32).
    for path in "${kernel_paths[@]}"; do
        base="$out/runs/$name-bf16-$path"
        if ! PRECIS_CPU_KERNELS="$path" batch cpu bf16 "$model" 1 "$base-batch" 2>> "$log"; then
            fail "$name cpu bf16 kernels $path: batch run"
            continue
        fi
        for article in "$out"/articles/*.txt; do
            article="$(basename "$article" .txt)"
            if got="$(PRECIS_CPU_KERNELS="$path" summarize cpu bf16 "$model" 1 \
                "$out/articles/$article.txt" 2>> "$log")"; then
                same "$name $article: cpu bf16 kernels $path batch = one by one" "$got" \
                    "$(written "$base-batch" "$article")"
            else
                fail "$name $article: cpu bf16 kernels $path run"
            fi
        done
    done
    # Half precision runs and summarises (random models round differently in 16 bits, so the
    # text is not compared; tests/dtypes.rs bounds their logits against f32).
    local devices=(cpu)
    [ "$cpu_only" == 0 ] && devices+=(cuda)
    for device in "${devices[@]}"; do
        for dtype in bf16 f16; do
            if got="$(summarize "$device" "$dtype" "$model" 4 "$out/articles/long.txt" 2>> "$log")" \
                && [ -n "$got" ]; then
                pass "$name $device $dtype summarises"
            else
                fail "$name $device $dtype summarises"
            fi
        done
    done
}

has_weights() {
    local file
    for file in "$1"/*.safetensors "$1"/pytorch_model.bin; do
        [ -f "$file" ] && return 0
    done
    return 1
}

if [ "$cpu_only" == 0 ]; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt" \
        || fail "nvidia-smi"
    # cudarc opens cuBLAS, cuRAND and NVRTC at run time by their versioned names.
    wheel_libs="$(python3 - 2> /dev/null <<'PY'
import glob, os
try:
    import nvidia
except ImportError:
    raise SystemExit
dirs = {os.path.dirname(p) for d in nvidia.__path__ for p in glob.glob(d + "/**/lib*.so*", recursive=True)}
print(":".join(sorted(dirs)))
PY
)"
    [ -n "$wheel_libs" ] && export LD_LIBRARY_PATH="$wheel_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
# The CPU kernel paths this CPU can run (PRECIS_CPU_KERNELS; an error naming the variable
# means the CPU lacks that instruction set).
kernel_paths=()
unsupported=()
probe="tests/fixtures/t5-tiny"
candidates="${GPU_CHECK_CPU_PATHS:-amx avx512-bf16 avx512 avx2-vnni avx2 portable}"
[ "$candidates" == "none" ] && candidates=""
for path in $candidates; do
    if PRECIS_CPU_KERNELS="$path" summarize cpu f32 "$probe" 1 "$out/articles/short.txt" \
        > /dev/null 2> "$out/probe.txt"; then
        kernel_paths+=("$path")
    elif grep -q PRECIS_CPU_KERNELS "$out/probe.txt"; then
        unsupported+=("$path")
    else
        fail "cpu kernels $path: $(tail -1 "$out/probe.txt")"
    fi
done
[ "${#kernel_paths[@]}" -gt 0 ] || [ -z "$candidates" ] || fail "no CPU kernel path runs"

models=0
skipped=()
for model in tests/fixtures/*/; do
    model="${model%/}"
    [ -f "$model/config.json" ] || continue
    if ! has_weights "$model"; then
        skipped+=("$(basename "$model")")
        continue
    fi
    models=$((models + 1))
    check_model "$model"
done
[ "$models" -gt 0 ] || fail "no loadable fixture under tests/fixtures"

bench_models=target/bench-models
bench="${GPU_CHECK_BENCH:-1}"
[ "$cpu_only" == 1 ] && bench=0
python_ml=0
[ "$bench" == 1 ] && python3 -c 'import torch, transformers, sentencepiece' 2> /dev/null \
    && python_ml=1
if [ "$bench" == 1 ] && [ ! -d "$bench_models" ] && [ "$python_ml" == 1 ]; then
    for shape in ${GPU_CHECK_BENCH_SHAPES:-t5-small distilbart-cnn-12-6}; do
        python3 scripts/make_bench_model.py --shape "$shape" --out "$bench_models/$shape" \
            >> "$log" 2>&1 || fail "make bench model $shape"
    done
fi
gpu_torch=0
[ "$python_ml" == 1 ] && python3 -c 'import torch; assert torch.cuda.is_available()' 2> /dev/null \
    && gpu_torch=1
if [ "$bench" == 1 ] && [ -d "$bench_models" ]; then
    for model in "$bench_models"/*/; do
        model="${model%/}"
        # Each model's usual article window, as scripts/bench.py uses.
        tokens=512
        grep -q '"model_type": "t5"' "$model/config.json" || tokens=1024
        for batch in 1 8 32; do
            for beams in 1 4; do
                # bfloat16, the GPU default, for both engines.
                "$bin" bench --device cuda --dtype bf16 --model "$model" --batch "$batch" \
                    --num-beams "$beams" --input-tokens "$tokens" --runs 3 --format json \
                    >> "$out/bench.jsonl" 2>> "$log" \
                    || fail "bench $(basename "$model") batch=$batch beams=$beams"
                [ "$gpu_torch" == 1 ] || continue
                python3 scripts/bench_engines.py transformers --device cuda --dtype bfloat16 \
                    --model "$model" --batch "$batch" --num-beams "$beams" \
                    --input-tokens "$tokens" --runs 3 >> "$out/bench-transformers.jsonl" 2>> "$log" \
                    || fail "transformers bench $(basename "$model") batch=$batch beams=$beams"
            done
        done
    done
fi

mode=$([ "$cpu_only" == 1 ] && echo "cpu-only" || echo "gpu")
note="; kernel paths ${kernel_paths[*]:-none}${unsupported[*]:+ (CPU lacks ${unsupported[*]})}"
note="$note${skipped[*]:+; skipped, no weights: ${skipped[*]}}"
if [ "${#failures[@]}" -eq 0 ]; then
    echo "gpu_check $mode: ok, $checks checks on $models fixture models$note"
    exit 0
fi
echo "gpu_check $mode: ${#failures[@]} of $checks checks FAILED on $models fixture models$note:" \
    "$(printf '%s; ' "${failures[@]}")"
exit 1
