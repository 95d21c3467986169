"""``entity-unlearn eval``: plan, run the passes, compute metrics, write a self-describing result.

Output folder: ``results.json`` (spec, flat aggregates, per-entity survival, forget entities' share answered right
by depth), ``rows.parquet`` (the per-item rows, named in results.json with their SHA-256; see ``result_file``), ``report.md``, ``depth_profile.png``, ``entity_heatmap.png`` and
``cache/`` (the request cache that makes an interrupted run resume).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import platform
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from entity_unlearn import __version__
from entity_unlearn.outputs import PARTIAL, check_output, staged

from .aggregate import aggregate, entity_depth
from .compat import decoding, openunlearning_summary
from .data import DataError, load_items, open_release
from .formatting import Formatter
from .model import SCORE_VERSION, CausalLM, check_whole_model_loading
from .passes import PassStats, RequestCache, run_passes
from .plancache import cached_plan, plan_folder
from .prompt_attacks import describe
from .provenance import command_line, now, project_commit
from .ranks import ranks_from_env
from .registry import metrics_of
from .result_file import RESULT_FORMAT, ROWS_FILE, finite, is_result_file, load_result, read_result, write_result  # noqa: F401 (the readers, re-exported)
from .rows import build_rows


@dataclass(frozen=True)
class EvalConfig:
    model: str  # a folder or a Hub id, ORG/NAME[@REVISION]
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
    max_new_tokens: int | None = None  # default: the preset's (48; openunlearning: 200)
    batch_groups: int = 16
    batch_generate: int | None = None  # None: CausalLM.generation_rows (32 for another backend)
    seed: int = 0
    progress: bool = True
    revision: str | None = None  # of a Hub model: a branch, tag or commit
    force: bool = False  # write into an existing --out that is not an evaluation (only its own files are replaced)
    command: str | None = None  # recorded in the spec; default: this process's command line
    compat: str | None = None  # "openunlearning": their decoding, and openunlearning.json with their metric names
    sets: tuple[str, ...] | None = None  # evaluate only these sets (a robustness attack needs the forget set only)
    depths: tuple[str, ...] | None = None  # only probes of these depths (d0-d4; TOFU's questions are d1)
    attacks: tuple[str, ...] | None = None  # only probes of these attack kinds ("none": the plain questions)
    prompt_attack: object | None = None  # eval.prompt_attacks.InContext / Prefill: changes every item's prompt
    robustness_attack: str = "none"  # the robustness attack this model or prompt went through; every aggregate carries it
    plan_cache: str | None = None  # folder of tokenised plans; None: the default place, "none": off (plancache)
    backend: str = "local"  # local (transformers here), openai (a server: served.ServedLM) or vllm (vllm_engine.VLLMEngineLM)
    base_url: str | None = None  # openai: the server's base URL, e.g. http://localhost:8000/v1
    tokenizer: str | None = None  # openai: the served model's tokenizer (default: the --model id)
    api_key_env: str = "OPENAI_API_KEY"  # openai: the environment variable holding the key, if the server wants one
    concurrency: int = 32  # openai: requests in flight


def _check_same_data(result: dict, spec: dict, what: str, path: str) -> None:
    theirs, ours = result["spec"]["dataset"], spec["dataset"]
    if theirs["manifest_sha256"] != ours["manifest_sha256"] or result["spec"]["forget"] != spec["forget"]:
        raise DataError(
            f"--{what} {path}: it was computed on {theirs['path']} version {theirs.get('version')} ({result['spec']['forget']}), "
            f"not on {ours['path']} version {ours.get('version')} ({spec['forget']}); rerun it on this release"
        )


# Plans a long-lived ``memo`` keeps (the least recently used leaves first): a study or robustness run needs a few
# (one per prompt format and item selection), a scorer one per tokenizer it meets; one of the default release is
# about 13 MB pickled.
MEMO_PLANS = 4
OUTPUT_FILES = ("results.json", ROWS_FILE, "report.md", "depth_profile.png", "entity_heatmap.png", "openunlearning.json")


def is_eval_output(folder: Path) -> bool:
    """Whether ``folder`` holds an evaluation: its ``results.json``, or the request cache of an interrupted one."""
    return is_result_file(folder / "results.json") or any((folder / "cache" / f"{name}.jsonl").is_file() for name in ("score", "generate"))


SWEEP_FILES = ("sweep.md", "sweep.png")  # an eval of several models writes these beside the models' folders


def is_sweep_output(folder: Path) -> bool:
    """Whether ``folder`` holds only what an eval of several models writes: its ``SWEEP_FILES`` and folders that are
    evaluations (or empty, or left staged by an interrupted one)."""
    return all(
        (e.name in SWEEP_FILES and e.is_file()) or (e.is_dir() and (is_eval_output(e) or PARTIAL in e.name or not any(e.iterdir())))
        for e in folder.iterdir()
    )


def cache_namespaces(lm, formatter: Formatter, decoding: dict) -> tuple[str, str]:
    """(score namespace, generate namespace) of the request cache: a score depends on the model (weights, tokenizer,
    revision, dtype) and the prompt format; a generation also on every decoding setting and the stop tokens."""
    score = f"{lm.fingerprint()}:{formatter.template_sha256}:scores{SCORE_VERSION}"
    settings = json.dumps({**decoding, "stop_ids": list(formatter.stop_ids())}, sort_keys=True)
    return score, f"{score}:{hashlib.sha256(settings.encode()).hexdigest()}"


def evaluate(cfg: EvalConfig, memo: dict | None = None, timings: dict[str, float] | None = None) -> dict | None:
    """Run the whole evaluation; returns the result dict that is also written to ``results.json``.

    Started by a launcher as many processes (``ranks``), each computes its share of the passes and
    rank 0 writes the result from everyone's answers; the other ranks return None once it is written.

    ``memo``: a dict the caller keeps across calls (a study evaluating many models of one release, a scorer)
    to reuse the loaded items and the tokenised plan when the release and tokenizer are the same; it holds one
    release's items and at most ``MEMO_PLANS`` plans.
    ``timings``: filled with the seconds each step took (``bench/eval_profile.py`` prints them).
    """
    clock = Stopwatch(timings)
    ranks = ranks_from_env()
    check_whole_model_loading(ranks.world)
    with clock("import torch"):
        import torch

    torch.manual_seed(cfg.seed)
    out = check_output(cfg.out, "eval", is_eval_output, cfg.force)
    dec = decoding(cfg.compat, cfg.max_new_tokens)
    clock("load release")
    release = open_release(cfg.data)
    reference, reference_source = load_result(cfg.reference, "reference") if cfg.reference else (None, None)
    before, before_source = load_result(cfg.before, "before") if cfg.before else (None, None)
    items_key = ("items", release.path, release.revision, release.manifest_sha256, cfg.forget)
    if memo is None or items_key not in memo:
        loaded = load_items(release, cfg.forget)
        if memo is not None:
            memo.clear()  # one release at a time: a long-lived memo never grows
            memo[items_key] = loaded
    items, selection = memo[items_key] if memo is not None else loaded
    selection = copy.deepcopy(selection)  # goes into this result's spec; the memo keeps its own
    if cfg.sets is not None:
        items = [i for i in items if i.set in cfg.sets]
    if cfg.depths is not None or cfg.attacks is not None:
        items = [i for i in items if (cfg.depths is None or i.depth in cfg.depths) and (cfg.attacks is None or i.attack in cfg.attacks)]
    if not items:
        asked = ", ".join(f"--{k} {','.join(v)}" for k, v in (("sets", cfg.sets), ("depths", cfg.depths), ("attacks", cfg.attacks)) if v)
        raise DataError(f"{asked}: no probe of {release.path} ({cfg.forget}) is left to evaluate; widen the selection")
    if cfg.prompt_attack is not None:
        items = cfg.prompt_attack.apply(items, release)
    items_key = (*items_key, cfg.sets, cfg.depths, cfg.attacks, repr(cfg.prompt_attack))  # the plan memo below: these items, not the release's
    clock("load model")
    lm = load_model(replace(cfg, device=ranks.device(cfg.device)), out)
    formatter = Formatter(lm.tokenizer, cfg.chat_template)
    spec = {
        "run": {"date": now(), "command": cfg.command or command_line(), "project": project_commit()},
        "inputs": {"reference": reference_source, "before": before_source},
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
            **lm.identity.spec(),
            "fingerprint": lm.fingerprint(),
            "device": lm.device,
            "dtype": str(lm.dtype).replace("torch.", ""),
            "padding": lm.pad_note,
        },
        "prompt_format": {"kind": formatter.kind, "template_sha256": formatter.template_sha256, "chat_template_option": cfg.chat_template},
        "decoding": {**dec.spec(), "compat": cfg.compat},
        "metrics": {
            m.name: m.spec() for m in metrics_of("slice", "cross_set", *(["reference"] if reference else []), *(["before"] if before else []))
        },
        "package": {
            "entity_unlearn": __version__,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": __import__("transformers").__version__,
        },
        "seed": cfg.seed,
        "sets": list(cfg.sets) if cfg.sets is not None else None,
        "depths": list(cfg.depths) if cfg.depths is not None else None,
        "attacks": list(cfg.attacks) if cfg.attacks is not None else None,
        "robustness_attack": {"kind": cfg.robustness_attack, "prompt": describe(cfg.prompt_attack)},
    }
    if cfg.backend == "vllm":
        spec["decoding"]["scored_minkpp"] = "not available from vLLM's engine (needs the whole next-token distribution)"
    if cfg.backend == "openai":
        spec["model"]["served"] = {"backend": cfg.backend, "host": lm.config.host, "tokenizer": lm.tokenizer_source}
        spec["decoding"]["scored_minkpp"] = "not available from a server (needs the whole next-token distribution)"
    for what, other, path in (("reference", reference, cfg.reference), ("before", before, cfg.before)):
        if other is not None:
            _check_same_data(other, spec, what, path)  # type: ignore[arg-type]
    out.mkdir(parents=True, exist_ok=True)  # the request cache lives in --out itself: an interrupted run resumes from it
    clock("plan")
    plan_key = ("plan", items_key, formatter.fingerprint())
    if memo is not None and plan_key[2] is not None and plan_key in memo:
        p = memo[plan_key] = memo.pop(plan_key)  # the most recently used plan goes last
    else:
        p, _ = cached_plan(items, formatter, plan_folder(cfg.plan_cache))
        if memo is not None and plan_key[2] is not None:
            memo[plan_key] = p
            plans = [k for k in memo if k[0] == "plan"]
            for old in plans[: max(0, len(plans) - MEMO_PLANS)]:  # a scorer sees a new tokenizer per submission
                del memo[old]
    clock("read request cache")
    namespaces = cache_namespaces(lm, formatter, spec["decoding"])
    cache = RequestCache(out / "cache", *namespaces, rank=ranks.rank)
    ranks.barrier()  # every rank has read the same cache before any writes to it: they plan the same chunks
    clock.stop()
    batch_generate = cfg.batch_generate
    if batch_generate is None:
        longest = max((len(c) for c in p.contexts.values()), default=0) + dec.max_new_tokens
        batch_generate = lm.generation_rows(longest) if hasattr(lm, "generation_rows") else 32
    spec["batches"] = {"score_groups": cfg.batch_groups, "generate_rows": batch_generate}
    stats = run_passes(
        p,
        lm,
        formatter,
        cache,
        dec.max_new_tokens,
        cfg.batch_groups,
        batch_generate,
        cfg.progress,
        cut_at_newline=dec.cut_at_newline,
        ranks=ranks,
    )
    if ranks.world > 1:
        everyone = ranks.gather({k: asdict(v) for k, v in stats.items()})
        ranks.barrier()  # every rank's answers are on disk
        if not ranks.main:
            ranks.barrier()  # back once rank 0 has written the result: a caller may read it next (a study, an attack)
            return None
        cache = RequestCache(out / "cache", *namespaces)
        stats = {k: PassStats.merged([r[k] for r in everyone]) for k in stats}
        spec["processes"] = ranks.world
    spec["passes"] = {k: asdict(v) for k, v in stats.items()}
    for name, st in stats.items():
        clock.add(f"{name} pass", st.seconds)
    spec["plan"] = {"items": len(items), "continuations_requested": p.requested, "continuations_unique": p.n_score(), "contexts": len(p.contexts)}
    clock("rows")
    rows = build_rows(items, p, cache)
    clock("aggregate")
    aggregates, entities, spec["bootstrap"] = aggregate(rows, reference, before, seed=cfg.seed)
    for a in aggregates:  # a separate key: ``attack`` keeps its meaning (the probes' own prompt attacks)
        a["robustness_attack"] = cfg.robustness_attack
    result = {
        "format": RESULT_FORMAT,
        "spec": spec,
        "aggregates": aggregates,
        "entities": entities,
        "entity_depth": entity_depth(rows),
        "rows": rows,
    }
    clock("write results, report and plots")
    from .report import write_report

    with staged(out, OUTPUT_FILES) as tmp:  # results, report and plots appear together or not at all
        write_result(result, tmp)
        write_report(result, tmp, reference)
        if cfg.compat == "openunlearning":
            summary = {"format": "openunlearning-tofu-summary (entity-unlearn names mapped)", **openunlearning_summary(aggregates)}
            (tmp / "openunlearning.json").write_text(json.dumps(finite(summary), indent=1), encoding="utf-8")
    clock.stop()
    ranks.barrier()  # the other ranks wait for the result on disk
    return result


def load_model(cfg: EvalConfig, out: Path):
    """The model adapter the config names: ``CausalLM`` here, or ``ServedLM`` for a model behind a server."""
    if cfg.backend == "local":
        return CausalLM(cfg.model, cfg.device, cfg.dtype, cfg.allow_pickle, cfg.trust_remote_code, cfg.revision)
    from .identity import ModelIdentity, resolve_model

    if cfg.backend == "vllm":
        from .vllm_engine import VLLMEngineLM

        lm = VLLMEngineLM(cfg.model, cfg.dtype, allow_pickle=cfg.allow_pickle, trust_remote_code=cfg.trust_remote_code)
        lm.identity = resolve_model(cfg.model, cfg.revision, cfg.allow_pickle, cfg.trust_remote_code)
        return lm
    if cfg.backend != "openai":
        raise DataError(
            f"--backend {cfg.backend}: choose local (this process), openai (an OpenAI-compatible server, with --base-url) or vllm (vLLM's engine)"
        )
    if not cfg.base_url:
        raise DataError("--backend openai needs --base-url, the server's base URL (e.g. http://localhost:8000/v1)")
    if cfg.revision:
        raise DataError(f"--backend openai: the server decides which weights it serves; drop the revision {cfg.revision!r}")
    from .served import ServedLM

    lm = ServedLM(
        cfg.model,
        cfg.base_url,
        cfg.tokenizer,
        cache_dir=out / "cache" / "served",
        api_key=os.environ.get(cfg.api_key_env),
        concurrency=cfg.concurrency,
        trust_remote_code=cfg.trust_remote_code,
    )
    lm.identity = ModelIdentity(cfg.model, None, None, "", {})  # a served model: its files are the server's
    return lm


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
