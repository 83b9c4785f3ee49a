"""Write the tiny model and synthetic agent data that `plugin_configs/axolotl/tiny-cpu.yaml` uses.

    python -m rft_trl.integrations.axolotl.example rft-tiny   # then: axolotl train tiny-cpu.yaml

The model is the hub-free tiny Llama of `rft_trl.synthetic` (its chat template has system, user,
assistant and tool roles, which Axolotl's `chat_template` type maps as they are); the data is
multi-turn ReAct/JSON tool-use traces as `messages` in JSON lines.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

MODEL_DIR = "model"
TRAIN_FILE = "train.jsonl"


def write_tiny_assets(out_dir: str | Path, num_samples: int = 64, seed: int = 0) -> Path:
    """Create `out_dir/model` (tokenizer + tiny Llama) and `out_dir/train.jsonl`; returns `out_dir`."""
    from rft_trl.synthetic import build_tiny_checkpoint, generate_samples

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_dir = out / MODEL_DIR
    if not (model_dir / "config.json").exists():
        shutil.copytree(build_tiny_checkpoint(), model_dir, dirs_exist_ok=True)
    samples = generate_samples(num_samples, "mixed", seed=seed)
    staging = out / f".{TRAIN_FILE}.tmp"
    with staging.open("w") as f:
        for sample in samples:
            f.write(json.dumps({"id": sample.sample_id, "messages": sample.messages}) + "\n")
    staging.replace(out / TRAIN_FILE)
    return out


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: write the assets to the given directory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", default="rft-tiny", help="default: ./rft-tiny")
    parser.add_argument("--num-samples", type=int, default=64)
    args = parser.parse_args(argv)
    out = write_tiny_assets(args.out_dir, args.num_samples)
    print(f"wrote {out / MODEL_DIR} and {out / TRAIN_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
