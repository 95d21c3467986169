"""Human-facing output of an evaluation: report.md (from cards/report.md.j2), plots, terminal table; all drawn from
the result's aggregates and spec (``entity_depth`` for the heatmap), never its per-item rows."""

from __future__ import annotations

from pathlib import Path

from entity_unlearn.builders.schema import DEPTHS

from .catalog import HEADLINE, SETS
from .registry import metrics_of


def main_metrics() -> list[str]:
    """The slice metrics of the main table, in registration order."""
    return [m.name for m in metrics_of("slice") if m.summary]


def headline_aggregates(aggregates) -> list[dict]:
    """Aggregates of the summary metrics that are not per slice, at their headline slice (d1 / none, or all / all)."""
    names = {m.name for m in metrics_of("cross_set", "reference", "before") if m.summary}
    return [a for a in aggregates if a["metric"] in names and (a["depth"], a["attack"]) in (HEADLINE, ("all", "all"))]


def lookup(aggregates, metric, set_, depth="d1", attack="none"):
    for a in aggregates:
        if a["metric"] == metric and a["set"] == set_ and a["depth"] == depth and a["attack"] == attack:
            return a["value"]
    return None


def main_table(aggregates) -> list[dict]:
    """Rows of set x main metric at d1 without attack (TOFU's numbers)."""
    return [{"set": s, **{m: lookup(aggregates, m, s) for m in main_metrics()}} for s in SETS if lookup(aggregates, "prob", s) is not None]


def depth_table(aggregates, set_: str, metric: str = "prob") -> dict[str, float | None]:
    return {d: lookup(aggregates, metric, set_, d, "none") for d in DEPTHS}


def summary_text(result: dict) -> str:
    """The table printed to the terminal."""
    agg = result["aggregates"]
    fmt = lambda v: "   -  " if v is None else f"{v:6.3f}"  # noqa: E731
    main = main_metrics()
    lines = [f"{'set':<12}" + "".join(f"{m:>16}" for m in main)]
    for row in main_table(agg):
        lines.append(f"{row['set']:<12}" + "".join(f"{fmt(row[m]):>16}" for m in main))
    for a in headline_aggregates(agg):
        lines.append(f"{a['metric']:<24} {fmt(a['value'])}  ({a['set']}, n={a['n']})")
    lines.append("forget prob by depth: " + "  ".join(f"{d}={fmt(v).strip()}" for d, v in depth_table(agg, "forget").items()))
    return "\n".join(lines)


def sweep_table(results: list[tuple[str, dict]]) -> tuple[list[str], list[list[float | None]]]:
    """The table comparing several models (``results``: (name, result) pairs, in the order evaluated): its column names
    and each model's values. Columns: the forget and retain sets' prob and ROUGE-L recall at d1 without attack, then
    each summary metric that is not per slice, at its headline slice."""
    columns = {f"{set_} {metric}": (metric, set_, *HEADLINE) for set_ in ("forget", "retain") for metric in ("prob", "rouge_l_recall")}
    for _, result in results:
        for a in headline_aggregates(result["aggregates"]):
            columns.setdefault(a["metric"], (a["metric"], a["set"], a["depth"], a["attack"]))
    return list(columns), [[lookup(result["aggregates"], *key) for key in columns.values()] for _, result in results]


def sweep_text(results: list[tuple[str, dict]], table: tuple[list[str], list[list[float | None]]]) -> str:
    """One line per evaluated model: ``table`` (``sweep_table(results)``)."""
    columns, values = table
    width = max(len(name) for name, _ in results)
    lines = [f"{'model':<{width}}" + "".join(f"  {c:>{max(len(c), 6)}}" for c in columns)]
    for (name, _), row in zip(results, values):
        lines.append(f"{name:<{width}}" + "".join(f"  {'-' if v is None else f'{v:.3f}':>{max(len(c), 6)}}" for c, v in zip(columns, row)))
    return "\n".join(lines)


