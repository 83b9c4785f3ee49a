# Sourced by gpu_check.sh, gpu_bases.sh and gpu_evidence.sh: offline Hugging Face settings, the
# repo on PYTHONPATH, $python, and the carried wheels (.whl*/*.whl) installed into /tmp/site unless
# SKIP_WHEELS=1 says a calling script already did. Exits the caller with status 1 if the install
# fails.
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python=${PYTHON:-python3}
if [ -z "${SKIP_WHEELS:-}" ] && compgen -G ".whl*/*.whl" >/dev/null; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl*/*.whl || exit 1
    export PYTHONPATH="/tmp/site:$PYTHONPATH"
fi
