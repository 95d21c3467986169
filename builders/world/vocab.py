"""Vocabularies: plain lists, and tables whose values carry properties (conditional vocabularies).

A vocabulary ``NAME`` is ``<dir>/NAME.txt`` (one value a line), ``<dir>/NAME.toml`` (a table per value:
its properties), or a list named ``NAME`` in one of the list files (``title_words.toml``, ``genres.toml``),
looked up next to the type file first, then in ``builders/vocab/``.

A spec's ``vocab`` and ``style`` may name a property of an earlier choice attribute: ``"{occupation.genres}"``
is, for each entity, the ``genres`` property of its occupation (``occupations.toml``). ``resolve`` fills them in.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from entity_unlearn.errors import EntityUnlearnError

VOCAB_DIR = Path(__file__).resolve().parents[1] / "vocab"
LIST_FILES = ("title_words.toml", "genres.toml")
_REF = re.compile(r"\{([a-z_][a-z0-9_]*)\.([a-z_][a-z0-9_]*)\}")
VOCAB_NAME = re.compile(r"[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*")  # names and subfolders: no "..", no absolute path


class VocabError(EntityUnlearnError, ValueError):
    """A vocabulary or one of its properties is missing; the message names it."""


class VocabPathError(EntityUnlearnError, ValueError):
    """A vocabulary is named by a path that leaves the type file's folder and the built-in vocabularies."""


def _checked(folder: Path, name: str, suffix: str) -> Path | None:
    """``folder/name.suffix`` when it is a file inside ``folder`` (a link leading out of it is refused)."""
    path = folder / f"{name}{suffix}"
    if not path.is_file():
        return None
    if not path.resolve().is_relative_to(Path(folder).resolve()):
        raise VocabPathError(f"vocabulary {name!r}: {path} leads outside {folder} (a link?); copy the list into the folder")
    return path


@cache
def _list_file(folder: Path, name: str) -> dict[str, tuple[str, ...]]:
    path = folder / name
    if not path.is_file():
        return {}
    return {k: tuple(v) for k, v in tomllib.loads(path.read_text(encoding="utf-8")).items() if isinstance(v, list)}


@cache
def _table(name: str, search_dir: Path | None) -> tuple[tuple[str, ...], dict[str, dict[str, Any]]]:
    """``name`` is a name (``music_genres``, or ``lists/music_genres`` in a subfolder), never a path out of the
    folders: an absolute path, ``..`` or a link leading elsewhere is refused (VocabPathError), so a type file
    cannot copy an arbitrary file of the machine into a published dataset."""
    if not isinstance(name, str) or not VOCAB_NAME.fullmatch(name):
        raise VocabPathError(
            f"vocabulary {name!r} is not a vocabulary name; write a name such as 'music_genres' for music_genres.txt "
            f"next to the type file or in {VOCAB_DIR} (paths outside those folders are refused)"
        )
    for folder in (search_dir, VOCAB_DIR):
        if folder is None:
            continue
        if txt := _checked(folder, name, ".txt"):
            lines = txt.read_text(encoding="utf-8").splitlines()
            return tuple(x.strip() for x in lines if x.strip() and not x.startswith("#")), {}
        if (toml := _checked(folder, name, ".toml")) and name not in ("names",) + tuple(f[:-5] for f in LIST_FILES):
            raw = tomllib.loads(toml.read_text(encoding="utf-8"))
            return tuple(raw), {k: dict(v) for k, v in raw.items()}
        for lf in LIST_FILES:
            lists = _list_file(folder, lf)
            if name in lists:
                return lists[name], {}
    raise FileNotFoundError(f"vocabulary {name!r} not found: add {name}.txt (or {name}.toml) next to the type file or to {VOCAB_DIR}")


def read_vocab(name: str, search_dir: Path | None = None) -> tuple[str, ...]:
    """The values of vocabulary ``name``, in file order."""
    return _table(name, search_dir)[0]


def vocab_props(name: str, search_dir: Path | None = None) -> dict[str, dict[str, Any]]:
    """Value -> its properties (empty for a plain list)."""
    return _table(name, search_dir)[1]


def refs_removed(text: str) -> str:
    """``"lists/{occupation.genres}"`` -> ``"lists/x"``: what is left to check as a vocabulary name."""
    return _REF.sub("x", text)


def refs(text: str | None) -> list[tuple[str, str]]:
    """``"{occupation.genres}"`` -> ``[("occupation", "genres")]``."""
    return _REF.findall(text or "")


def resolve(text: str, props: Mapping[str, Mapping[str, Any]], where: str = "") -> str:
    """``text`` with every ``{attr.prop}`` replaced by that property of the entity's ``attr`` value."""

    def sub(m: re.Match) -> str:
        value = props.get(m[1], {}).get(m[2])
        if not isinstance(value, str):
            raise VocabError(f"{where}: {m[0]} has no text value for this entity (its {m[1]} has properties {sorted(props.get(m[1], {}))})")
        return value

    return _REF.sub(sub, text)
