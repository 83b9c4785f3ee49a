"""Adapters that plug SHAD + RFT into other training frameworks (Axolotl)."""
