"""Hub-native results of a scored model: ``.eval_results/*.yaml`` entries and a ``model-index`` block.

The Hub's eval-results format (hub-docs ``eval_results.yaml``; work in progress there)
stores one scalar per benchmark task in the model repo. Each headline metric of
``headline.HEADLINE`` that the result has becomes one task, ``<forget>_<key>``
(e.g. ``forget05_forget_quality``), of the release dataset at its exact commit;
``notes`` names the slice (set, depth, attack) and the reference model. The same
numbers go into the older ``model-index`` block of the model card. Both are written
beside the result in the results repo (``eval_results.yaml``, ``model_index.yaml``)
and, when the submitter asked with ``submit --open-pr``, opened as a pull request on
the model repo (the Hub shows it as community-provided while it is open).
"""

from __future__ import annotations

from pathlib import Path

from . import headline as H
from .requests import Request

SOURCE_NAME = "entity-unlearn scorer"
TASK_TYPE = "text-generation"


def _values(result: dict) -> list[tuple[H.Headline, float]]:
    out = []
    for h in H.HEADLINE:
        v = H.value(result["aggregates"], h)
        if v is not None:
            out.append((h, v))
    return out


def _notes(h: H.Headline, request: Request) -> str:
    ref = f"; reference {request.reference_model}@{request.reference_commit[:12]}" if request.reference_model and request.reference_commit else ""
    return f"entity-unlearn {h.metric}: set {h.set or 'retain+neighbor+world'}, depth {h.depth}, attack {h.attack}{ref}"


def hub_entries(result: dict, request: Request, source_url: str) -> list[dict]:
    """The ``.eval_results`` YAML list (one entry per headline metric present)."""
    from huggingface_hub import EvalResultEntry, eval_result_entries_to_yaml

    date = request.finished_at or request.submitted_at
    entries = [
        EvalResultEntry(
            dataset_id=request.release,
            task_id=f"{request.forget}_{h.key}",
            value=round(v, 6),
            dataset_revision=request.release_commit,
            date=date,
            source_url=source_url,
            source_name=SOURCE_NAME,
            notes=_notes(h, request),
        )
        for h, v in _values(result)
    ]
    return eval_result_entries_to_yaml(entries)


def model_index_results(result: dict, request: Request, source_url: str) -> list:
    """``huggingface_hub.EvalResult`` records of the same numbers, for the card's model-index."""
    from huggingface_hub import EvalResult

    return [
        EvalResult(
            task_type=TASK_TYPE,
            task_name="entity-level unlearning",
            dataset_type=request.release,
            dataset_name=f"{request.release} {request.forget}",
            dataset_config=request.forget,
            dataset_split="train",
            dataset_revision=request.release_commit,
            metric_type=h.key,
            metric_name=h.key,
            metric_value=round(v, 6),
            verified=False,
            source_name=SOURCE_NAME,
            source_url=source_url,
        )
        for h, v in _values(result)
    ]


def write_hub_files(out: Path, result: dict, request: Request, source_url: str) -> None:
    """``eval_results.yaml`` and ``model_index.yaml`` beside the result."""
    import yaml
    from huggingface_hub.repocard_data import eval_results_to_model_index

    name = request.model.split("/")[1]
    (out / "eval_results.yaml").write_text(yaml.safe_dump(hub_entries(result, request, source_url), sort_keys=False), encoding="utf-8")
    index = {"model-index": eval_results_to_model_index(name, model_index_results(result, request, source_url))}
    (out / "model_index.yaml").write_text(yaml.safe_dump(index, sort_keys=False), encoding="utf-8")


def eval_results_path(request: Request) -> str:
    return f".eval_results/entity-unlearn_{request.run_key}.yaml"


def open_pull_request(api, result: dict, request: Request, source_url: str) -> str:
    """Open a pull request on the model repo with the ``.eval_results`` file and the card's model-index; returns its URL."""
    import yaml
    from huggingface_hub import CommitOperationAdd, ModelCard
    from huggingface_hub.errors import EntryNotFoundError
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    from entity_unlearn.cards import CARD_DIR

    env = Environment(loader=FileSystemLoader(str(Path(CARD_DIR) / "leaderboard")), undefined=StrictUndefined, keep_trailing_newline=True)
    context = {"request": request, "source_url": source_url, "values": [(h.key, v) for h, v in _values(result)]}
    try:
        card = ModelCard.load(request.model, token=api.token)
    except EntryNotFoundError:
        card = ModelCard(env.get_template("model_card.md.j2").render(**context))  # no card yet: a short one, metadata only
    ours = model_index_results(result, request, source_url)
    kept = [
        e
        for e in (card.data.eval_results or [])
        if not (e.dataset_type == request.release and e.dataset_config == request.forget and e.dataset_revision == request.release_commit)
    ]
    card.data.eval_results = kept + ours
    card.data.model_name = card.data.model_name or request.model.split("/")[1]
    entries = yaml.safe_dump(hub_entries(result, request, source_url), sort_keys=False).encode()
    info = api.create_commit(
        request.model,
        [CommitOperationAdd(eval_results_path(request), entries), CommitOperationAdd("README.md", str(card).encode())],
        commit_message=env.get_template("pull_request_title.j2").render(**context).strip(),
        commit_description=env.get_template("pull_request.md.j2").render(**context),
        create_pr=True,
    )
    return info.pr_url
