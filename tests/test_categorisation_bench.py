"""The categorisation benchmark (bench/categorisation.py, issue 13): its judgement over corpus seeds on rows set by
hand, the feature sets its names stand for, and the tree's floor it passes on."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import bench_script
from sklearn.metrics import silhouette_score


@pytest.fixture(scope="module")
def categorisation():
    with bench_script("categorisation") as module:
        yield module


def row(corpus: str, seed: int, placement, leaf_nmi, worst, leaves, true_subcategories=36) -> dict:
    """A row as the benchmark writes it for one corpus seed, with the given per-draw figures."""
    figures = {"placement_accuracy": placement, "leaf_nmi": leaf_nmi, "worst_category_nmi": worst, "leaves": leaves}
    return {
        "corpus": corpus,
        "corpus_seed": seed,
        "extractor": "classic",
        "true_subcategories": true_subcategories,
        "draws": {key: {"each": values} for key, values in figures.items()},
    }


def test_targets_are_counted_over_every_corpus_seed_and_draw(categorisation):
    """Two corpus seeds of two draws each: a target met on some pairs says how many, at the targets' own edges."""
    rows = [
        row("demo", 0, [0.95, 0.949], [0.90, 0.91], [0.80, 0.79], [43, 44]),
        row("demo", 1, [0.96, 0.97], [0.899, 0.92], [0.5, 0.81], [29, 28]),
        row("textures", 0, [1.0, 1.0], [0.95, 0.95], [0.82, 0.82], [18, 19], true_subcategories=15),
    ]
    demo, textures = categorisation.over_corpus_seeds(rows)
    assert demo["corpus_seeds"] == [0, 1] and textures["corpus_seeds"] == [0]
    # 36 × 1.2 = 43.2 and 36 × 0.8 = 28.8: 43 and 29 are in, 44 and 28 out; 15 × 1.2 = 18
    assert demo["targets_met"] == {
        "placement": "3 of 4",
        "leaf_nmi": "3 of 4",
        "category_nmi": "2 of 4",
        "leaf_count": "2 of 4",
    }
    assert textures["targets_met"]["leaf_count"] == "1 of 2"
    assert demo["worst_category_nmi"] == {"each": [[0.80, 0.79], [0.5, 0.81]], "min": 0.5, "mean": 0.725, "max": 0.81}
    assert demo["leaves"]["min"] == 28 and demo["leaves"]["max"] == 44


def test_a_parenthesised_sum_is_projected_as_one_set(categorisation, monkeypatch):
    """``(a+b).inv`` fits one projection on both extractors' columns side by side, where ``a.inv+b.inv`` would fit
    one per extractor."""
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (64, 64), dtype=np.uint8) for _ in range(4)]
    projected = []

    def first_three_columns(name, values, images):
        projected.append((name, values))
        return values[:, :3]

    monkeypatch.setattr(categorisation, "invariant_codes", first_three_columns)
    cache: dict = {}
    codes = categorisation.extract("(classic+classic_blobs).inv", images, cache)
    ((name, values),) = projected
    assert name == "classic+classic_blobs"
    assert values.shape == (4, 160 + 191)
    np.testing.assert_array_equal(values, np.hstack([cache["classic"], cache["classic_blobs"]]))
    assert codes.shape == (4, 3) and "(classic+classic_blobs).inv" in cache


def test_variants_of_a_sum_are_drawn_at_the_largest_side_either_extractor_sees(categorisation):
    """The descriptor works at 256 px and the scattering transform at 128: their sum's variants are drawn at 256,
    which the scattering shrinks further as it shrinks any image."""
    assert categorisation.variant_side("scattering") == 128
    assert categorisation.variant_side("classic_blobs") == 256
    assert categorisation.variant_side("classic_blobs+scattering") == 256


@pytest.mark.parametrize("method", ["ward", "louvain"])
def test_the_silhouette_floor_reaches_the_split(categorisation, method):
    """Two groups 5 standard deviations apart, whose mean silhouette scikit-learn puts at 0.52: two leaves under
    the default floor of 0.15, one under a floor of 0.6 (``--min-silhouette``)."""
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(300, 4))
    rows[150:, 0] += 5
    assert silhouette_score(rows, np.repeat([0, 1], 150)) == pytest.approx(0.515, abs=0.001)
    assert len(set(categorisation.category_leaves(rows, 0, method))) == 2
    assert len(set(categorisation.category_leaves(rows, 0, method, min_silhouette=0.6))) == 1


