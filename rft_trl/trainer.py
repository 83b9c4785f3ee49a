"""`RFTTrainer`: TRL's `SFTTrainer` with SHAD labels and the reasoning-highlighted loss.

The adapter is thin: TRL tokenizes and builds labels; this class keeps `token_class` aligned
through truncation and packing (`dataset_ops`), runs SHAD when labels are missing
(`rft_trl.shad`), collates `token_class` (`collator`), and computes the loss with
`rft_trl.loss`. With `rft=False` it is exactly `SFTTrainer`.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import torch
from datasets import Dataset
from trl import SFTConfig, SFTTrainer

from rft_trl.bnb_cpu import keep_4bit_weights_trainable
from rft_trl.collator import TOKEN_CLASS, TokenClassCollator
from rft_trl.config import RFTConfig
from rft_trl.dataset_ops import check_alignment, pack, require_response_mask, truncate
from rft_trl.loss import (
    STAT_NAMES,
    GroupTotals,
    batch_scope_coefficients,
    count_samples,
    group_totals,
    group_weights,
    rft_loss,
    sample_index,
    shift_targets,
    shift_token_class,
)
from rft_trl.modeling import (
    forward_token_logprobs_and_aux_loss,
    lm_head_parts,
    model_inputs,
    router_aux_loss_coef,
    unwrap,
)
from rft_trl.options import OPTIONS, RFTConfigError, validate_options

logger = logging.getLogger(__name__)


def rft_metrics(stats: torch.Tensor) -> dict[str, float]:
    """Logged metrics from summed stats (see `RFTLossOutput.stats`)."""
    s = dict(zip(STAT_NAMES, stats.tolist(), strict=True))
    tokens = s["boilerplate_tokens"] + s["reasoning_tokens"]
    metrics = {
        "reasoning_fraction": s["reasoning_tokens"] / tokens if tokens else 0.0,
        "reasoning_weight": s["reasoning_weight_sum"] / s["num_samples"]
        if s["num_samples"]
        else 0.0,
    }
    if s["boilerplate_tokens"]:
        metrics["boilerplate_loss"] = s["boilerplate_loss_sum"] / s["boilerplate_tokens"]
    if s["reasoning_tokens"]:
        metrics["reasoning_loss"] = s["reasoning_loss_sum"] / s["reasoning_tokens"]
    return metrics


def trl_args_conflicts(args: SFTConfig, *, compute_loss_func: Any = None) -> list[str]:
    """What in TRL's own arguments `rft=True` would silently replace or break, with the fix."""
    found = []
    # "chunked_nll" (older TRL's default) is the same loss as "nll", computed in chunks.
    if getattr(args, "loss_type", None) not in (None, "nll", "chunked_nll"):
        found.append(
            f"`loss_type={args.loss_type!r}`: RFT replaces the loss; set `loss_type='nll'` "
            "(the default) or `rft=False`"
        )
    if getattr(args, "label_smoothing_factor", 0.0):
        found.append(
            f"`label_smoothing_factor={args.label_smoothing_factor}`: RFT's loss has no label "
            "smoothing; set it to 0 or `rft=False`"
        )
    if compute_loss_func is not None:
        found.append("`compute_loss_func`: RFT replaces the loss; drop it or set `rft=False`")
    if getattr(args, "torch_compile", False):
        found.append(
            "`torch_compile=True`: TorchDynamo cannot trace RFT's per-token log-prob forward "
            "(it fails on the PEFT model the hook reads); set `torch_compile=False`"
        )
    strategy = getattr(args, "packing_strategy", None)
    if getattr(args, "packing", False) and strategy == "wrapped":
        found.append(
            "`packing_strategy='wrapped'`: it cuts samples across rows without marking where "
            "they start, so RFT cannot weigh each sample's groups; use `packing_strategy='bfd'`"
        )
    if getattr(args, "packing", False) and strategy == "bfd_split":
        found.append(
            "`packing_strategy='bfd_split'`: it keeps the tokens past `max_length` as pieces "
            "that become samples of their own, while RFT labels and weighs whole samples (it "
            "truncates to `max_length`, as `bfd` does); use `packing_strategy='bfd'`"
        )
    return found


