"""Whole-config checks of an Axolotl YAML for RFT, shared by the plugin's schema and `check-config`.

Pure functions over the raw config mapping (no Axolotl, no pydantic), so `rft-trl check-config`
runs them in any environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rft_trl.options import OPTIONS, RFTConfigError, unknown_keys, unknown_keys_message

PLUGIN_PATH = "rft_trl.integrations.axolotl.RFTPlugin"
ENTRY_POINT_NAME = "rft"

# Axolotl flags and plugins that replace the loss, the trainer or the batch layout RFT relies on:
# key -> why it cannot be combined with `rft: true`.
CONFLICTS = {
    "rl": "RFT is a supervised (SFT) loss; preference/RL trainers (`rl:`) have their own losses",
    "reward_model": "reward-model training has its own loss",
    "process_reward_model": "process-reward-model training has its own loss",
    "kd_trainer": "the KD plugin replaces the trainer and the collator",
    "orpo_alpha": "ORPO adds its own loss term",
    "use_eaft": "EAFT replaces the loss function",
    "trainer_cls": "the RFT plugin provides the trainer class",
    "liger_fused_linear_cross_entropy": (
        "Liger's fused linear cross-entropy patches the LM head and loss; RFT computes its own "
        "chunked per-token loss without full logits, so the fused kernel has nothing to save"
    ),
    "cut_cross_entropy": (
        "Cut Cross-Entropy patches the LM head and loss; RFT computes its own chunked per-token "
        "loss without full logits"
    ),
    "pretraining_dataset": "streamed pretraining data has no prompt/response split to weigh",
    "processor_type": "multimodal batches are not supported by the RFT collators",
    "train_on_inputs": (
        "it puts the prompt in the loss, so there is no response for SHAD and RFT to weigh "
        "(SHAD would shuffle system prompts and user turns as if they were replies)"
    ),
    "qat": (
        "quantization-aware training fake-quantizes the LM head in its forward, which RFT's "
        "chunked log-probs do not call (they read the head's weight)"
    ),
    "do_bench_eval": (
        "the benchmark evaluation feeds batches without `token_class` (its own collator) to "
        "the trainer's loss"
    ),
    "torch_compile": (
        "the compiled forward fails on RFT's per-token log-prob path and falls back to eager "
        "after its recompile limit, so it would run uncompiled"
    ),
}
# Per-dataset settings (under `datasets:`) whose other values are fine: key -> refused value
# (`check_conflicts` says why).
REFUSED_DATASET_VALUES = {"train_on_eos": "all", "train_on_eot": "all"}
# Conflicting flags that their plugin's schema switches on by default once the plugin is listed.
ON_WITH_PLUGIN = ("cut_cross_entropy",)
# Plugins that supply their own trainer for every config: module path part -> what they train.
TRAINER_PLUGINS = {
    "integrations.diffusion": "the diffusion plugin trains with its own trainer and loss",
    "integrations.hatchery": "the Hatchery plugin trains remotely with its own trainer",
}


def check_unknown_keys(data: Mapping[str, Any]) -> None:
    """Raise on `rft*`/`shad_*` keys the option table does not define (typos)."""
    typos = unknown_keys(data)
    if typos:
        raise RFTConfigError(unknown_keys_message(typos, "the config"))


# Misspellings of the switch itself (case or letter order): `rtf: true` would train plain SFT.
_SWITCH_TYPOS = {"rtf", "frt", "ftr", "trf", "tfr"}


def check_rft_switch(data: Mapping[str, Any]) -> None:
    """Raise when `rft` is absent but the config clearly meant RFT: a misspelt switch, or
    `rft_*`/`shad_*` keys that would do nothing (Axolotl would quietly train plain SFT)."""
    if data.get("rft") is not None:
        return  # set, true or false: the user decided
    typos = sorted(k for k in data if k != "rft" and (k.lower() == "rft" or k in _SWITCH_TYPOS))
    if typos:
        raise RFTConfigError(
            f"`rft` is not set but {typos} is: the switch is spelt `rft` (lower case). "
            f"Fix: rename {typos[0]!r} to `rft`."
        )
    # Values other than the defaults: a config Axolotl validated and dumped (every plugin field
    # filled with its default) must pass again.
    ours = sorted(
        k
        for k in data
        if k in OPTIONS and k != "rft" and data[k] is not None and data[k] != OPTIONS[k].default
    )
    if ours:
        raise RFTConfigError(
            f"{ours} are set but `rft` is not, so they would do nothing and this config would "
            "train plain SFT. Fix: add `rft: true`, or `rft: false` to train plain SFT on purpose."
        )


def check_conflicts(data: Mapping[str, Any]) -> None:
    """With `rft: true`, raise on settings that replace the loss, trainer or collator."""
    if not data.get("rft"):
        return
    plugins = [str(p) for p in data.get("plugins") or ()]
    for key, why in CONFLICTS.items():
        value = data.get(key)
        setting = f"`{key}: {value!r}`"
        if key in ON_WITH_PLUGIN and value is None and any(key in p for p in plugins):
            value, setting = True, f"`{key}` (on by default once its plugin is listed)"
        if value not in (None, False, 0, "", []):
            raise RFTConfigError(
                f"`rft: true` cannot be combined with {setting}: {why}. "
                f"Fix: remove `{key}` (and its plugin) or set `rft: false`."
            )
    for plugin in plugins:
        for part, why in TRAINER_PLUGINS.items():
            if part in plugin:
                raise RFTConfigError(
                    f"`rft: true` cannot be combined with the plugin `{plugin}`: {why}. "
                    "Fix: remove that plugin or set `rft: false`."
                )
    for index, dataset in enumerate(data.get("datasets") or ()):
        for key, refused in REFUSED_DATASET_VALUES.items():
            if isinstance(dataset, Mapping) and dataset.get(key) == refused:
                raise RFTConfigError(
                    f"`rft: true` cannot be combined with `{key}: {refused}` (datasets[{index}]): "
                    "it puts the end-of-turn token of every user and system turn in the loss, "
                    "each a one-token response segment, so SHAD's turn-aligned shuffle would no "
                    f"longer exchange replies with replies. Fix: `{key}: turn` (the default "
                    "for train_on_eos) or `last`, or set `rft: false`."
                )
    parallel = max(
        data.get("context_parallel_size") or 1, data.get("sequence_parallel_degree") or 1
    )
    if parallel > 1:
        raise RFTConfigError(
            "`rft: true` cannot be combined with `context_parallel_size > 1`: RFT weighs whole "
            "samples, and context parallelism splits each sequence across ranks. "
            "Fix: use data parallelism (DDP, DeepSpeed or FSDP) instead."
        )


def plugin_listed(data: Mapping[str, Any]) -> bool:
    """Whether `plugins:` names the RFT plugin exactly (Axolotl only logs a plugin it cannot import)."""
    return PLUGIN_PATH in [str(p).strip() for p in data.get("plugins") or ()]
