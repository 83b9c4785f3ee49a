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
# (default "--tools 3 4 --calls 2 3", a harder task than the demo's); STEPS the LoRA steps; EXTRA
# more evidence.py options (EXTRA=--quick DEVICE=cpu checks the script here). Results:
# OUTDIR/evidence.jsonl and OUTDIR/summary.md; logs OUTDIR/*.log. DEADLINE: seconds for everything.
# Wheels from .whl*/ are installed once into /tmp/site (gpu_env.sh). Exit status 1 if a stage
# failed or ran past the deadline.
set -u
out=${1:?usage: bash benchmarks/gpu_evidence.sh OUTDIR}
mkdir -p "$out"
source "$(dirname "$0")/gpu_env.sh"  # offline settings, $python, the carried wheels
export TQDM_MININTERVAL=30
IFS=: read -r name hidden layers steps batch lr <<<"${BASE:-h256:256:4:2500:16:3e-3}"
seeds=${SEEDS:-"0 1 2 3 4"}
read -r -a variants <<<"${VARIANTS:-sft rft rft_gt sft_per_sample}"
read -r -a corpus <<<"${CORPUS:---tools 3 4 --calls 2 3}"
read -r -a extra <<<"${EXTRA:-}"
device=${DEVICE:-cuda}
deadline=${DEADLINE:-540}
end=$((SECONDS + deadline))
cache=/tmp/bases/$name
common=(--fixed-base --base-hidden "$hidden" --base-layers "$layers" --base-steps "$steps"
    --base-batch "$batch" --base-lr "$lr" --steps "${STEPS:-600}" --n-test "${N_TEST:-1000}"
    --device "$device" --cache-dir "$cache" "${corpus[@]}" "${extra[@]}")
failed=0
stage() {  # stage NAME RC: record a stage's status
    echo "== $1: rc $2$([ "$2" -eq 124 ] && echo " (deadline of $deadline s)") at $SECONDS s" |
        tee -a "$out/stages.txt"
    [ "$2" -eq 0 ] || failed=1
}

first=${seeds%% *}
timeout -k 10 "$deadline" "$python" benchmarks/evidence.py thresholds --seeds "$first" \
    "${common[@]}" --thresholds 0 0.005 --threads 4 >"$out/base-$name.log" 2>&1
stage "base $name and SHAD on seed $first" $?
[ "$failed" -eq 0 ] || { tail -n 20 "$out/base-$name.log"; exit 1; }
timeout -k 10 $((end - SECONDS)) "$python" benchmarks/base_competence.py --samples 100 \
    --base "$(ls -d "$cache"/demo-base-* | head -n 1)" --device "$device" --threads 2 \
    >"$out/competence.log" 2>&1 &
declare -A jobs=([$!]="base competence")
for seed in $seeds; do
    timeout -k 10 $((end - SECONDS)) "$python" benchmarks/evidence.py run --seeds "$seed" \
        "${common[@]}" --threads 2 --variants "${variants[@]}" \
        --results "$out/evidence-$seed.jsonl" >"$out/run-$seed.log" 2>&1 &
    jobs[$!]="seed $seed"
done
for pid in "${!jobs[@]}"; do
    wait "$pid"
    stage "${jobs[$pid]}" $?
done
cat "$out"/evidence-*.jsonl >"$out/evidence.jsonl" 2>/dev/null
"$python" benchmarks/evidence.py summary --results "$out/evidence.jsonl" >"$out/summary.md" 2>&1
grep -h "^| \|^SHAD labels" "$out/base-$name.log"
cat "$out/competence.log" "$out/summary.md"
exit "$failed"
