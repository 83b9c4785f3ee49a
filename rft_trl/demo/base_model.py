"""A competent tiny base model, built hub-free: tokenizer, same-world pretraining, and a disk cache.

SHAD needs a base that already reads its input but does not know the agent response template
(the method's premise; docs/demo.md). A random tiny Llama labels almost everything boilerplate,
so the demo pretrains one on `rft_trl.synthetic.pretrain_text` first. The result is cached under
the recipe's hash; a changed recipe builds a new base, a corrupt cache entry is rebuilt.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import multiprocessing
import os
import random
import secrets
import shutil
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerBase,
)

from rft_trl.cache_root import default_cache_dir
from rft_trl.synthetic import IGNORE_INDEX, generate_samples, train_tokenizer
from rft_trl.synthetic.pretrain_text import CALL_FORMS, TextDocument, pretraining_items
from rft_trl.synthetic.tokenizer import CHAT_TEMPLATE, corpus_text

# Bump when the build changes in a way the recipe fields do not capture.
BUILD_VERSION = 1
META_FILE = "demo_base.json"
WEIGHTS_FILE = "model.safetensors"


@dataclass(frozen=True)
class BaseRecipe:
    """Everything that determines the demo's base model (docs/demo.md explains each choice)."""

    seed: int = 0
    vocab_size: int = 2048
    # pretraining documents (and, with tokenizer_sees_agent_text, agent-corpus samples) the BPE is trained on
    tokenizer_samples: int = 1000
    # False: the BPE learns only from pretraining text, as a real LLM's tokenizer does, so every token
    # of an agent response has an embedding the base has trained (LoRA cannot train embeddings).
    # True (the old build): template-only tokens such as "Thought" stay random in the base.
    tokenizer_sees_agent_text: bool = False
    hidden_size: int = 128
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int = 384
    pretrain_steps: int = 600
    batch_size: int = 8
    # longer than the demo's agent samples (median ~410 tokens): positions the base never trained
    # on are where the agent responses sit, and a tiny Llama does not extrapolate RoPE past them
    block_size: int = 512
    learning_rate: float = 6e-3
    warmup_steps: int = 40
    weight_decay: float = 0.01
    # share of pretraining documents in chat form (pretrain_text.chat_document)
    chat_rate: float = 0.2
    # share of plain documents that list tool schemas first (long, and they slow copy learning)
    schema_rate: float = 0.0
    # how calls are written: all six non-agent forms
    call_forms: tuple[str, ...] = CALL_FORMS
    # share of plain documents that repeat the request verbatim
    echo_rate: float = 0.0
    # share of documents whose request says dates, times and small numbers in words while the calls
    # write them in their own form: the mapping the corpus' spoken_values asks of a response
    spoken_rate: float = 0.0
    # one matrix for input and output embeddings (a shorter path for copying a prompt token)
    tie_embeddings: bool = True
    # loss only on what follows a request (calls, results, summaries), not on the request itself
    answer_only_loss: bool = True

    def __post_init__(self) -> None:
        for name in ("chat_rate", "schema_rate", "echo_rate", "spoken_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise ValueError(
                    f"base recipe {name}={value!r} is a share of documents: pass a number in [0, 1]"
                )

    def fingerprint(self) -> str:
        """Hash of the recipe, the build version and what the text generators produce."""
        text = _generator_fingerprint(
            tuple(dict.fromkeys(CALL_FORMS + self.call_forms)), self.spoken_rate > 0
        )
        recipe = asdict(self)
        if self.spoken_rate == 0:  # added later: recipes without it keep their fingerprints
            del recipe["spoken_rate"]
        payload = {"recipe": recipe, "build": BUILD_VERSION, "text": text}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


_FINGERPRINT_ITEMS = 200


