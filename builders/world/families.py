"""Families and the surnames they share (a type's ``surname_share``): who bears which surname before names are drawn."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from .names import NameMaker
from .spec import TypeSpec


def surname_clusters(spec: TypeSpec, drafts: list, family: list[str], culture: Callable, names: NameMaker) -> dict[str, str]:
    """Entity id -> surname, for the families of ``spec`` and the persons who share their surnames.

    A family relation's question names the surname ("Who is Ada Berg's sibling?"), so each of its wrong options
    must share it: the families of a culture are grouped under one surname per ``surname_share`` members, and
    a group smaller than that takes persons of the culture who have no family until it has ``surname_share``
    (unrelated, alike in name). Everyone else's surname is drawn freely.
    """
    ids = {d.entity_id: d for d in drafts}
    parent = {i: i for i in ids}

    def root(i: str) -> str:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for d in drafts:
        for rel in family:
            for link in d.links.get(rel, []):
                if link["target"] in ids:
                    parent[root(d.entity_id)] = root(link["target"])
    groups: dict[str, list[str]] = defaultdict(list)
    for d in drafts:
        groups[root(d.entity_id)].append(d.entity_id)
    families: dict[str | None, list[list[str]]] = defaultdict(list)
    loners: dict[str | None, list[str]] = defaultdict(list)
    for members in groups.values():
        c = culture(ids[members[0]])
        (families[c].append(members) if len(members) > 1 else loners[c].append(members[0]))
    share = spec.surname_share
    out: dict[str, str] = {}
    for c in sorted(families, key=str):
        lists = names.cultures.get(c) if c is not None else None
        if not lists:
            continue
        size = sum(len(g) for g in families[c])
        k = max(1, round(size / share))
        surnames = names.rng.sample(list(lists["surnames"]), min(k, len(lists["surnames"])))
        clusters: list[list[str]] = [[] for _ in surnames]
        for g in sorted(families[c], key=len, reverse=True):  # largest first, each to the smallest cluster
            min(clusters, key=len).extend(g)
        free = list(loners[c])
        names.rng.shuffle(free)
        for members, surname in zip(clusters, surnames):
            while len(members) < share and free:
                members.append(free.pop())
            out.update({i: surname for i in members})
    return out
