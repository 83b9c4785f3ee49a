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

    # Strict: a key no argument class takes is refused (the GPU configs had `warmup_ratio`,
    # which transformers 5 dropped; it was silently ignored).
    recipe = parse_recipe(str(CONFIGS / "trl" / name), ["--bf16", "false", "--use_cpu", "true"])
    assert recipe.training_args.rft is True
    assert recipe.training_args.assistant_only_loss is True
    if name != "tiny_cpu.yaml":
        assert recipe.training_args.warmup_steps == 0.03


def test_accelerate_configs_are_yaml():
    for path in (CONFIGS / "accelerate").glob("*.yaml"):
        assert "distributed_type" in yaml.safe_load(path.read_text())


def test_train_end_to_end_then_resume_hits_the_shad_cache(tiny_run, tmp_path, capsys):
    from rft_trl.recipe import parse_recipe, train_and_eval
    from rft_trl.trainer import RFTTrainer

    config = write_config(tmp_path, tiny_run, save_strategy="steps")
    # `--key value` after the config overrides it, as with `trl sft` (save_steps is 500 there)
    assert main(["train", "--config", str(config), "--save_steps", "2"]) == 0
    out = capsys.readouterr().out
    assert "SHAD summary" in out and "boilerplate fraction" in out  # the health check, printed
    assert out.index("SHAD summary") < out.index("Model saved to")
    # SHAD's labels are saved beside the model, as the Axolotl plugin saves them, for inspect
    from rft_trl.shad import load_labels

    saved = tmp_path / "out" / "_shad_labels"
    assert f"Labels saved to {saved}" in out
    assert main(["inspect", str(saved), "--samples", "1", "--color", "never"]) == 0
    assert "token_class" in load_labels(saved).column_names
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
    assert "rft_temprature (did you mean rft_temperature?)" in capsys.readouterr().err