def parallelism_conflicts(*, zero_stage: int | None, context_parallel: bool) -> list[str]:
    """Distributed set-ups RFT's per-token log-probs cannot run under, with the fix."""
    found = []
    if zero_stage == 3:
        found.append(
            "DeepSpeed ZeRO-3: the LM head is partitioned until its own forward, after the "
            "decoder output RFT reads; use ZeRO-2 (`plugin_configs/accelerate/deepspeed_zero2"
            ".yaml`) or FSDP (`plugin_configs/accelerate/fsdp.yaml`; `rft-trl examples` writes "
            "both)"
        )
    if context_parallel:
        found.append(
            "context parallelism (`cp_size > 1`): it splits each sequence across ranks and "
            "shards `labels` but not `token_class`; use data parallelism"
        )
    return found


def _refuse(conflicts: list[str]) -> None:
    if conflicts:
        raise RFTConfigError("`rft=True` cannot be combined with " + "; ".join(conflicts) + ".")


class RFTLossMixin:
    """The RFT loss for any `transformers.Trainer` whose batches carry `token_class`.

    Exact under gradient accumulation and data parallelism: `get_batch_samples` counts the
    samples of the whole optimizer step (all micro-batches, all processes), and each micro-batch
    returns its summed per-sample loss divided by that count, times the number of processes
    (DDP/FSDP/DeepSpeed average gradients across processes). Shared by the TRL and Axolotl
    trainers. The host class must call `_init_rft(options)`.
    """

    def _init_rft(self, options: dict[str, Any]) -> None:
        self.rft_options = options
        self._rft_eval_prefix = "eval_"
        self._rft_stats = {"train": None, "eval": None}
        self._rft_step_coefficients = None
        if not options["rft"]:
            return
        # Our loss is already normalised for the whole optimizer step.
        self.loss_is_scaled_for_ga = True
        # transformers < 5.18 decides the same from these two (see `training_step`).
        self.model_accepts_loss_kwargs = True
        lm_head_parts(self.model)  # fail early, with a clear message, on a model without an LM head
        deepspeed = getattr(self.accelerator.state, "deepspeed_plugin", None)
        parallelism = getattr(self.accelerator, "parallelism_config", None)
        _refuse(
            parallelism_conflicts(
                zero_stage=getattr(deepspeed, "zero_stage", None),
                context_parallel=bool(getattr(parallelism, "cp_enabled", False)),
            )
        )

    # ----- loss -------------------------------------------------------------------------------

    def _rft_token_losses(self, model, inputs):
        """Per-position loss, target class and sample id of one micro-batch, and the MoE
        load-balancing loss of the same forward (None for a model without one)."""
        labels = inputs["labels"]
        position_ids = inputs.get("position_ids")
        targets = shift_targets(labels, position_ids)
        token_class = shift_token_class(inputs[TOKEN_CLASS]).masked_fill(targets == -100, -100)
        logp, aux_loss = forward_token_logprobs_and_aux_loss(
            model, inputs, targets, chunk_size=self.rft_options["rft_logprob_chunk_size"]
        )
        samples = sample_index(labels.shape, position_ids, device=labels.device)
        return -logp, token_class, samples, aux_loss

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not self.rft_options["rft"]:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        mode = "train" if model.training else "eval"
        token_loss, token_class, samples, aux_loss = self._rft_token_losses(model, inputs)
        opts = self.rft_options
        weights = {
            "temperature": opts["rft_temperature"],
            "reasoning_weight": opts["rft_reasoning_weight"],
            "detach_weights": opts["rft_detach_weights"],
        }
        out = rft_loss(token_loss, token_class, samples, **weights)
        step_scaled = mode == "train" and num_items_in_batch is not None
        if opts["rft_group_scope"] == "batch":
            if step_scaled and self._rft_step_coefficients is not None:
                coefficients = self._rft_step_coefficients
            else:  # evaluation: the micro-batch is the batch (this rank's own; Trainer averages)
                coefficients = self._rft_coefficients(
                    [group_totals(token_loss.detach(), token_class)], weights, across_ranks=False
                )
            loss = self._rft_batch_scope_loss(token_loss, token_class, coefficients)
            # one weight for the whole batch: log that, not the per-sample weights
            out.reasoning_weight_sum = coefficients[3] * out.num_samples
        else:
            denominator = num_items_in_batch if step_scaled else out.num_samples
            loss = out.loss_sum / torch.as_tensor(denominator, device=out.loss_sum.device).clamp(
                min=1
            )
        if step_scaled:
            loss = loss * self.accelerator.num_processes
        if aux_loss is not None:  # only for a model whose router_aux_loss_coef is non-zero
            coef = router_aux_loss_coef(model)
            # As TRL adds it: a per-micro-batch mean that DDP averages across ranks; with the
            # step's sample count, Trainer leaves gradient accumulation to the loss.
            steps = self.current_gradient_accumulation_steps if step_scaled else 1
            loss = loss + coef * aux_loss.to(loss.device) / steps
        stats = out.stats()
        previous = self._rft_stats[mode]
        self._rft_stats[mode] = stats if previous is None else previous + stats
        if return_outputs:  # only when logits are asked for (compute_metrics): one extra forward
            with torch.no_grad(), keep_4bit_weights_trainable(model):
                outputs = model(**model_inputs(inputs))
            return loss, outputs
        return loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        if not self.rft_options["rft"] or not prediction_loss_only:
            return super().prediction_step(
                model, inputs, prediction_loss_only, ignore_keys=ignore_keys
            )
        # The loss alone needs no logits: skip the full-logits forward Trainer would ask for.
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self.compute_loss(model, inputs, return_outputs=False)
        return loss.detach(), None, None

    def _rft_coefficients(
        self, totals: list[GroupTotals], weights: dict[str, Any], *, across_ranks: bool = True
    ):
        """Batch-scope coefficients from the group totals of all micro-batches of a step (and
        of every rank when `across_ranks`)."""
        summed = torch.stack(
            [
                torch.stack(
                    [
                        t.boilerplate_loss_sum,
                        t.boilerplate_tokens,
                        t.reasoning_loss_sum,
                        t.reasoning_tokens,
                    ]
                )
                for t in totals
            ]
        ).sum(0)
        if across_ranks and self.accelerator.num_processes > 1:
            summed = self.accelerator.reduce(summed, reduction="sum")
        global_totals = GroupTotals(*summed.unbind())
        c_b, c_r, value = batch_scope_coefficients(global_totals, **weights)
        tokens = global_totals.boilerplate_tokens + global_totals.reasoning_tokens
        lb = global_totals.boilerplate_loss_sum / global_totals.boilerplate_tokens.clamp(min=1)
        lr = global_totals.reasoning_loss_sum / global_totals.reasoning_tokens.clamp(min=1)
        # Per-token constant so the summed value equals L even when the coefficients are not the
        # weights (non-detached softmax); it carries no gradient.
        offset = value - (
            c_b * global_totals.boilerplate_tokens * lb + c_r * global_totals.reasoning_tokens * lr
        )
        _, w_r = group_weights(
            lb,
            lr,
            global_totals.boilerplate_tokens > 0,
            global_totals.reasoning_tokens > 0,
            temperature=weights["temperature"],
            reasoning_weight=weights["reasoning_weight"],
            detach_weights=True,
        )
        return c_b, c_r, offset / tokens.clamp(min=1), w_r

    @staticmethod
    def _rft_batch_scope_loss(token_loss, token_class, coefficients) -> torch.Tensor:
        c_b, c_r, offset_per_token, _ = coefficients
        totals = group_totals(token_loss, token_class)
        tokens = totals.boilerplate_tokens + totals.reasoning_tokens
        return (
            c_b * totals.boilerplate_loss_sum
            + c_r * totals.reasoning_loss_sum
            + offset_per_token * tokens
        )

    # ----- global sample count per optimizer step ---------------------------------------------

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        batch_samples, num_items_in_batch = super().get_batch_samples(
            epoch_iterator, num_batches, device
        )
        if not self.rft_options["rft"] or not batch_samples:
            return batch_samples, num_items_in_batch
        local = torch.zeros((), dtype=torch.long, device=device)
        for batch in batch_samples:
            position_ids = batch.get("position_ids")
            targets = shift_targets(batch["labels"], position_ids)
            local = local + count_samples(
                targets, sample_index(targets.shape, position_ids, targets.device)
            ).to(device)
        if self.accelerator.num_processes > 1:
            local = self.accelerator.reduce(local, reduction="sum")
        if self.rft_options["rft_group_scope"] == "batch":
            self._rft_step_coefficients = self._rft_prepass(batch_samples)
        return batch_samples, local

    def _rft_prepass(self, batch_samples):
        """No-grad pass over the step's micro-batches: global group means before the weights."""
        opts = self.rft_options
        weights = {
            "temperature": opts["rft_temperature"],
            "reasoning_weight": opts["rft_reasoning_weight"],
            "detach_weights": opts["rft_detach_weights"],
        }
        model = self.model_wrapped
        # The mode `training_step` is about to set: after an evaluation (or on the first step,
        # from `from_pretrained`) the model is in eval mode, and dropout would differ.
        model.train()
        totals = []
        with torch.no_grad(), self.compute_loss_context_manager():
            for batch in batch_samples:
                batch = self._prepare_inputs(batch)
                token_loss, token_class, _, _ = self._rft_token_losses(model, batch)
                totals.append(group_totals(token_loss, token_class))
        return self._rft_coefficients(totals, weights)

    # ----- metrics ----------------------------------------------------------------------------

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):
        # Each eval set logs under its own prefix (`eval_<name>_` for a dict of eval sets), as
        # Trainer's own metrics do; `log` reads it.
        previous, self._rft_eval_prefix = self._rft_eval_prefix, f"{metric_key_prefix}_"
        self._rft_stats["eval"] = None  # not what a `predict()` since the last log left there
        try:
            return super().evaluate(
                eval_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix
            )
        finally:
            self._rft_eval_prefix = previous

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        if self.rft_options["rft"]:
            mode = "train" if self.model.training else "eval"
            stats = self._rft_stats[mode]
            # every process reaches log(); the reduce keeps them in step even when one saw no batch
            if stats is None:
                stats = torch.zeros(len(STAT_NAMES), device=self.args.device)
            if self.accelerator.num_processes > 1:
                stats = self.accelerator.reduce(stats.to(self.args.device), reduction="sum")
            prefix = self._rft_eval_prefix if mode == "eval" else ""
            if float(stats[-1]) > 0 or float(stats[1] + stats[3]) > 0:
                logs.update({prefix + key: value for key, value in rft_metrics(stats).items()})
            self._rft_stats[mode] = None
        super().log(logs, *args, **kwargs)


