"""`RFTConfig`: TRL's `SFTConfig` plus the `rft_*`/`shad_*` keys of `rft_trl.options`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trl import SFTConfig

from rft_trl.options import OPTIONS, validate_options


def _option_field(name: str) -> Any:
    """A dataclass field whose default and help come from the option table."""
    option = OPTIONS[name]
    return field(default=option.default, metadata={"help": option.help})


@dataclass
class RFTConfig(SFTConfig):
    """`SFTConfig` with SHAD + RFT settings; every key is documented in docs/configuration.md.

    With `rft=False` the trainer behaves exactly like `SFTTrainer`.
    """

    rft: bool = _option_field("rft")
    rft_temperature: float = _option_field("rft_temperature")
    rft_group_scope: str = _option_field("rft_group_scope")
    rft_reasoning_weight: float | None = _option_field("rft_reasoning_weight")
    rft_detach_weights: bool = _option_field("rft_detach_weights")
    rft_logprob_chunk_size: int | None = _option_field("rft_logprob_chunk_size")
    shad_labels_path: str | None = _option_field("shad_labels_path")
    shad_sample_ratio: float = _option_field("shad_sample_ratio")
    shad_min_steps: int = _option_field("shad_min_steps")
    shad_num_epochs: float = _option_field("shad_num_epochs")
    shad_learning_rate: float | None = _option_field("shad_learning_rate")
    shad_max_steps: int | None = _option_field("shad_max_steps")
    shad_threshold: float = _option_field("shad_threshold")
    shad_seed: int = _option_field("shad_seed")
    shad_cache_dir: str | None = _option_field("shad_cache_dir")

    def __post_init__(self):
        validate_options(self.rft_options())
        super().__post_init__()

    def rft_options(self) -> dict[str, Any]:
        """The `rft_*`/`shad_*` values of this config as a plain dict."""
        return {name: getattr(self, name) for name in OPTIONS}
