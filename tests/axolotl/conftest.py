"""Fixtures for the Axolotl plugin tests: tiny model + synthetic chat data, configs, trainers, runs.

Everything here runs only in the Axolotl virtualenv (`make test-axolotl`); Axolotl is imported
inside fixtures so that collecting these files in the main environment costs nothing. Expensive
things (the real `axolotl train` run, the in-process trainers) are session-scoped and shared.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

os.environ.setdefault("AXOLOTL_DO_NOT_TRACK", "1")

ROOT = Path(__file__).resolve().parents[2]
TINY_CONFIG = ROOT / "plugin_configs" / "axolotl" / "tiny-cpu.yaml"
NUM_SAMPLES = 24
BIN = Path(sys.executable).parent
# Keys overriding the tiny config for tests: fewer steps everywhere, a small SHAD budget.
TEST_OVERRIDES: dict[str, Any] = {"max_steps": 2, "shad_min_steps": 2}


@dataclass
class Built:
    """An Axolotl cfg and the trainer `setup_model_and_trainer` built from it (hooks included)."""

    cfg: Any
    trainer: Any


def offline_env() -> dict[str, str]:
    """Environment for `axolotl` subprocesses: offline, no telemetry, the venv's bin on PATH."""
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        AXOLOTL_DO_NOT_TRACK="1",
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


@pytest.fixture(scope="session")
def axolotl_available() -> None:
    """Skip cleanly where Axolotl is not installed."""
    pytest.importorskip("axolotl")


@pytest.fixture(scope="session")
def assets(tmp_path_factory, axolotl_available) -> Path:
    """The tiny model and `train.jsonl` written by the same helper the README points users to."""
    from rft_trl.integrations.axolotl.example import write_tiny_assets

    return write_tiny_assets(tmp_path_factory.mktemp("assets"), num_samples=NUM_SAMPLES)


@pytest.fixture(scope="session")
def work_dir(tmp_path_factory) -> Path:
    """Shared prepared-dataset and SHAD cache directories live here (reused across tests)."""
    return tmp_path_factory.mktemp("axolotl-work")


@pytest.fixture(scope="session")
def make_config(assets: Path, work_dir: Path) -> Callable[..., Path]:
    """`make_config(name, **overrides)`: the tiny CPU config with test paths; None deletes a key."""

    def make(name: str, **overrides: Any) -> Path:
        cfg = yaml.safe_load(TINY_CONFIG.read_text())
        cfg["base_model"] = str(assets / "model")
        cfg["datasets"][0]["path"] = str(assets / "train.jsonl")
        cfg["dataset_prepared_path"] = str(work_dir / "prepared")
        cfg["shad_cache_dir"] = str(work_dir / "shad-cache")
        cfg["output_dir"] = str(work_dir / name / "out")
        for key, value in {**TEST_OVERRIDES, **overrides}.items():
            if value is None:
                cfg.pop(key, None)
            else:
                cfg[key] = value
        path = work_dir / name / "config.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        return path

    return make


@pytest.fixture(scope="session")
def build() -> Callable[[Path], Built]:
    """`build(config_path)`: load, validate, prepare data and create the trainer in this process."""

    def run(config_path: Path) -> Built:
        from axolotl.cli.config import load_cfg
        from axolotl.common.datasets import load_datasets
        from axolotl.train import setup_model_and_trainer

        cfg = load_cfg(str(config_path))
        meta = load_datasets(cfg=cfg)
        trainer, *_ = setup_model_and_trainer(cfg, meta)
        return Built(cfg=cfg, trainer=trainer)

    return run


@pytest.fixture(scope="session")
def axolotl_cli() -> Callable[..., subprocess.CompletedProcess]:
    """`axolotl_cli(*args, timeout=...)`: run the real `axolotl` command; output in `.stdout`."""

    def run(*args: str, timeout: int = 600, cwd: Path | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(BIN / "axolotl"), *args],
            env=offline_env(),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )

    return run


@pytest.fixture(scope="session")
def lora_config(make_config) -> Path:
    """The tiny CPU config as shipped (LoRA, `rft: true`), with test paths."""
    return make_config("lora")


@pytest.fixture(scope="session")
def lora_cli_run(lora_config: Path, axolotl_cli) -> str:
    """One real `axolotl train` through the CLI and accelerate (fresh SHAD cache); its log."""
    result = axolotl_cli("train", str(lora_config), cwd=lora_config.parent)
    assert result.returncode == 0, result.stdout[-6000:]
    return result.stdout


@pytest.fixture(scope="session")
def lora_built(lora_cli_run: str, lora_config: Path, build) -> Built:
    """The same config built again in this process, after the CLI run wrote the SHAD cache."""
    return build(lora_config)


@pytest.fixture
def rows(lora_built: Built) -> list[dict[str, Any]]:
    """Four labelled training rows (fresh dicts: collators may modify what they get)."""
    dataset = lora_built.trainer.train_dataset
    return [copy.deepcopy(dataset[i]) for i in range(4)]


def log_metrics(log: str) -> list[dict[str, str]]:
    """The metric dicts the HF progress callback printed (`{'loss': '6.9', ...}`)."""
    found = []
    for line in log.splitlines():
        start = line.find("{'loss'")
        if start >= 0:
            text = line[start : line.index("}", start) + 1]
            found.append(json.loads(text.replace("'", '"')))
    return found


@pytest.fixture(scope="session")
def parse_log_metrics() -> Callable[[str], list[dict[str, str]]]:
    """`parse_log_metrics(log)`: the per-step metric dicts of a training log."""
    return log_metrics
