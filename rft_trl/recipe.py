"""Read a `trl sft --config` YAML (plus `rft_*`/`shad_*` keys) and load what it names.

Shared by `rft-trl train` and `rft-trl shad`, so both see the same model, data and settings.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rft_trl.options import RFTConfigError, unknown_keys, unknown_keys_message


class RecipeError(ValueError):
    """A config or dataset problem, reported without a traceback by the CLI."""


@dataclass
class Recipe:
    """The parsed config: TRL's script/model/dataset-mixture args and an `RFTConfig`."""

    script_args: Any
    training_args: Any
    model_args: Any
    dataset_args: Any
    config_path: str


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """The YAML mapping at `path`, with a clear error when it is missing or not a mapping."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(
            f"Config file not found: {path}. Pass the YAML you would give `trl sft --config`."
        )
    try:
        with path.open() as handle:
            data = yaml.safe_load(handle) or {}
    except yaml.YAMLError as error:
        raise RecipeError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise RecipeError(
            f"{path} must hold a YAML mapping of config keys, got {type(data).__name__}."
        )
    return data


def parse_recipe(config_path: str, overrides: list[str] | None = None) -> Recipe:
    """Parse `config_path` (and `--key value` overrides) with TRL's own parser plus RFTConfig."""
    from trl import DatasetMixtureConfig, ModelConfig, ScriptArguments, TrlParser

    from rft_trl.config import RFTConfig

    raw = read_yaml(config_path)
    if "base_model" in raw and not raw.get("model_name_or_path"):
        raise RecipeError(
            f"{config_path} looks like an Axolotl config (`base_model`): `rft-trl train` and "
            "`rft-trl shad` take the YAML `trl sft` takes. Fix: train it with `axolotl train` and "
            "the RFT plugin (it labels with SHAD and saves the labels to "
            "`<output_dir>/_shad_labels`), or write a TRL config."
        )
    typos = unknown_keys(raw)
    if typos:
        raise RFTConfigError(unknown_keys_message(typos, str(config_path)))
    parser = TrlParser((ScriptArguments, RFTConfig, ModelConfig, DatasetMixtureConfig))
    argv = ["--config", str(config_path), *(overrides or [])]
    try:
        *parsed, from_config, from_command_line = parser.parse_args_and_config(
            args=argv, return_remaining_strings=True, separate_remaining_strings=True
        )
    except RFTConfigError:
        raise
    except (ValueError, TypeError) as error:  # a wrong value type, an invalid setting, or a
        # `datasets:` entry with keys TRL's DatasetConfig does not take
        raise RecipeError(f"{config_path}: {error}") from None
    except SystemExit:  # argparse has printed which value it could not read
        raise RecipeError(f"{config_path}: a value could not be parsed (see above).") from None
    _refuse_leftovers(config_path, from_config, from_command_line)
    script_args, training_args, model_args, dataset_args = parsed
    if script_args.dataset_streaming:
        raise RecipeError(
            f"{config_path} sets `dataset_streaming: true`: SHAD samples and scores the training "
            "set as a whole, so it needs it loaded. Fix: remove `dataset_streaming`."
        )
    if not model_args.model_name_or_path:
        raise RecipeError(
            f"{config_path} has no `model_name_or_path`. Fix: set it to a local model folder or "
            "a hub id."
        )
    model_init_kwargs = {
        "revision": model_args.model_revision,
        "trust_remote_code": training_args.trust_remote_code,
        "attn_implementation": model_args.attn_implementation,
        "dtype": model_args.dtype,
    }
    model_init_kwargs.update(training_args.model_init_kwargs or {})
    training_args.model_init_kwargs = model_init_kwargs
    return Recipe(script_args, training_args, model_args, dataset_args, str(config_path))