class RFTTrainer(RFTLossMixin, SFTTrainer):
    """`SFTTrainer` with SHAD token labels and the RFT loss (Ye et al. 2025, arXiv 2412.14780).

    Takes the same arguments as `SFTTrainer`; `args` should be an `RFTConfig`. Datasets may
    already carry `token_class` (labels from `rft-trl shad`), or `shad_labels_path` may point at
    such labels; otherwise SHAD labels the prepared training set when training starts.
    """

    _tag_names: ClassVar[list[str]] = ["trl", "sft", "rft"]

    def __init__(self, model, args: RFTConfig | SFTConfig | None = None, *rest, **kwargs):
        if rest:
            raise TypeError(
                "Pass RFTTrainer arguments after `args` by keyword (e.g. train_dataset=...)."
            )
        if args is None:
            name = (
                model if isinstance(model, str) else getattr(model.config, "_name_or_path", "model")
            )
            args = RFTConfig(output_dir=f"{str(name).split('/')[-1]}-RFT")
        elif not isinstance(args, SFTConfig):  # plain TrainingArguments, as SFTTrainer takes them
            values = args.to_dict()
            values["hub_token"] = args.hub_token  # to_dict hides it
            args = RFTConfig(**values)
        options = args.rft_options() if isinstance(args, RFTConfig) else _default_options()
        validate_options(options)  # again: fields may have changed since the config was built
        if not options["rft"]:
            self._tag_names = SFTTrainer._tag_names  # plain SFT: not tagged `rft`
            super().__init__(model, args, **kwargs)
            self._init_rft(options)
            return

        if not isinstance(model, str):
            lm_head_parts(
                model
            )  # before TRL touches it: a clear error for a model without an LM head
        _refuse(trl_args_conflicts(args, compute_loss_func=kwargs.get("compute_loss_func")))
        self._rft_peft_config = kwargs.get("peft_config")
        self._rft_labelled = False
        self.shad_report = None
        self.shad_labels_dir = None  # where SHAD's labels were saved, when it ran here
        user_collator = kwargs.pop("data_collator", None)
        packing, max_length = args.packing, args.max_length
        padding_free = args.padding_free or (
            packing and args.packing_strategy in {"bfd", "bfd_split"}
        )
        if padding_free and user_collator is not None:
            raise ValueError(
                "Passing a custom data collator is not supported when using padding-free "
                "(`padding_free=True`, or packing with `packing_strategy='bfd'`/'bfd_split'): "
                "RFT wraps TRL's padding-free collator to carry `token_class`. Fix: drop "
                "`data_collator`, or turn padding-free and packing off."
            )
        if (packing or args.eval_packing) and max_length is None:
            raise ValueError(  # SFTTrainer's own check, which the blanked fields below would skip
                "When packing is enabled, `max_length` can't be `None`. Fix: set `max_length` "
                "(e.g. 1024), or turn `packing`/`eval_packing` off."
            )
        if args.padding_free and not packing and max_length is not None:
            raise ValueError(
                "When `padding_free=True` without packing, `max_length` is not enforced. Either enable packing "
                "(e.g., `packing=True, packing_strategy='bfd'`), provide already truncated inputs, or set "
                "`max_length=None`."
            )
        # TRL only tokenizes and builds labels here; truncation and packing happen below/after
        # SHAD, on all per-token columns (TRL's versions cut only input_ids and labels).
        saved = {
            "packing": args.packing,
            "eval_packing": args.eval_packing,
            "max_length": args.max_length,
            "padding_free": args.padding_free,
            "shuffle_dataset": args.shuffle_dataset,
            "remove_unused_columns": args.remove_unused_columns,
        }
        args.packing, args.eval_packing, args.max_length, args.padding_free = (
            False,
            False,
            None,
            False,
        )
        args.shuffle_dataset = False
        try:
            super().__init__(model, args, data_collator=user_collator, **kwargs)
        finally:
            for key, value in saved.items():
                setattr(args, key, value)
        # Columns are selected by our collator; Trainer's column filter would drop `token_class`.
        args.remove_unused_columns = False
        self.padding_free = padding_free
        self._init_rft(options)

        from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

        base_collator = user_collator or DataCollatorForLanguageModeling(
            pad_token_id=self._rft_tokenizer().pad_token_id,
            padding_free=padding_free,
            pad_to_multiple_of=args.pad_to_multiple_of,
        )
        # A user's collator pads as the tokenizer says (DataCollatorForSeq2Seq); TRL's, right.
        side = getattr(self._rft_tokenizer(), "padding_side", "right") if user_collator else "right"
        self.data_collator = TokenClassCollator(
            base_collator, flattened=padding_free, padding_side=side
        )

        skip_prepare = bool((args.dataset_kwargs or {}).get("skip_prepare_dataset", False))
        self._rft_skip_prepare = skip_prepare
        self.train_dataset = self._rft_truncate(self.train_dataset, skip_prepare)
        if isinstance(self.eval_dataset, dict):
            self.eval_dataset = {
                k: self._rft_truncate(v, skip_prepare) for k, v in self.eval_dataset.items()
            }
        elif self.eval_dataset is not None:
            self.eval_dataset = self._rft_truncate(self.eval_dataset, skip_prepare)
        if TOKEN_CLASS in self.train_dataset.column_names or options["shad_labels_path"]:
            self.ensure_labels()

    # ----- data -------------------------------------------------------------------------------

    def _rft_tokenizer(self):
        """The tokenizer behind `processing_class` (a processor wraps one)."""
        return getattr(self.processing_class, "tokenizer", self.processing_class)

    def _rft_truncate(self, dataset: Dataset, skip_prepare: bool) -> Dataset:
        """Truncate all per-token columns like TRL would, and check there is a response to weigh."""
        if not isinstance(dataset, Dataset):
            raise TypeError(
                "RFTTrainer needs map-style `datasets.Dataset`s (SHAD samples and scores them), "
                f"got {type(dataset).__name__}. Fix: load without `streaming=True`, or convert "
                "with `Dataset.from_generator` / `Dataset.from_list`."
            )
        require_response_mask(dataset)
        if skip_prepare:
            return dataset
        return truncate(
            dataset, self.args.max_length, self.args.truncation_mode, self.args.dataset_num_proc
        )

    def ensure_labels(self) -> None:
        """Give every training/eval row a `token_class` (given, loaded, or from SHAD), then pack;
        nothing with `rft=False` or once done."""
        if not self.rft_options["rft"] or self._rft_labelled:
            return
        opts = self.rft_options
        evals = (
            self.eval_dataset
            if isinstance(self.eval_dataset, dict)
            else ({"eval": self.eval_dataset} if self.eval_dataset is not None else {})
        )
        unlabelled = {name: ds for name, ds in evals.items() if TOKEN_CLASS not in ds.column_names}
        train_given = TOKEN_CLASS in self.train_dataset.column_names
        if train_given and unlabelled and not opts["shad_labels_path"]:
            logger.warning(
                "The training rows carry `token_class` but eval set(s) %s do not: SHAD labels "
                "them with its own shuffle-tune, not the run that made the training labels. "
                "Give the eval rows a `token_class` column too to compare like with like.",
                list(unlabelled),
            )
        # With `shad_labels_path`, `label_dataset` attaches the stored labels (train and each
        # eval set's `eval-<name>` split), re-thresholded at `shad_threshold`, instead of SHAD.
        if opts["shad_labels_path"] or not train_given or unlabelled:
            from rft_trl.shad import ShadSettings, label_dataset

            settings = ShadSettings.from_options(opts)
            result = label_dataset(
                self.model,
                self.train_dataset,
                settings=settings,
                training_args=self.args,
                peft_config=self._rft_peft_config,
                tokenizer=self._rft_tokenizer(),
                max_length=self.args.max_length,
                eval_datasets=unlabelled,
            )
            self.shad_report = result.report
            if opts["shad_labels_path"] or not train_given:
                self.train_dataset = result.dataset
            if not opts["shad_labels_path"] and not train_given:
                self._rft_save_labels(result, settings)
            evals = {**evals, **result.eval_datasets}
        check_alignment(self.train_dataset)
        for ds in evals.values():
            check_alignment(ds)
        self.train_dataset = self._rft_pack(self.train_dataset, self.args.packing)
        eval_packing = (
            self.args.packing if self.args.eval_packing is None else self.args.eval_packing
        )
        evals = {k: self._rft_pack(v, eval_packing) for k, v in evals.items()}
        if isinstance(self.eval_dataset, dict):
            self.eval_dataset = evals
        elif self.eval_dataset is not None:
            self.eval_dataset = evals["eval"]
        self._rft_labelled = True

    def _rft_save_labels(self, result, settings) -> None:
        """Write the labels SHAD made to `<output_dir>/_shad_labels` (main process), as the
        Axolotl plugin does: for `rft-trl inspect`, and `shad_labels_path` in later runs."""
        from pathlib import Path

        from rft_trl.shad import save_result
        from rft_trl.shad.labels_io import LABELS_DIR_NAME

        self.shad_labels_dir = Path(self.args.output_dir) / LABELS_DIR_NAME
        if self.args.process_index == 0:
            name = getattr(unwrap(self.model).config, "_name_or_path", None)
            save_result(
                result,
                self.shad_labels_dir,
                settings=settings,
                tokenizer=self._rft_tokenizer(),
                model_id=name or None,
                max_length=self.args.max_length,
            )

    def _rft_pack(self, dataset: Dataset, packing: bool) -> Dataset:
        args = self.args
        # `skip_prepare_dataset` leaves the rows as given, unpacked, as in SFTTrainer
        if packing and not self._rft_skip_prepare:
            dataset = pack(
                dataset,
                args.max_length,
                args.packing_strategy,
                seed=args.seed if args.shuffle_dataset else None,
                num_proc=args.dataset_num_proc,
            )
        else:
            keep = [c for c in ("input_ids", "labels", TOKEN_CLASS) if c in dataset.column_names]
            dataset = dataset.select_columns(keep)
        if args.shuffle_dataset:
            dataset = dataset.shuffle(seed=args.seed)
        return dataset

    # ----- entry points -----------------------------------------------------------------------

    def train(self, *args, **kwargs):
        self.ensure_labels()
        return super().train(*args, **kwargs)

    def predict(self, test_dataset, ignore_keys=None, metric_key_prefix: str = "test"):
        if self.rft_options["rft"]:
            self.ensure_labels()
            if TOKEN_CLASS not in (getattr(test_dataset, "column_names", None) or ()):
                raise ValueError(
                    "RFTTrainer.predict() needs rows with SHAD labels (`token_class`): pass "
                    "`trainer.eval_dataset` (labelled when the trainer labels), or rows from "
                    "`rft_trl.label_dataset`."
                )
        return super().predict(
            test_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix
        )

    def get_train_dataloader(self):
        self.ensure_labels()
        return super().get_train_dataloader()

    def get_eval_dataloader(self, eval_dataset=None):
        self.ensure_labels()
        return super().get_eval_dataloader(eval_dataset)

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):
        if self.rft_options["rft"]:
            if eval_dataset is not None and not isinstance(eval_dataset, str):
                raise ValueError(
                    "RFTTrainer.evaluate() evaluates the eval datasets given at construction (they need SHAD "
                    "labels); pass new ones as `eval_dataset=` when creating the trainer."
                )
            self.ensure_labels()
        return super().evaluate(
            eval_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix
        )


def _default_options() -> dict[str, Any]:
    return {name: option.default for name, option in OPTIONS.items()}
