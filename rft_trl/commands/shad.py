"""`rft-trl shad --config CONFIG.yaml [--output DIR]`: label a training set ahead of time with SHAD.

Reads the same YAML as `trl sft --config` (model, dataset, max_length, PEFT keys and the
`shad_*` keys), prepares the rows exactly as `RFTTrainer` does (by building one: TRL tokenizes,
rows stay unpacked and unshuffled until labelled), runs SHAD and writes a labels directory for
`shad_labels_path` and `rft-trl inspect`.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

from rft_trl.options import RFTConfigError


class ConfigError(ValueError):
    """The YAML or what it points to (model, dataset) cannot be used."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `rft-trl shad`."""
    parser.add_argument(
        "--config",
        required=True,
        metavar="CONFIG.yaml",
        help="The training YAML, as for `trl sft --config` (model_name_or_path, dataset_name, max_length, "
        "use_peft/lora_*, shad_* keys).",
    )
    parser.add_argument(
        "--output",
        metavar="DIR",
        help="Where to write the labels (default: <output_dir>/_shad_labels; the `_` keeps them out "
        "of a hub upload of output_dir). Point `shad_labels_path` here.",
    )
    # Any other `--key value` overrides the YAML, as for `rft-trl train` (collected by `cli.main`),
    # so the labels are made for the rows the overridden training run will see.
    parser.set_defaults(overrides=[])
    parser.epilog = "Any other `--key value` pair overrides the YAML, as for `rft-trl train`."


def run(args: argparse.Namespace) -> int:
    """Run SHAD from the YAML; expected errors print one paragraph and return 2."""
    # Imported here, not at module level: `rft-trl --help` would pay for torch and transformers.
    from rft_trl import dist
    from rft_trl.modeling import UnsupportedModelError
    from rft_trl.shad.errors import ShadCacheError, ShadDataError, ShadLabelsError

    expected = (
        ConfigError,
        RFTConfigError,
        ShadCacheError,
        ShadDataError,
        ShadLabelsError,
        UnsupportedModelError,
    )
    try:
        status = _run(args)
    except expected as error:
        print(f"rft-trl shad: error: {error}", file=sys.stderr)
        return 2
    dist.shut_down()
    return status


def parse_config(path: str, overrides: list[str] | None = None) -> tuple[Any, Any, Any, Any]:
    """(script_args, RFTConfig, ModelConfig, DatasetMixtureConfig) from a `trl sft`-style YAML
    and `--key value` overrides, parsed as `rft-trl train` parses them (same checks and errors)."""
    from rft_trl.recipe import RecipeError, check_paths, parse_recipe

    try:
        recipe = parse_recipe(path, overrides)
        check_paths(recipe)
    except RecipeError as error:
        raise ConfigError(str(error)) from None
    return recipe.script_args, recipe.training_args, recipe.model_args, recipe.dataset_args


def load_train_eval(script_args, training_args, dataset_args, config_path: str = "the config"):
    """The training split and, when the YAML evaluates, the test split."""
    from rft_trl.recipe import RecipeError, load_dataset_dict

    try:  # the loader `rft-trl train` uses
        data = load_dataset_dict(script_args, dataset_args, config_path)
    except RecipeError as error:
        raise ConfigError(str(error)) from None
    split = script_args.dataset_train_split
    if split not in data:
        raise ConfigError(
            f"The dataset has no split {split!r} (it has {sorted(data)}). Fix: set `dataset_train_split`."
        )
    test = script_args.dataset_test_split
    evaluates = (
        str(getattr(training_args.eval_strategy, "value", training_args.eval_strategy)) != "no"
    )
    return data[split], (data[test] if evaluates and test in data else None)


def _run(args: argparse.Namespace) -> int:
    from trl import get_peft_config, get_quantization_config

    from rft_trl import dist
    from rft_trl.shad import label_dataset, save_result
    from rft_trl.shad.labels_io import LABELS_DIR_NAME, check_labels_target
    from rft_trl.shad.settings import ShadSettings
    from rft_trl.trainer import RFTTrainer

    started = time.perf_counter()
    script_args, training_args, model_args, dataset_args = parse_config(args.config, args.overrides)
    output = Path(args.output or Path(training_args.output_dir) / LABELS_DIR_NAME)
    check_labels_target(output)  # before the model loads and SHAD runs, not after
    settings = dataclasses.replace(ShadSettings.from_options(training_args), labels_path=None)
    train, evaluation = load_train_eval(script_args, training_args, dataset_args, args.config)

    # The rows training will label: RFTTrainer prepares them (TRL tokenizes; unpacked, unshuffled,
    # truncated as it truncates) and packs only after attaching labels, which `train` would do.
    training_args.rft = True
    training_args.shad_labels_path = None
    training_args.report_to = []
    peft_config = get_peft_config(model_args)
    try:
        trainer = RFTTrainer(
            model=model_args.model_name_or_path,
            args=training_args,
            train_dataset=train,
            eval_dataset=evaluation,
            quantization_config=get_quantization_config(model_args),
            peft_config=peft_config,
        )
    except (OSError, ValueError, RuntimeError) as error:
        raise ConfigError(
            f"Could not prepare the model and data as RFTTrainer would: {error}"
        ) from None
    prepared = time.perf_counter() - started
    # As RFTTrainer names the model in the cache key (its path), so that `rft-trl shad` and
    # `rft-trl train` on one config share the entry; the revision is in the key anyway (the
    # config's commit hash and the weights fingerprint).
    model_id = model_args.model_name_or_path
    result = label_dataset(
        trainer.model,
        trainer.train_dataset,
        settings,
        training_args=trainer.args,
        peft_config=peft_config,
        tokenizer=trainer.processing_class,
        max_length=training_args.max_length,
        model_id=model_id,
        eval_datasets={"eval": trainer.eval_dataset} if trainer.eval_dataset is not None else None,
    )
    result.report.seconds = {"load+tokenize": prepared, **result.report.seconds}
    if dist.is_main():
        written = save_result(
            result,
            output,
            settings=settings,
            tokenizer=trainer.processing_class,
            model_id=model_id,
            max_length=training_args.max_length,
            extra={"config": str(Path(args.config).resolve())},
        )
        print(result.report.summary())
        print(f"\nLabels written to {written}.")
        print(
            f"Train with `shad_labels_path: {written}`; view them with `rft-trl inspect {written}`."
        )
    return 0  # the other ranks wait for rank 0's files in run()'s dist.shut_down()