def test_missing_labels_path_fails_before_training(tiny_run, tmp_path, capsys):
    config = write_config(tmp_path, tiny_run, shad_labels_path=str(tmp_path / "nope"))
    assert main(["train", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "adapter_model.safetensors").exists()


@pytest.mark.parametrize(
    ("overrides", "argv", "message"),
    [
        ({"warmup_ratio": 0.03}, [], "warmup_ratio"),  # transformers 5 dropped it
        ({"num_processes": 2}, [], "does not start"),  # a launcher key `trl sft` passes on
        ({}, ["--not_a_key", "3"], "--not_a_key 3"),  # an override of no argument
        ({"packing": True, "packing_strategy": "wrapped"}, [], "packing_strategy='wrapped'"),
        ({"model_name_or_path": None}, [], "no `model_name_or_path`"),
        ({"dataset_name": "data/trian.jsonl"}, [], "Dataset path not found"),
        ({"dataset_streaming": True}, [], "remove `dataset_streaming`"),  # it was ignored
        ({"assistant_only_loss": False}, [], "assistant_only_loss"),  # no response mask
        ({"model_name_or_path": "./no-such-model"}, [], "Model path not found"),
        ({"base_model": "m", "model_name_or_path": None}, [], "looks like an Axolotl config"),
        ({"datasets": [{"path": "x.jsonl", "ds_type": "json"}]}, [], "ds_type"),
        ({"output_dir": "__FILE__"}, [], "is a file, not a folder"),
        ({"shad_cache_dir": "__FILE__"}, [], "is a file, not a folder"),
        ({"shad_cache_dir": "__FILE__/sub"}, [], "is a file, not a folder"),
        ({"dataset_name": "__BAD_JSONL__"}, [], "JSON parse error"),
        ({"dataset_name": "__EMPTY_JSONL__"}, [], "is empty"),
    ],
)
def test_bad_config_fails_cleanly_before_training(
    tiny_run, tmp_path, capsys, overrides, argv, message
):
    files = {"__FILE__": "not a folder", "__BAD_JSONL__": '{"messages": [\n', "__EMPTY_JSONL__": ""}
    for name, text in files.items():
        (tmp_path / f"{name}.jsonl").write_text(text)
    for key, value in overrides.items():
        if isinstance(value, str) and value.split("/")[0] in files:
            name, _, under = value.partition("/")
            overrides[key] = (
                str(tmp_path / f"{name}.jsonl" / under)
                if under
                else str(tmp_path / f"{name}.jsonl")
            )
    config = write_config(tmp_path, tiny_run, **overrides)
    assert main(["train", "--config", str(config), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out" / "adapter_model.safetensors").exists()


def test_other_commands_refuse_unknown_arguments(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["inspect", "somewhere", "--bogus", "1"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --bogus 1" in capsys.readouterr().err


def test_malformed_yaml_fails_cleanly(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("model_name_or_path: [unclosed\n")
    assert main(["train", "--config", str(config)]) == 2
    assert "not valid YAML" in capsys.readouterr().err


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


def test_check_config_reports_trl_settings_training_refuses():
    from rft_trl.commands.check_config import check_file, check_mapping

    base = {"model_name_or_path": "m", "dataset_name": "d", "learning_rate": 1e-4, "rft": True}
    result = check_mapping({**base, "packing": True, "packing_strategy": "wrapped"}, kind="trl")
    assert not result.ok and "packing_strategy='wrapped'" in result.errors[0]
    assert check_mapping({**base, "rft": False, "loss_type": "dft"}, kind="trl").ok
    for name in ("tiny_cpu.yaml", "llama31_8b_qlora_fa2.yaml", "llama31_8b_multi_gpu.yaml"):
        assert check_file(CONFIGS / "trl" / name, kind="trl").ok, name


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"learning_rat": 1e-4}, "learning_rat"),  # a key no argument class takes
        ({"num_processes": 2}, "does not start"),
        ({"dataset_streaming": True}, "dataset_streaming"),
        ({"warmup_ratio": 0.03}, "warmup_steps"),
    ],
)
def test_check_config_refuses_what_train_refuses(tiny_run, tmp_path, capsys, overrides, message):
    """check-config said OK for these and `rft-trl train` then exited 2."""
    config = write_config(tmp_path, tiny_run, **overrides)
    assert main(["check-config", str(config)]) != 0
    captured = capsys.readouterr()
    assert message in captured.out + captured.err
    assert main(["train", "--config", str(config)]) == 2


def test_shipped_llama3_training_template_masks_only_the_assistant_turn(tiny_tokenizer):
    # The GPU example configs point `chat_template_path` at it, for `assistant_only_loss`.
    import copy

    tokenizer = copy.deepcopy(tiny_tokenizer)
    tokenizer.chat_template = (CONFIGS / "trl" / "llama3_training.jinja").read_text()
    messages = [
        {"role": "user", "content": "find flights to Paris"},
        {"role": "assistant", "content": "Thought: search flights"},
    ]
    out = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids, mask = out["input_ids"], out["assistant_masks"]
    answer = tokenizer.decode([i for i, m in zip(ids, mask, strict=True) if m])
    prompt = tokenizer.decode([i for i, m in zip(ids, mask, strict=True) if not m])
    assert "Thought: search flights" in answer and "<|eot_id|>" in answer
    assert "Paris" in prompt and "Paris" not in answer


def test_an_unusable_default_shad_cache_is_named_unless_stored_labels_are_used(
    tiny_run, tmp_path, capsys, monkeypatch
):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("RFT_TRL_CACHE", str(blocker / "cache"))
    config = write_config(tmp_path, tiny_run, shad_cache_dir=None)
    assert main(["train", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "default cache folder" in err and "is a file, not a folder" in err
    # With stored labels the cache is never used, so it is not checked (the labels are).
    labelled = write_config(tmp_path, tiny_run, shad_cache_dir=None, shad_labels_path="nope")
    assert main(["train", "--config", str(labelled)]) == 2
    err = capsys.readouterr().err
    assert "default cache folder" not in err and "SHAD labels not found" in err
