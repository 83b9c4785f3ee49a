"""`rft-trl train` on the TRL YAML: end to end, under torchrun, resume with a SHAD cache hit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rft_trl.cli import main

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "plugin_configs"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """`rft-trl synth` output: a tiny model and 48 messages rows."""
    out = tmp_path_factory.mktemp("tiny")
    assert main(["synth", "--out", str(out), "--train", "48", "--test", "8"]) == 0
    return out


def write_config(tmp_path: Path, tiny: Path, **overrides) -> Path:
    """The tiny CPU example config pointed at `tiny`, made smaller for tests."""
    config = yaml.safe_load((CONFIGS / "trl" / "tiny_cpu.yaml").read_text())
    config.update(
        model_name_or_path=str(tiny / "model"),
        dataset_name=str(tiny / "data"),
        output_dir=str(tmp_path / "out"),
        shad_cache_dir=str(tmp_path / "cache"),
        max_steps=2,
        shad_min_steps=2,
        per_device_train_batch_size=2,
        gradient_accumulation_steps=2,
        max_length=512,
        logging_steps=1,
        disable_tqdm=True,
    )
    config.update(overrides)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert "rft-trl 0.1.0" in capsys.readouterr().out
    assert main([]) == 0
    out = capsys.readouterr().out
    for command in ("train", "shad", "inspect", "synth"):
        assert command in out


@pytest.mark.parametrize(
    "name", ["tiny_cpu.yaml", "llama31_8b_qlora_fa2.yaml", "llama31_8b_multi_gpu.yaml"]
)
def test_example_configs_parse(name):
    from rft_trl.recipe import parse_recipe

    recipe = parse_recipe(str(CONFIGS / "trl" / name), ["--bf16", "false", "--use_cpu", "true"])
    assert recipe.training_args.rft is True
    assert recipe.training_args.assistant_only_loss is True


def test_accelerate_configs_are_yaml():
    for path in (CONFIGS / "accelerate").glob("*.yaml"):
        assert "distributed_type" in yaml.safe_load(path.read_text())


def test_train_end_to_end_then_resume_hits_the_shad_cache(tiny_run, tmp_path):
    from rft_trl.recipe import parse_recipe, train_and_eval
    from rft_trl.trainer import RFTTrainer

    config = write_config(tmp_path, tiny_run, save_strategy="steps", save_steps=2)
    assert main(["train", "--config", str(config)]) == 0
    assert (tmp_path / "out" / "adapter_model.safetensors").is_file()
    assert (tmp_path / "out" / "checkpoint-2").is_dir()

    # resume for two more steps: SHAD must come from the cache, not be re-run
    recipe = parse_recipe(str(config), ["--max_steps", "4"])
    train, _ = train_and_eval(recipe)
    from trl import get_peft_config

    trainer = RFTTrainer(
        recipe.model_args.model_name_or_path,
        recipe.training_args,
        train_dataset=train,
        peft_config=get_peft_config(recipe.model_args),
    )
    trainer.train(resume_from_checkpoint=True)
    assert trainer.shad_report.cache == "hit"
    assert trainer.state.global_step == 4
    logs = [e for e in trainer.state.log_history if "loss" in e]
    assert logs and all("reasoning_weight" in e for e in logs)


def test_unknown_rft_key_fails_before_training(tiny_run, tmp_path, capsys):
    config = write_config(tmp_path, tiny_run, rft_temprature=2.0)
    assert main(["train", "--config", str(config)]) == 2
    assert "rft_temprature" in capsys.readouterr().err


def test_missing_labels_path_fails_before_training(tiny_run, tmp_path):
    from rft_trl.shad import ShadLabelsError

    config = write_config(tmp_path, tiny_run, shad_labels_path=str(tmp_path / "nope"))
    with pytest.raises(ShadLabelsError, match="nope"):
        main(["train", "--config", str(config)])
    assert not (tmp_path / "out" / "adapter_model.safetensors").exists()


@pytest.mark.slow
def test_train_under_torchrun_two_processes(tiny_run, tmp_path):
    config = write_config(tmp_path, tiny_run)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "rft_trl.cli",
        "train",
        "--config",
        str(config),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (tmp_path / "out" / "adapter_model.safetensors").is_file()
    assert "reasoning_weight" in proc.stdout + proc.stderr
    # The trainer died before shut_down on both ranks, so both destroyed their group.
    assert "still referenced" not in proc.stderr
