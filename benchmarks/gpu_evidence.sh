#!/usr/bin/env bash
# RFT against SFT on a base that already does the task, on a lent GPU (docs/benchmarks.md §3)
#
#     bash benchmarks/gpu_evidence.sh OUTDIR
#
# Pretrains BASE (NAME:HIDDEN:LAYERS:STEPS:BATCH:LR) on CUDA once, through `evidence.py thresholds`
# on the first seed (which also prints SHAD's label quality on this corpus) beside
# `base_competence.py`, then runs `evidence.py run` for every seed in SEEDS side by side, one
# process each, so a run cut short keeps every finished (seed, variant) chunk. Each process runs
# VARIANTS in order: put the ones that matter most first. CORPUS holds evidence.py's corpus options
# (default "--tools 3 4 --calls 2 3", a harder task than the demo's; CORPUS= for the demo's; with
# --spoken-values in it or in EXTRA, base_competence.py's requests say values in words too);
# STEPS the LoRA steps; EXTRA more evidence.py options (EXTRA=--quick DEVICE=cpu checks the script
# here). Results: OUTDIR/evidence.jsonl and OUTDIR/summary.md; each stage's status and end time in
# OUTDIR/stages.txt; logs OUTDIR/*.log. DEADLINE: seconds for everything, from the script's start.
# Wheels from .whl*/ are installed once into /tmp/site (gpu_env.sh). Needs bash >= 4.4. Exit
# status 1 if a stage failed or ran past the deadline.
set -u
out=$(realpath -m "${1:?usage: bash benchmarks/gpu_evidence.sh OUTDIR}")
mkdir -p "$out"
: >"$out/stages.txt"
cd "$(dirname "$0")/.." || exit 1
source benchmarks/gpu_env.sh  # offline settings, $python, the carried wheels
export TQDM_MININTERVAL=30
IFS=: read -r name hidden layers steps batch lr <<<"${BASE:-h256:256:4:2500:16:3e-3}"
read -r -a seeds <<<"${SEEDS:-0 1 2 3 4}"
read -r -a variants <<<"${VARIANTS:-sft rft rft_gt sft_per_sample}"
read -r -a corpus <<<"${CORPUS---tools 3 4 --calls 2 3}"
read -r -a extra <<<"${EXTRA:-}"
device=${DEVICE:-cuda}
deadline=${DEADLINE:-540}
cache=/tmp/bases/$name
common=(--fixed-base --base-hidden "$hidden" --base-layers "$layers" --base-steps "$steps"
    --base-batch "$batch" --base-lr "$lr" --steps "${STEPS:-600}" --n-test "${N_TEST:-1000}"
    --device "$device" --cache-dir "$cache" "${corpus[@]}" "${extra[@]}")

stage() {  # stage NAME LOG COMMAND...: run it within the time left; append its status line
    local name=$1 log=$2 left=$((deadline - SECONDS)) rc
    shift 2
    if [ "$left" -ge 1 ]; then
        timeout -k 10 "$left" "$@" >"$log" 2>&1
        rc=$?
    else
        rc=124  # no time left: not started
    fi
    echo "== $name: rc $rc$([ "$rc" -eq 124 ] && echo " (deadline of $deadline s)") at $SECONDS s" |
        tee -a "$out/stages.txt"
    return "$rc"
}

if ! stage "base $name and SHAD on seed ${seeds[0]}" "$out/base-$name.log" \
    "$python" benchmarks/evidence.py thresholds --seeds "${seeds[0]}" "${common[@]}" \
    --thresholds 0 0.005 --threads 4; then
    tail -n 20 "$out/base-$name.log"
    exit 1
fi
built=$("$python" - "${common[@]}" <<'PY'  # the folder of the base just built
import sys

sys.path.insert(0, "benchmarks")
import evidence
from rft_trl.demo.base_model import base_path

settings = evidence.seed_settings(0, evidence.parse_args(["thresholds", *sys.argv[1:]]))
print(base_path(settings.base, settings.cache_dir, settings.device))
PY
)
said=()  # the competence requests say values in words when the corpus' do
[[ " ${corpus[*]} ${extra[*]} " == *" --spoken-values "* ]] && said=(--spoken-values)
stage "base competence" "$out/competence.log" "$python" benchmarks/base_competence.py \
    --samples 100 --base "$built" --device "$device" --threads 2 "${said[@]}" &
for seed in "${seeds[@]}"; do
    stage "seed $seed" "$out/run-$seed.log" "$python" benchmarks/evidence.py run --seeds "$seed" \
        "${common[@]}" --threads 2 --variants "${variants[@]}" \
        --results "$out/evidence-$seed.jsonl" &
done
wait
cat "$out"/evidence-*.jsonl >"$out/evidence.jsonl" 2>/dev/null
stage "summary" "$out/summary.md" "$python" benchmarks/evidence.py summary \
    --results "$out/evidence.jsonl"
grep -h "^| \|^SHAD labels" "$out/base-$name.log"
cat "$out/competence.log" "$out/summary.md"
! grep -qv ": rc 0 at" "$out/stages.txt"
