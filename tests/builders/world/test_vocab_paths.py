"""A type spec's vocabulary is read from its own folder or the built-in vocabularies, never from anywhere else.

Otherwise a type file could copy any ``.txt`` file of the machine into a published dataset.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from entity_unlearn.builders import SpecError, check_types, default_registry, generate_world

BAND = Path(__file__).parents[2] / "fixtures" / "band"


def band_spec(tmp_path: Path, vocab: str) -> Path:
    folder = tmp_path / "types"
    shutil.copytree(BAND, folder)
    spec = folder / "band.toml"
    spec.write_text(spec.read_text(encoding="utf-8").replace('vocab = "music_genres"', f'vocab = "{vocab}"'), encoding="utf-8")
    return spec


@pytest.mark.parametrize("vocab", ["/etc/hostname", "../secret", "lists/../../secret", "..", "C:\\\\secret", "lists/", "lists//x"])
def test_a_vocabulary_path_out_of_the_spec_folder_is_refused(vocab, tmp_path):
    (tmp_path / "secret.txt").write_text("\n".join(f"secret line {i}" for i in range(20)), encoding="utf-8")
    with pytest.raises(SpecError, match=r"vocab: .* is not a vocabulary name"):
        default_registry((band_spec(tmp_path, vocab),))


def test_a_link_out_of_the_spec_folder_is_refused(tmp_path):
    (tmp_path / "secret.txt").write_text("\n".join(f"secret line {i}" for i in range(20)), encoding="utf-8")
    spec = band_spec(tmp_path, "linked")
    (spec.parent / "linked.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(SpecError, match="leads outside"):
        check_types(default_registry((spec,)).specs(), 5)


def test_a_vocabulary_in_a_subfolder_of_the_spec_is_read(tmp_path):
    spec = band_spec(tmp_path, "lists/music_genres")
    (spec.parent / "lists").mkdir()
    shutil.move(spec.parent / "music_genres.txt", spec.parent / "lists" / "music_genres.txt")
    registry = default_registry((spec,))
    world = generate_world({"person": 20, "organisation": 0, "place": 5, "band": 6}, seed=2, registry=registry)
    genres = set((spec.parent / "lists" / "music_genres.txt").read_text(encoding="utf-8").split("\n"))
    assert {e.attributes["music_genre"] for e in world.entities if e.entity_type == "band"} <= genres
