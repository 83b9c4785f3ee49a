"""Models, tokenizers, rows and memory probes shared by the `perf.py` children (hub-free)."""

from __future__ import annotations

import contextlib
import os
import random
import resource
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch


@dataclass(frozen=True)
class ModelSize:
    """A Llama shape plus the batch shape benchmarked with it."""

    name: str
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    seq_len: int
    batch_size: int
    lora_r: int = 16

    def config(self):
        """The `LlamaConfig` of this size (untied embeddings, like most Llama checkpoints)."""
        from transformers import LlamaConfig

        return LlamaConfig(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            num_key_value_heads=self.num_attention_heads,
            intermediate_size=self.intermediate_size,
            max_position_embeddings=max(2048, self.seq_len),
            tie_word_embeddings=False,
            pad_token_id=0,
            eos_token_id=1,
            bos_token_id=2,
        )


SIZES: dict[str, ModelSize] = {
    # The tiny model of rft_trl.synthetic (the demo's and the SHAD tests' model).
    "tiny": ModelSize("tiny", 1024, 64, 2, 4, 128, seq_len=128, batch_size=8),
    # The reference point: ~20M parameters, vocab 32k, seq 256, batch 4, LoRA r16.
    "20m": ModelSize("20m", 32000, 256, 4, 4, 688, seq_len=256, batch_size=4),
    # ~106M parameters (vocab 32k x 768 embeddings and head, 8 layers), seq 1024.
    "100m": ModelSize("100m", 32000, 768, 8, 12, 2048, seq_len=1024, batch_size=2),
    # GPU only: Qwen2.5-0.5B's shape (vocab 152k, hidden 896, 24 layers, MLP 4864; untied, full
    # KV heads: 663M parameters) at seq 2048, batch 2 -- where a large vocabulary meets a GPU.
    "500m": ModelSize("500m", 151936, 896, 24, 14, 4864, seq_len=2048, batch_size=2),
}


def size_dict(size: ModelSize) -> dict[str, Any]:
    """The size as JSON-friendly values, with the parameter count."""
    return {**asdict(size), "parameters": count_parameters(size)}


def count_parameters(size: ModelSize) -> int:
    """Parameters of the Llama shape (embeddings + head + layers + norms), without building it."""
    h, i, v, n = size.hidden_size, size.intermediate_size, size.vocab_size, size.num_hidden_layers
    per_layer = 4 * h * h + 3 * h * i + 2 * h
    return 2 * v * h + n * per_layer + h


def set_threads(threads: int) -> None:
    """Pin torch's intra-op threads (the env vars are set by the parent for BLAS/OpenMP)."""
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)


def quiet_libraries() -> None:
    """No progress bars or advisory warnings from the libraries in benchmark children."""
    import warnings

    import transformers

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def tokenizer(vocab_size: int):
    """A word-level tokenizer over ids 0..vocab-1 (`<pad>`=0, eos `t1`); only its ids are used."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, **{f"t{i}": i for i in range(1, vocab_size)}}
    backend = Tokenizer(WordLevel(vocab=vocab, unk_token="<pad>"))
    backend.pre_tokenizer = WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="t1")


def rows(
    n: int, size: ModelSize, seed: int = 0, *, response_fraction: float | None = None
) -> list[dict[str, list[int]]]:
    """`n` random rows of length U[seq/2, seq], a prompt (labels -100) then a response with `token_class`.

    The prompt takes U[0.3, 0.7] of each row unless `response_fraction` fixes the response share;
    classes are 0/1 at random (timing does not depend on their values).
    """
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        length = rng.randint(size.seq_len // 2, size.seq_len)
        share = response_fraction if response_fraction is not None else rng.uniform(0.3, 0.7)
        prompt = min(length - 2, max(1, round(length * (1 - share))))
        ids = [rng.randrange(3, size.vocab_size) for _ in range(length)]
        labels = [-100] * prompt + ids[prompt:]
        classes = [-100] * prompt + [rng.randint(0, 1) for _ in ids[prompt:]]
        out.append({"input_ids": ids, "labels": labels, "token_class": classes})
    return out


def dataset(n: int, size: ModelSize, seed: int = 0, *, with_classes: bool = True, **kwargs):
    """`rows` as a `datasets.Dataset` (without `token_class` for the SFT baselines)."""
    from datasets import Dataset

    data = rows(n, size, seed, **kwargs)
    if not with_classes:
        data = [{k: v for k, v in row.items() if k != "token_class"} for row in data]
    return Dataset.from_list(data)


def build_model(size: ModelSize, seed: int = 0):
    """A randomly initialised fp32 `LlamaForCausalLM` of `size` (SDPA attention)."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(size.config(), attn_implementation="sdpa")


