"""``entity-unlearn study``: the seed study, end to end and resumable.

Steps, each finished step marked in ``<out>/steps/<name>.json`` and never rerun:

1. inject the base with the whole release (``target``) and without the forget set (``reference``);
2. evaluate both (the target against the reference);
3. every method on the forget set at full coverage, each evaluated with ``--reference``
   and ``--before`` (the target);
4. the coverage sweep: the coverage methods on ``forgetXX_covNN`` (QA of NN% of each
   forget entity's facts), evaluated on the whole forget set;
5. deep injection (``inject --deep``), its evaluation, the deep method on it and its
   evaluation: how much survives the same unlearning run on plain and deep knowledge;
6. with ``seeds`` > 1, steps 3 and 4 again with unlearning seeds 1..N-1 (``spread``): the table reports
   each number as mean and standard deviation over seeds;
7. the robustness matrix (``matrix``): every attack of ``attacks`` on the ``robustness_methods`` models
   and on the reference model, each evaluated on the forget set.

A model step writes ``<name>.partial`` and renames it when complete; an evaluation
resumes from its own request cache. Then ``study.json`` (every number, the command,
versions and hashes), ``study.md`` (from ``cards/study.md.j2``) and two plots.

Under a launcher (``study --num-processes N``, torchrun, accelerate launch) every process runs every step, each
training on its share of every batch (sharded with ``--fsdp`` or an FSDP2 config: every injection, unlearning run
and relearning attack; evaluations hold the whole model) and computing its share of every evaluation; process 0 renames the
models, marks the steps and writes the report, and all of them meet after each step, so that the next one
reads what it wrote.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from entity_unlearn import __version__
from entity_unlearn.errors import EntityUnlearnError
from entity_unlearn.outputs import write_atomic

from .spread import findings, machine, pooled_row, seed_name

DEPTHS = ("d0", "d1", "d2", "d3", "d4")


def columns() -> tuple[tuple[str, str, str, str, str, str], ...]:
    """The table's columns, (key, header, metric, set, depth, attack), from the metric registry's ``columns``."""
    from entity_unlearn.eval.registry import load_all

    return tuple((c.key, c.header, m.name, c.set, c.depth, c.attack) for m in load_all().values() for c in m.columns)


class StudyError(EntityUnlearnError, ValueError):
    """The study cannot run as configured; the message names the option."""


@dataclass(frozen=True)
class StudyConfig:
    data: str
    base: str = "tiny"
    out: str = "study"
    forget: str = "forget05"
    methods: tuple[str, ...] = ("ga", "gd", "kl", "idk_po", "npo", "npo_gd")
    coverage_methods: tuple[str, ...] = ("npo_gd",)
    coverage: tuple[int, ...] = (25, 50, 75)
    deep_method: str | None = "npo_gd"
    seeds: int = 1  # unlearning seeds of every method and coverage run (0..seeds-1)
    robustness_methods: tuple[str, ...] = ("ga", "npo_gd")  # the methods attacked, of those run (make demo attacks npo_gd alone)
    attacks: tuple[str, ...] = ("relearn", "relearn_known", "retain_finetune", "quant8", "quant4", "in_context", "prefill")
    device: str | None = None
    dtype: str | None = None
    allow_pickle: bool = False
    trust_remote_code: bool = False
    progress: bool = True
    command: str | None = None
    unlearn_overrides: dict = field(default_factory=dict)
    max_new_tokens: int | None = None  # generation budget of every evaluation (default: the evaluator's)
    inject_train: object | None = None  # a TrainConfig replacing the preset (tests)
    tiny: object | None = None  # a TinyConfig replacing the default size (tests)


@dataclass
class Step:
    name: str
    kind: str  # "model" or "eval"
    run: Callable[[Path], object]


class Study:
    def __init__(self, cfg: StudyConfig) -> None:
        from entity_unlearn.eval.ranks import ranks_from_env

        self.cfg = cfg
        self.ranks = ranks_from_env()
        self.out = Path(cfg.out)
        self.ran: list[str] = []
        self.skipped: list[str] = []
        self.eval_memo: dict = {}  # every evaluation reads the same release: items and plan are built once

    def model(self, name: str) -> Path:
        return self.out / "models" / name

    def marker(self, name: str) -> Path:
        return self.out / "steps" / f"{name}.json"

    def do(self, step: Step) -> None:
        """Run ``step`` unless its marker says it finished; a model step is written aside and renamed at the end
        (an interrupted one resumes from the epoch checkpoint in its ``.partial`` folder)."""
        marker = self.marker(step.name)
        if marker.is_file():  # every process sees the same markers: they were written before the last meeting
            self.skipped.append(step.name)
            return
        main = self.ranks.main
        if main:
            print(f"[study] {step.name} ...", flush=True)
        start = time.perf_counter()
        if step.kind == "model":
            final = self.model(step.name)
            partial = final.with_name(final.name + ".partial")
            if main:
                shutil.rmtree(final, ignore_errors=True)
            step.run(partial)
            if main:
                os.replace(partial, final)
        else:
            step.run(self.result(step.name))
        seconds = round(time.perf_counter() - start, 1)
        if main:
            record = {"step": step.name, "kind": step.kind, "seconds": seconds, "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
            write_atomic(marker, json.dumps(record))
        self.ranks.barrier()  # the next step reads this one's model or result
        self.ran.append(step.name)
        if main:
            print(f"[study] {step.name} done in {seconds:.0f} s", flush=True)

    # -- step bodies ---------------------------------------------------------------------------
    def inject_step(self, name: str, **kw) -> Step:
        from .inject import InjectConfig, inject

        c = self.cfg
        extra = {k: v for k, v in (("train", c.inject_train), ("tiny", c.tiny)) if v is not None}
        icfg = InjectConfig(
            base=c.base, device=c.device, dtype=c.dtype, allow_pickle=c.allow_pickle, trust_remote_code=c.trust_remote_code, **extra, **kw
        )
        return Step(name, "model", lambda out: inject(c.data, out, icfg, progress=c.progress))

    def unlearn_step(self, name: str, source: str, method: str, coverage: int | None = None, seed: int = 0) -> Step:
        from .unlearn import run_unlearning

        c = self.cfg
        overrides = {**c.unlearn_overrides, "seed": seed} if seed else c.unlearn_overrides
        return Step(
            name,
            "model",
            lambda out: run_unlearning(
                str(self.model(source)), c.data, c.forget, method, out, coverage, overrides, c.device, c.dtype, progress=c.progress
            ),
        )

    def eval_step(
        self, name: str, model: str, before: str | None = None, reference: bool = True, attack=None, reference_name: str = "reference"
    ) -> Step:
        """Evaluate model ``model``; under a robustness ``attack``, on the forget set only, with its prompt attack if any."""
        from entity_unlearn.eval.run import EvalConfig, evaluate

        c = self.cfg
        tiny = c.base == "tiny"
        ecfg = dict(
            model=str(self.model(model)),
            data=c.data,
            forget=c.forget,
            device=c.device,
            dtype=c.dtype,
            reference=str(self.result(reference_name)) if reference else None,
            before=str(self.result(before)) if before else None,
            progress=c.progress,
            batch_groups=64 if tiny else 16,
            batch_generate=128 if tiny else 32,
            max_new_tokens=c.max_new_tokens,
        )
        if attack is not None:
            ecfg.update(sets=("forget",), prompt_attack=attack.prompt(), robustness_attack=attack.name)
        return Step(name, "eval", lambda out: evaluate(EvalConfig(out=str(out), **ecfg), self.eval_memo))

    def steps(self) -> list[Step]:
        c = self.cfg
        steps = [
            self.inject_step("target"),
            self.inject_step("reference", exclude=c.forget),
            self.eval_step("eval_reference", "reference", reference=False),
            self.eval_step("eval_target", "target"),
        ]
        for seed in range(c.seeds):
            for m in c.methods:
                name = seed_name(m, seed)
                steps += [self.unlearn_step(name, "target", m, seed=seed), self.eval_step(f"eval_{name}", name, before="target")]
            for m in c.coverage_methods:
                for level in c.coverage:
                    name = seed_name(f"{m}_cov{level:02d}", seed)
                    steps += [self.unlearn_step(name, "target", m, level, seed), self.eval_step(f"eval_{name}", name, before="target")]
            if seed == 0:
                steps += self.deep_steps()
        from .matrix import robustness_steps

        return steps + robustness_steps(self)

    def deep_steps(self) -> list[Step]:
        c = self.cfg
        steps: list[Step] = []
        if c.deep_method:
            name = f"deep_{c.deep_method}"
            steps += [
                self.inject_step("deep", deep=True),
                self.eval_step("eval_deep", "deep"),
                self.unlearn_step(name, "deep", c.deep_method),
                self.eval_step(f"eval_{name}", name, before="deep"),
            ]
            if c.deep_method not in c.methods:
                steps += [
                    self.unlearn_step(c.deep_method, "target", c.deep_method),
                    self.eval_step(f"eval_{c.deep_method}", c.deep_method, before="target"),
                ]
        return steps

    def result(self, name: str) -> Path:
        """The evaluation folder of model ``name`` (or of step ``eval_<name>``)."""
        return self.out / "evals" / (name if name.startswith("eval_") else f"eval_{name}")


def check(cfg: StudyConfig) -> None:
    """Fail before any training on what can be checked up front."""
    from .attack import get_attack
    from .unlearn import METHODS, get_method, unlearning_data

    for m in (*cfg.methods, *cfg.coverage_methods, *([cfg.deep_method] if cfg.deep_method else [])):
        get_method(m)
    for kind in cfg.attacks:
        get_attack(kind)
    if cfg.seeds < 1:
        raise StudyError(f"--seeds {cfg.seeds}: give 1 or more unlearning seeds")

    if not cfg.methods and not cfg.coverage_methods and not cfg.deep_method:
        raise StudyError(f"--methods, --coverage-methods and --deep-method are all empty; name at least one of {list(METHODS)}")
    for level in cfg.coverage if cfg.coverage_methods else ():
        if not 0 < level < 100:
            raise StudyError(f"--coverage {level}: coverage levels lie strictly between 0 and 100 (100 is the full-coverage run)")
        unlearning_data(cfg.data, cfg.forget, level)
    if not cfg.coverage_methods or not cfg.coverage:
        unlearning_data(cfg.data, cfg.forget)


def claim(cfg: StudyConfig, main: bool = True) -> None:
    """Record what the study's models depend on in ``<out>/study_identity.json``; refuse to resume a different study there.
    (Process 0 of many, ``main``, writes it; the others only compare.)

    Methods and coverage levels may change between runs (new steps run, finished ones are kept);
    the release, base, forget set and training settings may not.
    """
    from entity_unlearn.eval.data import open_release

    identity = {
        "release_manifest_sha256": open_release(cfg.data).manifest_sha256,
        "base": cfg.base,
        "forget": cfg.forget,
        "unlearn_overrides": cfg.unlearn_overrides,
        "inject_train": cfg.inject_train,
        "tiny": cfg.tiny,
    }
    identity = json.loads(json.dumps(identity, sort_keys=True, default=lambda o: asdict(o)))
    path = Path(cfg.out) / "study_identity.json"
    if path.is_file():
        before = json.loads(path.read_text(encoding="utf-8"))
        changed = sorted(k for k in identity if before.get(k) != identity[k])
        if changed:
            raise StudyError(
                f"--out {cfg.out}: holds a study with a different {', '.join(changed)}; "
                "its models cannot be reused. Give a new --out, or delete the folder to start over"
            )
        return
    if main:
        write_atomic(path, json.dumps(identity, indent=1, sort_keys=True))  # whole or absent: another process may be reading it


def run_study(cfg: StudyConfig) -> dict | None:
    """Run every unfinished step, then write the report; returns study.json's content plus this run's counts
    (on many processes, process 0 does; the others return None)."""
    check(cfg)
    start = time.perf_counter()
    study = Study(cfg)
    claim(cfg, study.ranks.main)
    study.ranks.barrier()  # the identity is on disk before any process reads it again
    for step in study.steps():
        study.do(step)
    if not study.ranks.main:
        return None
    report = write_report(study)
    report.update(seconds_this_run=time.perf_counter() - start, steps_run=len(study.ran), steps_skipped=len(study.skipped))
    return report


# -- report ------------------------------------------------------------------------------------
def _lookup(result: dict, metric: str, set_: str, depth: str, attack: str):
    for a in result["aggregates"]:
        if (a["metric"], a["set"], a["depth"], a["attack"]) == (metric, set_, depth, attack):
            return a["value"]
    return None


def table_row(name: str, result: dict) -> dict:
    return {"model": name, **{key: _lookup(result, metric, s, d, a) for key, _, metric, s, d, a in columns()}}


def write_report(study: Study) -> dict:
    cfg = study.cfg
    results = {}
    from entity_unlearn.eval import read_result

    from .matrix import attacked_methods

    attacked = attacked_methods(cfg)  # summarised by the matrix report even without attacks (surviving entities unattacked)
    matrix = tuple(f"{m}_" for m in ("reference", *attacked))  # the robustness matrix reads per-item rows
    for path in sorted((study.out / "evals").iterdir()):
        if (path / "results.json").is_file():  # the tables read aggregates only: other rows stay on disk
            name = path.name.removeprefix("eval_")
            rows = bool(attacked) and (name in ("reference", "target", *attacked) or name.startswith(matrix))
            results[name] = read_result(path, "study evaluation", rows=rows)
    order = ["reference", "target", *cfg.methods, *[f"{m}_cov{level:02d}" for m in cfg.coverage_methods for level in cfg.coverage]]
    if cfg.deep_method:
        order += ["deep", f"deep_{cfg.deep_method}"]
    order = list(dict.fromkeys(order))
    keys = [c[0] for c in columns()]
    rows = []
    for n in order:
        runs = [results[seed_name(n, s)] for s in range(cfg.seeds) if seed_name(n, s) in results]
        seeded = cfg.seeds > 1 and n not in ("reference", "target", "deep", f"deep_{cfg.deep_method}")
        if seeded and runs:
            rows.append(pooled_row(n, [table_row(n, r) for r in runs], keys))
        elif n in results:
            rows.append(table_row(n, results[n]))
    coverage = {
        m: {
            level: _lookup(results[f"{m}_cov{level:02d}"], "efficacy_prob", "forget", "all", "none")
            for level in cfg.coverage
            if f"{m}_cov{level:02d}" in results
        }
        for m in cfg.coverage_methods
    }
    for m in cfg.coverage_methods:
        if m in results:
            coverage[m][100] = _lookup(results[m], "efficacy_prob", "forget", "all", "none")
    steps = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted((study.out / "steps").glob("*.json"))}
    records = {}
    for name in order:
        for fname in ("injection.json", "unlearning.json"):
            path = study.model(name) / fname
            if path.is_file():
                rec = json.loads(path.read_text(encoding="utf-8"))
                records[name] = {k: rec.get(k) for k in ("config", "train", "preset", "pairs", "texts", "data_info", "seconds")}
    deep = None
    if cfg.deep_method and all(n in results for n in ("target", "deep", cfg.deep_method, f"deep_{cfg.deep_method}")):
        deep = {
            label: {
                "before": table_row(b, results[b]),
                "after": table_row(a, results[a]),
                "prob_before": {d: _lookup(results[b], "prob", "forget", d, "none") for d in DEPTHS},
                "prob_after": {d: _lookup(results[a], "prob", "forget", d, "none") for d in DEPTHS},
            }
            for label, b, a in (("plain", "target", cfg.deep_method), ("deep", "deep", f"deep_{cfg.deep_method}"))
        }
    from .matrix import robustness_report

    robustness = robustness_report(study, results)
    any_result = next(iter(results.values()), None)
    report = {
        "format": "entity-unlearn-study/1",
        "command": cfg.command or f"entity-unlearn study --data {cfg.data} --base {cfg.base} --out {cfg.out}",
        "config": {k: v for k, v in asdict(cfg).items() if k not in ("progress", "command")},
        "dataset": any_result["spec"]["dataset"] if any_result else None,
        "package": {
            "entity_unlearn": __version__,
            "python": platform.python_version(),
            **({k: any_result["spec"]["package"][k] for k in ("torch", "transformers")} if any_result else {}),
        },
        "columns": {key: {"header": header, "metric": metric, "set": s, "depth": d, "attack": a} for key, header, metric, s, d, a in columns()},
        "table": rows,
        "seeds": cfg.seeds,
        "findings": findings([r for r in rows if r["model"] in cfg.methods], cfg.seeds, {c[0]: c[1] for c in columns()}),
        "machine": machine(),
        "robustness": robustness,
        "coverage_efficacy": coverage,
        "deep_comparison": deep,
        "models": records,
        "steps": steps,
        "compute_seconds": round(sum(s["seconds"] for s in steps.values()), 1),
    }
    write_atomic(study.out / "study.json", json.dumps(report, indent=1, sort_keys=True, default=str))
    plot_coverage(coverage, study.out / "efficacy_vs_coverage.png")
    plotted = dict.fromkeys(n for n in (*cfg.methods, *([cfg.deep_method] if cfg.deep_method else [])) if n in results)
    plot_depths(results, list(plotted), deep, study.out / "depth_profile.png")
    if robustness:
        from .robustness import plot_recovery

        plot_recovery({m: r["aggregates"] for m, r in robustness.items()}, cfg.attacks, study.out / "robustness.png")
    report["table_text"] = table_text(rows)
    (study.out / "study.md").write_text(render_markdown(report), encoding="utf-8")
    return report


def _num(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def table_text(rows: list[dict]) -> str:
    width = max([len(r["model"]) for r in rows] + [5])
    cols = columns()
    keys = [c[0] for c in cols]
    heads = [c[1].replace("efficacy ", "eff.") for c in cols]
    lines = [f"{'model':<{width}} " + " ".join(f"{h:>{max(6, len(h))}}" for h in heads)]
    for r in rows:
        lines.append(f"{r['model']:<{width}} " + " ".join(f"{_num(r[k]):>{max(6, len(h))}}" for k, h in zip(keys, heads)))
    return "\n".join(lines)


def render_markdown(report: dict) -> str:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    from entity_unlearn.cards import CARD_DIR

    env = Environment(loader=FileSystemLoader(str(CARD_DIR)), undefined=StrictUndefined, keep_trailing_newline=True)
    env.filters["num"] = _num
    levels = sorted({level for points in report["coverage_efficacy"].values() for level in points})
    from .robustness import lookup

    kinds = list(report["config"]["attacks"])
    matrix = [
        {
            "method": m,
            "recovery": {k: lookup(r["aggregates"], "recovery_beyond_reference_prob", k) for k in kinds},
            "surviving": {k: r["surviving_entity_share"].get(k) for k in ["none", *kinds]},
            "robust": lookup(r["aggregates"], "robust_surviving_entity_share", "any"),
            "nf4_crossed": (r.get("bin_crossing") or {}).get("nf4", {}).get("code_changed"),
        }
        for m, r in report["robustness"].items()
    ]
    order = lambda key: [f"{r['method']} ({_num(key(r))})" for r in sorted(matrix, key=lambda r: (key(r) is None, key(r) or 0))]  # noqa: E731
    orders = {"none": order(lambda r: r["surviving"]["none"]), "any": order(lambda r: r["robust"])}
    return env.get_template("study.md.j2").render(
        report=report, columns=columns(), depths=DEPTHS, levels=levels, kinds=kinds, matrix=matrix, orders=orders
    )


def plot_coverage(coverage: dict, path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 4))
    ax = fig.subplots()
    for method, points in coverage.items():
        xs = sorted(points)
        ax.plot(xs, [float("nan") if points[x] is None else points[x] for x in xs], "-o", label=method)
    ax.set_xlabel("knowledge coverage of the forget data (% of each entity's facts)")
    ax.set_ylabel("forget efficacy (1 - prob after / before, all depths)")
    ax.set_title("forget efficacy against coverage")
    ax.set_ylim(min(0.0, ax.get_ylim()[0]), 1.02)
    if coverage:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_depths(results: dict, methods: list[str], deep: dict | None, path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4))
    axes = fig.subplots(1, 2)
    for m in methods:
        values = [_lookup(results[m], "efficacy_prob", "forget", d, "none") for d in DEPTHS]
        axes[0].plot(DEPTHS, [float("nan") if v is None else v for v in values], "-o", label=m)
    axes[0].set_title("forget efficacy by knowledge depth (full coverage)")
    axes[0].set_xlabel("depth")
    axes[0].set_ylabel("1 - prob after / before")
    if methods:
        axes[0].legend(fontsize=8)
    if deep:
        for label, color in (("plain", "C0"), ("deep", "C2")):
            for when, style in (("prob_before", "-o"), ("prob_after", "--x")):
                vals = deep[label][when]
                axes[1].plot(
                    DEPTHS,
                    [float("nan") if vals[d] is None else vals[d] for d in DEPTHS],
                    style,
                    color=color,
                    label=f"{label} injection, {when.removeprefix('prob_')} unlearning",
                )
        axes[1].legend(fontsize=8)
    axes[1].set_title("forget prob by depth: plain vs deep injection")
    axes[1].set_xlabel("depth")
    axes[1].set_ylim(0, 1.02)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
