"""`RFTPlugin`: `rft: true` in an Axolotl SFT config trains with SHAD labels and the RFT loss.

Thin by design: each hook returns a dotted path or a class and imports the heavy modules itself.
Every hook that sees the config returns None (changes nothing) unless `rft` is true, so the
plugin is inert where Axolotl loads it for every run (the `axolotl.plugins` entry point).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from axolotl.integrations.base import BasePlugin

from rft_trl.integrations.axolotl.checks import PLUGIN_PATH
from rft_trl.shad.labels_io import LABELS_DIR_NAME

# Axolotl's log filter shows INFO only from `axolotl.*` loggers (non-axolotl ones from WARNING up),
# and the SHAD summary belongs in the training log.
logger = logging.getLogger("axolotl.integrations.rft_trl")

_ARGS = "rft_trl.integrations.axolotl.args"


class RFTConfigConflictError(RuntimeError):
    """Another plugin or setting replaced the trainer or collator that RFT needs."""


def _enabled(cfg: Any) -> bool:
    return bool(cfg.get("rft"))


class RFTPlugin(BasePlugin):
    """SHAD + RFT for Axolotl (see rft_trl/integrations/axolotl/README.md)."""

    def get_input_args(self) -> str:
        """The pydantic model of the `rft_*`/`shad_*` keys (always merged: a schema, not behaviour)."""
        return f"{_ARGS}.RFTArgs"

    def get_training_args_mixin(self) -> str:
        """Optional `rft_*` fields on `trainer.args`, so they show in saved args and trackers."""
        return f"{_ARGS}.RFTTrainingArgsMixin"

    def get_training_args(self, cfg: Any) -> dict[str, Any] | None:
        """The RFT values for `trainer.args`, limited to fields the args class really has.

        Axolotl merges the mixin once, when `axolotl.core.training_args` is first imported; a
        process that imported it earlier has no such fields, and passing them would crash.
        """
        if not _enabled(cfg):
            return None
        import dataclasses

        from axolotl.core.training_args import AxolotlTrainingArguments

        from rft_trl.integrations.axolotl.args import options_from_cfg

        fields = {f.name for f in dataclasses.fields(AxolotlTrainingArguments)}
        return {k: v for k, v in options_from_cfg(cfg).items() if k in fields}

    def get_trainer_cls(self, cfg: Any) -> type | None:
        """`RFTAxolotlTrainer` when `rft: true`."""
        if not _enabled(cfg):
            return None
        from rft_trl.integrations.axolotl.trainer import RFTAxolotlTrainer

        return RFTAxolotlTrainer

    def get_collator_cls_and_kwargs(self, cfg: Any, is_eval: bool = False):
        """The `token_class`-carrying variant of the collator Axolotl would pick, or None."""
        if not _enabled(cfg):
            return None  # not (None, None): any non-None value wins Axolotl's collator selection
        from rft_trl.integrations.axolotl import collator

        # Eval batches are packed groups only under the multipack sampler, which Axolotl uses
        # for evaluation when `sample_packing` is on too (trainers/base.py); its collator looks at
        # `eval_sample_packing` alone, and would join a plain eval batch into one row: samples
        # whose groups RFT would pool.
        packed = (
            bool(cfg.sample_packing and cfg.eval_sample_packing)
            if is_eval
            else bool(cfg.sample_packing)
        )
        if not packed:
            return collator.RFTDataCollator, {}
        from axolotl.monkeypatch.multipack import SUPPORTED_MULTIPACK_MODEL_TYPES

        # Mirrors Axolotl's own choice (core/builders/causal.py, build_collator).
        attn = cfg.attn_implementation
        v2 = (
            attn == "flex_attention"
            or cfg.model_config_type in SUPPORTED_MULTIPACK_MODEL_TYPES
            or (cfg.model_config_type == "llama" and attn != "flash_attention_2")
        )
        if v2:
            return collator.RFTV2BatchSamplerDataCollator, {}
        return collator.RFTBatchSamplerDataCollator, {}

    def post_trainer_create(self, cfg: Any, trainer: Any) -> None:
        """Check nothing displaced RFT's trainer and collators, then label the data (SHAD)."""
        if not _enabled(cfg):
            return
        from rft_trl.integrations.axolotl import collator
        from rft_trl.integrations.axolotl.args import options_from_cfg
        from rft_trl.integrations.axolotl.trainer import RFTAxolotlTrainer

        if not isinstance(trainer, RFTAxolotlTrainer):
            raise RFTConfigConflictError(
                f"`rft: true`, but the trainer is {type(trainer).__name__}, not the RFT trainer: "
                "another plugin listed before the RFT plugin provides its own trainer, or Axolotl "
                "did not ask the RFT plugin for one (it does so only for plugins under `plugins:`). "
                f"Fix: list `{PLUGIN_PATH}` under `plugins:` and remove the other trainer-providing "
                "plugin, or set `rft: false`."
            )
        ours = (
            collator.RFTDataCollator,
            collator.RFTV2BatchSamplerDataCollator,
            collator.RFTBatchSamplerDataCollator,
        )
        collators = {"training": trainer.data_collator}
        if trainer.eval_dataset is not None:
            collators["eval"] = trainer.eval_data_collator
        for split, found in collators.items():
            if not isinstance(found, ours):
                raise RFTConfigConflictError(
                    f"`rft: true`, but the {split} collator is {type(found).__name__}, which would "
                    "drop `token_class`: another plugin provides its own collator. Fix: remove that "
                    "plugin, or set `rft: false`."
                )
        if cfg.batch_flattening is True:
            logger.warning(
                "rft: `batch_flattening` is ignored; RFT batches are padded. For padding-free "
                "batches use `sample_packing: true`."
            )
        labels_dir = Path(cfg.output_dir) / LABELS_DIR_NAME
        report = trainer.enable_rft(
            options_from_cfg(cfg),
            max_length=cfg.sequence_len,
            labels_dir=labels_dir,
            model_id=cfg.base_model,
        )
        if report is not None and trainer.args.process_index == 0:
            where = "" if cfg.shad_labels_path else f"; labels saved to {labels_dir}"
            logger.info("rft: SHAD token labels ready%s\n%s", where, report.summary())
