"""Shared pytest fixtures. Tests never reach a hub: the tiny checkpoint and the data are built locally."""

from __future__ import annotations

import importlib.util
import os
from types import ModuleType

for _name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ[_name] = "1"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from rft_trl.synthetic import (  # noqa: E402
    Sample,
    build_tiny_checkpoint,
    generate_samples,
    to_messages_dataset,
    to_prompt_completion_dataset,
    tokenize_example,
)

# ----------------------------------------------------------------------------- runtime

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="session")
def benchmark_script():
    """Import a script of benchmarks/ by name (they are scripts, not a package)."""

    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture
def single_thread_torch() -> Iterator[None]:
    """Run torch on one thread: tiny models gain nothing from more, and on a shared 2-core machine
    extra threads oversubscribe the CPU (a 1 s training test took 30 s under load)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def one_thread_per_module() -> Iterator[None]:
    """`single_thread_torch` for a whole module (use via `pytestmark = usefixtures(...)`)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# ----------------------------------------------------------------------------- synthetic world


@pytest.fixture(scope="session")
def tiny_checkpoint() -> Path:
    """Directory with the default tiny Llama and its tokenizer (cached in $RFT_TRL_CACHE or ~/.cache/rft-trl)."""
    return build_tiny_checkpoint()


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_checkpoint: Path) -> PreTrainedTokenizerBase:
    """The tiny checkpoint's tokenizer (shared: do not mutate)."""
    return AutoTokenizer.from_pretrained(tiny_checkpoint)


@pytest.fixture
def tiny_model(tiny_checkpoint: Path) -> PreTrainedModel:
    """A fresh copy of the tiny model for each test (training mutates it)."""
    return AutoModelForCausalLM.from_pretrained(tiny_checkpoint)


@pytest.fixture(scope="session")
def synthetic_samples() -> list[Sample]:
    """32 mixed ReAct/JSON training samples."""
    return generate_samples(32, "mixed", seed=0)


@pytest.fixture(scope="session")
def messages_dataset(synthetic_samples: list[Sample]) -> Dataset:
    """`synthetic_samples` as a conversational `messages` dataset."""
    return to_messages_dataset(synthetic_samples)


@pytest.fixture(scope="session")
def prompt_completion_dataset(synthetic_samples: list[Sample]) -> Dataset:
    """`synthetic_samples` as a conversational prompt/completion dataset."""
    return to_prompt_completion_dataset(synthetic_samples)


@pytest.fixture(scope="session")
def shad_traces(tiny_tokenizer: PreTrainedTokenizerBase) -> Dataset:
    """16 multi-turn traces tokenized like SFTTrainer (assistant-only loss, max_length 640, the SHAD
    tests' MAX_LENGTH), plus an extra `sample_id` column that labelling must keep."""
    samples = generate_samples(16, "mixed", seed=3)
    rows = [tokenize_example(tiny_tokenizer, s, form="messages", max_length=640) for s in samples]
    return Dataset.from_list(
        [{**r, "sample_id": s.sample_id} for r, s in zip(rows, samples, strict=True)]
    )
