"""Can a demo base already do the task in its own (non-agent) forms? The check behind docs/demo.md's recipe table.

    python benchmarks/base_competence.py --base ~/.cache/rft-trl/demo-base-<fingerprint>
    python benchmarks/base_competence.py --base DIR --samples 100 --threads 2

For held-out requests (a corpus seed the pretraining text does not use), the base greedily
continues `Request: <request>` and the first line is compared with the request's first call in
each of the six pretraining call forms (`rft_trl.synthetic.pretrain_text.render_call`):
- `first_call_exact`: the line is exactly that call in one of the forms (tool name and every
  argument value copied right);
- `tool_name`: the line contains the right tool name.
A base near 0 on `first_call_exact` cannot copy argument values from its input yet, so no LoRA
budget will get the agent task's exact match far above 0 (docs/demo.md).

`--spoken-values` states the requests' dates, times and small numbers in words (the corpus option
of the same name); `rewrite_exact` is then `first_call_exact` over the requests whose first call
must rewrite such a value, i.e. whether the base has learned that mapping in its own forms.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

for _name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_name, "1")

import torch  # noqa: E402


@torch.no_grad()
def competence(
    model, tokenizer, samples: int = 100, seed: int = 1, spoken: bool = False
) -> dict[str, Any]:
    """Share of held-out requests whose greedy first line is the exact first call (any form) /
    names its tool; with `spoken` the requests say values in words, and rewrites count apart."""
    from rft_trl.shad.score import model_device
    from rft_trl.synthetic import default_world, make_split_samples
    from rft_trl.synthetic.corpus import rewrites_a_value
    from rft_trl.synthetic.pretrain_text import CALL_FORMS, render_call

    _, test = make_split_samples(
        1, samples, family="react", seed=seed, min_tools=2, max_tools=4, spoken_values=spoken
    )
    world = default_world()
    model.eval()
    device = model_device(model)
    exact = named = rewrites = rewrites_exact = 0
    for sample in test:
        request = next(m["content"] for m in sample.messages if m["role"] == "user")
        batch = tokenizer(f"Request: {request}\n", return_tensors="pt").to(device)
        out = model.generate(
            **batch, max_new_tokens=48, do_sample=False, pad_token_id=tokenizer.pad_token_id
        )
        text = tokenizer.decode(out[0, batch["input_ids"].shape[1] :], skip_special_tokens=True)
        first = text.split("\n")[0].strip()
        call = sample.calls[0]
        right = first in {render_call(call, form) for form in CALL_FORMS}
        exact += right
        named += call.name in first
        if spoken and rewrites_a_value(sample, world):
            rewrites += 1
            rewrites_exact += right
    result: dict[str, Any] = {
        "samples": len(test),
        "first_call_exact": exact / len(test),
        "tool_name": named / len(test),
    }
    if spoken:
        result["rewrite_samples"] = rewrites
        result["rewrite_exact"] = rewrites_exact / rewrites if rewrites else None
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", required=True, help="A demo base folder (model + tokenizer).")
    parser.add_argument("--samples", type=int, default=100, help="Held-out requests (default 100).")
    parser.add_argument(
        "--seed", type=int, default=1, help="Corpus seed of the requests (default 1)."
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads.")
    parser.add_argument(
        "--spoken-values",
        action="store_true",
        help="Requests say dates, times and small numbers in words; adds rewrite_exact.",
    )
    parser.add_argument(
        "--device",
        default="cpu",
        choices=("cpu", "cuda"),
        help="Where to run the base (default cpu).",
    )
    args = parser.parse_args(argv)
    if not os.path.isdir(args.base):
        parser.error(
            f"--base {args.base} is not a folder; pass a demo base (e.g. from `rft-trl demo`)"
        )
    if args.samples < 1:
        parser.error(f"--samples {args.samples}: pass at least 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda, but torch sees no CUDA GPU here; use --device cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.base)
    model = AutoModelForCausalLM.from_pretrained(args.base, dtype=torch.float32).to(args.device)
    result = competence(model, tokenizer, args.samples, args.seed, args.spoken_values)
    print(json.dumps({"base": args.base, **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
