"""``entity-unlearn leaderboard``: a static site from scored results; no server, no CDN.

Input: a results repo on the Hub (``ORG/NAME``; only each run's ``results.json``,
``request.json``, plots and report are fetched) or a local folder holding ``eval``
output folders at any depth (every ``results.json`` found, ``cache/`` skipped).
Output folder::

    index.html                  sortable, filterable table (inline JS; works from file:// and as a static Space)
    leaderboard.json, .csv      the table's data
    efficacy_vs_utility.png     forget efficacy (1 - forget prob, all depths) against model utility, every run
    runs/<slug>/index.html      one page per run: headline numbers, prob by depth, depth profile, entity heatmap
    runs/<slug>/*.png, report.md

All wording and markup are the Jinja templates in ``cards/leaderboard/``.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from entity_unlearn.errors import EntityUnlearnError
from entity_unlearn.eval.result_file import DataError, NotAResultError, load_result

from . import headline as H
from .repos import HubError, client, split_spec
from .requests import Request, RequestError, parse_request

RUN_FILES = ("results.json", "request.json", "report.md", "depth_profile.png", "entity_heatmap.png")
META = ("model", "commit", "role", "base", "method", "forget", "release", "release_revision", "submitted", "submitter")


class SiteError(EntityUnlearnError, ValueError):
    """The leaderboard cannot be built as asked; the message names the option or file."""


@dataclass(frozen=True)
class SiteConfig:
    results: str
    out: str = "site"
    hub_url: str | None = None  # for links to models and releases; default HF_ENDPOINT, else huggingface.co
    token: str | None = None


@dataclass(frozen=True)
class Run:
    slug: str
    folder: Path
    result: dict
    request: Request | None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "run"


def collect_runs(root: Path) -> list[Run]:
    """Every scored run under ``root``: a ``results.json`` of an entity-unlearn evaluation, with ``request.json`` when scored from a queue."""
    runs: list[Run] = []
    seen: set[str] = set()
    for path in sorted(root.rglob("results.json")):
        rel = path.parent.relative_to(root)
        if "cache" in rel.parts or any(p.startswith(".") for p in rel.parts):
            continue
        try:  # the table and pages read aggregates and spec only: the per-item rows (rows.parquet) are not read
            result = load_result(path, "results", rows=False)[0]
        except NotAResultError:
            continue  # some other tool's results.json
        except DataError as exc:
            raise SiteError(f"{exc}; rerun that evaluation or remove the folder") from exc
        request = None
        if (path.parent / "request.json").is_file():
            try:
                request = parse_request((path.parent / "request.json").read_bytes(), str(path.parent / "request.json"))
            except RequestError as exc:
                raise SiteError(str(exc)) from exc
        base = _slug(f"{request.model}--{request.commit[:12]}--{request.run_key}" if request else "--".join(rel.parts) or root.name)
        slug, n = base, 1
        while slug in seen:
            n += 1
            slug = f"{base}-{n}"
        seen.add(slug)
        runs.append(Run(slug, path.parent, result, request))
    return runs


def _hub_id(text: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*", text)) and not Path(text).exists()


def run_row(run: Run, hub: str) -> dict:
    """One flat record of the table (also a line of leaderboard.json/.csv)."""
    spec, agg, req = run.result["spec"], run.result["aggregates"], run.request
    data = spec["dataset"]
    model = req.model if req else spec["model"]["path"]
    commit = req.commit if req else spec["model"].get("commit") or spec["model"].get("revision")
    release = req.release if req else data["path"]
    release_rev = req.release_revision if req else data.get("revision") or data.get("version")
    release_commit = req.release_commit if req else data.get("revision")
    values = {h.key: H.value(agg, h) for h in (*H.HEADLINE, *H.DEPTH_PROB, H.FORGET_PROB_ALL)}
    directions = {h.key: H.direction(agg, h) for h in (*H.HEADLINE, *H.DEPTH_PROB, H.FORGET_PROB_ALL)}
    for key, a in H.robustness(agg).items():
        values[key], directions[key] = a["value"], a["higher_is_better"]
    return {
        "slug": run.slug,
        "model": model,
        "commit": commit,
        "role": req.role if req else "local",
        "base": req.base_model if req else None,
        "method": req.method if req else None,
        "forget": req.forget if req else spec["forget"],
        "release": release,
        "release_revision": release_rev,
        "submitted": (req.submitted_at[:10] if req else None),
        "submitter": req.submitter if req else None,
        "model_url": f"{hub}/{model}/tree/{commit}" if commit and _hub_id(model) else None,
        "release_url": f"{hub}/datasets/{release}/tree/{release_commit}" if release_commit and _hub_id(release) else None,
        "page": f"runs/{run.slug}/index.html",
        "report": f"runs/{run.slug}/report.md" if (run.folder / "report.md").is_file() else None,
        "warnings": list(req.warnings) if req else [],
        "values": values,
        "directions": directions,
    }


def fetch_results(repo: str, token: str | None = None) -> Path:
    """The results repo's run files (no per-item rows), in the local Hub cache."""
    from huggingface_hub import snapshot_download

    split_spec(repo, "--results")
    api = client(token)
    try:
        return Path(snapshot_download(repo, repo_type="dataset", allow_patterns=[f"*{f}" for f in RUN_FILES], endpoint=api.endpoint, token=api.token))
    except Exception as exc:
        from .repos import hub_failure

        raise hub_failure(exc, "--results", repo, None, "results dataset") from exc


