"""Fetch the real instrument TIFFs the scale tests use into a git-ignored cache.

The ``hyperspy`` 1.7.6 wheel (a registry package, so this works wherever pip
does) ships Zeiss SmartSEM and Thermo Fisher/FEI Helios SEM TIFFs in its test
data.  Their licence is not ours, so they are never committed: this script
downloads the wheel once (``pip download --no-deps``), extracts the TIFFs into
``.cache/fixtures/instrument_tiffs/`` and checks each one's SHA-256.
Idempotent: when every file is present and intact it does nothing.

Usage: ``python scripts/fetch_fixtures.py`` (``scripts/setup.sh`` runs it).
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / ".cache" / "fixtures" / "instrument_tiffs"
WHEEL = "hyperspy==1.7.6"
INNER = "hyperspy/tests/io/tiff_files/"
#: Archive inside the wheel -> {file name: SHA-256 of the file}.
FILES = {
    "tiff_Zeiss_SEM.zip": {
        "test_tiff_Zeiss_SEM_1k.tif": "c6c20b1f01fc33f23c3267941fb86748b3bc9414c38325873d450d8a6d23ece7",
        "test_tiff_Zeiss_SEM_512pix.tif": "3ff2ed5eb9fc1e75cf2188bd4aa11bba1cc82496e1084303bc8685aa1de99431",
    },
    "tiff_FEI_Helios.zip": {
        "FEI-Helios-Ebeam-8bits.tif": "de85e8d4ebb1cd039259953dae0b4c986d15e49ce521b94d2be98374baf9a9cd",
        "FEI-Helios-Ebeam-16bits.tif": "d50b936714a2ef2c2ebf4afa8b33526970e24097c1934e5a51681fe262b88255",
    },
}


def _intact(path: Path, sha256: str) -> bool:
    return path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == sha256


def main() -> int:
    wanted = {name: digest for names in FILES.values() for name, digest in names.items()}
    if all(_intact(FIXTURES / name, digest) for name, digest in wanted.items()):
        return 0
    FIXTURES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as download:
        command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", WHEEL, "-d", download]
        if subprocess.run(command, check=False).returncode != 0:
            print(f"error: could not download {WHEEL} (instrument TIFF fixtures): check pip's index", file=sys.stderr)
            return 1
        wheel = zipfile.ZipFile(next(Path(download).glob("*.whl")))
        for archive, names in FILES.items():
            inner = zipfile.ZipFile(io.BytesIO(wheel.read(INNER + archive)))
            for name, digest in names.items():
                data = inner.read(name)
                if hashlib.sha256(data).hexdigest() != digest:
                    print(f"error: {name} in {WHEEL} does not have the expected SHA-256", file=sys.stderr)
                    return 1
                (FIXTURES / name).write_bytes(data)
    print(f"instrument TIFF fixtures in {FIXTURES.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
