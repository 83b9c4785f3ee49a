"""The demo's standalone report.html: results table, SHAD labels vs ground truth as coloured tokens, loss curves.

Figures are matplotlib SVG inlined in the page, so the file has no external dependency. Every
piece of token or model text is HTML-escaped (training data can hold markup).
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rft_trl.demo.metrics import CATEGORY_ORDER
from rft_trl.synthetic import CATEGORIES, IGNORE_INDEX, REASONING_CATEGORIES
from rft_trl.synthetic.alignment import token_texts

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{margin-bottom:.2em} h2{margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.6em 0} td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f4f4f4} td:first-child,th:first-child{text-align:left}
.note{color:#555;font-size:.92em} .summary{background:#eef4fb;border-left:4px solid #4c72b0;padding:.5em .9em} .warn{background:#fff4e5;border-left:4px solid #f0a020;padding:.4em .8em}
.tokens{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.86em;white-space:pre-wrap;word-break:break-all;line-height:1.9}
.tok{border-radius:3px;padding:1px 0}
.b{background:#dfe7f5} .r{background:#ffc98f}
.miss{outline:2px solid #d33;outline-offset:-1px}
.legend span{margin-right:1.2em} .figure{margin:1em 0}
.ok{color:#1a7f37} .bad{color:#c62828}
pre{background:#f7f7f7;padding:.5em;white-space:pre-wrap;word-break:break-all}
"""


def _pct(value: float | None) -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{100 * value:.1f}%"
    )


def _num(value: float | None, digits: int = 3) -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{value:.{digits}f}"
    )


def _svg(fig) -> str:
    """A matplotlib figure as inline SVG markup (text kept as text)."""
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]
    # Drop the RDF metadata block (creation date, tool URLs): the page stays reproducible and self-contained.
    start, end = svg.find("<metadata>"), svg.find("</metadata>")
    if start >= 0 and end > start:
        svg = svg[:start] + svg[end + len("</metadata>") :]
    return svg


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.fonttype"] = "none"
    return plt


# ----------------------------------------------------------------------------- figures


def _log_if_wide(ax) -> None:
    """Log y-scale when the plotted losses span more than a factor of 5 (early vs late training)."""
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    values = [y for line in ax.get_lines() for y in line.get_ydata() if y is not None and y > 0]
    if values and max(values) / min(values) > 5:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())  # no "3x10^-1" beside "1.0"


def curves_figure(
    curves: dict[str, list[dict[str, float]]], rft_log: Sequence[dict[str, float]]
) -> str:
    """Held-out loss on ground-truth boilerplate vs reasoning tokens during SFT and RFT; RFT's own training log."""
    plt = _pyplot()
    panels = 3 if rft_log else 2
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.4))
    styles = {"sft": ("SFT", "#1f77b4"), "rft": ("RFT", "#d62728")}
    for ax, key, title in (
        (axes[0], "boilerplate_loss", "held-out loss, boilerplate tokens"),
        (axes[1], "reasoning_loss", "held-out loss, reasoning tokens"),
    ):
        for name, points in curves.items():
            label, colour = styles.get(name, (name, None))
            ax.plot(
                [p["step"] for p in points],
                [p[key] for p in points],
                marker="o",
                ms=3,
                label=label,
                color=colour,
            )
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("training step")
        ax.set_ylabel("mean token loss (nats)")
        _log_if_wide(ax)
        ax.grid(alpha=0.3)
        ax.legend()
    if rft_log:
        ax = axes[2]
        steps = [e["step"] for e in rft_log]
        ax.plot(
            steps,
            [e.get("boilerplate_loss") for e in rft_log],
            label="boilerplate (SHAD label)",
            color="#4c72b0",
        )
        ax.plot(
            steps,
            [e.get("reasoning_loss") for e in rft_log],
            label="reasoning (SHAD label)",
            color="#dd8452",
        )
        _log_if_wide(ax)
        ax.set_xlabel("training step")
        ax.set_ylabel("mean token loss (nats)")
        ax.set_title("RFT training batches (logged)", fontsize=10)
        ax.grid(alpha=0.3)
        twin = ax.twinx()
        twin.plot(
            steps,
            [e.get("reasoning_weight") for e in rft_log],
            "--",
            color="#555",
            label="reasoning weight",
        )
        twin.set_ylim(0, 1)
        twin.set_ylabel("mean reasoning weight")
        lines = ax.get_lines() + twin.get_lines()
        ax.legend(lines, [line.get_label() for line in lines], fontsize=8)
    fig.tight_layout()
    return _svg(fig)


