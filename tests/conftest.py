"""Shared fixtures."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest

from groupwise._example import speech_example


@pytest.fixture(scope="session")
def speech_df():
    """A small simulated ASR table with 14 accents, 3 noises and 280 speakers."""
    return speech_example(4000, n_speakers=280, seed=3)
