"""Performance of RFT against SFT, of SHAD against forward passes, and of log-probs against vocab size.

    python benchmarks/perf.py --quick                       # CI smoke (< 60 s), numbers meaningless
    python benchmarks/perf.py --out perf.json               # the full run of docs/benchmarks.md §1
    python benchmarks/perf.py --sizes 20m --parts step      # one part at one size

Parts (all in one run, on one machine, so the ratios hold on a noisy machine):
- `step`: time per optimizer step and peak RSS of `RFTTrainer` vs TRL's `SFTTrainer` and a plain
  full-logits SFT `Trainer`, same model/rows/batch/LoRA, padded and packed, LoRA and QLoRA. The
  three trainers of a configuration run in separate fresh processes that take turns step by step
  (`_perf_lockstep`), repeated `--reps` times in rotated order.
- `shad`: SHAD scoring vs one no-grad forward pass over the same rows, and SHAD total vs one SFT
  epoch at default settings (measured, and projected to the size where the 1 % ratio binds).
- `head`: the LM-head part alone (forward + backward): TRL's fused head as SFTTrainer runs it on
  CPU, with and without its metrics, as it runs on CUDA, full-logits cross-entropy, and ours.
- `vocab`: peak memory of the chunked per-token log-prob function vs full logits at 8k/32k/128k.

Each child sets its torch threads to `--threads`. `--device cuda` trains under bf16 autocast and
measures `torch.cuda.max_memory_allocated` (run by `benchmarks/gpu_check.sh`; docs §1, GPU).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

MIB = 1024 * 1024
TARGETS = {"time": 1.03, "memory": 1.02, "scoring": 2.2, "shad_total": 0.8}
SHAD_MIN_STEPS, SHAD_RATIO = 50, 0.01


@dataclass
class Plan:
    """What one run measures."""

    step_groups: list[dict[str, Any]] = field(default_factory=list)
    reps: dict[str, int] = field(default_factory=dict)
    shad: list[dict[str, Any]] = field(default_factory=list)
    vocab: list[dict[str, Any]] = field(default_factory=list)
    head: list[dict[str, Any]] = field(default_factory=list)
    vocab_parallel: int = 2
    vocab_shared: bool = False
    threads: dict[str, int] = field(default_factory=dict)


# Per size: (reps, warm-up steps, timed steps, groups). A group is (collation, PEFT) plus options;
# `response_fraction=1.0` puts every token in the loss (no prompt for RFT to skip).
STEP_SCHEDULE: dict[str, tuple[int, int, int, list[dict[str, Any]]]] = {
    "tiny": (
        3,
        2,
        8,
        [
            {"collation": "padded", "quant": "lora"},
            {"collation": "packed", "quant": "lora"},
            {"collation": "padded", "quant": "qlora"},
            {"collation": "packed", "quant": "qlora"},
        ],
    ),
    "20m": (
        3,
        2,
        4,
        [
            {"collation": "padded", "quant": "lora"},
            {"collation": "packed", "quant": "lora"},
            {"collation": "padded", "quant": "qlora"},
            {"collation": "packed", "quant": "qlora"},
            {"collation": "padded", "quant": "lora", "response_fraction": 1.0},
        ],
    ),
    "100m": (
        3,
        1,
        3,
        [
            {"collation": "padded", "quant": "lora"},
            {"collation": "packed", "quant": "lora"},
            {"collation": "padded", "quant": "qlora"},
        ],
    ),
    # GPU only (`--device cuda --sizes 500m`): steps took 0.3-0.6 s on an H100 and a group's rep
    # 51-63 s, mostly process start-up, so 10 timed steps; gpu_check.sh passes --reps 1.
    "500m": (
        2,
        3,
        10,
        [
            {"collation": "padded", "quant": "lora"},
            {"collation": "packed", "quant": "lora"},
            {"collation": "padded", "quant": "qlora"},
        ],
    ),
}
SHAD_SCHEDULE: dict[str, dict[str, Any]] = {
    "tiny": {"rows": 2000, "sft_steps": 8},
    "20m": {"rows": 400, "sft_steps": 4, "ref_rows": 4},
    # the 50-step shuffle-tune alone would take ~10 minutes here: 2 steps, extrapolated
    "100m": {"rows": 16, "sft_steps": 2, "tune_steps": 2, "sft_twice": False, "ref_rows": 1},
    "500m": {"rows": 256, "sft_steps": 4, "ref_rows": 2},
}


def full_plan(sizes: list[str], reps: int | None, device: str) -> Plan:
    """The documented run: tiny, 20M and 100M models (about 30 minutes on 2 idle cores); 500m on GPU."""
    plan = Plan(threads={"tiny": 1})
    for size in sizes:
        size_reps, warmup, steps, groups = STEP_SCHEDULE[size]
        plan.reps[size] = reps or size_reps
        for group in groups:
            plan.step_groups.append(
                {"size": size, **group, "warmup": warmup, "steps": steps, "device": device}
            )
    plan.shad = [{"size": s, **SHAD_SCHEDULE[s], "device": device} for s in sizes]
    plan.head = [{"size": s, "rounds": 5} for s in sizes if s != "tiny"]
    plan.vocab = [
        {
            "vocab": v,
            "impl": impl,
            "hidden_size": 768,
            "batch": 4,
            "seq_len": 1024,
            "device": device,
        }
        for v in (8000, 32000, 128000)
        for impl in ("chunked", "naive")
    ]
    return plan


def quick_plan(device: str) -> Plan:
    """A smoke run on the tiny model: every code path once, in well under a minute."""
    group = {
        "size": "tiny",
        "collation": "padded",
        "quant": "lora",
        "warmup": 1,
        "steps": 2,
        "device": device,
    }
    shad = {
        "size": "tiny",
        "rows": 24,
        "sft_steps": 1,
        "sft_kinds": ["plain_sft"],
        "tune_steps": 1,
        "sft_twice": False,
        "device": device,
    }
    vocab = [
        {"vocab": v, "impl": impl, "hidden_size": 64, "batch": 2, "seq_len": 64, "chunk_size": 32}
        for v in (512, 2048)
        for impl in ("chunked", "naive")
    ]
    return Plan(
        step_groups=[group],
        reps={"tiny": 1},
        shad=[shad],
        head=[{"size": "tiny", "rounds": 1}],
        vocab=[{**case, "device": device} for case in vocab],
        vocab_shared=True,
        threads={"tiny": 1},
    )


# ---- running ------------------------------------------------------------------------------------


def run_steps(
    plan: Plan, threads: Callable[[str], int], log, saved: Callable[[list], None] = lambda _: None
) -> list[dict[str, Any]]:
    """Each step group `reps` times; the three trainers take turns, in a rotated order per rep.

    `saved` gets the groups measured so far after each group (a run cut short keeps them).
    """
    from _perf_lockstep import run_group

    kinds = ("rft", "plain_sft", "trl_sft")
    _save_checkpoints({g["size"] for g in plan.step_groups if g["quant"] == "qlora"}, log)
    out = []
    for group in plan.step_groups:
        reps = []
        for rep in range(plan.reps[group["size"]]):
            order = list(kinds[rep % 3 :] + kinds[: rep % 3])
            specs = [{**group, "kind": kind} for kind in order]
            started = time.perf_counter()
            results = run_group("_perf_step:run", specs, threads=threads(group["size"]))
            reps.append({kind: res for kind, res in zip(order, results, strict=True)})
            log(
                f"step {_label(group)} rep {rep + 1}: {time.perf_counter() - started:.0f} s {_errors(results)}"
            )
        out.append({**group, "reps": reps})
        saved(out)
    return out


def _save_checkpoints(sizes: set[str], log) -> None:
    """Save the random models QLoRA children load in 4 bits, once, before they start."""
    if not sizes:
        return
    import _perf_setup

    for size in sorted(sizes):
        log(f"checkpoint {size}: {_perf_setup.checkpoint_dir(_perf_setup.SIZES[size])}")


def run_shad(plan: Plan, threads: Callable[[str], int], log) -> list[dict[str, Any]]:
    """One SHAD child per size (alone on the machine)."""
    from _perf_lockstep import run_group

    out = []
    for spec in plan.shad:
        started = time.perf_counter()
        (result,) = run_group(
            "_perf_shad:run", [spec], threads=threads(spec["size"]), lockstep=False
        )
        log(f"shad {spec['size']}: {time.perf_counter() - started:.0f} s {_errors([result])}")
        out.append({**spec, **result})
    return out


def run_head(plan: Plan, threads: Callable[[str], int], log) -> list[dict[str, Any]]:
    """The LM-head decomposition, one child per size."""
    from _perf_lockstep import run_group

    out = []
    for spec in plan.head:
        (result,) = run_group(
            "_perf_head:run", [spec], threads=threads(spec["size"]), lockstep=False
        )
        log(f"head {spec['size']} {_errors([result])}")
        out.append({**spec, **result})
    return out


def run_vocab(plan: Plan, threads: Callable[[str], int], log) -> list[dict[str, Any]]:
    """One fresh process per case (a few at a time: RSS is per process), or one for all (quick)."""
    from _perf_lockstep import run_group

    groups = [plan.vocab] if plan.vocab_shared else [[case] for case in plan.vocab]
    out = []
    for start in range(0, len(groups), plan.vocab_parallel):
        specs = [{"cases": cases} for cases in groups[start : start + plan.vocab_parallel]]
        results = run_group("_perf_vocab:run", specs, threads=threads("vocab"), lockstep=False)
        for spec, res in zip(specs, results, strict=True):
            out.extend(res["cases"] if "cases" in res else [{**c, **res} for c in spec["cases"]])
        log(f"vocab {[c['vocab'] for s in specs for c in s['cases']]} {_errors(results)}")
    return out


def _label(group: dict[str, Any]) -> str:
    extra = "/all-response" if group.get("response_fraction") == 1.0 else ""
    return f"{group['size']}/{group['collation']}/{group['quant']}{extra}"


def _errors(results: list[dict[str, Any]]) -> str:
    errors = [r["error"].strip().splitlines()[-1] for r in results if "error" in r]
    return f"ERRORS: {errors}" if errors else ""


# ---- summarising --------------------------------------------------------------------------------


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarise_step(group: dict[str, Any]) -> dict[str, Any]:
    """Median, minimum, spread and RFT/SFT ratios of one step group; SFT = the faster baseline.

    Background load on a shared machine only ever slows a step down, so the minimum over all
    timed steps estimates the intrinsic cost best; medians are reported beside it.
    """
    kinds = ("rft", "plain_sft", "trl_sft")
    ok = [rep for rep in group["reps"] if all("error" not in rep[k] for k in kinds)]
    if not ok:
        return {
            "error": next(
                rep[k]["error"] for rep in group["reps"] for k in kinds if "error" in rep[k]
            )
        }
    per = {}
    for kind in kinds:
        steps = [s for rep in ok for s in rep[kind]["step_seconds"]]
        cpu = [s for rep in ok for s in rep[kind]["step_cpu_seconds"]]
        per[kind] = {
            "step_median": _median(steps),
            "step_min": min(steps),
            "step_p25": _quantile(steps, 0.25),
            "step_p75": _quantile(steps, 0.75),
            "cpu_median": _median(cpu),
            "cpu_min": min(cpu),
            "peak_memory": _median([rep[kind]["peak_memory"] for rep in ok]),
            "memory_at_start": _median([rep[kind]["memory_at_start"] for rep in ok]),
        }
    sft = min(("plain_sft", "trl_sft"), key=lambda k: per[k]["step_min"])
    paired = [_median(rep["rft"]["step_seconds"]) / _median(rep[sft]["step_seconds"]) for rep in ok]
    lowest_mem = min(per["plain_sft"]["peak_memory"], per["trl_sft"]["peak_memory"])
    return {
        "per": per,
        "sft": sft,
        "reps": len(ok),
        "steps": sum(len(rep["rft"]["step_seconds"]) for rep in ok),
        "time_ratio": per["rft"]["step_min"] / per[sft]["step_min"],
        "time_ratio_median": per["rft"]["step_median"] / per[sft]["step_median"],
        "time_ratio_paired": _median(paired),
        "cpu_ratio": per["rft"]["cpu_min"] / per[sft]["cpu_min"],
        "memory_ratio": per["rft"]["peak_memory"] / per[sft]["peak_memory"],
        "memory_ratio_lowest": per["rft"]["peak_memory"] / lowest_mem,
        "trl_over_plain_time": per["trl_sft"]["step_min"] / per["plain_sft"]["step_min"],
    }


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def shad_sample_count(rows: int, batch: int) -> int:
    """Rows SHAD shuffle-tunes on at default settings (1 %, at least 50 steps' worth)."""
    from rft_trl.shad.sampling import sample_count

    return sample_count(rows, SHAD_RATIO, SHAD_MIN_STEPS, batch)


def summarise_shad(result: dict[str, Any]) -> dict[str, Any]:
    """SHAD costs in reference forwards (see `_perf_shad`), measured and projected to where 1 % binds.

    Each unit of work is divided by the reference forward right after it; a phase's cost is its
    number of units times the median of those ratios (robust to the one-sided slow-downs of a
    shared machine), times the phase's unpaired overhead (adapter toggles, row fetching, cache
    writes, trainer setup: its whole time over its paired time). Scoring is compared with the
    forward batch by batch (same rows), so batch sizes cancel.
    """
    if "error" in result:
        return {"error": result["error"]}
    secs = result["shad_seconds"]
    pairs, spent = result["ref"]["pairs"], result["ref"]["spent"]
    keys = result["ref"].get("keys", {})
    rows, batch = result["rows"], result["train_batch"]
    global_unit = statistics.median(r for values in pairs.values() for _, r in values)

    def units(phase: str) -> float:
        """Units of work of the phase, in reference forwards (robust), including its overhead."""
        ratios = [w / r for w, r in pairs[phase]]
        paired_seconds = sum(w for w, _ in pairs[phase])
        whole = secs[phase] - spent.get(phase, 0.0) if phase in secs else paired_seconds
        return len(ratios) * statistics.median(ratios) * whole / paired_seconds

    forward = units("forward")
    scoring_ratio = _per_batch_ratio(pairs, keys, "score", "forward") * _overhead(
        secs["score"] - spent.get("score", 0.0), pairs["score"]
    )
    score = scoring_ratio * forward
    tune, probe = units("tune"), units("probe")
    other = (secs["total"] - secs["tune"] - secs["score"] - secs["probe"]) / global_unit
    sft = {
        kind: statistics.median(w / r for w, r in pairs[f"sft:{kind}"])
        for kind in result["sft"]
        if pairs.get(f"sft:{kind}")
    }
    sft_kind = min(sft, key=sft.get)
    steps = result["tune_steps"] or 1
    sampled = result["sampled"]

    def total_at(n: int) -> float:
        """SHAD total on `n` rows at default settings, from the per-unit costs measured here."""
        scale = n / rows
        default_steps = math.ceil(shad_sample_count(n, batch) / batch)
        return (
            (other + score) * scale
            + tune / steps * default_steps
            + probe * shad_sample_count(n, batch) / sampled
        )

    big = SHAD_MIN_STEPS * batch * round(1 / SHAD_RATIO)
    epoch = rows / batch * sft[sft_kind]
    default_steps = math.ceil(shad_sample_count(rows, batch) / batch)
    to_s = global_unit  # reference forwards -> load-normalised seconds
    return {
        "unit_seconds": global_unit,
        "forward": forward * to_s,
        "logprob_pass": _per_batch_ratio(pairs, keys, "logprob_pass", "forward") * forward * to_s,
        "score": score * to_s,
        "scoring_ratio": scoring_ratio,
        "raw_scoring_ratio": (secs["score"] - spent.get("score", 0.0)) / result["forward"][0],
        "tune": tune * to_s,
        "tune_steps": result["tune_steps"],
        "default_tune_steps": default_steps,
        "probe": probe * to_s,
        "total": total_at(rows) * to_s,
        "total_is_measured": steps == default_steps,
        "sft": sft_kind,
        "sft_step": sft[sft_kind] * to_s,
        "epoch": epoch * to_s,
        "total_ratio": total_at(rows) / epoch,
        "projected_rows": big,
        "projected_ratio": total_at(big) / (big / batch * sft[sft_kind]),
        "raw_seconds": {**secs, "forward": result["forward"][0], "sft": result["sft"]},
    }


def _per_batch_ratio(pairs: dict, keys: dict, phase: str, base: str) -> float:
    """Median over batches of (phase's units on the batch) / (base's units on the same batch)."""

    def by_batch(name: str) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for key, (work, ref) in zip(keys[name], pairs[name], strict=True):
            out[key] += work / ref
        return out

    mine, theirs = by_batch(phase), by_batch(base)
    return statistics.median(mine[k] / theirs[k] for k in mine if k in theirs)


def _overhead(whole_seconds: float, phase_pairs: list) -> float:
    """A phase's whole time over the time of its paired units (>= 1: toggles, fetching, I/O)."""
    return whole_seconds / sum(work for work, _ in phase_pairs)


def summarise_vocab(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per vocabulary: chunked and naive peaks, and the chunked peak beyond one chunk."""
    rows = []
    for vocab in sorted({r["vocab"] for r in results}):
        chunked = next(r for r in results if r["vocab"] == vocab and r["impl"] == "chunked")
        naive = next(r for r in results if r["vocab"] == vocab and r["impl"] == "naive")
        if "error" in chunked or "error" in naive:
            rows.append({"vocab": vocab, "error": chunked.get("error") or naive.get("error")})
            continue
        rows.append(
            {
                "vocab": vocab,
                "chunk_rows": chunked["chunk_rows"],
                "chunk_mib": chunked["chunk_bytes"] / MIB,
                "chunked_mib": chunked["peak_above_inputs"] / MIB,
                "beyond_chunk_mib": (chunked["peak_above_inputs"] - chunked["chunk_bytes"]) / MIB,
                "naive_mib": naive["peak_above_inputs"] / MIB,
                "full_logits_mib": naive["full_logits_bytes"] / MIB,
            }
        )
    return rows


# ---- reporting ----------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def step_table(groups: list[dict[str, Any]]) -> str:
    """Markdown table of step time and peak memory per configuration."""
    lines = [
        "| model | collation | PEFT | timed steps | RFT s/step: min, median [p25-p75] | plain SFT | TRL SFTTrainer | RFT / SFT time: min (median; paired) | RFT / SFT CPU time (min) | RFT peak MiB | plain MiB | TRL MiB | RFT / SFT peak | SFT = |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for group in groups:
        s = group["summary"]
        collation = group["collation"]
        if group.get("response_fraction") == 1.0:
            collation += " (all tokens in loss)"
        head = f"| {group['size']} | {collation} | {group['quant']} |"
        if "error" in s:
            lines.append(f"{head} error: {s['error'].strip().splitlines()[-1]} |" + " |" * 10)
            continue
        cells = []
        for kind in ("rft", "plain_sft", "trl_sft"):
            p = s["per"][kind]
            cells.append(
                f"{_fmt(p['step_min'])}, {_fmt(p['step_median'])} "
                f"[{_fmt(p['step_p25'])}-{_fmt(p['step_p75'])}]"
            )
        mem = [f"{s['per'][k]['peak_memory'] / MIB:.0f}" for k in ("rft", "plain_sft", "trl_sft")]
        lines.append(
            f"{head} {s['steps']} | {' | '.join(cells)} | {s['time_ratio']:.3f} "
            f"({s['time_ratio_median']:.3f}; {s['time_ratio_paired']:.3f}) | {s['cpu_ratio']:.3f} | "
            f"{' | '.join(mem)} | {s['memory_ratio']:.3f} | {s['sft']} |"
        )
    return "\n".join(lines)


def shad_table(results: list[dict[str, Any]]) -> str:
    """Markdown table of SHAD costs (load-normalised seconds)."""
    lines = [
        "| model | rows | no-grad forward s | SHAD scoring s | scoring / forward (raw s) | one log-prob pass / forward | tune steps | tune s | probe s | SHAD total s | SFT epoch s (SFT =) | total / epoch | at rows | total / epoch there |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for result in results:
        s = result["summary"]
        if "error" in s:
            lines.append(
                f"| {result['size']} | error: {s['error'].strip().splitlines()[-1]} |" + " |" * 12
            )
            continue
        steps = f"{s['tune_steps']}"
        if not s["total_is_measured"]:
            steps += f" (of {s['default_tune_steps']}; rest extrapolated)"
        lines.append(
            f"| {result['size']} | {result['rows']} | {_fmt(s['forward'], 2)} | {_fmt(s['score'], 2)} | "
            f"{s['scoring_ratio']:.2f} ({s['raw_scoring_ratio']:.2f}) | {s['logprob_pass'] / s['forward']:.2f} | {steps} | "
            f"{_fmt(s['tune'], 1)} | {_fmt(s['probe'], 1)} | {_fmt(s['total'], 1)} | "
            f"{_fmt(s['epoch'], 1)} ({s['sft']}) | {s['total_ratio']:.2f} | "
            f"{s['projected_rows']} | {s['projected_ratio']:.2f} |"
        )
    return "\n".join(lines)


def head_table(results: list[dict[str, Any]]) -> str:
    """Markdown table of the LM-head decomposition (forward + backward, frozen head)."""
    lines = [
        "| model | variant | positions through the head | wall ms | CPU ms | wall / full-logits CE | peak MiB above inputs |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for result in results:
        if "error" in result:
            lines.append(f"| {result['size']} | error |" + " |" * 5)
            continue
        base = result["wall"]["full_logits_cross_entropy"]
        for variant, wall in result["wall"].items():
            scored = (
                result["response_positions"]
                if "response" in variant or variant.startswith("rft")
                else result["positions"]
            )
            lines.append(
                f"| {result['size']} | {variant} | {scored} | {wall * 1000:.0f} | "
                f"{result['cpu'][variant] * 1000:.0f} | {wall / base:.2f} | "
                f"{result['peak_above_inputs'][variant] / MIB:.0f} |"
            )
    return "\n".join(lines)


def vocab_table(rows: list[dict[str, Any]], spec: dict[str, Any]) -> str:
    """Markdown table of log-prob memory vs vocabulary."""
    lines = [
        f"Positions: {spec['batch']} x {spec['seq_len']}, hidden {spec['hidden_size']}, fp32, frozen head, forward + backward.",
        "",
        "| vocab | chunk rows | one chunk MiB | chunked peak MiB | chunked beyond one chunk MiB | full-logits peak MiB | (full logits alone MiB) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['vocab']} | error |" + " |" * 5)
            continue
        lines.append(
            f"| {row['vocab']} | {row['chunk_rows']} | {row['chunk_mib']:.0f} | {row['chunked_mib']:.0f} | "
            f"{row['beyond_chunk_mib']:.0f} | {row['naive_mib']:.0f} | {row['full_logits_mib']:.0f} |"
        )
    return "\n".join(lines)


def targets_table(report: dict[str, Any]) -> str:
    """Which targets each configuration meets."""
    lines = ["| target | worst measured | met |", "| --- | --- | --- |"]
    steps = [g["summary"] for g in report.get("step", []) if "error" not in g["summary"]]
    if steps:
        worst_t = max(s["time_ratio"] for s in steps)
        worst_m = max(s["memory_ratio"] for s in steps)
        lines.append(
            f"| RFT / SFT step time <= {TARGETS['time']} | {worst_t:.3f} | {_yes(worst_t <= TARGETS['time'])} |"
        )
        lines.append(
            f"| RFT / SFT peak memory <= {TARGETS['memory']} | {worst_m:.3f} | {_yes(worst_m <= TARGETS['memory'])} |"
        )
    shad = [r["summary"] for r in report.get("shad", []) if "error" not in r["summary"]]
    if shad:
        worst_s = max(s["scoring_ratio"] for s in shad)
        worst_p = max(s["projected_ratio"] for s in shad)
        lines.append(
            f"| SHAD scoring / no-grad forward <= {TARGETS['scoring']} | {worst_s:.2f} | {_yes(worst_s <= TARGETS['scoring'])} |"
        )
        lines.append(
            f"| SHAD total / SFT epoch <= {TARGETS['shad_total']} (1 % ratio binding, projected) | {worst_p:.2f} | {_yes(worst_p <= TARGETS['shad_total'])} |"
        )
    vocab = [r for r in report.get("vocab_summary", []) if "error" not in r]
    if len(vocab) > 1:
        beyond = [r["beyond_chunk_mib"] for r in vocab]
        spread = max(beyond) - min(beyond)
        flat = spread <= 0.05 * max(r["naive_mib"] for r in vocab)
        lines.append(
            f"| log-prob peak beyond one chunk flat in vocab | {min(beyond):.0f}-{max(beyond):.0f} MiB | {_yes(flat)} |"
        )
    return "\n".join(lines)


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def machine() -> dict[str, Any]:
    """CPU model, cores, RAM and package versions, for the docs."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kib = next(
        (
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        0,
    )
    versions = {}
    for name in ("torch", "transformers", "trl", "peft", "accelerate", "bitsandbytes", "datasets"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "versions": versions,
        "loadavg_start": os.getloadavg(),
    }


# ---- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smoke run on the tiny model (< 60 s)")
    parser.add_argument("--out", help="write every measurement and summary to this JSON file")
    parser.add_argument(
        "--sizes", default="tiny,20m,100m", help="comma-separated: tiny, 20m, 100m, 500m (GPU)"
    )
    parser.add_argument(
        "--parts", default="step,shad,head,vocab", help="comma-separated: step, shad, head, vocab"
    )
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="cuda: bf16 autocast and torch.cuda.max_memory_allocated (benchmarks/gpu_check.sh)",
    )
    parser.add_argument("--reps", type=int, help="repetitions per step group (default: per size)")
    parser.add_argument(
        "--threads",
        type=int,
        help="torch threads per child (default: 2; 1 for the tiny model, whose ops are too small to "
        "split and stall on thread barriers when the cores are shared)",
    )
    return parser.parse_args(argv)


def _set_environment() -> None:
    """Offline mode and quiet libraries, inherited by every child (threads are set per child)."""
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(name, "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    _set_environment()
    sizes = [s for s in args.sizes.split(",") if s]
    parts = set(args.parts.split(","))
    plan = quick_plan(args.device) if args.quick else full_plan(sizes, args.reps, args.device)
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f} s] {message}", file=sys.stderr, flush=True)

    def threads(name: str) -> int:
        return args.threads or plan.threads.get(name, 2)

    used = {name: threads(name) for name in [*sizes, "vocab"]}
    report: dict[str, Any] = {
        "machine": machine(),
        "quick": args.quick,
        "threads": used,
        "device": args.device,
    }

    def save() -> None:
        """Write the report so far to --out, atomically (a run cut short keeps what it measured)."""
        if args.out:
            tmp = Path(f"{args.out}.tmp")
            tmp.write_text(json.dumps(report, indent=1, default=str))
            os.replace(tmp, args.out)

    def save_steps(groups: list[dict[str, Any]]) -> None:
        report["step"] = groups
        save()

    if "step" in parts:
        report["step"] = run_steps(plan, threads, log, save_steps)
        for group in report["step"]:
            group["summary"] = summarise_step(group)
        save()
    if "shad" in parts:
        report["shad"] = run_shad(plan, threads, log)
        for result in report["shad"]:
            result["summary"] = summarise_shad(result)
        save()
    if "head" in parts and plan.head:
        report["head"] = run_head(plan, threads, log)
        save()
    if "vocab" in parts:
        report["vocab"] = run_vocab(plan, threads, log)
        report["vocab_summary"] = summarise_vocab(report["vocab"])
    report["seconds"] = time.perf_counter() - started
    report["machine"]["loadavg_end"] = os.getloadavg()
    save()  # before rendering, so a table that fails to render loses no data
    print(render(report, plan))
    return report


def render(report: dict[str, Any], plan: Plan) -> str:
    """All tables as markdown."""
    m = report["machine"]
    out = [
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB; threads {report['threads']}; "
        f"load average {m['loadavg_start'][0]:.1f} -> {m['loadavg_end'][0]:.1f}; "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
        f"Run time: {report['seconds']:.0f} s",
    ]
    if "step" in report:
        out += ["", "### Step time and peak RSS", "", step_table(report["step"])]
    if "shad" in report:
        out += ["", "### SHAD", "", shad_table(report["shad"])]
    if "head" in report:
        out += ["", "### LM-head cost decomposition", "", head_table(report["head"])]
    if "vocab" in report:
        out += [
            "",
            "### Log-prob memory vs vocabulary",
            "",
            vocab_table(report["vocab_summary"], plan.vocab[0]),
        ]
    out += ["", "### Targets", "", targets_table(report)]
    return "\n".join(out)


if __name__ == "__main__":
    main()
