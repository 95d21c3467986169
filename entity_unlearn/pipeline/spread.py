"""Seeds and machines: what a study's numbers depend on beyond its inputs (issue 17).

``study --seeds N`` runs every unlearning step with seeds 0..N-1 (step ``<name>`` for seed 0, ``<name>_seed<s>``
after it) and reports each number as the mean over seeds with the sample standard deviation. A ranking of methods
on a column is stated only where the means differ by more than the spread: methods whose means lie within the
larger of their two standard deviations of each other are reported as tied ("≈"). With one seed there is no
spread, and the report says that no ranking was tested.

``machine()`` records what the float kernels depend on: the CPU and GPU model, torch's build and kernel
settings. The same command gives bit-identical models on one machine; another CPU's kernels round differently.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Sequence

# (column key, higher is better) of the columns a ranking is stated for
RANKED = (("forget_prob", False), ("model_utility", True), ("surviving", False))


def seed_name(name: str, seed: int) -> str:
    return name if seed == 0 else f"{name}_seed{seed}"


def mean_and_sd(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation of the values present (sd None with fewer than two)."""
    xs = [v for v in values if v is not None and not math.isnan(v)]
    if not xs:
        return None, None
    mean = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else None
    return mean, sd


def pooled_row(name: str, rows: Sequence[dict], keys: Sequence[str]) -> dict:
    """One table row for a method run with several seeds: each column's mean, its sd under ``sd``."""
    out: dict = {"model": name, "seeds": len(rows), "sd": {}}
    for key in keys:
        out[key], out["sd"][key] = mean_and_sd([r.get(key) for r in rows])
    return out


def ranking(rows: Sequence[dict], key: str, higher_is_better: bool) -> list[list[str]]:
    """Methods best first on ``key``, in groups: methods in one group are within the seed spread of a neighbour.
    Without a spread (one seed) every method is its own group: ordered, but untested."""
    present = [r for r in rows if r.get(key) is not None]
    ordered = sorted(present, key=lambda r: r[key], reverse=higher_is_better)
    groups: list[list[str]] = []
    for prev, row in zip([None, *ordered], ordered):
        sd = [s for s in ((prev or {}).get("sd", {}).get(key), row.get("sd", {}).get(key)) if s is not None]
        if prev is not None and sd and abs(prev[key] - row[key]) <= max(sd):
            groups[-1].append(row["model"])
        else:
            groups.append([row["model"]])
    return groups


def findings(rows: Sequence[dict], seeds: int, headers: dict[str, str]) -> list[dict]:
    return [
        {"column": headers[key], "key": key, "higher_is_better": higher, "groups": ranking(rows, key, higher), "tested": seeds > 1}
        for key, higher in RANKED
    ]


def machine() -> dict:
    """CPU/GPU model and torch's kernel settings, as they stand in this process."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cpu_count": __import__("os").cpu_count(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "gpu": None,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
        info["cudnn_deterministic"] = torch.backends.cudnn.deterministic
        info["cudnn_benchmark"] = torch.backends.cudnn.benchmark
        info["tf32_matmul"] = torch.backends.cuda.matmul.allow_tf32
    return info
