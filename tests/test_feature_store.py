"""The HDF5 feature store: append, resume, read in order, refuse bad rows."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest

from semcurate.features.store import FeatureStore, FeatureStoreBusy, FeatureStoreError


def md5s(n: int, start: int = 0) -> list[str]:
    return [f"{index:032x}" for index in range(start, start + n)]


def test_append_then_read_back_in_any_order(tmp_path):
    store = FeatureStore(tmp_path / "f.h5")
    rng = np.random.default_rng(0)
    first, second = rng.random((5, 7)), rng.random((3, 7))
    assert store.append("set", md5s(5), first) == 5
    assert store.append("set", md5s(3, 5), second) == 8
    names, values = store.read("set")
    assert names == md5s(8) and np.allclose(values, np.vstack([first, second]).astype(np.float32))
    wanted = [md5s(8)[6], md5s(8)[1]]
    names, values = store.read("set", wanted)
    assert names == wanted and np.allclose(values, np.vstack([second[1], first[1]]).astype(np.float32))
    assert store.dimension("set") == 7 and store.names() == ["set"]


def test_bad_rows_are_refused_with_a_reason(tmp_path):
    store = FeatureStore(tmp_path / "f.h5")
    store.append("set", md5s(2), np.zeros((2, 4)))
    with pytest.raises(FeatureStoreError, match="dimension 4"):
        store.append("set", md5s(1, 2), np.zeros((1, 5)))
    with pytest.raises(FeatureStoreError, match="non-finite"):
        store.append("set", md5s(1, 2), np.array([[0, np.nan, 0, 0]]))
    with pytest.raises(FeatureStoreError, match="shape"):
        store.append("set", md5s(2, 2), np.zeros((3, 4)))
    with pytest.raises(FeatureStoreError, match="no row"):
        store.read("set", md5s(1, 40))
    with pytest.raises(FeatureStoreError, match="no feature set"):
        store.read("other")
    assert store.md5s("set") == md5s(2)


def test_replace_and_delete(tmp_path):
    store = FeatureStore(tmp_path / "f.h5")
    store.append("set", md5s(4), np.ones((4, 2)))
    store.replace("set", md5s(2), np.zeros((2, 3)))
    assert store.dimension("set") == 3 and store.md5s("set") == md5s(2)
    store.delete("set")
    assert store.names() == [] and store.md5s("set") == []


def test_an_md5_already_stored_is_never_appended_again(tmp_path):
    store = FeatureStore(tmp_path / "f.h5")
    assert store.append("set", md5s(3), np.arange(6).reshape(3, 2)) == 3
    assert store.append("set", md5s(3, 2) + md5s(1, 4), np.full((4, 2), 9.0)) == 5
    names, values = store.read("set")
    assert names == md5s(5)
    assert values[:, 0].tolist() == [0.0, 2.0, 4.0, 9.0, 9.0]


def test_one_writer_at_a_time(tmp_path):
    first, second = FeatureStore(tmp_path / "f.h5"), FeatureStore(tmp_path / "f.h5")
    with first.writing():
        assert (tmp_path / "f.h5.lock").read_text() == str(os.getpid())
        with pytest.raises(FeatureStoreBusy, match=rf"another extraction is writing {tmp_path / 'f.h5'} \(pid \d+\)"):
            with second.writing():
                pass
        first.append("set", md5s(1), np.zeros((1, 2)))  # re-entrant for its holder
    with second.writing():
        second.append("set", md5s(1, 1), np.zeros((1, 2)))
    assert second.md5s("set") == md5s(2)


def test_a_half_written_batch_is_not_a_row(tmp_path):
    store = FeatureStore(tmp_path / "f.h5")
    store.append("set", md5s(2), np.ones((2, 3)))
    with h5py.File(tmp_path / "f.h5", "a") as handle:  # a batch cut off after its md5s, before its count
        for dataset in ("md5", "values"):
            handle["set"][dataset].resize(4, axis=0)
        handle["set"]["md5"][2:] = np.array([md5.encode() for md5 in md5s(2, 2)], dtype="S32")
    assert store.md5s("set") == md5s(2) and store.read("set")[1].shape == (2, 3)
    assert store.append("set", md5s(1, 2), np.zeros((1, 3))) == 3
    assert store.md5s("set") == md5s(3)
