#!/usr/bin/env bash
# Bigger bases on a lent GPU: is SHAD's label quality a matter of base size? (docs/benchmarks.md §2)
#
#     bash benchmarks/gpu_bases.sh OUTDIR
#
# Pretrains the bases named in BASES on CUDA (fp32) and, for each, runs `evidence.py thresholds`
# on corpus seeds 0 1 2 (one call per seed, so a run cut short keeps the seeds it finished) and
# `base_competence.py`. The bases run side by side on the one GPU, beside the demo-gpu stage of
# gpu_check.sh. Wheels from .whl*/ are installed once into /tmp/site (gpu_env.sh).
# BASES: space-separated NAME:HIDDEN:LAYERS:STEPS:BATCH:LR; SEEDS, SHAD_STEPS, DEVICE, DEADLINE
# (seconds for everything) can be set; DEVICE=cpu with tiny BASES checks the script here. Exit
# status 1 if a base or the demo-gpu stage failed or ran past the deadline.
set -u
out=${1:?usage: bash benchmarks/gpu_bases.sh OUTDIR}
mkdir -p "$out"
source "$(dirname "$0")/gpu_env.sh"  # offline settings, $python, the carried wheels
export TQDM_MININTERVAL=30
bases=${BASES:-"h512:512:8:2500:16:2e-3 h256:256:4:2500:16:3e-3"}
seeds=${SEEDS:-"0 1 2"}
device=${DEVICE:-cuda}
deadline=${DEADLINE:-480}
export python seeds device

one_base() {  # one_base NAME HIDDEN LAYERS STEPS BATCH LR: thresholds per seed, then competence
    local name=$1 cache=/tmp/bases/$1 seed started=$SECONDS
    local recipe=(--base-hidden "$2" --base-layers "$3" --base-steps "$4" --base-batch "$5" --base-lr "$6")
    echo "== $name: ${recipe[*]} on $device"
    for seed in $seeds; do
        "$python" benchmarks/evidence.py thresholds --seeds "$seed" --fixed-base "${recipe[@]}" \
            --steps "${SHAD_STEPS:-300}" --n-test 1000 --thresholds 0 0.005 --device "$device" \
            --cache-dir "$cache" --threads 4 || echo "== $name seed $seed: rc $?"
        echo "== $name seed $seed done at $((SECONDS - started)) s"
    done
    "$python" benchmarks/base_competence.py --base "$(ls -d "$cache"/demo-base-* | head -n 1)" \
        --samples 100 --device "$device" --threads 4
    echo "== $name: all done at $((SECONDS - started)) s"
}

declare -A jobs=()
for spec in $bases; do
    IFS=: read -r name hidden layers steps batch lr <<<"$spec"
    timeout -k 10 "$deadline" bash -c "$(declare -f one_base); one_base \"\$@\"" _ \
        "$name" "$hidden" "$layers" "$steps" "$batch" "$lr" >"$out/base-$name.log" 2>&1 &
    jobs[$!]="base $name"
done
if [ "$device" = cuda ]; then
    # its own stage limit ends first, so gpu_check writes its rc line and test report
    SKIP_WHEELS=1 ONLY=demo-gpu DEMO_LIMIT=$((deadline - 30)) timeout -k 10 "$deadline" \
        bash benchmarks/gpu_check.sh "$out" &
    jobs[$!]="demo-gpu stage"
fi
failed=0
for pid in "${!jobs[@]}"; do
    wait "$pid"
    rc=$?
    echo "== ${jobs[$pid]}: rc $rc$([ "$rc" -eq 124 ] && echo " (deadline of $deadline s)")" | tee -a "$out/stages.txt"
    [ "$rc" -eq 0 ] || failed=1
done
grep -h "^== \|^| \|^SHAD labels\|first call\|exact" "$out"/base-*.log
exit "$failed"
