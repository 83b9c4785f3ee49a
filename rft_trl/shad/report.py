"""`ShadReport`: what a SHAD run did and how healthy its labels look; `.summary()` is the terminal text."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from rft_trl.shad.health import Histogram, ProbeResult


@dataclass
class SplitStats:
    """Token counts of one labelled split (the training set or an eval set)."""

    rows: int
    response_tokens: int
    boilerplate_tokens: int

    @property
    def boilerplate_fraction(self) -> float:
        """Labelled-boilerplate share of the response tokens."""
        return self.boilerplate_tokens / self.response_tokens if self.response_tokens else 0.0


@dataclass
class ShadReport:
    """Counts, health checks, timings and cache status of one `label_dataset` call."""

    rows: int = 0
    sampled: int = 0
    segments_shuffled: int = 0
    response_tokens: int = 0
    boilerplate_tokens: int = 0
    threshold: float = 0.0
    histogram: Histogram | None = None
    probe: ProbeResult | None = None
    tune_steps: int | None = None
    world_size: int = 1
    seconds: dict[str, float] = field(default_factory=dict)
    cache: str = "off"
    cache_entry: str | None = None
    warnings: list[str] = field(default_factory=list)
    eval: dict[str, SplitStats] = field(default_factory=dict)

    @property
    def boilerplate_fraction(self) -> float:
        """Labelled-boilerplate share of the training set's response tokens."""
        return self.boilerplate_tokens / self.response_tokens if self.response_tokens else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (stored in the labels metadata and the cache)."""
        data = asdict(self)
        data["boilerplate_fraction"] = self.boilerplate_fraction
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShadReport:
        """Inverse of `to_dict`."""
        data = dict(data)
        data.pop("boilerplate_fraction", None)
        if data.get("histogram") is not None:
            data["histogram"] = Histogram(**data["histogram"])
        if data.get("probe") is not None:
            data["probe"] = ProbeResult(**data["probe"])
        data["eval"] = {
            name: SplitStats(**stats) for name, stats in (data.get("eval") or {}).items()
        }
        return cls(**data)

    def summary(self) -> str:
        """Human-readable summary for the terminal."""
        lines = [
            "SHAD summary",
            f"  rows labelled:        {self.rows}",
            f"  shuffled samples:     {self.sampled} ({self.segments_shuffled} response segments)",
            f"  shuffle-tune steps:   {self.tune_steps if self.tune_steps is not None else '-'}",
            f"  response tokens:      {self.response_tokens}",
            f"  boilerplate fraction: {100 * self.boilerplate_fraction:.1f}% "
            f"(threshold LD <= {self.threshold:g})",
            f"  processes:            {self.world_size}",
            f"  cache:                {self.cache}"
            + (f" ({self.cache_entry})" if self.cache_entry else ""),
        ]
        for name, stats in self.eval.items():
            lines.append(
                f"  eval '{name}':  {stats.rows} rows, {stats.response_tokens} response tokens, "
                f"{100 * stats.boilerplate_fraction:.1f}% boilerplate"
            )
        if self.histogram is not None:
            lines.append("LD = l_shuffled - l_original (nats) over response tokens:")
            lines.append(self.histogram.render(self.threshold))
        if self.probe is not None:
            lines.append(f"Prompt-swap probe ({self.probe.tokens} tokens): {self.probe.verdict}")
            if self.probe.reasoning_share_of_risen is not None:
                lines.append(
                    f"  SHAD labels {100 * self.probe.reasoning_share_of_risen:.1f}% of the probe's "
                    "input-dependent tokens as reasoning."
                )
        if self.seconds:
            phases = ", ".join(f"{name} {secs:.1f}s" for name, secs in self.seconds.items())
            lines.append(f"Time: {phases}")
        for warning in self.warnings:
            if self.probe is None or warning != self.probe.verdict:  # already shown with the probe
                lines.append(f"WARNING: {warning}")
        return "\n".join(lines)
