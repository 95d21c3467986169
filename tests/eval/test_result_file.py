"""The result on disk: results.json without rows + rows.parquet beside it, one reader for every layout."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from entity_unlearn.cli import main
from entity_unlearn.eval import RESULT_FORMAT, DataError, load_result, read_result
from entity_unlearn.eval.aggregate import aggregate
from entity_unlearn.eval.metrics import answered_right
from entity_unlearn.eval.report import plot_entity_heatmap
from entity_unlearn.eval.result_file import finite


def test_results_json_names_its_rows_sidecar_and_the_reader_returns_the_rows(results):
    folder = results["dir"] / "target"
    head = json.loads((folder / "results.json").read_text())
    side = (folder / "rows.parquet").read_bytes()
    assert head["format"] == RESULT_FORMAT and "rows" not in head and set(head) >= {"spec", "aggregates", "entities"}
    assert head["rows_file"] == "rows.parquet" and head["rows_sha256"] == hashlib.sha256(side).hexdigest()
    table = pq.read_table(folder / "rows.parquet")  # any parquet reader opens it: one column per field
    assert table.num_rows == head["rows_count"] == len(results["target"]["rows"]) > 100
    assert table.column("token_logp").type == pa.list_(pa.float64()) and table.column("set").type == pa.string()
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


def test_a_result_with_its_rows_as_gzip_json_lines_is_still_read(results, tmp_path):
    new = read_result(results["dir"] / "ref", "reference")
    lines = b"".join(json.dumps(finite(r), sort_keys=True).encode() + b"\n" for r in new["rows"])
    side = gzip.compress(lines, mtime=0)  # the layout of format /2
    (tmp_path / "rows.jsonl.gz").write_bytes(side)
    head = {k: v for k, v in new.items() if k != "rows"} | {
        "format": "entity-unlearn-result/2",
        "rows_file": "rows.jsonl.gz",
        "rows_sha256": hashlib.sha256(side).hexdigest(),
    }
    (tmp_path / "results.json").write_text(json.dumps(head, indent=1))
    assert read_result(tmp_path, "reference")["rows"] == new["rows"]


def test_the_heatmap_is_drawn_from_the_results_json_alone(results, tmp_path):
    result = read_result(results["dir"] / "target", "result", rows=False)
    cells = {(c["entity_id"], c["depth"]): c for c in result["entity_depth"]}
    rows = [r for r in results["target"]["rows"] if r["set"] == "forget"]
    assert len(cells) == len({(r["entity_id"], r["depth"]) for r in rows}) >= 5 and sum(c["n"] for c in cells.values()) == len(rows)
    first = next(iter(cells))
    right = [r for r in rows if (r["entity_id"], r["depth"]) == first]
    assert cells[first]["answered_right"] == sum(answered_right(r) for r in right) / len(right)
    assert 0 < sum(c["answered_right"] * c["n"] for c in cells.values()) < len(rows)  # some probes answered right, not all
    plot_entity_heatmap(result, tmp_path / "heatmap.png")  # no rows in `result`
    assert (tmp_path / "heatmap.png").stat().st_size > 3000


def test_a_missing_or_foreign_sidecar_is_one_clear_error(results, release, tmp_path, capsys):
    folder = tmp_path / "ref"
    shutil.copytree(results["dir"] / "ref", folder, ignore=shutil.ignore_patterns("cache"))
    (folder / "rows.parquet").write_bytes((results["dir"] / "target" / "rows.parquet").read_bytes())
    with pytest.raises(DataError, match=r"--reference .*rows.parquet: its SHA-256 differs from the one results.json records"):
        load_result(folder, "reference")
    (folder / "rows.parquet").unlink()
    argv = ["eval", "--model", "unused", "--data", release, "--reference", str(folder), "--out", str(tmp_path / "e"), "--quiet"]
    assert main(argv) == 2  # refused before any model is loaded
    err = capsys.readouterr().err
    assert "--reference" in err and "rows.parquet: missing" in err and "copy both" in err and len(err.strip().splitlines()) == 1