def test_a_set_another_extractor_fills_is_extracted_by_that_extractor(categorisation):
    """``particle_facets`` has no extractor of its own: the particle descriptor's pass fills it, and that pass
    caches the plain and blob descriptors' rows as well, so a later request for them extracts nothing."""
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (64, 64), dtype=np.uint8) for _ in range(3)]
    facets = categorisation.extract("particle_facets", images, {})
    expected = categorisation.create_extractor("classic_particles").transform(images)["particle_facets"]
    assert facets.shape == (3, 3)
    np.testing.assert_array_equal(facets, expected)
    cache: dict = {}
    categorisation.extract("classic_particles", images, cache)  # one pass caches every set it fills
    assert set(cache) == {"classic_particles", "classic_blobs", "classic", "particle_facets"}
    np.testing.assert_array_equal(cache["particle_facets"], expected)


def test_a_category_block_splits_a_category_its_rows_alone_do_not(categorisation):
    """One Gaussian cloud whose images fall in two groups only along a block column: one leaf without the block,
    two leaves that are the groups with it (``--category-block``)."""
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(300, 6))
    groups = np.repeat([0, 1], 150)
    block = (groups * 6.0 + rng.normal(size=300))[:, None]
    assigned = np.array(["one category"] * 300)
    alone = categorisation.tree_leaves(rows, assigned, 0, "louvain")
    with_block = categorisation.tree_leaves(rows, assigned, 0, "louvain", block=block)
    assert len(set(alone)) == 1
    assert len(set(with_block)) == 2
    assert {len(set(with_block[groups == group])) for group in (0, 1)} == {1}


def test_only_must_name_settings_the_run_asks_for(categorisation, monkeypatch, capsys):
    """``--only`` picks among ``--category-block-weight`` × ``--community-weights``; a setting outside them is
    refused before any image is drawn, naming it."""
    monkeypatch.setattr(
        "sys.argv",
        ["categorisation.py", "--category-block-weight", "4", "3", "--community-weights", "off", "--only", "3:on"],
    )
    with pytest.raises(SystemExit) as stopped:
        categorisation.main()
    assert stopped.value.code == 2
    assert "--only names settings not asked for: 3:on" in capsys.readouterr().err


def test_rows_with_and_without_community_weights_are_counted_apart(categorisation):
    """Two settings on one corpus seed: each gets its own count of the pairs that meet the targets."""
    plain = row("demo", 0, [0.96], [0.92], [0.79], [36]) | {"category_block_weight": 4.0, "community_weights": False}
    weighted = row("demo", 0, [0.96], [0.93], [0.81], [36]) | {"category_block_weight": 3.0, "community_weights": True}
    first, second = categorisation.over_corpus_seeds([plain, weighted])
    assert (first["category_block_weight"], first["community_weights"]) == (4.0, False)
    assert (second["category_block_weight"], second["community_weights"]) == (3.0, True)
    assert (first["targets_met"]["category_nmi"], second["targets_met"]["category_nmi"]) == ("0 of 1", "1 of 1")


def test_cached_rows_come_back_as_written_and_only_under_the_same_fingerprint(categorisation, tmp_path, capsys):
    """``--cache``: the rows of every set, names with brackets and dots included, return exactly; rows written by
    other code, or a file cut short, give nothing back and say so in one line."""
    rng = np.random.default_rng(0)
    rows = {"(classic_particles+scattering_centre).inv": rng.normal(size=(5, 3)), "particle_facets": rng.random((5, 2))}
    path = categorisation.cache_path(tmp_path, "demo specimens", 4, 36, 256)
    assert path.name == "demo_specimens-seed4-36per_leaf-256px.npz"
    assert categorisation.load_cached_rows(path, "abc") == {}  # nothing written yet, nothing said
    categorisation.save_cached_rows(path, rows, "abc")
    loaded = categorisation.load_cached_rows(path, "abc")
    assert set(loaded) == set(rows)
    for name, values in rows.items():
        np.testing.assert_array_equal(loaded[name], values)
    assert capsys.readouterr().out == ""
    assert categorisation.load_cached_rows(path, "other") == {}
    assert "extracted by other code or library versions" in capsys.readouterr().out
    path.write_bytes(path.read_bytes()[:40])
    assert categorisation.load_cached_rows(path, "abc") == {}
    assert "cannot be read" in capsys.readouterr().out
    assert [entry.name for entry in tmp_path.iterdir()] == [path.name]  # no temporary file left behind


