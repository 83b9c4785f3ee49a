"""`rft-trl train --config CONFIG.yaml`: `trl sft` with SHAD + RFT (`rft: true` in the YAML)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from concurrent.futures import Future

    from datasets import Dataset

    from rft_trl.recipe import Recipe


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", required=True, help="The YAML `trl sft --config` takes, plus rft_*/shad_* keys."
    )
    # Any other `--key value` overrides the YAML, as with `trl sft` (collected by `cli.main`).
    parser.set_defaults(overrides=[])
    parser.epilog = "Any other `--key value` pair overrides the YAML, as with `trl sft`."


def run(args: argparse.Namespace) -> int:
    from rft_trl.options import RFTConfigError
    from rft_trl.recipe import RecipeError, check_paths, parse_recipe, train_and_eval

    try:
        recipe = parse_recipe(args.config, args.overrides)
        check_paths(recipe)
        train_dataset, eval_dataset = train_and_eval(recipe)
    except (RecipeError, RFTConfigError) as error:
        print(f"rft-trl train: {error}", file=sys.stderr)
        return 2

    from rft_trl import dist
    from rft_trl.collator import TokenClassAlignmentError
    from rft_trl.dataset_ops import NoResponseTokensError
    from rft_trl.modeling import UnsupportedModelError
    from rft_trl.shad import ShadCacheError, ShadDataError, ShadLabelsError

    refused = (
        RFTConfigError,
        ShadCacheError,
        ShadDataError,
        ShadLabelsError,
        UnsupportedModelError,
        NoResponseTokensError,
        TokenClassAlignmentError,
    )

    # No `finally`: a rank that failed would wait in shut_down's barrier while the others are
    # still in a training collective; torchrun tears the ranks down after an error instead.
    try:
        upload = _train(recipe, train_dataset, eval_dataset)
    except refused as error:
        # refused settings, stored labels that do not fit, data without responses: no traceback
        print(f"rft-trl train: {error}", file=sys.stderr)
        return 2
    dist.shut_down()
    if upload is not None:
        upload.result()  # rank 0 waits for its upload here, not the other ranks in a barrier
    return 0


def _train(recipe: Recipe, train_dataset: Dataset, eval_dataset: Dataset | None) -> Future | None:
    """Train, save and push as `trl sft` does; the trainer (and any DDP model) dies on return.

    Returns the hub upload still running on rank 0 (`push_to_hub: true`), else None.
    """
    from trl import get_peft_config, get_quantization_config

    from rft_trl.trainer import RFTTrainer

    training_args = recipe.training_args
    trainer = RFTTrainer(
        model=recipe.model_args.model_name_or_path,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        quantization_config=get_quantization_config(recipe.model_args),
        peft_config=get_peft_config(recipe.model_args),
    )
    if trainer.rft_options["rft"]:
        trainer.ensure_labels()  # SHAD (or the stored labels) now: its health check prints first
        if trainer.shad_report is not None:
            trainer.accelerator.print(trainer.shad_report.summary())
        if trainer.shad_labels_dir is not None:
            where = trainer.shad_labels_dir
            trainer.accelerator.print(f"Labels saved to {where} (view: `rft-trl inspect {where}`).")
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    if not training_args.push_to_hub:
        trainer.save_model(training_args.output_dir)
        trainer.accelerator.print(f"Model saved to {training_args.output_dir}.")
        return None
    # push_to_hub saves to output_dir itself; a separate save_model would upload synchronously
    # ("Model save") while the other ranks wait in shut_down's barrier.
    upload = trainer.push_to_hub(dataset_name=recipe.script_args.dataset_name, blocking=False)
    trainer.accelerator.print(f"Model saved to {training_args.output_dir}; uploading to the hub.")
    return upload
