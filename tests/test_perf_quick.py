"""`benchmarks/perf.py --quick` runs end to end (breakage only: no timing is asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_perf_quick_runs_every_part(tmp_path):
    out = tmp_path / "perf.json"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "RFT_PERF_CKPT": str(tmp_path),
    }
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "perf.py"), "--quick", "--out", str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "### Targets" in proc.stdout
    report = json.loads(out.read_text())
    for group in report["step"]:
        assert "error" not in group["summary"], group["summary"]
        assert set(group["summary"]["per"]) == {"rft", "plain_sft", "trl_sft"}
    for result in report["shad"]:
        assert "error" not in result["summary"], result["summary"]
    assert report["vocab_summary"] and all("error" not in r for r in report["vocab_summary"])


def test_weights_hash_quick_prints_a_row_per_dtype():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "weights_hash.py"), "--quick", "--repeats", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| tiny |")]
    assert [row.split("|")[3].strip() for row in rows] == ["float32", "bfloat16"]
