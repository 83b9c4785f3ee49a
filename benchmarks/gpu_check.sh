#!/usr/bin/env bash
# Every check that needs CUDA, in one run, for a lent GPU machine (docs/benchmarks.md §1, "GPU").
#
#     bash benchmarks/gpu_check.sh OUTDIR
#
# Wheels for what the machine lacks may sit in .whl/ (trl, transformers, peft, datasets, ...),
# .whl-bnb/ (bitsandbytes, for the QLoRA tests) and .whl-demo/ (matplotlib and its dependencies,
# for the demo's report); they are installed into /tmp/site first. The three are kept apart
# because a device call carries 64 MiB at most: carry .whl and .whl-bnb for the first four stages,
# .whl and .whl-demo for the demo stage. Stages run in priority order, each under its own time limit,
# and each writes its log (and JSON) to OUTDIR as it finishes, so a stage cut short loses only
# itself: the CUDA tests, then perf.py's log-prob memory, step time and SHAD cost on CUDA, then
# the demo on CUDA (`rft-trl demo --quick --device cuda` and a CUDA-built base, tests/test_demo_gpu.py).
# On one H100 (2026-11-27) the stages took 40 s, 21 s, 171 s (after 5-26 s saving the QLoRA
# checkpoint; 51-63 s per step group and rep) and more than 90 s: the first four stages' defaults
# fit one 600-s call; the demo stage (70 s on one H200 in stop 21, beside benchmarks/gpu_bases.sh's
# base builds) in a second call: `ONLY="demo-gpu" bash benchmarks/gpu_check.sh OUTDIR`
# (ONLY: space-separated stage names).
# Exit status: 1 if the stack does not import or any stage failed or ran out of time.
set -u
out=${1:?usage: bash benchmarks/gpu_check.sh OUTDIR}
mkdir -p "$out"
source "$(dirname "$0")/gpu_env.sh"  # offline settings, $python, the carried wheels

failed=0
stage() {  # stage NAME SECONDS COMMAND...: run, log to OUTDIR/NAME.log, report rc and time
    local name=$1 limit=$2 started=$SECONDS rc
    shift 2
    if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then
        return 0
    fi
    timeout -k 10 "$limit" "$@" >"$out/$name.log" 2>&1
    rc=$?
    [ "$rc" -eq 0 ] || failed=1
    echo "== $name: rc $rc in $((SECONDS - started)) s (limit $limit s)" | tee -a "$out/stages.txt"
    tail -n 25 "$out/$name.log"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$out/env.txt" 2>&1
if ! "$python" - >>"$out/env.txt" 2>&1 <<'PY'; then
import importlib.metadata as m, platform, sys, torch
if not torch.cuda.is_available():
    sys.exit("no CUDA device: these checks need one")
print("python", platform.python_version(), "| cuda", torch.version.cuda, torch.cuda.get_device_name())
for name in ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "bitsandbytes"):
    try:
        print(name, m.version(name))
    except m.PackageNotFoundError:
        print(name, "MISSING")
import rft_trl.trainer  # noqa: F401  (fails fast if the stack does not import)
PY
    cat "$out/env.txt"
    exit 1
fi
cat "$out/env.txt"

stage gpu-tests "${TESTS_LIMIT:-90}" "$python" -m pytest -p no:cacheprovider -v -rs \
    --junitxml "$out/gpu-tests.xml" tests/test_logprobs_gpu.py tests/test_trainer_gpu.py \
    tests/test_shad_gpu.py
stage perf-vocab "${VOCAB_LIMIT:-45}" "$python" benchmarks/perf.py --device cuda --parts vocab \
    --threads 4 --out "$out/perf-cuda-vocab.json"
stage perf-step "${STEP_LIMIT:-240}" "$python" benchmarks/perf.py --device cuda --sizes 500m \
    --parts step --threads 4 --reps "${STEP_REPS:-1}" --out "$out/perf-cuda-step.json"
stage perf-shad "${SHAD_LIMIT:-170}" "$python" benchmarks/perf.py --device cuda --sizes 500m \
    --parts shad --threads 4 --out "$out/perf-cuda-shad.json"
stage demo-gpu "${DEMO_LIMIT:-180}" "$python" -m pytest -p no:cacheprovider -v -rs \
    --junitxml "$out/demo-gpu-tests.xml" -m gpu tests/test_demo_gpu.py tests/test_base_model.py
exit "$failed"