def checkpoint_dir(size: ModelSize, root: str | None = None, seed: int = 0) -> str:
    """A saved copy of `build_model(size)` (for 4-bit loading), made once per size and root."""
    base = Path(root or os.environ.get("RFT_PERF_CKPT") or tempfile.gettempdir())
    path = base / f"rft-perf-{size.name}-{seed}"
    if not (path / "config.json").exists():
        tmp = Path(tempfile.mkdtemp(dir=base))
        build_model(size, seed).save_pretrained(tmp)
        tokenizer(size.vocab_size).save_pretrained(tmp)
        with contextlib.suppress(OSError):  # another process saved it first
            tmp.rename(path)
    return str(path)


def load_4bit(size: ModelSize, root: str | None = None, device: str = "cpu"):
    """`build_model(size)` quantised to bnb NF4 (QLoRA): fp32 compute on CPU, bf16 on CUDA."""
    from transformers import BitsAndBytesConfig, LlamaForCausalLM

    compute = torch.bfloat16 if device == "cuda" else torch.float32
    quant = BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute
    )
    return LlamaForCausalLM.from_pretrained(
        checkpoint_dir(size, root),
        quantization_config=quant,
        dtype=torch.float32,
        attn_implementation="sdpa",
        device_map={"": 0} if device == "cuda" else None,
    )


def lora_config(size: ModelSize):
    """LoRA r16 on every linear layer except the LM head (as `target_modules='all-linear'`)."""
    from peft import LoraConfig

    return LoraConfig(
        r=size.lora_r, lora_alpha=2 * size.lora_r, lora_dropout=0.0, target_modules="all-linear"
    )


# ---- memory -------------------------------------------------------------------------------------


class MemoryMeter:
    """Peak memory of a measured phase: process RSS on CPU, `max_memory_allocated` on CUDA."""

    def __init__(self, device: str = "cpu") -> None:
        self.cuda = device == "cuda"
        self.reset_ok = True

    def start(self) -> int:
        """Reset the peak; the memory in use now (the phase's baseline)."""
        self.sync()
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
            return torch.cuda.memory_allocated()
        self.reset_ok = reset_peak_rss()
        return rss_bytes()

    def peak(self) -> int:
        """Peak since `start` (the whole process's peak RSS if the reset was refused)."""
        self.sync()
        if self.cuda:
            return torch.cuda.max_memory_allocated()
        return peak_rss_bytes() if self.reset_ok else lifetime_peak_rss_bytes()

    def sync(self) -> None:
        """Wait for queued GPU work, so wall-clock times and peaks are complete."""
        if self.cuda:
            torch.cuda.synchronize()


def rss_bytes() -> int:
    """Current resident set size of this process."""
    return _status_kib("VmRSS") * 1024


def peak_rss_bytes() -> int:
    """Peak resident set size since start (or since the last `reset_peak_rss`)."""
    return _status_kib("VmHWM") * 1024


def lifetime_peak_rss_bytes() -> int:
    """Peak RSS of the whole process (getrusage; never reset)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (Linux `clear_refs` 5); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0
