"""``entity-unlearn eval``: plan, run the passes, compute metrics, write a self-describing result.

Output folder: ``results.json`` (spec, aggregates, per-item rows, per-entity
survival), ``report.md``, ``depth_profile.png``, ``entity_heatmap.png`` and
``cache/`` (the request cache that makes an interrupted run resume).
"""

from __future__ import annotations

import copy
import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from entity_unlearn import __version__

from . import aggregate as A
from .data import DataError, load_items, open_release
from .formatting import Formatter
from .metrics import METRICS
from .model import CausalLM, file_hashes
from .passes import PassStats, RequestCache, run_passes
from .plancache import cached_plan, plan_folder
from .ranks import ranks_from_env
from .rows import build_rows

RESULT_FORMAT = "entity-unlearn-result/1"


@dataclass(frozen=True)
class EvalConfig:
    model: str
    data: str
    forget: str = "forget05"
    out: str = "eval-out"
    reference: str | None = None
    before: str | None = None
    chat_template: str = "auto"
    device: str | None = None
    dtype: str | None = None
    allow_pickle: bool = False
    trust_remote_code: bool = False
    max_new_tokens: int = 48
    batch_groups: int = 16
    batch_generate: int = 32
    seed: int = 0
    progress: bool = True
    plan_cache: str | None = None  # folder of tokenised plans; None: the default place, "none": off (plancache)
    backend: str = "local"  # local (transformers here), openai (a server: served.ServedLM) or vllm (vllm_engine.VLLMEngineLM)
    base_url: str | None = None  # openai: the server's base URL, e.g. http://localhost:8000/v1
    tokenizer: str | None = None  # openai: the served model's tokenizer (default: the --model id)
    api_key_env: str = "OPENAI_API_KEY"  # openai: the environment variable holding the key, if the server wants one
    concurrency: int = 32  # openai: requests in flight


def read_result(path: str | Path, what: str) -> dict:
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    if not p.is_file():
        raise DataError(f"--{what} {path}: no results.json there; give the results.json of an earlier `entity-unlearn eval`")
    result = json.loads(p.read_text(encoding="utf-8"))
    if result.get("format") != RESULT_FORMAT:
        raise DataError(f"--{what} {p}: not an entity-unlearn result (format {result.get('format')!r})")
    return result


def _check_same_data(result: dict, spec: dict, what: str, path: str) -> None:
    theirs, ours = result["spec"]["dataset"], spec["dataset"]
    if theirs["manifest_sha256"] != ours["manifest_sha256"] or result["spec"]["forget"] != spec["forget"]:
        raise DataError(
            f"--{what} {path}: it was computed on {theirs['path']} version {theirs.get('version')} ({result['spec']['forget']}), "
            f"not on {ours['path']} version {ours.get('version')} ({spec['forget']}); rerun it on this release"
        )