def ld_figure(arrays: dict[str, np.ndarray], threshold: float) -> str:
    """Histogram of LD = l_s - l_o for truly-boilerplate and truly-reasoning tokens, with the threshold."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    ld = np.clip(arrays["ld"], -6, 4)
    bins = np.linspace(-6, 4, 61)
    ax.hist(ld[arrays["gt"] == 0], bins=bins, alpha=0.6, label="truly boilerplate", color="#4c72b0")
    ax.hist(ld[arrays["gt"] == 1], bins=bins, alpha=0.6, label="truly reasoning", color="#dd8452")
    ax.axvline(threshold, color="k", ls="--", lw=1, label=f"threshold {threshold:g}")
    ax.set_yscale("log")
    ax.set_title("SHAD's loss difference, by true role", fontsize=10)
    ax.set_xlabel("LD = loss after shuffle-tune - loss of base (nats, clipped to [-6, 4])")
    ax.set_ylabel("tokens")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _svg(fig)


def pretrain_figure(losses: Sequence[float]) -> str:
    """The base model's pretraining loss."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 2.6))
    ax.plot(range(1, len(losses) + 1), losses, lw=1)
    ax.set_xlabel("pretraining step")
    ax.set_ylabel("LM loss (nats)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _svg(fig)


# ----------------------------------------------------------------------------- tokens


def token_line(
    pieces: Sequence[str], classes: Sequence[int], truth: Sequence[int], tips: Sequence[str]
) -> str:
    """Tokens as spans coloured by `classes`, outlined in red where they disagree with `truth`."""
    spans = []
    for text, cls, gold, tip in zip(pieces, classes, truth, tips, strict=True):
        css = "tok " + ("r" if cls == 1 else "b") + (" miss" if cls != gold else "")
        shown = html.escape(text).replace("\n", "\u21b5\n")
        spans.append(f'<span class="{css}" title="{html.escape(tip)}">{shown}</span>')
    return "".join(spans)


def token_examples(labelled, tokenizer, n: int) -> str:
    """SHAD label and ground truth for the response tokens of the first `n` training rows, about
    half from each family (at least one each)."""
    table = token_texts(tokenizer)
    blocks = []
    shown: dict[str, int] = {}
    for row in labelled:
        family = row["family"]
        if shown.get(family, 0) >= max(1, (n + 1) // 2):
            continue
        shown[family] = shown.get(family, 0) + 1
        positions = [i for i, label in enumerate(row["labels"]) if label != IGNORE_INDEX]
        pieces = [table[row["input_ids"][i]] for i in positions]
        shad = [int(row["token_class"][i]) for i in positions]
        gold = [int(row["gt_class"][i]) for i in positions]
        tips = [
            f"LD {row['shad_l_s'][i] - row['shad_l_o'][i]:+.3f} (l_o {row['shad_l_o'][i]:.3f}, l_s {row['shad_l_s'][i]:.3f}); "
            f"truth: {CATEGORIES[row['gt_category'][i]]}"
            for i in positions
        ]
        agree = sum(a == b for a, b in zip(shad, gold, strict=True)) / max(1, len(gold))
        blocks.append(
            f"<h4>{html.escape(family)} sample {html.escape(str(row['sample_id']))} "
            f"<span class='note'>({100 * agree:.0f}% of tokens agree)</span></h4>"
            f"<div class='note'>SHAD label</div><div class='tokens'>{token_line(pieces, shad, gold, tips)}</div>"
            f"<div class='note'>ground truth</div><div class='tokens'>{token_line(pieces, gold, gold, tips)}</div>"
        )
        if len(blocks) >= n:
            break
    return "\n".join(blocks)


# ----------------------------------------------------------------------------- tables


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def results_table(m: dict[str, Any]) -> str:
    """SFT vs RFT on the held-out set."""
    ev = m["evaluation"]
    families = sorted({k.split("/")[0] for k in ev["sft"] if "/" in k})
    rows = []
    for name in ("sft", "rft"):
        e = ev[name]
        losses = m["heldout_group_losses"][name]
        rows.append(
            [
                name.upper(),
                _pct(e["exact_match"]),
                *[_pct(e.get(f"{f}/exact_match")) for f in families],
                _pct(e["format_valid"]),
                _num(losses["boilerplate_loss"]),
                _num(losses["reasoning_loss"]),
            ]
        )
    header = [
        "run",
        "exact match",
        *[f"exact match ({f})" for f in families],
        "format valid",
        "held-out loss, boilerplate",
        "held-out loss, reasoning",
    ]
    return _table(header, rows)


def _quality_row(name: str, q: dict[str, Any]) -> list[str]:
    """One row of the label table: accuracy, P/R/F1 of the reasoning class, AUROC, boilerplate share."""
    return [
        name,
        _pct(q["accuracy"]),
        _num(q["precision"]),
        _num(q["recall"]),
        _num(q["f1"]),
        _num(q["auroc"]),
        _pct(q["boilerplate_fraction"]),
    ]


def label_table(m: dict[str, Any]) -> str:
    """SHAD's labels (and simple baselines) against ground truth."""
    overall = {
        "accuracy": m["shad_token_accuracy"],
        "precision": m["shad_reasoning_precision"],
        "recall": m["shad_reasoning_recall"],
        "f1": m["shad_reasoning_f1"],
        "auroc": m["shad_auroc"],
        "boilerplate_fraction": m["boilerplate_fraction"],
    }
    rows = [_quality_row(f"SHAD (LD &gt; {m['shad_threshold']:g})", overall)]
    for family, b in m.get("shad_by_family", {}).items():
        rows.append(_quality_row(f"&nbsp;&nbsp;SHAD, {html.escape(family)} only", b))
    names = {
        "all_reasoning": "all tokens reasoning",
        "base_loss_at_true_prevalence": "base loss only (cut at true prevalence)",
    }
    for key, b in m.get("label_baselines", {}).items():
        rows.append(_quality_row(names.get(key, key), b))
    rows.append(
        [
            "ground truth",
            "100.0%",
            "1.000",
            "1.000",
            "1.000",
            "-",
            _pct(m["true_boilerplate_fraction"]),
        ]
    )
    return _table(
        [
            "labels",
            "token accuracy",
            "precision (reasoning)",
            "recall",
            "F1",
            "AUROC (of each row's score: LD for SHAD, base loss for its baseline)",
            "labelled boilerplate",
        ],
        rows,
    )


def category_table(m: dict[str, Any]) -> str:
    """Share of each ground-truth category's tokens that SHAD gives their true role."""
    cats = m.get("shad_category_agreement", {})
    keys = [c for c in (*CATEGORY_ORDER, "span_first", "span_inner") if c in cats]
    names = {
        "span_first": "reasoning, first token of a span",
        "span_inner": "reasoning, inner tokens",
    }
    for key in keys:
        if key not in names:
            role = "reasoning" if key in REASONING_CATEGORIES else "boilerplate"
            names[key] = f"{key.replace('_', ' ')} ({role})"
    return _table(
        ["ground-truth category (its role)", "labelled with its true role"],
        [[names[k], _pct(cats[k])] for k in keys],
    )


def _final(curves: dict[str, list[dict[str, float]]], run: str, key: str) -> str:
    """The last held-out value of one curve, for the caption."""
    points = curves.get(run) or []
    return f"{points[-1][key]:.3f}" if points and points[-1].get(key) is not None else "-"


def _verdict(generation: dict[str, Any]) -> str:
    if generation["exact_match"]:
        return "<span class='ok'>exact</span>"
    if generation["format_valid"]:
        return "<span class='bad'>valid format, wrong call</span>"
    return "<span class='bad'>invalid format</span>"


def generations_table(generations: dict[str, list[dict[str, Any]]]) -> str:
    """A few held-out prompts with the reference and both runs' responses."""
    parts = []
    for i, sft in enumerate(generations.get("sft", [])):
        rft = generations["rft"][i]
        parts.append(
            f"<h4>{html.escape(sft['family'])}: {html.escape(sft['request'])}</h4>"
            f"<div class='note'>reference</div><pre>{html.escape(sft['reference'])}</pre>"
            f"<div class='note'>SFT ({_verdict(sft)})</div><pre>{html.escape(sft['response'])}</pre>"
            f"<div class='note'>RFT ({_verdict(rft)})</div><pre>{html.escape(rft['response'])}</pre>"
        )
    return "\n".join(parts)


def timings_table(m: dict[str, Any]) -> str:
    """Seconds per phase (wall clock and CPU)."""
    rows = [
        [html.escape(k), f"{v:.1f}", f"{m['cpu_seconds'].get(k, float('nan')):.1f}"]
        for k, v in m["seconds"].items()
    ]
    if "total" not in m["seconds"]:  # the page is written before the run's total is known
        wall = sum(m["seconds"].values())
        cpu = sum(m["cpu_seconds"].get(k, 0.0) for k in m["seconds"])
        rows.append(["<b>total of the phases above</b>", f"{wall:.1f}", f"{cpu:.1f}"])
    return _table(["phase", "wall seconds", "CPU seconds (this process)"], rows)


# The base's pretraining forms (`BaseRecipe.call_forms`), in words.
_FORM_NAMES = {
    "function": "function-call syntax",
    "params": "<code>params = {...}</code> dicts",
    "record": "key-value records",
    "xml": "XML",
    "url": "URLs",
    "cli": "command lines",
    "labelled": "labelled <code>Tool:</code>/<code>Args:</code> slots",
    "keyed": "keyed JSON slots",
}


def _run_summary(m: dict[str, Any]) -> str:
    """What this run shows and does not show, from its own numbers (the page's first box)."""
    n = max(1, m["settings"]["n_test"])
    sft, rft = m["sft_exact_match"], m["rft_exact_match"]
    se = math.sqrt(max(sft * (1 - sft) + rft * (1 - rft), 1e-4) / n)
    delta = rft - sft
    if abs(delta) < 2 * se:
        exact = (
            f"RFT and SFT are level on exact match ({_pct(rft)} against {_pct(sft)}; the "
            f"difference, {100 * delta:+.1f} points, is within two standard errors of "
            f"{100 * se:.1f})"
        )
    else:
        exact = (
            f"RFT is {'above' if delta > 0 else 'below'} SFT on exact match by "
            f"{abs(100 * delta):.1f} points ({_pct(rft)} against {_pct(sft)}; standard error "
            f"{100 * se:.1f}), on one seed"
        )
    fmt = 100 * (m["rft_format_valid"] - m["sft_format_valid"])
    return (
        "<div class='summary'><b>What this run shows.</b> The whole pipeline runs on this machine: "
        "a base model built locally, SHAD labels for every response token, SFT and RFT trained "
        "with the same budget, and RFT's per-group losses logged. "
        f"{exact}; on format validity RFT is {fmt:+.1f} points. "
        f"SHAD's labels agree with the ground truth on {_pct(m['shad_token_accuracy'])} of "
        "response tokens (the paper reports under 3 % error for 8B models). <b>What it does not "
        "show:</b> whether RFT beats SFT, which needs many seeds and a larger base "
        "(<code>benchmarks/evidence.py</code> and docs/benchmarks.md in the source repository)."
        "</div>"
    )


_GLOSSARY = """<p class="note"><b>Terms.</b> <i>Boilerplate</i> tokens repeat across samples
(format, stock phrases); <i>reasoning</i> tokens depend on this sample's input (which tool,
which argument values, the plan's own words). <i>SHAD</i> (shuffle-aware discriminator)
briefly tunes a LoRA adapter on prompts paired with other samples' responses (the
<i>shuffle-tune</i>) and compares each token's loss before (l_o) and after (l_s):
<i>LD</i> = l_s - l_o, in nats; LD above the threshold means reasoning. <i>AUROC</i>: how
well a score ranks truly-reasoning tokens above boilerplate (0.5 is chance; below 0.5 the score
points the other way). The <i>prompt-swap probe</i> checks that the base reads its prompt at
all: it scores responses under another sample's prompt.</p>"""


# ----------------------------------------------------------------------------- page


def write_report(
    path: Path,
    metrics: dict[str, Any],
    *,
    labelled,
    tokenizer,
    arrays: dict[str, np.ndarray],
    pretrain_loss: Sequence[float],
    generations: dict[str, list[dict[str, Any]]],
    n_examples: int = 6,
) -> Path:
    """Write the standalone HTML report to `path`."""
    m = metrics
    shad = m["shad_report"]
    base = m["base"]
    warnings = "".join(f"<p class='warn'>{html.escape(w)}</p>" for w in shad.get("warnings", []))
    settings = m["settings"]
    budget = settings["budget"]
    delta = m["rft_exact_match"] - m["sft_exact_match"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v is not None)
    forms = ", ".join(_FORM_NAMES.get(f, f) for f in base["recipe"].get("call_forms", ()))
    parameters = base.get("parameters")
    size = f"{parameters / 1e6:.2f} M" if parameters else "?"
    body = f"""
<h1>rft-trl demo report</h1>
<p class="note">Seed {m["seed"]}{" (quick smoke preset: numbers are not meaningful)" if settings["quick"] else ""};
{settings["n_train"]} training and {settings["n_test"]} held-out samples of the synthetic agent corpus (ReAct and JSON function calling);
SFT and RFT each trained {budget["steps"]} LoRA steps (rank {budget["lora_r"]}) of {budget["batch_size"]} samples at learning rate {budget["learning_rate"]:g}
from the same base. Versions: {html.escape(versions)}.</p>
{_run_summary(m)}

<h2>1. Results on the held-out set</h2>
<p>Greedy generation of the first assistant turn, scored by the corpus evaluator (<i>exact match</i>: every tool
name and argument value of that turn right; <i>format valid</i>: the turn parses as the agent format). Losses are
held-out nats per token, grouped by the ground truth. RFT minus SFT exact match: <b>{100 * delta:+.1f} points</b>
(one seed; the standard error of one accuracy at n = {settings["n_test"]} is about
{100 * math.sqrt(max(m["sft_exact_match"] * (1 - m["sft_exact_match"]), 0.01) / max(1, settings["n_test"])):.1f} points, so run
<code>benchmarks/evidence.py</code> for a verdict across seeds).</p>
{results_table(m)}

<h2>2. SHAD labels against ground truth</h2>
{_GLOSSARY}
<p>SHAD labelled {_pct(m["boilerplate_fraction"])} of response tokens boilerplate (truth: {_pct(m["true_boilerplate_fraction"])}).
Prompt-swap readiness probe: {html.escape(shad.get("probe_verdict") or "-")}</p>
{warnings}
{label_table(m)}
{category_table(m)}
<div class="figure">{ld_figure(arrays, m["shad_threshold"])}</div>
<p class="note">SHAD calls a token reasoning when shuffle-tuning (training on prompts paired with other samples' responses)
made it harder to predict: LD &gt; threshold. Boilerplate is learned from any pairing, so its LD should be negative;
where the two colours overlap, no threshold separates them.</p>

<h3>Token-coloured examples (training rows)</h3>
<p class="legend"><span class="tok b">&nbsp;boilerplate&nbsp;</span><span class="tok r">&nbsp;reasoning&nbsp;</span>
<span class="tok b miss">&nbsp;SHAD disagrees with the truth&nbsp;</span> Hover a token for its LD, losses and true category;
&#8629; marks a newline.</p>
{token_examples(labelled, tokenizer, n_examples)}

<h2>3. Loss on boilerplate vs reasoning tokens during training</h2>
<p>The paper's central analysis: boilerplate is learned early, after which plain SFT keeps spending gradient on it,
while RFT's softmax weighting gives more weight to whichever group is still harder. What to look for: the reasoning
curve (middle) ending lower for RFT than for SFT. In this run it ends at {_final(m["curves"], "rft", "reasoning_loss")}
for RFT against {_final(m["curves"], "sft", "reasoning_loss")} for SFT, and boilerplate at
{_final(m["curves"], "rft", "boilerplate_loss")} against {_final(m["curves"], "sft", "boilerplate_loss")}.
Left and middle: loss on a fixed held-out subset, grouped by ground truth, for both runs.
Right: what RFT itself logged on its training batches (grouped by SHAD's labels) and its mean reasoning weight
w_r = sigmoid((L_r - L_b) / tau); it is below 0.5 while the tokens SHAD labels reasoning are easier than the rest.</p>
<div class="figure">{curves_figure(m["curves"], m.get("rft_train_log", []))}</div>

<h2>4. Example generations</h2>
{generations_table(generations)}

<h2>5. The base model</h2>
<p>A {size}-parameter Llama ({base["recipe"]["num_hidden_layers"]} layers, hidden {base["recipe"]["hidden_size"]},
vocabulary {base["recipe"]["vocab_size"]}), pretrained for {base["recipe"]["pretrain_steps"]} steps on same-world text that pairs requests with
their calls in other forms ({forms}) but never the agent response templates
({"built in this run" if base["built_now"] else "loaded from the cache"}: {html.escape(base["path"])}). docs/demo.md in the
source repository says why.</p>
<div class="figure">{pretrain_figure(pretrain_loss) if pretrain_loss else ""}</div>

<h2>6. Time per phase</h2>
{timings_table(m)}
"""
    page = f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>rft-trl demo report</title><style>{_CSS}</style></head><body>{body}</body></html>\n"
    path.write_text(page, encoding="utf-8")
    return path