def write_sweep(results: list[tuple[str, dict]], table: tuple[list[str], list[list[float | None]]], out: Path) -> None:
    """``sweep.md`` (cards/sweep.md.j2: ``table``, which is ``sweep_table(results)``, and each model's path) and
    ``sweep.png`` (the columns whose values lie in [0, 1], by model in the order evaluated) in ``out``, beside the
    models' folders."""
    columns, values = table
    rows = [
        {"name": name, "path": result["spec"]["model"].get("path"), "commit": result["spec"]["model"].get("commit"), "values": row}
        for (name, result), row in zip(results, values)
    ]
    by_column = list(zip(*values))
    plotted = [i for i, vs in enumerate(by_column) if any(v is not None for v in vs) and all(0 <= v <= 1 for v in vs if v is not None)]
    if plotted:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(max(6, 0.6 * len(rows) + 3), 4))
        ax = fig.subplots()
        for i in plotted:
            name = columns[i]
            style = "-o" if name.startswith("forget ") else "--s" if name.startswith("retain ") else ":^"  # forget, retain, the rest
            ax.plot(range(len(rows)), [float("nan") if v is None else v for v in by_column[i]], style, label=name)
        ax.set_xticks(range(len(rows)), [r["name"] for r in rows], rotation=30 if len(rows) > 6 else 0, ha="right" if len(rows) > 6 else "center")
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("model, in the order evaluated")
        ax.set_title("forget (solid) and retain (dashed) by model")
        ax.legend(fontsize="small")
        fig.tight_layout()
        fig.savefig(out / "sweep.png", dpi=110)
    text = _cards().get_template("sweep.md.j2").render(spec=results[0][1]["spec"], columns=columns, rows=rows, with_plot=bool(plotted))
    (out / "sweep.md").write_text(text, encoding="utf-8")


def plot_depth_profile(result: dict, reference: dict | None, path: Path) -> None:
    from matplotlib.figure import Figure  # not pyplot: no backend chosen, or switched in the caller's process

    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, ("prob", "rouge_l_recall")):
        series = [("forget", result, "-o"), ("retain", result, "-s")]
        if reference is not None:
            series.append(("forget", reference, "--^"))
        for set_, res, style in series:
            values = depth_table(res["aggregates"], set_, metric)
            label = f"{set_} (reference)" if res is reference else set_
            ax.plot(list(values), [float("nan") if v is None else v for v in values.values()], style, label=label)
        ax.set_title(f"{metric} by knowledge depth")
        ax.set_xlabel("depth")
        ax.set_ylim(0, 1.02)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_entity_heatmap(result: dict, path: Path) -> None:
    """Forget entities x depth: share of probes answered right (the result's ``entity_depth`` records)."""
    from matplotlib.figure import Figure

    share = {(c["entity_id"], c["depth"]): c["answered_right"] for c in result["entity_depth"] if c["set"] == "forget"}
    ids = sorted({e for e, _ in share})
    grid = [[share.get((e, d), float("nan")) for d in DEPTHS] for e in ids]
    fig = Figure(figsize=(6, max(2.5, 0.3 * len(ids) + 1)))
    ax = fig.subplots()
    im = ax.imshow(grid, aspect="auto", vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(DEPTHS)), DEPTHS)
    ax.set_yticks(range(len(ids)), ids)
    ax.set_title("forget entities: share of probes answered right")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _cards():
    """The Jinja environment of the cards folder (report.md.j2, sweep.md.j2), with a ``num`` filter (3 decimals, "-")."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    from entity_unlearn.cards import CARD_DIR

    env = Environment(loader=FileSystemLoader(str(CARD_DIR)), undefined=StrictUndefined, keep_trailing_newline=True)
    env.filters["num"] = lambda v: "-" if v is None else f"{v:.3f}"
    return env


def write_report(result: dict, out: Path, reference: dict | None) -> None:
    plot_depth_profile(result, reference, out / "depth_profile.png")
    plot_entity_heatmap(result, out / "entity_heatmap.png")
    env = _cards()
    agg = result["aggregates"]
    main = main_metrics()
    text = env.get_template("report.md.j2").render(
        spec=result["spec"],
        main=main_table(agg),
        metrics=main,
        depths=DEPTHS,
        depth_rows=[{"set": s, **depth_table(agg, s)} for s in SETS if lookup(agg, "prob", s, "all", "all") is not None],
        extra=[a for a in agg if a["metric"] not in main and a["depth"] in ("d1", "all") and a["attack"] in ("none", "all")],
        attacks=sorted({a["attack"] for a in agg if a["set"] == "forget" and a["attack"] not in ("none", "all")}),
        attack_rows={k: lookup(agg, "prob", "forget", "d1", k) for k in sorted({a["attack"] for a in agg if a["attack"] not in ("all",)})},
        has_reference=reference is not None,
    )
    (out / "report.md").write_text(text, encoding="utf-8")
