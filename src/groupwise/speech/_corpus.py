"""Speech corpora: a generic manifest, Common Voice TSVs and Hugging Face audiofolders.

Every loader returns a pandas DataFrame in one shape: ``audio`` (absolute path),
``reference`` (the transcript), ``speaker`` and the metadata columns, with the provenance
of the metadata in ``frame.attrs["provenance"]`` (column -> provenance) and the rows that
could not be used in ``frame.attrs["problems"]``. Audio is checked up front (exists, is
readable, has samples); all problems are reported together, with their rows, and are
either fatal (the default) or skipped, as the caller chooses. Nothing is dropped silently.

Common Voice (``validated.tsv``, ``test.tsv``...): ``client_id`` is the speaker; ``path``
names a file in the ``clips`` folder next to the TSV; ``sentence`` is the reference;
``age``, ``gender`` and ``accents`` are self-reported. ``accents`` may hold several values
separated by ``|`` (newer releases) or ``,``: they are kept as a list in ``accents``, and
``accent`` is the single value when there is one, ``"multiple"`` when there are several,
and missing when there is none.

Hugging Face audiofolder: a folder with ``metadata.csv`` (or ``metadata.jsonl``) whose
``file_name`` column names audio files relative to the folder; the transcript is the
first of ``transcription``, ``text``, ``sentence`` that exists.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from groupwise._errors import InputError
from groupwise._io import read_table
from groupwise._validation import check_choice

__all__ = ["load_corpus", "load_manifest", "load_common_voice", "load_audiofolder", "check_audio", "CorpusError"]

OnProblem = Literal["fail", "skip"]
_ON_PROBLEM: tuple[OnProblem, ...] = ("fail", "skip")
_FORMATS = ("auto", "manifest", "common_voice", "audiofolder")

_TEXT_CANDIDATES = ("reference", "text", "sentence", "transcription", "transcript")
_AUDIO_CANDIDATES = ("audio", "path", "file_name", "filename", "wav", "audio_path")


class CorpusError(InputError):
    """Rows of a corpus whose audio cannot be used."""


def check_audio(paths: Sequence[str], index: Sequence[Any]) -> list[dict[str, Any]]:
    """Return one problem dict per unusable audio file (missing, unreadable, 0 seconds)."""
    import soundfile as sf

    problems = []
    for row, path in zip(index, paths):
        reason = None
        if not isinstance(path, str) or not path:
            reason = "no audio path"
        elif not os.path.isfile(path):
            reason = "file does not exist"
        else:
            try:
                info = sf.info(path)
                if info.frames == 0:
                    reason = "0 seconds of audio"
            except Exception as exc:  # libsndfile raises several types for bad files
                reason = f"not readable as audio ({str(exc).strip()[:80] or type(exc).__name__})"
        if reason:
            problems.append({"row": row, "audio": path, "problem": reason})
    return problems


def _finish(
    frame: pd.DataFrame, *, provenance: dict[str, str], on_problem: OnProblem, check: bool, source: str
) -> pd.DataFrame:
    missing_text = frame["reference"].isna()
    problems = [
        {"row": r, "audio": a, "problem": "no reference transcript"}
        for r, a in zip(frame.index[missing_text], frame.loc[missing_text, "audio"])
    ]
    if check:
        problems += check_audio(frame["audio"].tolist(), frame.index.tolist())
    if problems and on_problem == "fail":
        lines = "; ".join(f"row {p['row']}: {p['audio']} ({p['problem']})" for p in problems[:10])
        more = f"; and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise CorpusError(
            f"{len(problems)} of {len(frame)} rows of {source} cannot be used: {lines}{more}",
            fix="fix or remove those rows, or pass on_problem='skip' (--skip-bad-audio) to leave them out "
            "with a report",
            rows=[p["row"] for p in problems],
        )
    bad = {p["row"] for p in problems}
    out = frame.loc[[r not in bad for r in frame.index]].copy()
    if out.empty:
        raise CorpusError(f"no usable rows are left in {source}", fix="check the audio paths and the base directory")
    out.attrs["provenance"] = provenance
    out.attrs["problems"] = problems
    return out


def _absolute(paths: pd.Series, base: Path) -> pd.Series:
    def one(p: Any) -> Any:
        if not isinstance(p, str) or not p:
            return p
        q = Path(p)
        return str(q if q.is_absolute() else (base / q).resolve())

    return paths.map(one)


def _pick(frame: pd.DataFrame, given: str | None, candidates: Sequence[str], role: str, option: str) -> str:
    if given is not None:
        if given not in frame.columns:
            raise InputError(
                f"the {role} column {given!r} is not in the manifest",
                fix=f"pass {option} with one of its columns: {', '.join(map(str, frame.columns))}",
            )
        return given
    for c in candidates:
        if c in frame.columns:
            return c
    raise InputError(
        f"the manifest has no {role} column (looked for {', '.join(candidates)})",
        fix=f"pass {option} with one of its columns: {', '.join(map(str, frame.columns))}",
    )


def load_manifest(
    path: str | os.PathLike[str],
    *,
    audio_column: str | None = None,
    text_column: str | None = None,
    speaker_column: str | None = "speaker",
    base_dir: str | os.PathLike[str] | None = None,
    provenance: dict[str, str] | None = None,
    on_problem: OnProblem = "fail",
    check: bool = True,
) -> pd.DataFrame:
    """Load a generic manifest: one row per utterance with audio path, transcript, speaker.

    Parameters
    ----------
    path : path
        CSV, TSV, JSONL or Parquet.
    audio_column, text_column : str, optional
        Found automatically among common names when not given.
    speaker_column : str or None, default="speaker"
        Column of speaker ids; when missing, each row is its own speaker (say so in
        outputs: intervals then treat utterances as independent).
    base_dir : path, optional
        Relative audio paths are relative to this (default: the manifest's folder).
    provenance : dict, optional
        Provenance of metadata columns. A ``provenance`` column-map stored in the
        manifest's sidecar ``<manifest>.provenance.json`` is read too.
    on_problem : {"fail", "skip"}
        What to do with rows whose audio is missing, unreadable or empty.
    check : bool, default=True
        Check every audio file's header up front.
    """
    on_problem = check_choice(on_problem, "on_problem", _ON_PROBLEM, caller="load_manifest")
    path = Path(path)
    frame = read_table(path, name="manifest")
    audio = _pick(frame, audio_column, _AUDIO_CANDIDATES, "audio path", "--audio-column")
    text = _pick(frame, text_column, _TEXT_CANDIDATES, "transcript", "--text-column")
    frame = frame.rename(columns={audio: "audio", text: "reference"})
    frame["audio"] = _absolute(frame["audio"], Path(base_dir) if base_dir else path.parent.resolve())
    if speaker_column is not None and speaker_column in frame.columns:
        frame = frame.rename(columns={speaker_column: "speaker"})
    elif speaker_column not in (None, "speaker"):
        raise InputError(
            f"the speaker column {speaker_column!r} is not in the manifest",
            fix=f"pass --speaker-column with one of its columns: {', '.join(map(str, frame.columns))}",
        )
    prov = dict(_sidecar_provenance(path))
    prov.update(provenance or {})
    return _finish(frame, provenance=prov, on_problem=on_problem, check=check, source=str(path))


def _sidecar_provenance(path: Path) -> dict[str, str]:
    import json

    side = path.with_name(path.name + ".provenance.json")
    if not side.is_file():
        return {}
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputError(f"{side} is not valid JSON: {exc}", fix="fix or delete it") from exc
    if not isinstance(data, dict):
        raise InputError(f"{side} is not a JSON object", fix='write it as {"column": "provenance", ...}')
    return {str(k): str(v) for k, v in data.items()}


def _split_accents(value: Any) -> list[str]:
    if not isinstance(value, str) or not value.strip():
        return []
    sep = "|" if "|" in value else ","
    return [v.strip() for v in value.split(sep) if v.strip()]


def load_common_voice(
    tsv: str | os.PathLike[str],
    *,
    clips_dir: str | os.PathLike[str] | None = None,
    on_problem: OnProblem = "fail",
    check: bool = True,
) -> pd.DataFrame:
    """Load a Common Voice TSV (``client_id``, ``path``, ``sentence``, ``age``, ``gender``, ``accents``)."""
    on_problem = check_choice(on_problem, "on_problem", _ON_PROBLEM, caller="load_common_voice")
    tsv = Path(tsv)
    frame = read_table(tsv, name="Common Voice TSV")
    need = {"client_id", "path", "sentence"}
    if not need <= set(frame.columns):
        raise InputError(
            f"{tsv} is not a Common Voice TSV: it lacks {', '.join(sorted(need - set(frame.columns)))}",
            fix="pass a Common Voice file such as validated.tsv, or load it as a generic manifest",
        )
    clips = Path(clips_dir) if clips_dir else tsv.parent / "clips"
    out = pd.DataFrame(
        {
            "audio": _absolute(frame["path"].astype(str), clips),
            "reference": frame["sentence"],
            "speaker": frame["client_id"],
        },
        index=frame.index,
    )
    provenance = {}
    for column in ("age", "gender"):
        if column in frame.columns:
            out[column] = frame[column].replace("", np.nan)
            provenance[column] = "self_reported"
    accent_col = "accents" if "accents" in frame.columns else ("accent" if "accent" in frame.columns else None)
    if accent_col:
        lists = [_split_accents(v) for v in frame[accent_col]]
        out["accents"] = pd.Series(lists, index=frame.index, dtype=object)
        out["accent"] = [v[0] if len(v) == 1 else ("multiple" if v else None) for v in lists]
        provenance["accent"] = provenance["accents"] = "self_reported"
    for extra in ("locale", "variant", "segment"):
        if extra in frame.columns:
            out[extra] = frame[extra]
    return _finish(out, provenance=provenance, on_problem=on_problem, check=check, source=str(tsv))


def load_audiofolder(
    folder: str | os.PathLike[str], *, on_problem: OnProblem = "fail", check: bool = True
) -> pd.DataFrame:
    """Load a Hugging Face audiofolder (``metadata.csv`` or ``metadata.jsonl`` with ``file_name``)."""
    on_problem = check_choice(on_problem, "on_problem", _ON_PROBLEM, caller="load_audiofolder")
    folder = Path(folder)
    meta = folder if folder.is_file() else next(
        (folder / n for n in ("metadata.csv", "metadata.jsonl") if (folder / n).is_file()), None
    )
    if meta is None:
        raise InputError(f"{folder} has no metadata.csv or metadata.jsonl", fix="pass an audiofolder directory")
    frame = read_table(meta, name="audiofolder metadata")
    if "file_name" not in frame.columns:
        raise InputError(f"{meta} has no file_name column", fix="an audiofolder's metadata names its files in file_name")
    text = _pick(frame, None, ("transcription", "text", "sentence", "reference"), "transcript", "--text-column")
    frame = frame.rename(columns={"file_name": "audio", text: "reference"})
    frame["audio"] = _absolute(frame["audio"], meta.parent)
    return _finish(frame, provenance={}, on_problem=on_problem, check=check, source=str(meta))


def _is_plain_manifest(path: Path) -> bool:
    if path.is_dir() or path.name.startswith("metadata."):
        return False
    if path.suffix.lower() == ".tsv" and path.is_file():
        with open(path, encoding="utf-8", errors="replace") as f:
            header = {h.strip() for h in f.readline().split("\t")}
        return not {"client_id", "sentence"} <= header
    return True


def load_corpus(
    path: str | os.PathLike[str],
    *,
    format: Literal["auto", "manifest", "common_voice", "audiofolder"] = "auto",
    on_problem: OnProblem = "fail",
    **options: Any,
) -> pd.DataFrame:
    """Load a corpus of any supported kind, guessing the kind from the path when ``auto``.

    A directory is an audiofolder; a ``.tsv`` with ``client_id`` and ``sentence`` columns is
    Common Voice; anything else is a generic manifest.
    """
    format = check_choice(format, "format", _FORMATS, caller="load_corpus")
    on_problem = check_choice(on_problem, "on_problem", _ON_PROBLEM, caller="load_corpus")
    path = Path(path)
    if options and format != "manifest" and not (format == "auto" and _is_plain_manifest(path)):
        raise InputError(
            f"column options ({', '.join(sorted(options))}) apply to generic manifests, and {str(path)!r} is "
            "a Common Voice TSV or an audiofolder, whose columns are fixed",
            fix="leave the column options out, or pass a generic manifest",
        )
    if format == "auto":
        if path.is_dir() or path.name.startswith("metadata."):
            format = "audiofolder"
        elif path.suffix.lower() == ".tsv" and path.is_file():
            with open(path, encoding="utf-8", errors="replace") as f:
                header = f.readline().split("\t")
            format = "common_voice" if {"client_id", "sentence"} <= {h.strip() for h in header} else "manifest"
        else:
            format = "manifest"
    if format == "audiofolder":
        return load_audiofolder(path, on_problem=on_problem, **options)
    if format == "common_voice":
        return load_common_voice(path, on_problem=on_problem, **options)
    return load_manifest(path, on_problem=on_problem, **options)
