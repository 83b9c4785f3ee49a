"""SHAD: label every response token as boilerplate (0) or reasoning (1) by shuffle-tuning (Ye et al. 2025)."""

from rft_trl.modeling import UnsupportedModelError
from rft_trl.shad.api import ShadResult, label_dataset
from rft_trl.shad.classify import reclassify
from rft_trl.shad.errors import ShadCacheError, ShadDataError, ShadLabelsError
from rft_trl.shad.labels_io import load_labels, save_labels, save_result
from rft_trl.shad.report import ShadReport
from rft_trl.shad.settings import ShadSettings

__all__ = [
    "ShadCacheError",
    "ShadDataError",
    "ShadLabelsError",
    "ShadReport",
    "ShadResult",
    "ShadSettings",
    "UnsupportedModelError",
    "label_dataset",
    "load_labels",
    "reclassify",
    "save_labels",
    "save_result",
]
