"""Random tokenized rows, a word-level tokenizer and a tiny Llama for exact trainer tests.

Random token ids are ideal for invariance tests: nothing in them is special, and every
expected value can be recomputed by hand. Also imported by the torchrun worker script.
"""

from __future__ import annotations

import random

import torch
from datasets import Dataset
from peft import LoraConfig
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import WhitespaceSplit
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

VOCAB = 64


def tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer over `t1..t63` with `<pad>` = 0 and eos `t1`."""
    vocab = {"<pad>": 0, **{f"t{i}": i for i in range(1, VOCAB)}}
    backend = Tokenizer(WordLevel(vocab=vocab, unk_token="<pad>"))
    backend.pre_tokenizer = WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        eos_token="t1",
    )


def model(seed: int = 0, attn_implementation: str | None = None) -> LlamaForCausalLM:
    """A 2-layer Llama (hidden 32), initialised from `seed`."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    if attn_implementation is not None:
        config._attn_implementation = attn_implementation
    return LlamaForCausalLM(config)


def lora() -> LoraConfig:
    """LoRA with random A and B, so every adapter weight gets a gradient at step one."""
    return LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)


def rows(
    n: int = 8, seed: int = 0, *, min_len: int = 6, max_len: int = 20, all_reasoning: bool = False
):
    """`n` rows with a prompt (labels -100), a response, and a random `token_class`."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        length = rng.randint(min_len, max_len)
        ids = [rng.randrange(2, VOCAB) for _ in range(length)]
        prompt = rng.randint(2, length - 2)
        labels = [-100] * prompt + ids[prompt:]
        classes = [1 if all_reasoning else rng.randint(0, 1) for _ in ids[prompt:]]
        out.append({"input_ids": ids, "labels": labels, "token_class": [-100] * prompt + classes})
    return out


def dataset(n: int = 8, seed: int = 0, **kwargs) -> Dataset:
    """`rows` as a `datasets.Dataset`."""
    return Dataset.from_list(rows(n, seed, **kwargs))
