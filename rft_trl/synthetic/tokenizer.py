"""A byte-level BPE tokenizer trained on the synthetic corpus, with special tokens and a chat template."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from importlib import resources

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from rft_trl.synthetic.catalog import default_world
from rft_trl.synthetic.corpus import generate_samples
from rft_trl.synthetic.world import World

BOS_TOKEN = "<|bos|>"
EOS_TOKEN = "<|end|>"  # the end-of-turn token: generation stops on it
PAD_TOKEN = "<|pad|>"
ROLE_TOKENS: tuple[str, ...] = ("<|system|>", "<|user|>", "<|assistant|>", "<|tool|>")
SPECIAL_TOKENS: tuple[str, ...] = (PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, *ROLE_TOKENS)
CHAT_TEMPLATE: str = (
    resources.files("rft_trl.synthetic").joinpath("chat_template.jinja").read_text(encoding="ascii")
)


def world_text(world: World) -> Iterator[str]:
    """Every tool schema and domain value of the world, so all of them get merges."""
    for tool in world.tools:
        yield world.tool_schema_json(tool.name)
        yield from tool.tasks
        yield from tool.purposes
        yield tool.answer
    for domain in world.domains.values():
        yield " ".join(domain.values)


def corpus_text(n_samples: int = 2000, seed: int = 0, world: World | None = None) -> Iterator[str]:
    """Training text for the tokenizer: message contents of a mixed corpus plus the world's text."""
    world = world if world is not None else default_world(seed)
    for sample in generate_samples(n_samples, "mixed", seed, world=world, split="tokenizer"):
        for message in sample.messages:
            yield message["content"]
    yield from world_text(world)


def train_tokenizer(
    texts: Iterable[str] | None = None,
    *,
    vocab_size: int = 1024,
    n_samples: int = 2000,
    seed: int = 0,
    world: World | None = None,
    model_max_length: int = 2048,
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on `texts` (default: `corpus_text`) and wrap it with special tokens and the chat template."""
    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ValueError(
            f"vocab_size={vocab_size} cannot hold the 256 byte symbols and {len(SPECIAL_TOKENS)} special tokens; "
            f"pass vocab_size >= {256 + len(SPECIAL_TOKENS)}"
        )
    if texts is None:
        texts = corpus_text(n_samples, seed, world)
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    # Plain-text encoding (e.g. pretraining text) starts with BOS like Llama; chat rendering adds
    # its own BOS through the template and encodes without special tokens.
    bos_id = backend.token_to_id(BOS_TOKEN)
    backend.post_processor = processors.TemplateProcessing(
        single=f"{BOS_TOKEN} $A",
        pair=f"{BOS_TOKEN} $A {BOS_TOKEN} $B",
        special_tokens=[(BOS_TOKEN, bos_id)],
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        extra_special_tokens=list(ROLE_TOKENS),
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer
