"""The Consilium implementation guide as data, and the validator that checks claimed profiles."""

from pathlib import Path


def definitions_dir() -> Path:
    return Path(__file__).resolve().parent / "definitions"
