"""LD = l_s - l_o -> token class (pure numpy), and re-thresholding a labelled dataset without rescoring."""

from __future__ import annotations

from typing import Any

import numpy as np
from datasets import Sequence, Value

from rft_trl.loss import BOILERPLATE, IGNORE_INDEX, REASONING

TOKEN_CLASS = "token_class"
L_O = "shad_l_o"
L_S = "shad_l_s"
COLUMNS = (TOKEN_CLASS, L_O, L_S)


def classify(l_o: np.ndarray, l_s: np.ndarray, in_loss: np.ndarray, threshold: float) -> np.ndarray:
    """int8 classes: -100 where not in the loss, 0 where l_s - l_o <= threshold, else 1."""
    ld = np.asarray(l_s, dtype=np.float32) - np.asarray(l_o, dtype=np.float32)
    classes = np.where(ld <= np.float32(threshold), BOILERPLATE, REASONING).astype(np.int8)
    classes[~np.asarray(in_loss, dtype=bool)] = IGNORE_INDEX
    return classes


def _reclassify_batch(batch: dict[str, list[Any]], threshold: float) -> dict[str, list[Any]]:
    """Recompute `token_class` of a batch of rows from its stored losses."""
    out = []
    for labels, l_o, l_s in zip(batch["labels"], batch[L_O], batch[L_S], strict=True):
        in_loss = np.asarray(labels) != IGNORE_INDEX
        out.append(classify(np.asarray(l_o), np.asarray(l_s), in_loss, threshold))
    return {TOKEN_CLASS: out}


def reclassify(dataset, threshold: float):
    """A copy of a SHAD-labelled dataset with `token_class` recomputed at `threshold` (no rescoring)."""
    missing = [name for name in ("labels", L_O, L_S) if name not in dataset.column_names]
    if missing:
        raise ValueError(
            f"reclassify needs the columns `labels`, `{L_O}` and `{L_S}`; missing {missing}. "
            "Fix: pass a dataset returned by `label_dataset` or `load_labels`."
        )
    features = dataset.features.copy()
    features[TOKEN_CLASS] = Sequence(Value("int8"))
    return dataset.map(
        _reclassify_batch,
        batched=True,
        fn_kwargs={"threshold": float(threshold)},
        features=features,
        desc=f"SHAD: re-thresholding at {threshold:g}",
    )
