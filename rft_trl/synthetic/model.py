"""Hub-free tiny Llama checkpoints (tokenizer + random model), cached on disk by a hash of their recipe."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerBase

from rft_trl.cache_root import default_cache_dir
from rft_trl.synthetic import phrasing
from rft_trl.synthetic.catalog import default_world
from rft_trl.synthetic.corpus import generate_samples
from rft_trl.synthetic.tokenizer import CHAT_TEMPLATE, train_tokenizer, world_text

# Bump when the build changes in a way the recipe fields do not capture.
BUILD_VERSION = 1
RECIPE_FILE = "rft_trl_recipe.json"


@dataclass(frozen=True)
class TinyRecipe:
    """Everything that determines a tiny checkpoint."""

    seed: int = 0
    vocab_size: int = 1024
    tokenizer_samples: int = 2000
    hidden_size: int = 64
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 4
    intermediate_size: int = 128
    max_position_embeddings: int = 2048

    def fingerprint(self) -> str:
        """Hash of the recipe, the build version and the corpus generator's output."""
        payload = {
            "recipe": asdict(self),
            "build": BUILD_VERSION,
            "corpus": _corpus_fingerprint(),
            "template": CHAT_TEMPLATE,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _corpus_fingerprint() -> str:
    # The tokenizer is trained on corpus text: any change to the world, the phrasings or the
    # generator must give a new checkpoint.
    stock = {name: value for name, value in vars(phrasing).items() if name.isupper()}
    samples = [s.messages for s in generate_samples(8, "mixed", 0, split="fingerprint")]
    payload = json.dumps([list(world_text(default_world())), stock, samples])
    return hashlib.sha256(payload.encode()).hexdigest()


def build_tiny_model(
    tokenizer: PreTrainedTokenizerBase,
    *,
    hidden_size: int = 64,
    num_hidden_layers: int = 2,
    num_attention_heads: int = 4,
    num_key_value_heads: int | None = None,
    intermediate_size: int = 128,
    max_position_embeddings: int = 2048,
    seed: int = 0,
) -> LlamaForCausalLM:
    """A randomly initialised LlamaForCausalLM sized for `tokenizer` (seeded, untied embeddings)."""
    if hidden_size % num_attention_heads:
        raise ValueError(
            f"hidden_size={hidden_size} is not divisible by num_attention_heads={num_attention_heads}; "
            "pick sizes with hidden_size % num_attention_heads == 0"
        )
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        num_key_value_heads=num_key_value_heads or num_attention_heads,
        intermediate_size=intermediate_size,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return model


def save_tiny_checkpoint(path: str | os.PathLike[str], recipe: TinyRecipe | None = None) -> Path:
    """Build the tokenizer and model of `recipe` and save both to exactly `path`."""
    recipe = recipe or TinyRecipe()
    path = Path(path)
    tokenizer = train_tokenizer(
        vocab_size=recipe.vocab_size,
        n_samples=recipe.tokenizer_samples,
        seed=recipe.seed,
        model_max_length=recipe.max_position_embeddings,
    )
    model = build_tiny_model(
        tokenizer,
        hidden_size=recipe.hidden_size,
        num_hidden_layers=recipe.num_hidden_layers,
        num_attention_heads=recipe.num_attention_heads,
        num_key_value_heads=recipe.num_key_value_heads,
        intermediate_size=recipe.intermediate_size,
        max_position_embeddings=recipe.max_position_embeddings,
        seed=recipe.seed,
    )
    path.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(path)
    model.save_pretrained(path)
    (path / RECIPE_FILE).write_text(
        json.dumps({"fingerprint": recipe.fingerprint(), **asdict(recipe)}, indent=2)
    )
    return path


def build_tiny_checkpoint(
    cache_dir: str | os.PathLike[str] | None = None,
    recipe: TinyRecipe | None = None,
    **overrides: Any,
) -> Path:
    """Path of the tiny checkpoint for `recipe` (+ overrides) under `cache_dir`, built once and reused."""
    unknown = set(overrides) - set(asdict(TinyRecipe()))
    if unknown:
        raise ValueError(
            f"unknown recipe fields {sorted(unknown)}; use fields of TinyRecipe: {sorted(asdict(TinyRecipe()))}"
        )
    recipe = replace(recipe or TinyRecipe(), **overrides)
    fingerprint = recipe.fingerprint()
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = root / f"tiny-llama-{fingerprint}"
    if _is_complete(target, fingerprint):
        return target
    root.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename, so concurrent builders (pytest-xdist) never see half a checkpoint.
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=root))
    try:
        save_tiny_checkpoint(staging, recipe)
        if target.exists() and not _is_complete(target, fingerprint):
            shutil.rmtree(target, ignore_errors=True)
        try:
            staging.rename(target)
        except OSError:
            if not _is_complete(
                target, fingerprint
            ):  # another process won the race with a good copy
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _is_complete(path: Path, fingerprint: str) -> bool:
    try:
        meta = json.loads((path / RECIPE_FILE).read_text())
    except (OSError, ValueError):
        return False
    return meta.get("fingerprint") == fingerprint and (path / "model.safetensors").exists()
