"""An evaluation's result on disk: ``results.json`` (spec, flat aggregates, entities) and its per-item rows in
the sidecar ``rows.parquet`` beside it (one column per row field, zstd-compressed), named in ``results.json``
with its SHA-256.

``load_result`` is the one reader every consumer uses (``--reference``/``--before``, the attacks, the study, the
leaderboard, ``export``): it checks the format, records the file's path and SHA-256, and returns the rows too,
from the sidecar or, for a result written before the sidecar (format ``entity-unlearn-result/1``), inline.
Results of format ``/2`` (rows as gzip JSON lines, ``rows.jsonl.gz``) are read as well.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
from pathlib import Path

from .data import DataError
from .provenance import file_source

RESULT_FORMAT = "entity-unlearn-result/3"  # /3: rows in rows.parquet; /2: in rows.jsonl.gz; /1: inline in results.json
READABLE_FORMATS = ("entity-unlearn-result/1", "entity-unlearn-result/2", RESULT_FORMAT)
RESULTS_FILE = "results.json"
ROWS_FILE = "rows.parquet"


class NotAResultError(DataError):
    """A JSON file that is not an entity-unlearn result (some other tool's ``results.json``)."""


def write_result(result: dict, folder: Path) -> dict:
    """Write ``result`` (with its ``rows``) as ``results.json`` + ``rows.parquet`` into ``folder``; returns what
    ``results.json`` holds. The sidecar's bytes depend on the rows (and the pyarrow version) only."""
    rows = result.get("rows", [])
    data = rows_parquet(rows)
    head = {k: v for k, v in result.items() if k != "rows"}
    head.update(format=RESULT_FORMAT, rows_file=ROWS_FILE, rows_sha256=hashlib.sha256(data).hexdigest(), rows_count=len(rows))
    (folder / ROWS_FILE).write_bytes(data)
    (folder / RESULTS_FILE).write_text(json.dumps(finite(head), indent=1, sort_keys=True, allow_nan=False), encoding="utf-8")
    return head


HINT = f"give the {RESULTS_FILE} of an earlier `entity-unlearn eval` (or its folder)"


def load_result(path: str | Path, what: str, rows: bool = True) -> tuple[dict, dict]:
    """(result, its source: absolute path and SHA-256 of results.json) of an earlier evaluation's results.json or
    its folder. ``what`` names the option or input in messages (``reference`` -> ``--reference``). With ``rows``
    the result carries its per-item ``rows`` (read from the sidecar, checked against its SHA-256)."""
    label = f"--{what}" if what.isidentifier() and what.islower() else what  # an option's name, or a label as is (EVAL_DIR)
    p = Path(path)
    if p.is_dir():
        p = p / RESULTS_FILE
    if not p.is_file():
        raise DataError(f"{label} {path}: no {RESULTS_FILE} there; {HINT}")
    data = p.read_bytes()
    try:
        result = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{label} {p}: not valid JSON ({exc}); {HINT}") from exc
    if not isinstance(result, dict) or result.get("format") not in READABLE_FORMATS:
        found = result.get("format") if isinstance(result, dict) else type(result).__name__
        raise NotAResultError(f"{label} {p}: not an entity-unlearn result (format {found!r}); {HINT}")
    if rows and "rows" not in result:
        result["rows"] = read_rows(p.parent, result, label)
    return result, file_source(p, data)


def read_result(path: str | Path, what: str, rows: bool = True) -> dict:
    """The result alone (see ``load_result``)."""
    return load_result(path, what, rows)[0]


def read_rows(folder: Path, head: dict, label: str) -> list[dict]:
    """The per-item rows of the result whose ``results.json`` (``head``) lies in ``folder``."""
    name = head.get("rows_file")
    if not isinstance(name, str) or Path(name).name != name:
        raise DataError(f"{label} {folder / RESULTS_FILE}: names no rows file (rows_file {name!r}); rerun that evaluation")
    side = folder / name
    if not side.is_file():
        raise DataError(f"{label} {side}: missing; the per-item rows travel beside results.json, copy both (or rerun that evaluation)")
    data = side.read_bytes()
    if hashlib.sha256(data).hexdigest() != head.get("rows_sha256"):
        raise DataError(f"{label} {side}: its SHA-256 differs from the one results.json records; the two files are from different runs, rerun it")
    if name.endswith(".jsonl.gz"):  # format /2
        try:
            lines = gzip.decompress(data).decode("utf-8").splitlines()
            return [json.loads(line) for line in lines if line]
        except (OSError, EOFError, ValueError) as exc:
            raise DataError(f"{label} {side}: not readable gzip JSON lines ({exc}); rerun that evaluation") from exc
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(pa.BufferReader(data)).to_pylist()
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{label} {side}: not a readable parquet file ({exc}); rerun that evaluation") from exc


def rows_parquet(rows: list[dict]) -> bytes:
    """The rows as one parquet table: a column per field (the union of the rows' fields, in first-seen order; a
    row without one holds null there), NaN and infinities as null as in JSON (``finite``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fields = list(dict.fromkeys(k for row in rows for k in row))
    table = pa.table({k: pa.array([finite(row.get(k)) for row in rows]) for k in fields})
    buf = pa.BufferOutputStream()
    pq.write_table(table, buf, compression="zstd", use_dictionary=False)  # dictionaries of scores: a fifth larger
    return buf.getvalue().to_pybytes()


def is_result_file(path: Path) -> bool:
    """Whether ``path`` is an entity-unlearn ``results.json`` (any readable format)."""
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("format") in READABLE_FORMATS
    except (OSError, ValueError, AttributeError):
        return False


def finite(value):
    """NaN and infinities become null: JSON has no spelling for them, and readers must see them as missing."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value
