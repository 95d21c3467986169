"""Releases load with the older ``datasets`` that OpenUnlearning pins (3.0.1) as well as with the installed major.

The old version runs in a second virtual environment holding ``datasets==3.0.1`` alone (no torch, no project):
``make test`` creates it as ``.venv-ds3``; ``DATASETS3_PYTHON`` points the test at another interpreter. It loads every
config of a release built here and prints the rows, which must equal what the installed ``datasets`` loads.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from release_fixtures import hf_offline, release, release_world  # noqa: F401

from entity_unlearn.builders.release.export import features_of

ROOT = Path(__file__).resolve().parents[3]
LOAD_ALL = """
import json, sys, datasets
datasets.disable_progress_bars()
folder, out, names = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
got = {"<version>": datasets.__version__}
for n in names:
    ds = datasets.load_dataset(folder, n, split="train")
    got[n] = {"rows": ds.to_list(), "arrow": str(ds.features.arrow_schema.remove_metadata())}
got["<default>"] = datasets.load_dataset(folder, split="train").num_rows
open(out, "w").write(json.dumps(got))
"""


def old_datasets_python() -> str | None:
    path = os.environ.get("DATASETS3_PYTHON") or str(ROOT / ".venv-ds3" / "bin" / "python")
    return path if Path(path).is_file() else None


def test_list_features_are_written_in_the_form_every_datasets_reads(release):
    """datasets < 4 fails on ``"_type": "List"`` (TypeError: must be called with a dataclass type or instance)."""
    _, manifest, folder = release
    lists = 0
    for name, info in manifest["configs"].items():
        meta = json.loads(pq.read_schema(folder / info["path"]).metadata[b"huggingface"])
        text = json.dumps(meta)
        assert '"List"' not in text, name
        lists += text.count('"Sequence"')
    assert lists > 50  # aliases, perturbed_answer, options, fact_ids, splits ... in most configs


def test_every_config_loads_with_datasets_3_and_gives_the_same_rows(release, tmp_path):
    python = old_datasets_python()
    if python is None:
        if os.environ.get("CI"):
            pytest.fail(f"{ROOT / '.venv-ds3'} is missing: CI must run `make test`, which creates it")
        pytest.skip("no datasets 3.x interpreter: run `make test` (creates .venv-ds3) or set DATASETS3_PYTHON")
    _, manifest, folder = release
    names = list(manifest["configs"])
    out = tmp_path / "old.json"
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf_old"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env.pop("PYTHONPATH", None)
    done = subprocess.run([python, "-c", LOAD_ALL, str(folder), str(out), ",".join(names)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    old = json.loads(out.read_text())
    assert old["<version>"].startswith("3."), f"{python} has datasets {old['<version>']}, not 3.x"
    for name, info in manifest["configs"].items():  # the installed datasets loads these same rows and types (test_release)
        assert old[name]["rows"] == json.loads(json.dumps(pq.read_table(folder / info["path"]).to_pylist())), name
        assert old[name]["arrow"] == str(features_of(info["layout"]).arrow_schema.remove_metadata()), name
        assert len(old[name]["rows"]) == info["rows"] > 0, name
    assert old["<default>"] == manifest["configs"]["full"]["rows"]