def _generator_fingerprint(forms: tuple[str, ...], spoken: bool = False) -> str:
    # A change to the world, the corpus or the pretraining text must give a new base. Enough items
    # that every phrasing choice (e.g. each chat system line) is drawn at least once. `forms`: the
    # six classic forms plus any slot form the recipe uses (so adding slot forms to the generator
    # left the classic recipes' fingerprints, and their cached bases, as they were); `spoken`
    # likewise adds documents with spoken values only for recipes that use them.
    items = [
        [item.context, item.answer] if isinstance(item, TextDocument) else item
        for item in pretraining_items(
            _FINGERPRINT_ITEMS,
            0,
            chat_rate=0.5,
            schema_rate=0.5,
            forms=forms,
            echo_rate=0.5,
            spoken_rate=0.5 if spoken else 0.0,
        )
    ]
    samples = [s.messages for s in generate_samples(40, "mixed", 0, split="fingerprint")]
    return hashlib.sha256(json.dumps([items, samples]).encode()).hexdigest()


@dataclass
class BaseModel:
    """A built or loaded base: where it lives, whether this call built it, and what happened."""

    path: Path
    recipe: BaseRecipe
    built: bool
    seconds: float
    message: str
    pretrain_loss: list[float]

    def load(self):
        """(model, tokenizer) from `path`, in fp32."""
        tokenizer = AutoTokenizer.from_pretrained(self.path)
        model = AutoModelForCausalLM.from_pretrained(self.path, dtype=torch.float32)
        return model, tokenizer


# ----------------------------------------------------------------------------- building


def recipe_items(
    recipe: BaseRecipe, n: int, offset: int = 0
) -> Iterator[TextDocument | list[dict[str, str]]]:
    """Pretraining documents offset..offset+n-1 of `recipe` (the tokenizer and the pretraining stream read the same text)."""
    return pretraining_items(
        n,
        recipe.seed,
        chat_rate=recipe.chat_rate,
        schema_rate=recipe.schema_rate,
        forms=recipe.call_forms,
        echo_rate=recipe.echo_rate,
        spoken_rate=recipe.spoken_rate,
        offset=offset,
    )


def build_tokenizer(recipe: BaseRecipe) -> PreTrainedTokenizerBase:
    """Byte-level BPE trained on the pretraining text (and on agent-corpus text with `tokenizer_sees_agent_text`)."""

    def texts() -> Iterator[str]:
        if recipe.tokenizer_sees_agent_text:
            yield from corpus_text(recipe.tokenizer_samples, recipe.seed)
        for item in recipe_items(recipe, recipe.tokenizer_samples):
            if isinstance(item, TextDocument):
                yield item.text
            else:
                yield from (message["content"] for message in item)

    return train_tokenizer(texts(), vocab_size=recipe.vocab_size)


def build_model(tokenizer: PreTrainedTokenizerBase, recipe: BaseRecipe) -> LlamaForCausalLM:
    """The untrained Llama of `recipe` (seeded), sized for `tokenizer`."""
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=recipe.hidden_size,
        num_hidden_layers=recipe.num_hidden_layers,
        num_attention_heads=recipe.num_attention_heads,
        num_key_value_heads=recipe.num_attention_heads,
        intermediate_size=recipe.intermediate_size,
        max_position_embeddings=2048,
        # Tied input/output embeddings make "copy this token from the prompt" a short path
        # (Llama 3.2 1B/3B tie them too).
        tie_word_embeddings=recipe.tie_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)
        model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return model


