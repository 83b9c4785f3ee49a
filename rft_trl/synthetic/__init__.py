"""Synthetic agent corpus with ground-truth token roles, its evaluator, and hub-free tiny checkpoints.

World and corpus (no TRL import):
    default_world, World, generate_samples, Sample, ToolCall
Datasets (TRL-ready):
    to_messages_dataset, to_prompt_completion_dataset, make_splits, make_split_samples,
    prompt_messages
Ground truth per token:
    ground_truth_token_class, add_ground_truth_columns, tokenize_example
Evaluation of generated first responses:
    evaluate_response, evaluate
Tokenizer and tiny model:
    train_tokenizer, build_tiny_model, build_tiny_checkpoint, TinyRecipe
"""

from rft_trl.synthetic.alignment import (
    TokenGroundTruth,
    add_ground_truth_columns,
    ground_truth_token_class,
    tokenize_example,
)
from rft_trl.synthetic.catalog import default_world
from rft_trl.synthetic.corpus import FAMILIES, Sample, ToolCall, generate_samples
from rft_trl.synthetic.dataset_forms import (
    make_split_samples,
    make_splits,
    prompt_messages,
    to_dataset,
    to_messages_dataset,
    to_prompt_completion_dataset,
)
from rft_trl.synthetic.evaluator import EvalResult, evaluate, evaluate_response
from rft_trl.synthetic.labels import (
    BOILERPLATE,
    CATEGORIES,
    CATEGORY_ID,
    IGNORE_INDEX,
    REASONING,
    REASONING_CATEGORIES,
    Span,
)
from rft_trl.synthetic.model import (
    TinyRecipe,
    build_tiny_checkpoint,
    build_tiny_model,
    save_tiny_checkpoint,
)
from rft_trl.synthetic.tokenizer import CHAT_TEMPLATE, train_tokenizer
from rft_trl.synthetic.world import Domain, Param, ToolSpec, World

__all__ = [
    "BOILERPLATE",
    "CATEGORIES",
    "CATEGORY_ID",
    "CHAT_TEMPLATE",
    "FAMILIES",
    "IGNORE_INDEX",
    "REASONING",
    "REASONING_CATEGORIES",
    "Domain",
    "EvalResult",
    "Param",
    "Sample",
    "Span",
    "TinyRecipe",
    "TokenGroundTruth",
    "ToolCall",
    "ToolSpec",
    "World",
    "add_ground_truth_columns",
    "build_tiny_checkpoint",
    "build_tiny_model",
    "default_world",
    "evaluate",
    "evaluate_response",
    "generate_samples",
    "ground_truth_token_class",
    "make_split_samples",
    "make_splits",
    "prompt_messages",
    "save_tiny_checkpoint",
    "to_dataset",
    "to_messages_dataset",
    "to_prompt_completion_dataset",
    "tokenize_example",
    "train_tokenizer",
]
