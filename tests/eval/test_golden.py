"""Golden files: the aggregates of evaluations of tiny models built deterministically in the tests.

``tests/eval/golden/<name>.tsv`` holds every aggregate (metric, set, depth, attack, value, stderr, n) of:

- ``reference``: the model trained without forget05, evaluated alone;
- ``target``: the model trained on everything, with the reference (forget quality, privleak, survival);
- ``target_before_reference``: the target's rows aggregated with the reference's result as ``--before``
  (the efficacy rows; the pair is no unlearning run, the numbers only pin the formula).

Any change to a number is a diff of these files in review. After a deliberate change, regenerate them with
``UPDATE_GOLDEN=1 python -m pytest tests/eval/test_golden.py`` and commit the diff with the change that caused it.
The models are trained on CPU in float32 from fixed seeds; values are compared to 1e-5. The same kind of CPU gives
the same numbers (one thread or two), but another kind runs other float kernels, and 18 epochs of training carry
their last-digit differences into other models: on an AMD EPYC with AVX-512, 138, 265 and 182 aggregates of the three files moved,
forget quality 3-4x at some depths. So a CPU kind can have its own set, ``golden/<vendor>-<capability>/`` (the vendor of
/proc/cpuinfo, torch's CPU capability), which that kind reads instead of the files in ``golden/``; a kind without
one reads ``golden/``. ``UPDATE_GOLDEN=this-cpu`` writes this kind's set. A deliberate change regenerates every set
on its own kind of machine (or deletes the sets it cannot, which then fall back to ``golden/``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from entity_unlearn.eval.aggregate import aggregate

GOLDEN = Path(__file__).parent / "golden"
COLUMNS = ("metric", "set", "depth", "attack", "value", "stderr", "n")
TOLERANCE = 1e-5


def cpu_kind() -> str:
    """``AuthenticAMD-AVX512``, ``GenuineIntel-AVX2``, ...: the vendor and the vector width torch's kernels use."""
    import torch

    vendor = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        vendor = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("vendor_id")), vendor)
    return f"{vendor}-{torch.backends.cpu.get_cpu_capability()}"


def golden_folder() -> Path:
    """This CPU kind's set where there is one (or ``UPDATE_GOLDEN=this-cpu`` writes one), else the files in ``golden/``."""
    own = GOLDEN / cpu_kind()
    return own if own.is_dir() or os.environ.get("UPDATE_GOLDEN") == "this-cpu" else GOLDEN


def _fmt(v) -> str:
    return "null" if v is None else (f"{v:.9g}" if isinstance(v, float) else str(v))


def to_tsv(aggregates: list[dict]) -> str:
    rows = sorted(aggregates, key=lambda a: (a["metric"], a["set"], a["depth"], a["attack"]))
    return "\t".join(COLUMNS) + "\n" + "".join("\t".join(_fmt(a[c]) for c in COLUMNS) + "\n" for a in rows)


def from_tsv(text: str) -> dict[tuple, dict]:
    lines = text.splitlines()
    assert tuple(lines[0].split("\t")) == COLUMNS
    out = {}
    for line in lines[1:]:
        metric, set_, depth, attack, value, err, n = line.split("\t")
        num = lambda s: None if s == "null" else float(s)  # noqa: E731
        out[(metric, set_, depth, attack)] = {"value": num(value), "stderr": num(err), "n": int(n)}
    return out


def close(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE)


@pytest.fixture(scope="module")
def computed(results):
    ref, target = results["ref"], results["target"]
    before, _, _ = aggregate(target["rows"], before=ref, seed=target["spec"]["seed"])
    return {
        "reference": ref["aggregates"],
        "target": target["aggregates"],
        "target_before_reference": [a for a in before if a["metric"].startswith("efficacy_")],
    }


@pytest.mark.parametrize("name", ["reference", "target", "target_before_reference"])
def test_aggregates_match_the_golden_file(computed, name):
    path = golden_folder() / f"{name}.tsv"
    text = to_tsv(computed[name])
    if os.environ.get("UPDATE_GOLDEN") in ("1", "this-cpu"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"{path} is missing: run UPDATE_GOLDEN=1 python -m pytest {Path(__file__).name} and commit it"
    want, got = from_tsv(path.read_text(encoding="utf-8")), from_tsv(text)
    assert sorted(got) == sorted(want), f"aggregates added {sorted(set(got) - set(want))[:5]} removed {sorted(set(want) - set(got))[:5]}"
    changed = [
        (key, want[key], got[key])
        for key in want
        if want[key]["n"] != got[key]["n"] or not close(want[key]["value"], got[key]["value"]) or not close(want[key]["stderr"], got[key]["stderr"])
    ]
    assert not changed, f"{len(changed)} aggregates differ from {path} (this CPU: {cpu_kind()}), e.g. {changed[:3]}"