def check_paths(recipe: Recipe) -> None:
    """Paths on this machine that would fail only after the model has loaded (or as a hub
    lookup), named before any work. Not part of parsing: `check-config` checks a config that
    may be meant for another machine."""
    config_path, training_args = recipe.config_path, recipe.training_args
    model = recipe.model_args.model_name_or_path
    model_path = Path(model).expanduser()
    if model.startswith((".", "/", "~")) and not model_path.exists():
        raise RecipeError(
            f"Model path not found: {model_path} (`model_name_or_path` in {config_path}). Fix: "
            "correct the path to a local model folder, or give a hub id `owner/name`."
        )
    for key in ("output_dir", "shad_cache_dir"):
        value = getattr(training_args, key, None)
        problem = value and _unwritable_folder(Path(value).expanduser())
        if problem:
            raise RecipeError(
                f"`{key}: {value}` ({config_path}) cannot be used: {problem}. Fix: point `{key}` "
                "at a writable folder (it is created when missing)."
            )
    uses_default_cache = not getattr(training_args, "shad_cache_dir", None) and not getattr(
        training_args, "shad_labels_path", None
    )
    if uses_default_cache and getattr(training_args, "rft", False):
        from rft_trl.cache_root import default_cache_dir

        try:
            cache = default_cache_dir()
        except RuntimeError as error:  # Path.home() without a home directory
            raise RecipeError(
                f"SHAD has no default cache folder here ({error}). Fix: set `shad_cache_dir` "
                "(or RFT_TRL_CACHE) to a writable folder."
            ) from error
        problem = _unwritable_folder(cache)
        if problem:
            raise RecipeError(
                f"SHAD's default cache folder {cache} cannot be used: {problem}. Fix: set "
                "`shad_cache_dir` (or RFT_TRL_CACHE) to a writable folder."
            )


def _unwritable_folder(path: Path) -> str | None:
    """Why a folder that is created when missing cannot be written there, or None."""
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return None


def _refuse_leftovers(config_path: str, from_config: list[str], from_command_line: list[str]):
    """Keys no argument class takes: `trl sft` hands them to `accelerate launch`; we do not launch."""
    keys = [s for s in from_config if s.startswith("--")]
    if keys or from_command_line:
        where = (
            f"in {config_path}: {', '.join(k[2:] for k in keys)}" if keys else "on the command line"
        )
        extra = f" ({' '.join(from_command_line)})" if from_command_line else ""
        renamed = (
            " (transformers 5 replaced `warmup_ratio` with `warmup_steps`, which takes a ratio "
            "below 1)"
            if "--warmup_ratio" in keys
            else ""
        )
        raise RecipeError(
            f"Unknown key(s) {where}{extra}: no TRL script, training, model or dataset argument "
            f"has that name. Fix: correct the spelling{renamed}, or remove launcher settings "
            "(`num_processes`, `accelerate_config`, ...): `rft-trl train` does not start "
            "processes, so run `accelerate launch --config_file ACCELERATE.yaml -m rft_trl.cli "
            "train --config CONFIG.yaml` or `torchrun` instead."
        )


def load_datasets(recipe: Recipe):
    """The DatasetDict the config names (`dataset_name`, or a `datasets:` mixture)."""
    return load_dataset_dict(recipe.script_args, recipe.dataset_args, recipe.config_path)


def load_dataset_dict(script_args, dataset_args, config_path: str):
    """The DatasetDict of `dataset_name` or a `datasets:` mixture; one loader for `rft-trl
    train` and `rft-trl shad`, whose errors name the config and the cause."""
    from trl import get_dataset

    if dataset_args.datasets:
        try:
            return get_dataset(dataset_args)
        except Exception as error:  # any loader failure: name the config and the cause
            raise RecipeError(
                f"Cannot load the `datasets:` mixture of {config_path}: "
                f"{type(error).__name__}: {error}"
            ) from None
    if not script_args.dataset_name:
        raise RecipeError(
            f"{config_path} names no dataset: set `dataset_name` (a local path works)."
        )
    from rft_trl.shad.data_files import load_local_or_hub

    name = script_args.dataset_name
    try:
        return load_local_or_hub(name, script_args.dataset_config)
    except Exception as error:  # a missing, malformed or empty file: name it and the cause
        cause = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        if error.__cause__ is not None:  # datasets wraps the parser's error
            cause += f" ({type(error.__cause__).__name__}: {error.__cause__})"
        raise RecipeError(f"Cannot load dataset {name!r} ({config_path}): {cause}") from None


def train_and_eval(recipe: Recipe):
    """The training split and, when evaluation is on, the test split."""
    data = load_datasets(recipe)
    split = recipe.script_args.dataset_train_split
    if split not in data:
        raise RecipeError(
            f"Split {split!r} not in the dataset (splits: {', '.join(data)}). Set `dataset_train_split`."
        )
    eval_dataset = None
    if recipe.training_args.eval_strategy != "no":
        test = recipe.script_args.dataset_test_split
        if test not in data:
            raise RecipeError(
                f"Evaluation is on but split {test!r} is missing (splits: {', '.join(data)}). "
                "Set `dataset_test_split` or `eval_strategy: no`."
            )
        eval_dataset = data[test]
    return data[split], eval_dataset
