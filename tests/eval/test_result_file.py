"""The result on disk: results.json without rows + rows.jsonl.gz beside it, one reader for both layouts."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil

import pytest

from entity_unlearn.cli import main
from entity_unlearn.eval import RESULT_FORMAT, DataError, load_result, read_result
from entity_unlearn.eval.aggregate import aggregate
from entity_unlearn.eval.result_file import finite


def test_results_json_names_its_rows_sidecar_and_the_reader_returns_the_rows(results):
    folder = results["dir"] / "target"
    head = json.loads((folder / "results.json").read_text())
    side = (folder / "rows.jsonl.gz").read_bytes()
    assert head["format"] == RESULT_FORMAT and "rows" not in head and set(head) >= {"spec", "aggregates", "entities"}
    assert head["rows_file"] == "rows.jsonl.gz" and head["rows_sha256"] == hashlib.sha256(side).hexdigest()
    lines = gzip.decompress(side).decode().splitlines()
    assert len(lines) == head["rows_count"] == len(results["target"]["rows"]) > 100
    result, source = load_result(folder, "result")
    assert result["rows"] == json.loads(json.dumps(finite(results["target"]["rows"])))  # what evaluate() returned, as JSON holds it
    assert source == {"path": str((folder / "results.json").resolve()), "sha256": hashlib.sha256((folder / "results.json").read_bytes()).hexdigest()}
    assert "rows" not in read_result(folder, "result", rows=False)  # the aggregates alone: the sidecar is not opened


def test_a_result_with_inline_rows_written_before_the_sidecar_is_still_read(results, tmp_path):
    new = read_result(results["dir"] / "ref", "reference")
    old = {k: v for k, v in new.items() if not k.startswith("rows_")} | {"format": "entity-unlearn-result/1"}
    (tmp_path / "results.json").write_text(json.dumps(old, indent=1))  # the layout before: rows inline, no sidecar
    assert read_result(tmp_path, "reference")["rows"] == new["rows"]
    rows = results["target"]["rows"]
    with_old = aggregate(rows, reference=read_result(tmp_path, "reference"))[0]
    with_new = aggregate(rows, reference=new)[0]
    assert with_old == with_new and any(a["metric"] == "forget_quality" for a in with_new)  # reference rows read from either


def test_a_missing_or_foreign_sidecar_is_one_clear_error(results, release, tmp_path, capsys):
    folder = tmp_path / "ref"
    shutil.copytree(results["dir"] / "ref", folder, ignore=shutil.ignore_patterns("cache"))
    (folder / "rows.jsonl.gz").write_bytes((results["dir"] / "target" / "rows.jsonl.gz").read_bytes())
    with pytest.raises(DataError, match=r"--reference .*rows.jsonl.gz: its SHA-256 differs from the one results.json records"):
        load_result(folder, "reference")
    (folder / "rows.jsonl.gz").unlink()
    argv = ["eval", "--model", "unused", "--data", release, "--reference", str(folder), "--out", str(tmp_path / "e"), "--quiet"]
    assert main(argv) == 2  # refused before any model is loaded
    err = capsys.readouterr().err
    assert "--reference" in err and "rows.jsonl.gz: missing" in err and "copy both" in err and len(err.strip().splitlines()) == 1
