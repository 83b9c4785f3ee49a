"""The one table of `rft_*` and `shad_*` keys: names, defaults, valid ranges, help and validation.

`RFTConfig` (TRL), the Axolotl pydantic args and `docs/configuration.md` are all derived from
`OPTIONS`, so a key is defined exactly once.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

GROUP_SCOPES = ("sample", "batch")


class RFTConfigError(ValueError):
    """An invalid `rft_*`/`shad_*` value: the message names the key, the value and the fix."""


def _positive(value: Any) -> bool:
    return _is_number(value) and value > 0 and math.isfinite(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Option:
    """One configuration key: its type, default, the valid range in words, and a predicate for it."""

    name: str
    type: type
    default: Any
    help: str
    valid: str
    check: Callable[[Any], bool]
    nullable: bool = False

    def validate(self, value: Any) -> None:
        """Raise `RFTConfigError` when `value` is not valid for this key."""
        if value is None and self.nullable:
            return
        type_ok = {
            bool: lambda v: isinstance(v, bool),
            int: _is_int,
            float: _is_number,
            str: lambda v: isinstance(v, str),
        }[self.type](value)
        if not type_ok or not self.check(value):
            null = " or null" if self.nullable else ""
            raise RFTConfigError(
                f"Invalid value for `{self.name}`: {value!r}. Valid: {self.valid}{null}. "
                f"Fix: set `{self.name}` to a valid value, or remove it to use the default "
                f"({self.default!r}). ({self.help})"
            )


OPTIONS: dict[str, Option] = {
    option.name: option
    for option in (
        Option(
            "rft",
            bool,
            True,
            "Switch RFT on: label tokens with SHAD (unless labels are given) and train with the "
            "reasoning-highlighted loss. `false` trains exactly like plain SFT. The default is "
            "for RFTConfig and `rft-trl train`; in an Axolotl config RFT is off unless set.",
            "true or false",
            lambda v: True,
        ),
        Option(
            "rft_temperature",
            float,
            3.0,
            "Temperature tau of the softmax over the per-sample group losses [L_b, L_r]/tau. "
            "The paper reports robust results for 1/tau in [0.2, 0.5].",
            "a number > 0",
            _positive,
        ),
        Option(
            "rft_group_scope",
            str,
            "sample",
            "Where the boilerplate/reasoning group means are taken: per sample (the paper), or "
            "pooled over the optimizer step's global batch (`batch`, costs one extra no-grad "
            "forward pass per step).",
            "one of " + ", ".join(repr(s) for s in GROUP_SCOPES),
            lambda v: v in GROUP_SCOPES,
        ),
        Option(
            "rft_reasoning_weight",
            float,
            None,
            "Fixed reasoning weight alpha instead of the softmax (the paper's SHAD + alpha-FT "
            "ablation): L = (1 - alpha) * L_b + alpha * L_r.",
            "a number strictly between 0 and 1",
            lambda v: 0 < v < 1,
            nullable=True,
        ),
        Option(
            "rft_detach_weights",
            bool,
            True,
            "Stop the gradient through the group weights (the paper's default).",
            "true or false",
            lambda v: True,
        ),
        Option(
            "rft_logprob_chunk_size",
            int,
            None,
            "Positions per chunk when computing per-token log-probs without full logits. Null "
            "picks a chunk of about 256 MiB of fp32 logits.",
            "an integer >= 1",
            lambda v: v >= 1,
            nullable=True,
        ),
        Option(
            "shad_labels_path",
            str,
            None,
            "Use token labels written earlier by `rft-trl shad` instead of running SHAD.",
            "a path to a labels directory written by `rft-trl shad` or saved by a training run "
            "(`<output_dir>/_shad_labels`)",
            lambda v: len(v) > 0,
            nullable=True,
        ),
        Option(
            "shad_sample_ratio",
            float,
            0.01,
            "Fraction of training samples shuffled and used for the shuffle-tune, in whole "
            "optimizer steps of the global batch (rounded up, or down to fit the set), so the "
            "labels depend on the global batch, not on how it is split across processes; a set "
            "smaller than one step is used whole.",
            "a number in (0, 1]",
            lambda v: 0 < v <= 1,
        ),
        Option(
            "shad_min_steps",
            int,
            50,
            "Floor on shuffle-tune optimizer steps; sets the minimum number of sampled samples "
            "(steps x effective batch). The number of steps matters more than the ratio.",
            "an integer >= 1",
            lambda v: v >= 1,
        ),
        Option(
            "shad_num_epochs",
            float,
            1.0,
            "Epochs of shuffle-tuning over the shuffled subset.",
            "a number > 0",
            _positive,
        ),
        Option(
            "shad_learning_rate",
            float,
            None,
            "Shuffle-tune learning rate. Null uses the run's learning rate.",
            "a number > 0",
            _positive,
            nullable=True,
        ),
        Option(
            "shad_max_steps",
            int,
            None,
            "Hard cap on shuffle-tune optimizer steps.",
            "an integer >= 1",
            lambda v: v >= 1,
            nullable=True,
        ),
        Option(
            "shad_threshold",
            float,
            0.0,
            "Loss-difference threshold: LD = l_shuffled - l_original <= threshold is boilerplate, "
            "above it reasoning.",
            "a finite number",
            lambda v: math.isfinite(v),
        ),
        Option(
            "shad_seed",
            int,
            42,
            "Seed of SHAD's sampling and shuffling.",
            "an integer in [0, 2**32)",
            lambda v: 0 <= v < 2**32,  # numpy's seed range (the shuffle-tune's Trainer seeds it)
        ),
        Option(
            "shad_cache_dir",
            str,
            None,
            "Where SHAD labels are cached. Null uses $RFT_TRL_CACHE, else "
            "$XDG_CACHE_HOME/rft-trl (~/.cache/rft-trl). Runs may share it: a run that needs "
            "an entry another run is computing waits for it, then reuses it.",
            "a directory path",
            lambda v: len(v) > 0,
            nullable=True,
        ),
    )
}


def validate_options(values: Mapping[str, Any]) -> None:
    """Validate every known key present in `values`; raise `RFTConfigError` on the first bad one."""
    for name, option in OPTIONS.items():
        if name in values:
            option.validate(values[name])
    alpha = values.get("rft_reasoning_weight")
    detach = values.get("rft_detach_weights", True)
    if alpha is not None and detach is False:
        raise RFTConfigError(
            "`rft_detach_weights: false` has no effect with a fixed `rft_reasoning_weight` "
            f"({alpha!r}): fixed weights carry no gradient. Fix: remove one of the two keys."
        )


def unknown_keys(values: Mapping[str, Any]) -> list[str]:
    """Keys that look like ours (`rft_*`/`shad_*`) but are not in the table: likely typos."""
    return sorted(
        key
        for key in values
        if (key.startswith(("rft_", "shad_")) or key == "rft") and key not in OPTIONS
    )


def unknown_keys_message(typos: list[str], source: str) -> str:
    """The error for `typos` found in `source`: each with its likely intended key, then the fix."""
    named = []
    for key in typos:
        close = difflib.get_close_matches(key, list(OPTIONS), n=1, cutoff=0.75)
        named.append(f"{key} (did you mean {close[0]}?)" if close else key)
    return (
        f"Unknown RFT key(s) in {source}: {', '.join(named)}. The RFT keys are "
        f"{', '.join(OPTIONS)}. Fix: correct the spelling or remove the key(s)."
    )


def options_markdown() -> str:
    """The configuration reference table, generated from `OPTIONS` (docs/configuration.md)."""
    lines = [
        "| key | default | valid values | meaning |",
        "| --- | --- | --- | --- |",
    ]
    for option in OPTIONS.values():
        default = "null" if option.default is None else repr(option.default).lower()
        if isinstance(option.default, str):
            default = f"`{option.default}`"
        valid = option.valid + (" or null" if option.nullable else "")
        lines.append(f"| `{option.name}` | {default} | {valid} | {option.help} |")
    return "\n".join(lines) + "\n"
