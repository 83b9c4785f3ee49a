"""`RFTAxolotlTrainer`: Axolotl's SFT trainer with the shared RFT loss and SHAD labels.

The loss, the per-step sample count and the metrics come from `RFTLossMixin` (shared with the
TRL trainer). This file adds only what is Axolotl-specific: keeping `token_class` through
Axolotl's column filter, and labelling Axolotl's own tokenized datasets once the model and its
adapter exist (`RFTPlugin.post_trainer_create` calls `enable_rft`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from axolotl.core.trainers.base import AxolotlTrainer
from datasets import Dataset

from rft_trl.collator import TOKEN_CLASS
from rft_trl.dataset_ops import NoResponseTokensError, check_alignment, require_response_mask
from rft_trl.loss import IGNORE_INDEX
from rft_trl.trainer import RFTLossMixin

if TYPE_CHECKING:
    from rft_trl.shad import ShadReport

# SHAD's score columns: kept in the cache and labels files, not needed for training.
SCORE_COLUMNS = ("shad_l_o", "shad_l_s")


class RFTNotEnabledError(RuntimeError):
    """The trainer was built without the RFT plugin's `post_trainer_create` having run."""


def _require_response_mask(dataset: Dataset, split: str) -> None:
    """`require_response_mask` with the fix in Axolotl's terms."""
    try:
        require_response_mask(dataset)
    except NoResponseTokensError as error:
        raise NoResponseTokensError(
            f"RFT needs a prompt/response split, but every token of the {split} data is in the "
            "loss, so there is no response for SHAD and RFT to weigh. Fix: use a dataset type that "
            "masks the prompt (e.g. `type: chat_template` with `roles_to_train: [assistant]`, or "
            "an instruction type such as alpaca) with `train_on_inputs: false`; or set "
            "`rft: false` for plain SFT."
        ) from error