def test_the_fingerprint_follows_the_code_that_extracts(categorisation, tmp_path, monkeypatch):
    """The same files give the same fingerprint; one changed character in a package gives another, and so does a
    change to the script's own extraction; its split and scoring are not part of it."""
    package = tmp_path / "features"
    package.mkdir()
    module = package / "extractor.py"
    module.write_text("SIDE = 256\n")
    first = categorisation.code_fingerprint((package,))
    assert categorisation.code_fingerprint((package,)) == first
    module.write_text("SIDE = 255\n")
    second = categorisation.code_fingerprint((package,))
    assert second != first
    code = categorisation.extraction_code()
    assert "def extract(" in code and "def invariant_codes(" in code and "def categorise(" not in code
    monkeypatch.setattr(categorisation, "extraction_code", lambda: code + "# changed")
    assert categorisation.code_fingerprint((package,)) != second


def test_a_second_run_with_a_cache_reads_the_rows_instead_of_extracting_them(categorisation, monkeypatch, tmp_path):
    """Two runs of the benchmark with ``--cache``: the first extracts and writes, the second splits the very same
    rows without extracting; under another fingerprint it extracts again. Drawing, extraction and the split are
    stand-ins: what is tested is which rows reach the split and how often the extractor runs."""
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (8, 8), dtype=np.uint8) for _ in range(6)]
    categories = np.array(["a", "a", "a", "b", "b", "b"])
    monkeypatch.setattr(categorisation, "both_corpora", lambda *_: {"demo specimens": (images, categories, categories)})
    transforms, split_rows = [], []

    class Described:
        def transform(self, drawn):
            transforms.append(len(drawn))
            return {"stand_in": rng.normal(size=(len(drawn), 3))}

    def categorise(values, categories, leaves, draw, *args, **kwargs):
        split_rows.append(values)
        figures = {"placement_accuracy": 1.0, "leaf_nmi": 1.0, "worst_category_nmi": 1.0, "leaves": 2}
        return figures | {
            "classifier": "stand-in",
            "true_subcategories": 2,
            "placement_s": 0.0,
            "split_s": 0.0,
            "per_category": {},
            "with_true_categories": {},
            "targets_met": {},
        }

    monkeypatch.setattr(categorisation, "create_extractor", lambda name: Described())
    monkeypatch.setattr(categorisation, "feature_set_name", lambda fitted, output: output)
    monkeypatch.setattr(categorisation, "categorise", categorise)
    monkeypatch.setattr(categorisation, "code_fingerprint", lambda: "this code")
    out = tmp_path / "result.json"
    arguments = ["categorisation.py", "--extractor", "stand_in", "--cache", str(tmp_path / "cache"), "--out", str(out)]
    monkeypatch.setattr("sys.argv", arguments)
    categorisation.main()
    first = json.loads(out.read_text())
    categorisation.main()
    second = json.loads(out.read_text())
    assert transforms == [6]
    np.testing.assert_array_equal(split_rows[1], split_rows[0])
    assert [first["rows"][0]["rows_from_cache"], second["rows"][0]["rows_from_cache"]] == [False, True]
    monkeypatch.setattr(categorisation, "code_fingerprint", lambda: "changed code")
    categorisation.main()
    assert transforms == [6, 6]
    assert json.loads(out.read_text())["rows"][0]["rows_from_cache"] is False


def test_a_cache_that_cannot_be_written_costs_the_cache_not_the_run(categorisation, tmp_path, monkeypatch, capsys):
    """A full disk while the rows are written: one line, no file and no temporary file left, and the caller told
    so; a ``--cache`` that names a file is refused before any image is drawn."""

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    path = categorisation.cache_path(tmp_path, "demo specimens", 0, 36, 256)
    monkeypatch.setattr(categorisation.np, "savez", full_disk)
    assert categorisation.save_cached_rows(path, {"classic": np.ones((2, 2))}, "abc") is False
    assert "cannot write" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    a_file = tmp_path / "rows.npz"
    a_file.write_text("")
    monkeypatch.setattr("sys.argv", ["categorisation.py", "--cache", str(a_file)])
    monkeypatch.setattr(categorisation, "both_corpora", full_disk)  # never reached
    with pytest.raises(SystemExit) as stopped:
        categorisation.main()
    assert stopped.value.code == 2
    assert "--cache must name a folder" in capsys.readouterr().err
