#!/usr/bin/env bash
# Run pytest from a virtualenv; a run that collects no tests (exit code 5) is a failure.
#   scripts/run_pytest.sh VENV [pytest args...]
set -uo pipefail
venv="$1"
shift
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 AXOLOTL_DO_NOT_TRACK=1
export PATH="$(cd "$venv" && pwd)/bin:$PATH"   # `axolotl train` launches through accelerate
"$venv/bin/python" -m pytest "$@"
rc=$?
if [[ $rc -eq 5 ]]; then
    echo "pytest collected no tests: failing (exit code 5)" >&2
    exit 1
fi
exit $rc
