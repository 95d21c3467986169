"""Split hygiene counts retain/neighbour/world rows naming forget persons and holdout names where a model sees them."""

from __future__ import annotations

from entity_unlearn.builders.audit import EntityRow, Material, TextRow
from entity_unlearn.builders.audit.hygiene import hygiene


def person(i: int, name: str, splits: tuple[str, ...]) -> EntityRow:
    return EntityRow(f"P{i:05d}", "person", name, (f"{name[0]}. {name.split()[1]}",), {}, {}, "", splits)


def test_hygiene_names_rows_that_keep_a_forget_person_and_holdout_names_in_training():
    forget = person(1, "Ilse Varnholm", ("forget05", "forget10"))
    kept = person(2, "Kessa Droum", ("retain95", "retain90"))
    held = person(3, "Oro Fenwick", ("holdout05", "holdout10"))
    retain = (
        TextRow("retain95", "P00002/d1/spouse/1", "P00002", "Who is the spouse of Kessa Droum?", "Kessa Droum is married to Ilse Varnholm."),
        TextRow("retain95", "P00002/d1/mentor/1", "P00002", "Who was the mentor of Kessa Droum?", "The mentor of Kessa Droum was I. Varnholm."),
        TextRow("retain95", "P00002/d1/birthplace/1", "P00002", "Where was Kessa Droum born?", "Kessa Droum was born in Varnholmsby."),
    )
    world = (TextRow("world", "world/0001", None, "Who wrote Hamlet?", "William Shakespeare"),)
    material = Material(
        "release",
        "crafted",
        {},
        (forget, kept, held),
        (),
        (),
        training=("Kessa Droum is married to Ilse Varnholm.", "Oro Fenwick was born in 1950."),
        configs={"retain95": retain, "neighbor": retain[:1], "world": world},
    )
    h = hygiene(material)
    # the name and the alias count, a longer word that starts with the name does not
    assert h["retain_naming_forget"]["retain95"] == {
        **h["retain_naming_forget"]["retain95"],
        "forget_set": "forget05",
        "rows": 3,
        "rows_naming": 2,
        "persons_named": 1,
    }
    assert h["retain_naming_forget"]["retain95"]["examples"][0]["names"] == ["P00001"]
    assert h["neighbor_naming_forget"]["forget05"]["rows_naming"] == 1
    assert h["world_naming_forget"]["forget10"]["rows_naming"] == 0
    assert h["holdout_in_training"]["texts_naming"] == 1 and h["holdout_in_training"]["holdout_persons"] == 1
    assert hygiene(Material("world", "w", {}, (forget,), (), (), ())) == {"applies": False}
