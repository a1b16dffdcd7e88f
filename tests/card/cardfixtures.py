"""Measured results to build cards from: two versions of a speech service and a tabular audit.

Test modules import these fixtures (``from cardfixtures import *``); the results are
computed once per session and shared through ``_CACHE`` (a conftest.py here would shadow
the suite's own ``conftest`` module).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

import groupwise
from groupwise.card._about import EXAMPLE_YAML

_CACHE: dict[str, Path] = {}


def _once(name: str, make) -> Path:  # noqa: ANN001
    if name not in _CACHE:
        _CACHE[name] = make()
    return _CACHE[name]

ACCENTS = ("en-us", "en-gb", "en-029", "hi", "vi", "fr")


def _lastmile_data(seed: int, hum_effect: dict[str, float]) -> pd.DataFrame:
    base = groupwise.speech_example(1500, n_speakers=60, accents=ACCENTS, noises=["clean"], seed=seed)
    hum = groupwise.speech_example(
        1500, n_speakers=60, accents=ACCENTS, noises=["clean"], noise_effect={"clean": 2.0}, accent_effect=hum_effect, seed=seed
    )
    base["condition"], hum["condition"] = "baseline", "hum:freq=1200,harmonics=3,snr=5"
    return pd.concat([base, hum], ignore_index=True).drop(columns=["true_rate"])


def _measure(folder: Path, *, seed: int, accent_effect: dict[str, float], hum_effect: dict[str, float], extra_accent: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    accents = ACCENTS + ((extra_accent,) if extra_accent else ())
    df = groupwise.speech_example(
        3000, n_speakers=140 if extra_accent else 120, accents=accents, accent_effect=accent_effect, seed=seed
    ).drop(columns=["true_rate"])
    prov = {"accent": "synthetic", "noise": "measured", "gender": "self_reported"}
    # A group far below the minimum: it must stay visible as insufficient.
    df.loc[df["speaker"].isin(df["speaker"].unique()[:3]), "gender"] = "nonbinary"
    groupwise.audit(
        df, metric="wer", by=["accent", "noise", "gender"], cluster="speaker", provenance=prov, n_boot=300, seed=seed
    ).to_json(folder / "audit.json")
    groupwise.coverage(df, dims="accent,noise", cluster="speaker", target_half_width=0.03).to_json(folder / "coverage.json")
    groupwise.lastmile(
        _lastmile_data(seed, hum_effect), by="accent", cluster="speaker", item="utterance",
        names={"hum:freq=1200,harmonics=3,snr=5": "hospital hum at 1200 Hz"}, provenance={"accent": "synthetic"},
        n_boot=300, min_clusters=5, seed=seed,
    ).to_json(folder / "lastmile.json")
    about = yaml.safe_load(EXAMPLE_YAML)
    about["evaluation_data"].update(synthetic=True, description="Simulated transcripts of synthetic speakers.")
    (folder / "card.yaml").write_text(yaml.safe_dump(about, sort_keys=False), encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def v1(tmp_path_factory) -> Path:
    """Version 1 of the service: en-029 bad, hum hurts hi more."""
    return _once("v1", lambda: _measure(
        tmp_path_factory.mktemp("v1"), seed=11, accent_effect={"en-029": 1.8, "hi": 1.5},
        hum_effect={"hi": 2.0},
    ))


@pytest.fixture(scope="session")
def v2(tmp_path_factory) -> Path:
    """Version 2, measured on a new test set: en-029 fixed, vi much worse (3.2x), a new accent (zh)."""
    return _once("v2", lambda: _measure(
        tmp_path_factory.mktemp("v2"), seed=12, accent_effect={"en-029": 1.0, "hi": 1.5, "vi": 3.2},
        hum_effect={"hi": 2.0}, extra_accent="zh",
    ))


@pytest.fixture(scope="session")
def v1_card(v1, tmp_path_factory) -> Path:
    from groupwise.card import build

    return _once("v1_card", lambda: build(
        v1 / "card.yaml", v1 / "audit.json", lastmile=v1 / "lastmile.json", coverage=v1 / "coverage.json",
        out=tmp_path_factory.mktemp("c1") / "card", export="mct,hf,eee"))


@pytest.fixture(scope="session")
def v2_card(v2, tmp_path_factory) -> Path:
    from groupwise.card import build

    return _once("v2_card", lambda: build(
        v2 / "card.yaml", v2 / "audit.json", lastmile=v2 / "lastmile.json", coverage=v2 / "coverage.json",
        out=tmp_path_factory.mktemp("c2") / "card", export="mct,hf,eee"))


@pytest.fixture(scope="session")
def tabular(tmp_path_factory) -> Path:
    return _once("tabular", lambda: _tabular(tmp_path_factory.mktemp("tabular")))


def _tabular(folder: Path) -> Path:
    df = groupwise.tabular_example(3000, seed=0)
    groupwise.audit(
        df, metric="fnr", by=["sex", "race"], groups=["age >= 60"], cluster="household", compare="complement",
        provenance={"sex": "self_reported", "race": "self_reported"}, n_boot=300,
    ).to_json(folder / "audit.json")
    about = yaml.safe_load(EXAMPLE_YAML)
    about["service"].update(name="Loan screening model", task="tabular-classification")
    about["evaluation_data"].update(self_reported=True)
    (folder / "card.yaml").write_text(yaml.safe_dump(about, sort_keys=False), encoding="utf-8")
    return folder


__all__ = ["v1", "v2", "v1_card", "v2_card", "tabular"]
