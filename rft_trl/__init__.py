"""rft-trl: SHAD token labelling and reasoning-highlighted fine-tuning (RFT) for TRL and Axolotl."""

__version__ = "0.1.0"