def evaluate(cfg: EvalConfig, memo: dict | None = None, timings: dict[str, float] | None = None) -> dict | None:
    """Run the whole evaluation; returns the result dict that is also written to ``results.json``.

    Started by a launcher as many processes (``ranks``), each computes its share of the passes and
    rank 0 writes the result from everyone's answers; the other ranks return None.

    ``memo``: a dict the caller keeps across calls (a study evaluating many models of one release)
    to reuse the loaded items and the tokenised plan when the release and tokenizer are the same.
    ``timings``: filled with the seconds each step took (``bench/eval_profile.py`` prints them).
    """
    clock = Stopwatch(timings)
    ranks = ranks_from_env()
    with clock("import torch"):
        import torch

    torch.manual_seed(cfg.seed)
    clock("load release")
    release = open_release(cfg.data)
    reference = read_result(cfg.reference, "reference") if cfg.reference else None
    before = read_result(cfg.before, "before") if cfg.before else None
    items_key = ("items", release.path, release.revision, release.manifest_sha256, cfg.forget)
    if memo is None or items_key not in memo:
        loaded = load_items(release, cfg.forget)
        if memo is not None:
            memo.clear()  # one release at a time: a long-lived memo never grows
            memo[items_key] = loaded
    items, selection = memo[items_key] if memo is not None else loaded
    selection = copy.deepcopy(selection)  # goes into this result's spec; the memo keeps its own
    clock("load model")
    out = Path(cfg.out)
    lm = load_model(replace(cfg, device=ranks.device(cfg.device)), out)
    formatter = Formatter(lm.tokenizer, cfg.chat_template)
    spec = {
        "dataset": {
            "path": release.path,
            "revision": release.revision,
            "version": release.manifest.get("version"),
            "seed": release.manifest.get("seed"),
            "manifest_sha256": release.manifest_sha256,
        },
        "forget": cfg.forget,
        "selection": selection,
        "model": {
            "path": cfg.model,
            "fingerprint": lm.fingerprint(),
            "files_sha256": file_hashes(cfg.model),
            "device": lm.device,
            "dtype": str(lm.dtype).replace("torch.", ""),
            "padding": lm.pad_note,
        },
        "prompt_format": {"kind": formatter.kind, "template_sha256": formatter.template_sha256, "chat_template_option": cfg.chat_template},
        "decoding": {"greedy": True, "max_new_tokens": cfg.max_new_tokens, "stop": "end-of-turn token or newline"},
        "metrics": {name: {"version": m.version, "higher_is_better": m.higher_is_better} for name, m in sorted(METRICS.items())},
        "package": {
            "entity_unlearn": __version__,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": __import__("transformers").__version__,
        },
        "seed": cfg.seed,
    }
    if cfg.backend == "vllm":
        spec["decoding"]["scored_minkpp"] = "not available from vLLM's engine (needs the whole next-token distribution)"
    if cfg.backend == "openai":
        spec["model"]["served"] = {"backend": cfg.backend, "host": lm.config.host, "tokenizer": lm.tokenizer_source}
        spec["decoding"]["scored_minkpp"] = "not available from a server (needs the whole next-token distribution)"
    for what, other, path in (("reference", reference, cfg.reference), ("before", before, cfg.before)):
        if other is not None:
            _check_same_data(other, spec, what, path)  # type: ignore[arg-type]
    out.mkdir(parents=True, exist_ok=True)
    clock("plan")
    plan_key = ("plan", items_key, formatter.fingerprint())
    if memo is not None and plan_key[2] is not None and plan_key in memo:
        p = memo[plan_key]
    else:
        p, _ = cached_plan(items, formatter, plan_folder(cfg.plan_cache))
        if memo is not None and plan_key[2] is not None:
            memo[plan_key] = p
    clock("read request cache")
    namespace = f"{lm.fingerprint()}:{formatter.template_sha256}"
    cache = RequestCache(out / "cache", namespace, ranks.rank)
    ranks.barrier()  # every rank has read the same cache before any writes to it: they plan the same chunks
    clock.stop()
    stats = run_passes(p, lm, formatter, cache, cfg.max_new_tokens, cfg.batch_groups, cfg.batch_generate, cfg.progress, ranks=ranks)
    if ranks.world > 1:
        everyone = ranks.gather({k: asdict(v) for k, v in stats.items()})
        ranks.barrier()  # every rank's answers are on disk
        if not ranks.main:
            return None
        cache = RequestCache(out / "cache", namespace)
        stats = {k: PassStats.merged([r[k] for r in everyone]) for k in stats}
        spec["processes"] = ranks.world
    spec["passes"] = {k: asdict(v) for k, v in stats.items()}
    for name, st in stats.items():
        clock.add(f"{name} pass", st.seconds)
    spec["plan"] = {"items": len(items), "continuations_requested": p.requested, "continuations_unique": p.n_score(), "contexts": len(p.contexts)}
    clock("rows")
    rows = build_rows(items, p, cache)
    clock("aggregate")
    aggregates = A.grouped_metrics(rows)
    aggregates += A.utility_rows(aggregates)
    aggregates += A.mia_rows(rows, reference["aggregates"] if reference else None)
    entities: list[dict] = []
    if reference:
        aggregates += A.forget_quality_rows(rows, reference["rows"])
        surv, entities = A.survival(rows, reference["rows"])
        aggregates += surv
    if before:
        aggregates += A.efficacy_rows(aggregates, before["aggregates"])
    result = {"format": RESULT_FORMAT, "spec": spec, "aggregates": aggregates, "entities": entities, "rows": rows}
    clock("write results")
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps(_finite(result), indent=1, sort_keys=True, allow_nan=False), encoding="utf-8")
    os.replace(tmp, out / "results.json")
    clock("report and plots")
    from .report import write_report

    write_report(result, out, reference)
    clock.stop()
    return result


def load_model(cfg: EvalConfig, out: Path):
    """The model adapter the config names: ``CausalLM`` here, or ``ServedLM`` for a model behind a server."""
    if cfg.backend == "local":
        return CausalLM(cfg.model, cfg.device, cfg.dtype, cfg.allow_pickle, cfg.trust_remote_code)
    if cfg.backend == "vllm":
        from .vllm_engine import VLLMEngineLM

        return VLLMEngineLM(cfg.model, cfg.dtype, allow_pickle=cfg.allow_pickle, trust_remote_code=cfg.trust_remote_code)
    if cfg.backend != "openai":
        raise DataError(
            f"--backend {cfg.backend}: choose local (this process), openai (an OpenAI-compatible server, with --base-url) or vllm (vLLM's engine)"
        )
    if not cfg.base_url:
        raise DataError("--backend openai needs --base-url, the server's base URL (e.g. http://localhost:8000/v1)")
    from .served import ServedLM

    return ServedLM(
        cfg.model,
        cfg.base_url,
        cfg.tokenizer,
        cache_dir=out / "cache" / "served",
        api_key=os.environ.get(cfg.api_key_env),
        concurrency=cfg.concurrency,
        trust_remote_code=cfg.trust_remote_code,
    )


class Stopwatch:
    """Seconds per named step, added into ``into`` (nothing when None). ``clock(name)`` starts a step and ends
    the one before; ``with clock(name):`` also ends it with the block."""

    def __init__(self, into: dict[str, float] | None) -> None:
        self.into, self.name, self.start = into, None, 0.0

    def __call__(self, name: str) -> Stopwatch:
        self.stop()
        self.name, self.start = name, time.perf_counter()
        return self

    def __enter__(self) -> Stopwatch:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def add(self, name: str, seconds: float) -> None:
        if self.into is not None:
            self.into[name] = self.into.get(name, 0.0) + seconds

    def stop(self) -> None:
        if self.name is not None:
            self.add(self.name, time.perf_counter() - self.start)
            self.name = None


def _finite(value):
    """NaN and infinities become null: JSON has no spelling for them, and readers must see them as missing."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
