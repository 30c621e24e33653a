"""Which extractor made a model's input tokens, recorded so that AV-Flow and text-to-tokens match.

AV-Flow is trained on the tokens of its shards and reads, at synthesis, the tokens text-to-tokens
writes. Wav2Vec2 ASR logits and the CTC-shaped logits made from phone timing ("alignment") are
both (T, 29) at FPS but look nothing alike, so a pair trained on different kinds runs without
error and produces nonsense. Both model configs record the source they were trained on
(``token_source``) and :func:`check_pair` refuses a mismatched pair.

A source is prep's description ``"KIND (EXTRACTOR)"``, e.g. ``"wav2vec2 (wav2vec2_asr_base_960h)"``
or ``"alignment (alignment-sounds-v2)"``; shards mixing kinds join them with ``" + "``. Only the
kinds are compared (older alignment tokens, without phone sounds, are the kind ``alignment-v1``). ``""`` (a config written before the field existed, or an import that cannot
tell) and ``precomputed`` (tokens shipped with a dataset, whose extractor is unknown) are
compatible with anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from avflow_cli.errors import AvflowError

LJSPEECH_SOURCE_FILE = "source.json"  # in an LJSpeech-layout folder's tokens/
UNKNOWN_KINDS = frozenset({"", "precomputed"})


def describe(kind: str, extractor: str | None = None) -> str:
    """The recorded form of a token source, as prep's index.json writes it."""
    return f"{kind} ({extractor or kind})"


def kinds(source: str) -> frozenset[str]:
    """The token kinds of a recorded source: ``"wav2vec2 (x) + alignment (y)"`` → {wav2vec2, alignment}.

    Alignment tokens made before they carried phone sounds (extractor other than
    ``ALIGNMENT_EXTRACTOR``) are the kind ``alignment-v1``: same shape, other content."""
    from avflow_cli.audio.alignment_tokens import ALIGNMENT_EXTRACTOR

    out = set()
    for part in (p.strip() for p in str(source or "").split(" + ")):
        kind, _, extractor = part.partition(" ")
        if kind == "alignment" and extractor.strip("()") != ALIGNMENT_EXTRACTOR:
            kind = "alignment-v1"
        if kind:
            out.add(kind)
    return frozenset(out)


def is_known(source: str) -> bool:
    return bool(kinds(source) - UNKNOWN_KINDS)


def compatible(a: str, b: str) -> bool:
    """Whether tokens of source ``a`` can stand in for tokens of source ``b`` (unknown: yes)."""
    if not (is_known(a) and is_known(b)):
        return True
    return kinds(a) - UNKNOWN_KINDS == kinds(b) - UNKNOWN_KINDS


def check_pair(avflow_source: str, t2t_source: str, avflow_dir: Any, t2t_dir: Any) -> None:
    """One-line error when text-to-tokens writes another kind of tokens than AV-Flow was trained on."""
    if not compatible(avflow_source, t2t_source):
        raise AvflowError(
            f"token mismatch: AV-Flow {avflow_dir} was trained on {avflow_source} tokens but text-to-tokens "
            f"{t2t_dir} makes {t2t_source} tokens; train both on one --source (see `avflow prep tokens --help`)"
        )


def shard_token_source(index: Any) -> str:
    """The token source a shard index records (``""`` when the index predates the record)."""
    return str(getattr(index, "extractors", {}).get("tokens", ""))


def bind_token_source(cfg: Any, index: Any, shard_dir: Any, resumed: bool) -> None:
    """Record the shards' token source in an AV-Flow config, or refuse shards of another source.

    A fresh run takes the shards' source (whatever its preset says); a resumed run whose config
    records a source must continue on tokens of the same kind.
    """
    source = shard_token_source(index)
    if resumed and not compatible(cfg.token_source, source):
        raise AvflowError(f"{shard_dir}: shards hold {source} tokens but this run was trained on "
                          f"{cfg.token_source} tokens; use shards made with the same token source")
    if source and not (resumed and is_known(cfg.token_source)):
        cfg.token_source = source


def read_ljspeech_source(folder: str | Path) -> str:
    """The token source recorded in ``FOLDER/tokens/source.json`` (``""`` when absent)."""
    path = Path(folder) / "tokens" / LJSPEECH_SOURCE_FILE
    if not path.is_file():
        return ""
    try:
        obj = json.loads(path.read_text())
        return describe(str(obj["source"]), obj.get("extractor"))
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise AvflowError(f"{path}: unreadable token source record ({err})") from err


def record_ljspeech_source(folder: str | Path, kind: str, extractor: str | None) -> None:
    """Write ``tokens/source.json``; refuse to add tokens of another kind to a folder that has some.

    Existing token files are kept by ``prep tokens``, so a second run with another source would
    otherwise leave a folder of mixed kinds.
    """
    from avflow_cli.fsutil import atomic_path

    folder = Path(folder)
    new = describe(kind, extractor)
    old = read_ljspeech_source(folder)
    if old and not compatible(old, new):
        raise AvflowError(f"{folder / 'tokens'}: holds {old} tokens; remove the folder to make {new} tokens instead")
    path = folder / "tokens" / LJSPEECH_SOURCE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"source": kind, "extractor": extractor or kind}))
