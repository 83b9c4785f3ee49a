#!/usr/bin/env bash
# Create a virtualenv with the CPU build of torch installed first, then the given packages.
#
#   scripts/make_venv.sh VENV PACKAGE_SPEC...      e.g. scripts/make_venv.sh .venv -e '.[dev,qlora]'
#
# torch==2.13.0 is the only spec that resolves to the local CPU wheel on these machines:
# it is pinned with `-c constraints-cpu.txt` for every install, so no dependency
# can pull a multi-GB CUDA build. Set PYTHON to choose the interpreter (default python3.11).
set -euo pipefail

venv="$1"
shift
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-$(command -v python3.11 || command -v python3)}"
constraints="$root/constraints-cpu.txt"
pip_flags=(--disable-pip-version-check -q -c "$constraints")

if [[ ! -x "$venv/bin/python" ]]; then
    echo "==> creating $venv with $($python --version)"
    "$python" -m venv "$venv"
fi
# pip prints a warning per package for missing local index folders; they are harmless.
quiet() { "$@" 2> >(grep -v "^WARNING: Location 'file://" >&2); }

echo "==> $venv: torch (CPU build) first"
quiet "$venv/bin/pip" install "${pip_flags[@]}" "torch==2.13.0"
echo "==> $venv: $*"
quiet "$venv/bin/pip" install "${pip_flags[@]}" "$@"

"$venv/bin/python" - <<'PY'
import sys
import torch
if "+cpu" not in torch.__version__ and torch.version.cuda is not None:
    sys.exit(f"expected the CPU build of torch, got {torch.__version__} (CUDA {torch.version.cuda})")
print(f"==> torch {torch.__version__} OK")
PY
