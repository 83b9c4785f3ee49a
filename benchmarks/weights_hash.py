"""What hashing every byte of the weights (SHAD's cache key) costs, for Llama shapes up to 663 M.

    python benchmarks/weights_hash.py              # figures in docs/benchmarks.md §1
    python benchmarks/weights_hash.py --quick      # one tiny model (smoke)

The cache key hashes each base tensor in full with xxh3-128 (`rft_trl.shad.cache.weights_fingerprint`),
so a checkpoint that differs from another in a few rows gets another entry. This times it on the
CPU for fp32 and bf16 copies of randomly initialised models (the values do not change the cost).
"""

from __future__ import annotations

import argparse
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from rft_trl.shad.cache import weights_fingerprint

SHAPES = {
    "tiny": dict(vocab_size=1024, hidden_size=64, intermediate_size=128, num_hidden_layers=2),
    "100m": dict(vocab_size=32000, hidden_size=768, intermediate_size=2048, num_hidden_layers=8),
    "500m": dict(
        vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24
    ),  # Qwen2.5-0.5B's shape, as perf.py's GPU size
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Only the tiny model.")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print("| model | parameters | dtype | GiB | seconds (min of repeats) | GiB/s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, shape in SHAPES.items():
        if args.quick and name != "tiny":
            continue
        heads = max(2, shape["hidden_size"] // 64)
        model = LlamaForCausalLM(
            LlamaConfig(**shape, num_attention_heads=heads, num_key_value_heads=heads)
        )
        count = sum(p.numel() for p in model.parameters())
        for dtype in (torch.float32, torch.bfloat16):
            model = model.to(dtype)
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                weights_fingerprint(model)
                times.append(time.perf_counter() - start)
            gib = count * torch.finfo(dtype).bits / 8 / 2**30
            best = min(times)
            print(
                f"| {name} | {count / 1e6:.1f} M | {str(dtype).removeprefix('torch.')} | "
                f"{gib:.2f} | {best:.3f} | {gib / best:.1f} |"
            )


if __name__ == "__main__":
    main()
