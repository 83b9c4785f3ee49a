"""Health checks on SHAD's scores: LD histogram, labelled-boilerplate fraction, prompt-swap probe (pure numpy).

The prototype study (docs/benchmarks.md): every failing SHAD run had a labelled-boilerplate
fraction far from the truth (below ~0.5 or above ~0.95 for agent data), and the prompt-swap probe tells whether the base
reads its input at all, which SHAD needs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

# Right-closed bins (e[i-1], e[i]] around 0, matching the rule "LD <= threshold -> boilerplate".
HISTOGRAM_EDGES: tuple[float, ...] = (
    -4.0,
    -2.0,
    -1.0,
    -0.5,
    -0.1,
    -0.01,
    0.0,
    0.01,
    0.1,
    0.5,
    1.0,
    2.0,
    4.0,
)
BOILERPLATE_LOW = 0.5
BOILERPLATE_HIGH = 0.95
# A token "rises" under a swapped prompt when it becomes at least 2x less likely.
PROBE_RISE_NATS = math.log(2.0)
PROBE_NOT_READY = 0.02
PROBE_WEAK = 0.05
# Response tokens the base already predicts almost perfectly: LD there is noise (prototype study).
SATURATED_LOSS = 0.01
SATURATED_SHARE = 0.5
# Any adapter raises a near-certain token's loss a little (its loss cannot fall below 0): LD up to
# DRIFT_NATS on a saturated token is that drift, not input use (docs/benchmarks.md §2).
DRIFT_NATS = 0.005
DRIFT_SHARE = 0.05


@dataclass
class Histogram:
    """Counts of LD values in right-closed bins between consecutive `edges` (with open ends)."""

    edges: list[float]
    counts: list[int]

    def render(self, threshold: float | None = None, width: int = 32) -> str:
        """The histogram as text lines, one bar per bin; the bin holding the threshold is marked."""
        total = max(1, sum(self.counts))
        bounds = [-math.inf, *self.edges, math.inf]
        lines = []
        for i, count in enumerate(self.counts):
            lo, hi = bounds[i], bounds[i + 1]
            label = f"({_fmt(lo)}, {_fmt(hi)}]" if math.isfinite(hi) else f"({_fmt(lo)}, +inf)"
            bar = "#" * round(width * count / total)
            mark = "  <- threshold" if threshold is not None and lo < threshold <= hi else ""
            lines.append(f"  {label:>14} {100 * count / total:6.2f}% {bar}{mark}")
        return "\n".join(lines)


def _fmt(value: float) -> str:
    return "-inf" if value == -math.inf else f"{value:g}"


def ld_histogram(ld: np.ndarray) -> Histogram:
    """Histogram of LD over response tokens with the fixed edges `HISTOGRAM_EDGES`."""
    edges = np.asarray(HISTOGRAM_EDGES, dtype=np.float64)
    bins = np.searchsorted(edges, np.asarray(ld, dtype=np.float64), side="left")
    counts = np.bincount(bins, minlength=len(edges) + 1)
    return Histogram(edges=list(HISTOGRAM_EDGES), counts=[int(c) for c in counts])


def boilerplate_warning(fraction: float) -> str | None:
    """A warning when the labelled-boilerplate fraction is implausible for agent data, else None."""
    if fraction < BOILERPLATE_LOW:
        return (
            f"SHAD labelled only {100 * fraction:.1f}% of response tokens boilerplate (below "
            f"{100 * BOILERPLATE_LOW:.0f}%). Agent data is mostly boilerplate; this usually means the base "
            "already knows the response template, so boilerplate losses move by noise and the threshold "
            "calls them reasoning. Try a small margin (`shad_threshold: 0.05`) or a base that has not been "
            "tuned on this format."
        )
    if fraction > BOILERPLATE_HIGH:
        return (
            f"SHAD labelled {100 * fraction:.1f}% of response tokens boilerplate (above "
            f"{100 * BOILERPLATE_HIGH:.0f}%). This usually means the base does not use its input (a random or "
            "very weak model), or the shuffle-tune was too short. Check the prompt-swap probe below, use a "
            "pretrained base, or raise `shad_min_steps`/`shad_learning_rate`."
        )
    return None


def saturation_warning(l_o: np.ndarray) -> str | None:
    """A warning when the base already predicts most response tokens almost perfectly (LD is then noise)."""
    if l_o.size == 0:
        return None
    share = float(np.mean(np.asarray(l_o) < SATURATED_LOSS))
    if share <= SATURATED_SHARE:
        return None
    return (
        f"The base predicts {100 * share:.1f}% of response tokens with loss < {SATURATED_LOSS} nats: it "
        "already knows this response format, so LD near 0 is noise and the exact-0 threshold labels "
        "noise as reasoning. Consider `shad_threshold` between 0.02 and 0.1."
    )


def drift_warning(l_o: np.ndarray, ld: np.ndarray, threshold: float) -> str | None:
    """A warning when many saturated tokens are labelled reasoning only by an adapter's drift (LD <= DRIFT_NATS)."""
    l_o, ld = np.asarray(l_o), np.asarray(ld)
    if l_o.size == 0 or threshold >= DRIFT_NATS:
        return None
    drifting = (l_o < SATURATED_LOSS) & (ld > threshold) & (ld <= DRIFT_NATS)
    share = float(np.mean(drifting))
    if share <= DRIFT_SHARE:
        return None
    return (
        f"{100 * share:.1f}% of response tokens are ones the base already predicts (loss < "
        f"{SATURATED_LOSS} nats) that are labelled reasoning by an LD of at most {DRIFT_NATS} nats. That is "
        "drift (any adapter raises a near-certain token's loss that little), not input use: their label "
        f"reflects the adapter, not the data. `shad_threshold: {DRIFT_NATS}` labels them boilerplate (re-labelled "
        "from the cached losses); docs/benchmarks.md §2 measures what that does to label accuracy and to RFT."
    )