def encode(
    tokenizer: PreTrainedTokenizerBase, item: TextDocument | list[dict[str, str]], answer_only: bool
) -> tuple[list[int], list[int]]:
    """Token ids and LM labels of one document; with `answer_only`, the context (request) is not in the loss."""
    if isinstance(item, TextDocument):
        context = tokenizer(item.context + "\n")["input_ids"]
        answer = tokenizer(item.answer, add_special_tokens=False)["input_ids"] + [
            tokenizer.eos_token_id
        ]
        ids = context + answer
        labels = ([IGNORE_INDEX] * len(context) if answer_only else context) + answer
        return ids, labels
    out = tokenizer.apply_chat_template(
        item, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids = list(out["input_ids"])
    if not answer_only:
        return ids, ids
    return ids, [t if m else IGNORE_INDEX for t, m in zip(ids, out["assistant_masks"], strict=True)]


# documents per chunk of the pretraining stream (about 90 tokens each), and the stream length from
# which the chunks are encoded by a process pool (below it, the pool's start-up costs more than it saves)
_CHUNK_DOCS = 1024
_PARALLEL_FROM_TOKENS = 1_000_000


def _encode_chunk(
    tokenizer: PreTrainedTokenizerBase, recipe: BaseRecipe, index: int
) -> tuple[list[int], list[int]]:
    """Token ids and labels of documents index*_CHUNK_DOCS..(index+1)*_CHUNK_DOCS-1, concatenated."""
    ids: list[int] = []
    labels: list[int] = []
    for item in recipe_items(recipe, _CHUNK_DOCS, offset=index * _CHUNK_DOCS):
        item_ids, item_labels = encode(tokenizer, item, recipe.answer_only_loss)
        ids.extend(item_ids)
        labels.extend(item_labels)
    return ids, labels


def generation_workers(tokens: int) -> int:
    """Processes that encode a pretraining stream of `tokens` tokens: for a long one on Linux, one per
    torch thread (the caller's CPU budget, `--threads`), at most one per usable core and 16.

    Forked workers need no `if __name__ == "__main__"` guard in the caller's script (spawned ones
    would). Elsewhere (macOS, where forking after torch is loaded can crash the child, and
    Windows) and inside a daemonic process (which may not have children), the stream is encoded
    inline; the blocks are the same either way.
    """
    if (
        tokens < _PARALLEL_FROM_TOKENS
        or not sys.platform.startswith("linux")
        or multiprocessing.current_process().daemon
    ):
        return 1
    cores = len(os.sched_getaffinity(0))
    return max(1, min(16, cores, torch.get_num_threads()))


def _encoded_chunks(
    tokenizer: PreTrainedTokenizerBase, recipe: BaseRecipe, workers: int
) -> Iterator[tuple[list[int], list[int]]]:
    """Chunks 0, 1, 2, ... of the encoded stream, in order, from `workers` processes (inline when 1)."""
    if workers == 1:
        for index in itertools.count():
            yield _encode_chunk(tokenizer, recipe, index)
    # Workers run only Python and the tokenizer, never torch; the tokenizer turns its own thread
    # pool off in a forked child, and the variable set here keeps it from warning that it does.
    context = multiprocessing.get_context("fork")
    previous = os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    try:
        with ProcessPoolExecutor(
            workers, mp_context=context, initializer=_worker_start, initargs=(os.getpid(),)
        ) as pool:
            yield from _in_order(pool, tokenizer, recipe, workers)
    finally:
        if previous is None:
            os.environ.pop("TOKENIZERS_PARALLELISM", None)
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = previous


def _worker_start(parent: int) -> None:
    """In each worker: leave signals to the parent, and exit once the parent is gone.

    A forked worker inherits the parent's handlers (get_base's SIGTERM cleanup among them); the
    parent alone cleans up. A worker whose parent died (SIGTERM, SIGKILL) would otherwise wait on
    the pool's queue forever, holding the parent's stdout and stderr open.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _in_order(
    pool: ProcessPoolExecutor, tokenizer: PreTrainedTokenizerBase, recipe: BaseRecipe, workers: int
) -> Iterator[tuple[list[int], list[int]]]:
    """Chunks from `pool` in order, with 2 x `workers` in flight."""
    pending = deque(pool.submit(_encode_chunk, tokenizer, recipe, i) for i in range(2 * workers))
    try:
        for index in itertools.count(len(pending)):
            chunk = pending.popleft().result()
            pending.append(pool.submit(_encode_chunk, tokenizer, recipe, index))
            yield chunk
    finally:
        for future in pending:
            future.cancel()


def pretraining_blocks(
    tokenizer: PreTrainedTokenizerBase, recipe: BaseRecipe, workers: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(steps x batch, block_size) input and label blocks cut from a stream of pretraining documents.

    The stream is the recipe's documents in order, so the blocks are the same for any `workers`
    (default: `generation_workers` of the stream's length).
    """
    n_blocks = recipe.pretrain_steps * recipe.batch_size
    size = n_blocks * recipe.block_size
    workers = generation_workers(size) if workers is None else workers
    stream: list[int] = []
    targets: list[int] = []
    with closing(_encoded_chunks(tokenizer, recipe, workers)) as chunks:
        while len(stream) < size:
            ids, labels = next(chunks)
            stream.extend(ids)
            targets.extend(labels)
    shape = (n_blocks, recipe.block_size)
    return (
        torch.tensor(stream[:size], dtype=torch.long).view(shape),
        torch.tensor(targets[:size], dtype=torch.long).view(shape),
    )


def _lr_at(step: int, recipe: BaseRecipe) -> float:
    if step < recipe.warmup_steps:
        return recipe.learning_rate * (step + 1) / recipe.warmup_steps
    progress = (step - recipe.warmup_steps) / max(1, recipe.pretrain_steps - recipe.warmup_steps)
    return recipe.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def lm_loss(model, input_ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean next-token loss over the labelled positions (0 when a batch has none, never NaN)."""
    logits = model(input_ids=input_ids).logits[:, :-1]
    targets = labels[:, 1:]
    losses = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(),
        targets.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )
    return losses / (targets != IGNORE_INDEX).sum().clamp(min=1)


def pretrain(
    model,
    blocks: tuple[torch.Tensor, torch.Tensor],
    recipe: BaseRecipe,
    progress: bool = True,
    device: str = "cpu",
) -> list[float]:
    """Full-parameter causal-LM training on the blocks (seeded, AdamW, warmup + cosine); the loss per step.

    The model is trained on `device` and returned on the CPU; the blocks and their order stay on
    the CPU, so the data a step sees does not depend on the device.
    """
    inputs, labels = blocks
    model.to(device)
    generator = torch.Generator().manual_seed(recipe.seed)
    order = torch.randperm(len(inputs), generator=generator)
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=recipe.learning_rate,
        weight_decay=recipe.weight_decay,
        betas=(0.9, 0.95),
    )
    model.train()
    losses: list[float] = []
    bar = tqdm(range(recipe.pretrain_steps), desc="Pretraining the base", disable=not progress)
    for step in bar:
        rows = order[step * recipe.batch_size : (step + 1) * recipe.batch_size]
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, recipe)
        loss = lm_loss(model, inputs[rows].to(device), labels[rows].to(device))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        if step % 10 == 0:
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    model.eval()
    model.to("cpu")
    return losses


def save_base(
    path: Path, recipe: BaseRecipe, progress: bool = True, device: str = "cpu"
) -> list[float]:
    """Build the tokenizer, pretrain the model on `device` and save both (with the recipe metadata) to `path`."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)
        random.seed(recipe.seed)
        tokenizer = build_tokenizer(recipe)
        model = build_model(tokenizer, recipe)
        blocks = pretraining_blocks(tokenizer, recipe)
        losses = pretrain(model, blocks, recipe, progress, device)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(path)
    model.save_pretrained(path)
    meta = {
        "fingerprint": recipe.fingerprint(),
        "recipe": asdict(recipe),
        "device": device,
        "weights_sha256": _sha256(path / WEIGHTS_FILE),
        "parameters": sum(p.numel() for p in model.parameters()),
        "pretrain_loss": losses,
    }
    (path / META_FILE).write_text(json.dumps(meta, indent=2))
    return losses


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ----------------------------------------------------------------------------- cache


def cache_problem(path: Path, fingerprint: str) -> str | None:
    """Why the cache entry at `path` cannot be used (None when it is complete and intact)."""
    if not path.exists():
        return "not built yet"
    try:
        meta = json.loads((path / META_FILE).read_text())
    except (OSError, ValueError) as error:
        return f"its metadata is unreadable ({type(error).__name__})"
    if meta.get("fingerprint") != fingerprint:
        return "it was built from another recipe"
    weights = path / WEIGHTS_FILE
    if not weights.exists():
        return f"{WEIGHTS_FILE} is missing"
    if _sha256(weights) != meta.get("weights_sha256"):
        return f"{WEIGHTS_FILE} does not match its recorded checksum (corrupt or modified)"
    if not (path / "tokenizer.json").exists():
        return "tokenizer.json is missing"
    from transformers import AutoConfig, AutoTokenizer

    try:  # the weights are checksummed; the config and tokenizer files must at least load
        AutoConfig.from_pretrained(path)
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError, KeyError, TypeError) as error:
        return f"its config or tokenizer cannot be loaded ({type(error).__name__})"
    if not tokenizer.chat_template:
        return "its tokenizer has lost its chat template"
    if tokenizer.chat_template != CHAT_TEMPLATE:  # pretraining's chat documents used the old one
        return "its chat template is not this version's (the base was pretrained with another)"
    return None


def base_path(
    recipe: BaseRecipe, cache_dir: str | os.PathLike[str] | None = None, device: str = "cpu"
) -> Path:
    """Where the base of `recipe` is cached: <cache>/demo-base-<fingerprint>, with a `-<device>`
    suffix for a base pretrained on another device than the CPU (its weights differ in the last
    bits, so it is a different base and never stands in for the CPU one)."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    suffix = "" if device == "cpu" else f"-{device}"
    return root / f"demo-base-{recipe.fingerprint()}{suffix}"


@contextmanager
def _removed_on_sigterm(path: Path) -> Iterator[None]:
    """While the block runs, SIGTERM (`kill`, `timeout`, a job scheduler) first removes `path` (which
    the block creates), then ends the process as it would have. A handler that raised instead could
    see its exception land in a finalizer (`__del__`), where Python ignores it, and the build would
    go on."""
    main = threading.current_thread() is threading.main_thread()
    if not main or signal.getsignal(signal.SIGTERM) is signal.SIG_IGN:
        yield
        return

    def _remove_then_terminate(signum, frame):
        shutil.rmtree(path, ignore_errors=True)
        signal.signal(signum, restore)
        os.kill(os.getpid(), signum)

    previous = signal.signal(signal.SIGTERM, _remove_then_terminate)
    restore = previous if previous is not None else signal.SIG_DFL  # None: set outside Python
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, restore)


def get_base(
    recipe: BaseRecipe | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    progress: bool = True,
    log: Callable[[str], None] = print,
    device: str = "cpu",
) -> BaseModel:
    """The cached base of `recipe`, built (and cached) first when missing, stale or corrupt.

    `device` is where a missing base is pretrained ("cpu" or "cuda"); each device has its own cache entry.
    """
    recipe = recipe or BaseRecipe()
    started = time.perf_counter()
    fingerprint = recipe.fingerprint()
    target = base_path(recipe, cache_dir, device)
    problem = cache_problem(target, fingerprint)
    if problem is None:
        meta = json.loads((target / META_FILE).read_text())
        message = f"Base model: cached at {target}"
        log(message)
        return BaseModel(
            target, recipe, False, time.perf_counter() - started, message, meta["pretrain_loss"]
        )
    where = "a few minutes on 2 CPU cores" if device == "cpu" else f"pretraining on {device}"
    message = f"Base model: building {target.name} ({problem}; {where})"
    if problem != "not built yet":
        message = f"Base model: the cache at {target} cannot be used: {problem}. Rebuilding it."
    log(message)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename, so a concurrent or interrupted build never leaves half a
    # base; Ctrl-C (KeyboardInterrupt) and SIGTERM both remove the staging folder.
    staging = target.parent / f".{target.name}-{os.getpid()}-{secrets.token_hex(4)}"
    with _removed_on_sigterm(staging):
        staging.mkdir()
        try:
            losses = save_base(staging, recipe, progress, device)
            if target.exists():
                shutil.rmtree(target, ignore_errors=True)
            try:
                staging.rename(target)
            except OSError:
                if cache_problem(target, fingerprint) is not None:  # nobody else won the race
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return BaseModel(target, recipe, True, time.perf_counter() - started, message, losses)


def with_overrides(recipe: BaseRecipe, **overrides) -> BaseRecipe:
    """`recipe` with some fields replaced (unknown names fail with the list of fields)."""
    unknown = set(overrides) - set(asdict(recipe))
    if unknown:
        raise ValueError(
            f"unknown base recipe fields {sorted(unknown)}; use {sorted(asdict(recipe))}"
        )
    return replace(recipe, **overrides)
