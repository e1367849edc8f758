"""Run the quality and near-duplicate peers (cleanvision, imagededup) on a list of images; print JSON.

Runs inside the peers' own virtualenv (``.cache/bench-peers/venv``, made by
``bench/quality.py``), never in the project's: it imports only the peers and
the standard library.  Reads a JSON list of image paths on standard input
(each named ``<md5>.<ext>``) and prints one JSON object:

``cleanvision``
    version, seconds, ``issues`` (md5 → the issue types it raised:
    ``dark``, ``light``, ``blurry``, ``low_information``, ``odd_aspect_ratio``,
    ``odd_size``, ``grayscale``) and ``near_duplicate_sets`` (lists of md5s),
    or ``error``;
``imagededup``
    version, seconds, ``pairs`` (md5 pairs whose PHash differ in at most 10
    bits, its documented default), or ``error``; installed without torch
    (see :class:`_StubFinder`).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.metadata
import importlib.util
import json
import sys
import time
import traceback
import types
from pathlib import Path
from typing import ClassVar


def _md5(path: str) -> str:
    return Path(path).stem


def run_cleanvision(paths: list[str]) -> dict:
    from cleanvision import Imagelab

    started = time.perf_counter()
    lab = Imagelab(filepaths=paths)
    lab.find_issues()
    issues: dict[str, list[str]] = {}
    frame = lab.issues
    columns = [column for column in frame.columns if column.startswith("is_") and column.endswith("_issue")]
    for path, row in frame.iterrows():
        raised = [column[3:-6] for column in columns if bool(row[column])]
        issues[_md5(str(path))] = raised
    sets = [[_md5(str(path)) for path in group] for group in lab.info.get("near_duplicates", {}).get("sets", [])]
    return {
        "version": importlib.metadata.version("cleanvision"),
        "seconds": round(time.perf_counter() - started, 2),
        "issues": issues,
        "near_duplicate_sets": sets,
    }


class _Anything(type):
    """A class whose every attribute is another such class, and calling which returns it (nothing is run)."""

    def __getattr__(cls, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Anything(name, (), {})

    def __call__(cls, *args, **kwargs):
        return cls


class _Stub(types.ModuleType):
    """A stand-in module whose every attribute is an :class:`_Anything` (for ``torch``/``torchvision`` names)."""

    __path__: ClassVar[list[str]] = []

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Anything(name, (), {})


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers imports of torch and torchvision with :class:`_Stub` modules.

    imagededup's package imports its CNN method (torch, torchvision) even when
    only its hashes are used; installing torch for them would bring gigabytes
    into this throw-away environment, and PHash never calls it.
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in ("torch", "torchvision"):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        return _Stub(spec.name)

    def exec_module(self, module):
        return None


def run_imagededup(paths: list[str]) -> dict:
    if importlib.util.find_spec("torch") is None:
        sys.meta_path.insert(0, _StubFinder())
    from imagededup.methods import PHash

    started = time.perf_counter()
    hasher = PHash(verbose=False)
    encodings = {_md5(path): hasher.encode_image(image_file=path) for path in paths}
    encodings = {md5: code for md5, code in encodings.items() if code}
    duplicates = hasher.find_duplicates(encoding_map=encodings, max_distance_threshold=10)
    pairs = sorted({tuple(sorted((md5, other))) for md5, others in duplicates.items() for other in others})
    return {
        "version": importlib.metadata.version("imagededup"),
        "seconds": round(time.perf_counter() - started, 2),
        "pairs": [list(pair) for pair in pairs],
        "max_distance_threshold": 10,
    }


def main() -> None:
    paths = json.load(sys.stdin)
    result = {}
    for name, runner in (("cleanvision", run_cleanvision), ("imagededup", run_imagededup)):
        try:
            with contextlib.redirect_stdout(sys.stderr):  # the peers print progress; stdout carries the JSON
                result[name] = runner(paths)
        except Exception as error:  # a peer that fails is reported, not fatal: the benchmark records why
            result[name] = {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()[-2000:]}
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