@dataclass
class ProbeResult:
    """The prompt-swap probe: how many response tokens the base reads from their own prompt."""

    tokens: int
    risen: int
    share: float
    rise_nats: float
    reasoning_share_of_risen: float | None
    verdict: str
    ready: bool

    def to_dict(self) -> dict:
        """JSON-able form."""
        return asdict(self)


def probe_result(
    l_swapped: np.ndarray, l_own: np.ndarray, shad_reasoning: np.ndarray | None = None
) -> ProbeResult:
    """Share of response tokens whose base loss rises by more than ln 2 nats under another sample's prompt.

    `l_swapped[i]` and `l_own[i]` are the base losses of the same response token after a swapped
    and after its own prompt; `shad_reasoning[i]` (optional) whether SHAD labelled it reasoning.
    """
    l_swapped = np.asarray(l_swapped, dtype=np.float64)
    l_own = np.asarray(l_own, dtype=np.float64)
    rose = (l_swapped - l_own) > PROBE_RISE_NATS
    tokens, risen = int(rose.size), int(rose.sum())
    share = risen / tokens if tokens else 0.0
    agree = None
    if shad_reasoning is not None and risen:
        agree = float(np.asarray(shad_reasoning, dtype=bool)[rose].mean())
    pct = f"{100 * share:.1f}%"
    if share < PROBE_NOT_READY:
        verdict = (
            f"NOT READY: swapping the prompt raises the base loss on only {pct} of response tokens, so the "
            "base barely reads its input. Shuffle-tuning will lower almost every loss and SHAD will call "
            "nearly everything boilerplate. Use a pretrained base that can use the prompt."
        )
    elif share < PROBE_WEAK:
        verdict = (
            f"WEAK: swapping the prompt raises the base loss on only {pct} of response tokens; SHAD's "
            "reasoning labels will be sparse and noisy. A stronger base would help."
        )
    else:
        verdict = (
            f"OK: the base reads the prompt for {pct} of response tokens (loss up by more than "
            f"{PROBE_RISE_NATS:.2f} nats under another sample's prompt), so it can support SHAD."
        )
    return ProbeResult(
        tokens=tokens,
        risen=risen,
        share=share,
        rise_nats=PROBE_RISE_NATS,
        reasoning_share_of_risen=agree,
        verdict=verdict,
        ready=share >= PROBE_WEAK,
    )
