"""`ShadSettings`: the `shad_*` keys of the option table as one validated, immutable value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from rft_trl.cache_root import default_cache_dir
from rft_trl.options import OPTIONS


def _default(name: str) -> Any:
    return OPTIONS[f"shad_{name}"].default


@dataclass(frozen=True)
class ShadSettings:
    """SHAD's knobs; each field is the option `shad_<field>` and is validated by the option table."""

    sample_ratio: float = _default("sample_ratio")
    min_steps: int = _default("min_steps")
    num_epochs: float = _default("num_epochs")
    learning_rate: float | None = _default("learning_rate")
    max_steps: int | None = _default("max_steps")
    threshold: float = _default("threshold")
    seed: int = _default("seed")
    cache_dir: str | None = _default("cache_dir")
    labels_path: str | None = _default("labels_path")

    def __post_init__(self) -> None:
        for field in fields(self):
            OPTIONS[f"shad_{field.name}"].validate(getattr(self, field.name))

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | Any) -> ShadSettings:
        """Settings from a mapping with `shad_*` keys (or an object such as `RFTConfig` with those attributes).

        Other keys are ignored; missing keys take the option table's defaults.
        """
        values: dict[str, Any] = {}
        for field in fields(cls):
            key = f"shad_{field.name}"
            if isinstance(options, Mapping):
                if key in options:
                    values[field.name] = options[key]
            elif hasattr(options, key):
                values[field.name] = getattr(options, key)
        return cls(**values)

    def to_options(self) -> dict[str, Any]:
        """The settings as `shad_*` keys."""
        return {f"shad_{name}": value for name, value in asdict(self).items()}

    def resolved_cache_dir(self) -> Path:
        """Where the cache lives: `cache_dir`, else $RFT_TRL_CACHE, else $XDG_CACHE_HOME/rft-trl (~/.cache/rft-trl)."""
        return Path(self.cache_dir).expanduser() if self.cache_dir else default_cache_dir()