def plot_efficacy_vs_utility(rows: list[dict], path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 5))
    ax = fig.subplots()
    for role, marker in (("submission", "o"), ("local", "o"), ("reference", "^")):
        pts = [
            (r["values"].get("model_utility") or r["values"].get("model_utility_entity"), 1 - r["values"]["forget_prob_all"], r["model"])
            for r in rows
            if r["role"] == role and r["values"].get("forget_prob_all") is not None
        ]
        pts = [p for p in pts if p[0] is not None]
        if pts:
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], marker=marker, label=role, s=40)
            for x, y, name in pts:
                ax.annotate(name.split("/")[-1], (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("model utility (higher is better)")
    ax.set_ylabel("forget efficacy: 1 - forget prob, all depths")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _columns(rows: list[dict]) -> list[dict]:
    """Value columns that at least one run has, in headline order, then robustness columns."""
    order = [h.key for h in (*H.HEADLINE, *H.DEPTH_PROB)]
    extra = sorted({k for r in rows for k in r["values"] if k not in order and k != H.FORGET_PROB_ALL.key})
    out = []
    for key in order + extra:
        if any(r["values"].get(key) is not None for r in rows):
            direction = next((r["directions"][key] for r in rows if r["directions"].get(key) is not None), None)
            out.append({"key": key, "higher_is_better": direction, "robustness": key in extra})
    return out


def build_site(cfg: SiteConfig) -> dict:
    """Write the site; returns ``{"runs": n, "out": path, "bytes": total size}``."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    from entity_unlearn.cards import CARD_DIR
    from entity_unlearn.eval.report import SETS, depth_table, lookup

    local = Path(cfg.results)
    if local.is_dir():
        root = local
    elif local.exists() or "/" not in cfg.results or cfg.results.startswith((".", "/")):
        raise SiteError(f"--results {cfg.results}: no such folder (give a folder of eval outputs, or a results dataset ORG/NAME)")
    else:
        root = fetch_results(cfg.results, cfg.token)
    runs = collect_runs(root)
    if not runs:
        raise SiteError(f"--results {cfg.results}: no entity-unlearn results.json found there; run `entity-unlearn eval` or the scorer first")
    out = Path(cfg.out)
    if out.exists() and any(out.iterdir()) and not (out / "leaderboard.json").is_file():
        raise SiteError(f"--out {out}: the folder holds other files; give an empty folder or an earlier leaderboard's")
    shutil.rmtree(out / "runs", ignore_errors=True)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    hub = (cfg.hub_url or os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")
    rows = sorted(
        (run_row(r, hub) for r in runs),
        key=lambda r: (r["values"].get("forget_quality") is None, -(r["values"].get("forget_quality") or 0), r["model"]),
    )
    columns = _columns(rows)
    env = Environment(
        loader=FileSystemLoader(str(Path(CARD_DIR) / "leaderboard")), undefined=StrictUndefined, autoescape=select_autoescape(["html", "j2"])
    )
    env.filters["num"] = lambda v: "–" if v is None else f"{v:.3f}"
    results_url = f"{hub}/datasets/{cfg.results}/tree/main" if not local.is_dir() else None
    by_slug = {r.slug: r for r in runs}
    for row in rows:
        run = by_slug[row["slug"]]
        page = out / "runs" / run.slug
        page.mkdir(parents=True, exist_ok=True)
        images = []
        for name in ("depth_profile.png", "entity_heatmap.png"):
            if (run.folder / name).is_file():
                shutil.copyfile(run.folder / name, page / name)
                images.append(name)
        if row["report"]:
            shutil.copyfile(run.folder / "report.md", page / "report.md")
        agg = run.result["aggregates"]
        depth_rows = [{"set": s, **depth_table(agg, s)} for s in SETS if lookup(agg, "prob", s, "all", "all") is not None]
        (page / "index.html").write_text(
            env.get_template("run.html.j2").render(
                row=row,
                columns=columns,
                images=images,
                depth_rows=depth_rows,
                depths=[h.depth for h in H.DEPTH_PROB],
                spec=run.result["spec"],
                results_url=f"{results_url}/{run.request.results_prefix}" if results_url and run.request else None,
            ),
            encoding="utf-8",
        )
    plot_efficacy_vs_utility(rows, out / "efficacy_vs_utility.png")
    (out / "leaderboard.json").write_text(json.dumps({"runs": rows, "columns": columns}, indent=1, sort_keys=True), encoding="utf-8")
    with open(out / "leaderboard.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([*META, *(c["key"] for c in columns), "page"])
        for r in rows:
            writer.writerow([r[m] if r[m] is not None else "" for m in META] + [_csv(r["values"].get(c["key"])) for c in columns] + [r["page"]])
    (out / "index.html").write_text(
        env.get_template("index.html.j2").render(
            rows=rows,
            columns=columns,
            forget_sets=sorted({r["forget"] for r in rows}),
            methods=sorted({r["method"] for r in rows if r["method"]}),
            source=cfg.results,
            results_url=results_url,
        ),
        encoding="utf-8",
    )
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {"runs": len(rows), "out": str(out), "bytes": size}


def _csv(v: float | None) -> str:
    return "" if v is None else repr(v)


__all__ = ["SiteConfig", "SiteError", "Run", "collect_runs", "run_row", "build_site", "HubError"]
