"""Malformed type specifications and templates fail early with a message naming file and field."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from entity_unlearn.builders import SpecError, TemplateProblem, Templates, default_registry, generate_world, load_type
from entity_unlearn.builders.world.registry import TYPES_DIR, check_types
from entity_unlearn.builders.world.spec import parse_type


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda r: r["attributes"]["population"].update(kind="number"), "attributes.population.kind: 'number' is not a known kind"),
        (lambda r: r["attributes"]["population"].update(colour="red"), "attributes.population: unknown key(s) ['colour']"),
        (lambda r: r["attributes"]["founding_year"].update(min=["self.founded +"]), "cannot read bound 'self.founded +'"),
        (lambda r: r.update(paragraphs=[["country", "founding_year"]]), "paragraphs leave out ['landmarks', 'population', 'sister_city']"),
        (lambda r: r.update(paragraphs=r["paragraphs"] + [["weather"]]), "paragraphs name 'weather'"),
        (lambda r: r["relations"]["sister_city"].pop("target"), "relations.sister_city: a relation needs a 'target'"),
        (lambda r: r.pop("id_prefix"), "missing or empty 'id_prefix'"),
        (lambda r: r.update(hops=[["country", "founding_year"]]), "hops start at 'country'"),
    ],
)
def test_malformed_spec_names_file_and_field(mutate, message):
    raw = tomllib.loads((TYPES_DIR / "place.toml").read_text())
    mutate(raw)
    with pytest.raises(SpecError) as err:
        parse_type(raw, source="place.toml")
    assert "place.toml" in str(err.value) and message in str(err.value)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda r: r["relations"]["sister_city"].update(target="planet"), "relations.sister_city.target: entity type 'planet' is not registered"),
        (lambda r: r["attributes"]["landmarks"].update(style="monument"), "attributes.landmarks.style: unknown name style 'monument'"),
        (lambda r: r["attributes"]["country"].update(kind="choice", vocab="nations"), "attributes.country.vocab: vocabulary 'nations' not found"),
        (lambda r: r["attributes"]["population"].update(min=["self.population"]), "bound self.population must name an attribute defined above it"),
        (
            lambda r: r["relations"]["sister_city"].update(constraints=["target.country < self.founding_year"]),
            "refers to 'target.country', which is not a date, year or int",
        ),
        (lambda r: r.update(inferences=[{"rule": "age_att"}]), "did you mean 'age_at'?"),
    ],
)
def test_cross_type_problems_name_file_and_field(mutate, message):
    raw = tomllib.loads((TYPES_DIR / "place.toml").read_text())
    mutate(raw)
    registry = default_registry()
    specs = [s for s in registry.specs() if s.name != "place"] + [parse_type(raw, source="place.toml")]
    with pytest.raises(SpecError) as err:
        check_types(specs, k_perturbed=5)
    assert "place.toml" in str(err.value) and message in str(err.value)


def test_vocabulary_too_small_for_k():
    registry = default_registry()
    with pytest.raises(SpecError, match=r"attributes.genre.vocab: 8 values cannot give 25 wrong answers"):  # a conditional vocabulary
        check_types(registry.specs(), k_perturbed=25)


def test_unreadable_spec_file(tmp_path):
    bad = tmp_path / "broken.toml"
    bad.write_text("name = 'x\n")
    with pytest.raises(SpecError, match="broken.toml: not valid TOML"):
        load_type(bad)
    with pytest.raises(SpecError, match="missing.toml: cannot read type specification"):
        load_type(tmp_path / "missing.toml")


def test_duplicate_and_unknown_types():
    registry = default_registry()
    with pytest.raises(SpecError, match="'place' is already registered"):
        registry.register_file(TYPES_DIR / "place.toml")
    with pytest.raises(KeyError, match="did you mean 'person'"):
        registry.get("persom")
    with pytest.raises(KeyError, match="unknown entity type 'persn'"):
        generate_world({"persn": 3}, seed=0)


def _copy_person_type(tmp_path: Path, edit) -> Path:
    """A copy of the person templates under ``tmp_path``, changed by ``edit``."""
    src = TYPES_DIR.parent.parent / "prompts" / "person"
    dst = tmp_path / "person"
    dst.mkdir()
    for f in src.glob("*.j2"):
        (dst / f.name).write_text(f.read_text())
    edit(dst)
    return dst


def test_malformed_template_names_file_and_line(tmp_path):
    _copy_person_type(tmp_path, lambda d: (d / "qa.j2").write_text("{% block works__q %}What {{ e.name }?{% endblock %}\n"))
    with pytest.raises(TemplateProblem, match=r"person/qa.j2:1: template syntax error"):
        generate_world({"person": 5, "organisation": 2, "place": 3}, seed=0, templates=Templates((tmp_path,)))


def test_missing_block_lists_file_and_block(tmp_path):
    def drop(d):
        text = (d / "qa.j2").read_text().replace("{% block works__pq__1 %}", "{% block works__pq_old %}")
        (d / "qa.j2").write_text(text)

    _copy_person_type(tmp_path, drop)
    with pytest.raises(TemplateProblem, match=r"person/qa.j2: block 'works__pq__1' \(type person\)"):
        generate_world({"person": 5, "organisation": 2, "place": 3}, seed=0, templates=Templates((tmp_path,)))


def test_undefined_variable_is_an_error_not_an_empty_string(tmp_path):
    def edit(d):
        text = (d / "qa.j2").read_text()  # every phrasing of the question, whichever the seed draws
        (d / "qa.j2").write_text(re.sub(r"(\{% block birth_date__q__\d+ %\})", r"\1{{ e.birth_town }} ", text))

    _copy_person_type(tmp_path, edit)
    with pytest.raises(TemplateProblem, match=r"person/qa.j2 block 'birth_date__q__\d'.*birth_town"):
        generate_world({"person": 5, "organisation": 2, "place": 3}, seed=0, templates=Templates((tmp_path,)))


def test_templates_are_sandboxed(tmp_path):
    (tmp_path / "evil.j2").write_text("{% block x %}{{ ''.__class__.__mro__ }}{% endblock %}")
    with pytest.raises(TemplateProblem, match="evil.j2 block 'x'"):
        Templates((tmp_path,)).render("evil.j2", "x")