class RFTAxolotlTrainer(RFTLossMixin, AxolotlTrainer):
    """`AxolotlTrainer` whose loss is the RFT loss; enabled by `RFTPlugin.post_trainer_create`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rft_options: dict[str, Any] | None = None
        self.rft_shad_report: ShadReport | None = None

    def _set_signature_columns_if_needed(self) -> None:
        # transformers drops dataset columns that are not `forward` arguments (when
        # remove_unused_columns is on, the default); `token_class` is a loss input.
        super()._set_signature_columns_if_needed()
        if self._signature_columns is not None and TOKEN_CLASS not in self._signature_columns:
            self._signature_columns.append(TOKEN_CLASS)

    # ----- set-up -----------------------------------------------------------------------------

    def enable_rft(
        self,
        options: Mapping[str, Any],
        *,
        max_length: int | None,
        labels_dir: str | Path | None = None,
        model_id: str | None = None,
    ) -> ShadReport | None:
        """Switch the RFT loss on and give every training/eval row a `token_class`.

        When SHAD runs, its labels are also written to `labels_dir` (main process), the same
        directory format as `rft-trl shad`: for `rft-trl inspect`, and for `shad_labels_path`
        in later runs on the same tokenized data. Returns SHAD's report, or None when every
        dataset already carried `token_class`.
        """
        self._init_rft(dict(options))
        self.rft_shad_report = self._rft_label_datasets(max_length, labels_dir, model_id)
        return self.rft_shad_report

    def _rft_label_datasets(
        self, max_length: int | None, labels_dir: str | Path | None, model_id: str | None
    ) -> ShadReport | None:
        """Add `token_class` (given, from `shad_labels_path`, or from SHAD) and check alignment."""
        train = self.train_dataset
        if not isinstance(train, Dataset):
            raise TypeError(
                "RFT needs a map-style training dataset (SHAD samples and scores it); Axolotl gave "
                f"{type(train).__name__}. Fix: do not stream the training data with `rft: true`."
            )
        evals = self._rft_eval_datasets()
        _require_response_mask(train, "training")
        for name, dataset in evals.items():
            _require_response_mask(dataset, f"eval '{name}'")
        unlabelled = {k: v for k, v in evals.items() if TOKEN_CLASS not in v.column_names}
        report = None
        # As RFTTrainer: `shad_labels_path` replaces labels the rows already carry (re-thresholded).
        labels_path = self.rft_options["shad_labels_path"]
        if TOKEN_CLASS not in train.column_names or unlabelled or labels_path:
            from rft_trl.shad import ShadSettings, label_dataset, save_result

            settings = ShadSettings.from_options(self.rft_options)
            result = label_dataset(
                self.model,
                train,
                settings=settings,
                training_args=self.args,
                tokenizer=self.processing_class,
                max_length=max_length,
                model_id=model_id,
                eval_datasets=unlabelled,
            )
            report = result.report
            if labels_dir is not None and not settings.labels_path and self.args.process_index == 0:
                save_result(
                    result,
                    labels_dir,
                    settings=settings,
                    tokenizer=self.processing_class,
                    model_id=model_id,
                    max_length=max_length,
                )
            if TOKEN_CLASS not in train.column_names or labels_path:
                train = result.dataset
            evals = {**evals, **result.eval_datasets}
        train = self._rft_training_columns(train)
        evals = {name: self._rft_training_columns(ds) for name, ds in evals.items()}
        self.train_dataset = train
        if isinstance(self.eval_dataset, dict):
            self.eval_dataset = evals
        elif self.eval_dataset is not None:
            self.eval_dataset = evals["eval"]
        return report

    def _rft_eval_datasets(self) -> dict[str, Dataset]:
        if self.eval_dataset is None:
            return {}
        evals = (
            self.eval_dataset
            if isinstance(self.eval_dataset, dict)
            else {"eval": self.eval_dataset}
        )
        for name, dataset in evals.items():
            if not isinstance(dataset, Dataset):
                raise TypeError(
                    f"RFT needs map-style eval datasets; eval '{name}' is {type(dataset).__name__}. "
                    "Fix: do not stream the eval data (SHAD samples and scores it as a whole)."
                )
        return evals

    @staticmethod
    def _rft_training_columns(dataset: Dataset) -> Dataset:
        """Drop SHAD's score columns and check `token_class` against `labels` on every row."""
        dataset = dataset.remove_columns([c for c in SCORE_COLUMNS if c in dataset.column_names])
        check_alignment(dataset)
        return dataset

    # ----- entry points -----------------------------------------------------------------------

    def _rft_require_enabled(self) -> None:
        if self.rft_options is None:
            raise RFTNotEnabledError(
                "RFTAxolotlTrainer was created but RFTPlugin.post_trainer_create never enabled it, "
                "so the data has no SHAD labels. Fix: list the plugin in the config "
                "(`plugins: [rft_trl.integrations.axolotl.RFTPlugin]`) and let Axolotl build the "
                "trainer, or call `trainer.enable_rft(options, max_length=...)` yourself."
            )

    def train(self, *args: Any, **kwargs: Any):
        self._rft_require_enabled()
        return super().train(*args, **kwargs)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.rft_options and self.rft_options["rft"] and model.training:
            self._rft_count_tokens(inputs)
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    def _rft_count_tokens(self, inputs: Mapping[str, Any]) -> None:
        """The token counts `AxolotlTrainer.compute_loss` keeps for its `tokens/*` throughput
        metrics (`include_tkps`, on by default); RFT's loss does not pass through that method."""
        if not getattr(self.args, "include_tkps", False):
            return
        import torch

        labels = inputs["labels"]
        counts = torch.stack(
            [(labels != IGNORE_INDEX).sum(), torch.tensor(labels.numel(), device=labels.device)]
        )
        if self.accelerator.num_processes > 1:
            counts = self.accelerator.reduce(counts, reduction="sum")
        tokens = getattr(self.state, "tokens", None) or {
            "trainable": torch.zeros(1),
            "total": torch.zeros(1),
        }
        tokens["trainable"] = tokens["trainable"] + counts[0].detach().cpu()
        tokens["total"] = tokens["total"] + counts[1].detach().cpu()
        self.state.tokens = tokens

    def evaluate(self, *args: Any, **kwargs: Any):
        self._rft_require_enabled()
        return super().evaluate(*args, **kwargs)
