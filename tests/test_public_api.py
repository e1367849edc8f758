"""Every stage exports its public names, loaded on first use, and the README lists exactly those names."""

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
STAGES = ("ingest", "datasets", "features", "clustering", "evaluation", "web", "db")


def documented_names() -> dict[str, list[str]]:
    """The README's "Python API" table: module -> names."""
    section = README.read_text(encoding="utf-8").split("## Python API", 1)[1].split("\n## ", 1)[0]
    table = {}
    for module, cell in re.findall(r"^\| `(semcurate[\w.]*)` \| (.+) \|$", section, flags=re.MULTILINE):
        table[module] = re.findall(r"`(\w+)`", cell)
    return table


def test_the_readme_documents_every_stage():
    assert set(documented_names()) == {"semcurate", *(f"semcurate.{stage}" for stage in STAGES)}


@pytest.mark.parametrize("module_name", ["semcurate", *(f"semcurate.{stage}" for stage in STAGES)])
def test_every_documented_name_imports_from_its_stage(module_name):
    module = importlib.import_module(module_name)
    documented = documented_names()[module_name]
    exported = [name for name in module.__all__ if not isinstance(getattr(module, name), type(module))]
    assert sorted(documented) == sorted(exported), "README and __all__ disagree"
    for name in documented:
        value = getattr(module, name)
        assert name in dir(module)
        # Defined inside the stage itself (or, for the top level, anywhere in semcurate), not re-exported from a peer.
        origin = getattr(value, "__module__", None) or module_name
        assert origin.startswith(module_name if module_name != "semcurate" else "semcurate."), (name, origin)


def test_the_names_the_issue_asks_for():
    from semcurate.clustering import DensityPeaks, Tree, estimate_n_clusters, linkage
    from semcurate.datasets import make_sem_corpus
    from semcurate.evaluation import dendrogram_purity, nmi, nmi_curve, reference_curves
    from semcurate.features import TiedAutoencoder, TwoNN

    assert nmi([0, 0, 1, 1], [1, 1, 0, 0]) == pytest.approx(1.0)
    assert Tree is importlib.import_module("semcurate").Tree
    assert all(
        callable(thing)
        for thing in (
            DensityPeaks,
            estimate_n_clusters,
            linkage,
            make_sem_corpus,
            dendrogram_purity,
            nmi_curve,
            reference_curves,
            TiedAutoencoder,
            TwoNN,
        )
    )


def test_an_unknown_name_is_an_attribute_error():
    import semcurate.evaluation

    with pytest.raises(AttributeError, match="no_such_score"):
        semcurate.evaluation.no_such_score  # noqa: B018


@pytest.mark.parametrize("module_name", ["semcurate", *(f"semcurate.{stage}" for stage in STAGES)])
def test_importing_a_stage_loads_no_heavy_library(module_name):
    heavy = ("tensorflow", "keras", "sklearn", "matplotlib", "scipy", "h5py", "sqlalchemy", "alembic")
    code = f"import sys, {module_name}; print(' '.join(m for m in {heavy!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == []
