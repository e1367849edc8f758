"""Read an SEM image's pixel size from the vendor metadata its microscope wrote into the TIFF.

Zeiss SmartSEM writes a text block into private tag 34118 (``CZ_SEM``) and
FEI/Thermo Fisher writes INI text into tags 34680 (``FEI_SFEG``) or 34682
(``FEI_HELIOS``).  Both state the pixel size exactly, so when present they are
a second, independent reading of the scale next to the one read from the
burnt-in data bar (:mod:`semcurate.datasets.databar`); :func:`disagreement`
compares the two and :data:`DISAGREEMENT_THRESHOLD` (1 %) says when to flag them.

Units: everything returned is in nanometres (``nm_per_px``, ``hfw_nm``);
Zeiss states lengths with a unit string (``pm``, ``nm``, ``µm``/``um``,
``mm``), FEI states them in metres.

Only the TIFF header and the first page's tags are read, never the pixels,
so reading a 1024 x 768 image's metadata costs a fraction of a millisecond.
"""

from __future__ import annotations

import io
import math
import os
import re
import struct
from dataclasses import dataclass
from typing import Any, BinaryIO

import tifffile

#: Relative difference (see :func:`disagreement`) above which two pixel sizes are flagged as disagreeing (1 %).
DISAGREEMENT_THRESHOLD = 0.01

#: Nanometres per unit of the length units Zeiss writes (``µ`` appears as U+00B5 MICRO SIGN or U+03BC GREEK MU).
_NM_PER_UNIT = {
    "pm": 1e-3,
    "nm": 1.0,
    "um": 1e3,
    "\u00b5m": 1e3,
    "\u03bcm": 1e3,
    "mm": 1e6,
    "m": 1e9,
}

#: Width in px of the frame SmartSEM's ``ap_pixel_size`` refers to, whatever the stored image's width.
ZEISS_REFERENCE_WIDTH_PX = 1024

#: FEI INI sections holding ``PixelWidth`` and ``HorFieldsize``, best first.
_FEI_SECTIONS = ("Scan", "EScan")

#: A Zeiss magnification such as ``25.00 K X``, ``1.50 M X`` or ``500 X``.
_MAGNIFICATION = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*([KM]?)\s*X\s*$", re.IGNORECASE)

#: What tifffile and the structures below it raise on corrupt, truncated or non-TIFF data.  tifffile has no
#: single error type for "this is not a readable TIFF": a bad header is TiffFileError, a truncated IFD surfaces
#: as struct.error/EOFError/OSError from the seek-and-unpack reads, odd tag counts or types as ValueError,
#: TypeError, IndexError, KeyError or OverflowError, and a forged huge count as MemoryError.  Catching these
#: (rather than Exception) keeps real bugs, such as AttributeError in this module, loud.
_UNREADABLE = (
    tifffile.TiffFileError,
    struct.error,
    EOFError,
    OSError,
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    OverflowError,
    MemoryError,
)


@dataclass(frozen=True)
class MetadataScale:
    """A pixel size stated by the microscope vendor's TIFF metadata.

    Attributes
    ----------
    vendor : str
        ``"zeiss"`` (tag 34118) or ``"fei"`` (tags 34680/34682).
    nm_per_px : float
        Pixel width in nm.
    hfw_nm : float or None
        Horizontal field width in nm when stated (Zeiss ``ap_width``,
        FEI ``HorFieldsize``), else None.
    magnification : float or None
        Magnification when stated (Zeiss ``ap_mag`` such as ``25.00 K X``
        gives 25000.0), else None.
    detail : str
        The tag and field the pixel size came from, for humans, e.g.
        ``"CZ_SEM ap_image_pixel_size = 4.65 nm"``.
    """

    vendor: str
    nm_per_px: float
    hfw_nm: float | None
    magnification: float | None
    detail: str


def read_metadata_scale(source: bytes | str | os.PathLike[str] | BinaryIO) -> MetadataScale | None:
    """Return the pixel size stated by Zeiss or FEI metadata in a TIFF, or None.

    Parameters
    ----------
    source : bytes, path or binary file
        The TIFF's bytes, its path, or an open binary file positioned at the
        start of the TIFF.

    Returns
    -------
    MetadataScale or None
        Zeiss metadata is preferred when both vendors' tags are present.
        None when the data is not a readable TIFF, carries neither vendor's
        tags, or states no positive, finite pixel size.  Corrupt, truncated
        and empty data give None rather than raising; a path that cannot be
        opened raises ``OSError`` as ``open`` does.

    Notes
    -----
    Only the header and the first page's tags are read; pixels are never
    decoded.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        return _read(io.BytesIO(source))
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as handle:
            return _read(handle)
    return _read(source)


def disagreement(a_nm_per_px: float, b_nm_per_px: float) -> float:
    """Symmetric relative difference ``|a - b| / min(a, b)`` of two positive pixel sizes.

    Symmetric so that it does not matter which reading (data bar or metadata)
    is passed first; compare with :data:`DISAGREEMENT_THRESHOLD`.

    Examples
    --------
    >>> round(disagreement(2.0, 2.1), 6)  # 0.1 nm/px apart, relative to the smaller 2.0
    0.05
    >>> disagreement(2.1, 2.0) == disagreement(2.0, 2.1)
    True
    """
    smaller = min(a_nm_per_px, b_nm_per_px)
    if not smaller > 0:
        raise ValueError(f"pixel sizes must be positive, got {a_nm_per_px} and {b_nm_per_px}")
    return abs(a_nm_per_px - b_nm_per_px) / smaller


def _read(handle: BinaryIO) -> MetadataScale | None:
    try:
        with tifffile.TiffFile(handle) as tif:
            zeiss = tif.sem_metadata
            fei = tif.fei_metadata
            first = tif.pages[0]  # always a full TiffPage (not a TiffFrame); the check tells the type checker
            width_px = int(first.imagewidth) if zeiss and isinstance(first, tifffile.TiffPage) else None
    except _UNREADABLE:
        return None
    # A tag whose text tifffile cannot decode comes back as raw bytes instead of a dict; treat it as absent.
    return (_from_zeiss(zeiss, width_px) if isinstance(zeiss, dict) else None) or (
        _from_fei(fei) if isinstance(fei, dict) else None
    )


def _positive(value: float) -> float | None:
    return value if math.isfinite(value) and value > 0 else None


def _zeiss_length_nm(entry: Any) -> tuple[float, str] | None:
    """``('Image Pixel Size', 4.65, 'nm')`` → ``(4.65, '4.65 nm')``; None when not a positive length."""
    if not isinstance(entry, tuple) or len(entry) != 3:
        return None
    _, value, unit = entry
    scale = _NM_PER_UNIT.get(str(unit).strip())
    if scale is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    nm = _positive(float(value) * scale)
    return None if nm is None else (nm, f"{value} {unit}")


def _zeiss_magnification(entry: Any) -> float | None:
    if not isinstance(entry, tuple) or len(entry) < 2:
        return None
    value = entry[1]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _positive(float(value))
    match = _MAGNIFICATION.match(str(value))
    if match is None:
        return None
    factor = {"": 1.0, "K": 1e3, "M": 1e6}[match.group(2).upper()]
    return _positive(float(match.group(1)) * factor)


def _from_zeiss(metadata: dict[str, Any], width_px: int | None) -> MetadataScale | None:
    """The pixel size of the stored image, ``width_px`` wide, from SmartSEM's text; the first entry present wins.

    1. ``ap_image_pixel_size``: the stored image's own pixel size (newer SmartSEM).
    2. ``ap_pixel_size`` x 1024 / ``width_px``: SmartSEM states ``Pixel Size``
       for a 1024-px-wide frame, whatever the width the image was stored at
       (hyperspy's reader scales it the same way; the 512-px hyperspy fixture
       states 5.825 nm with ``Width = 5.965 µm``, which is 11.65 nm over its
       512 px).
    3. ``ap_width`` / ``width_px``: the field width over the image.
    """
    width = _zeiss_length_nm(metadata.get("ap_width"))
    hfw_nm = None if width is None else width[0]
    magnification = _zeiss_magnification(metadata.get("ap_mag"))
    image_pixel = _zeiss_length_nm(metadata.get("ap_image_pixel_size"))
    pixel = _zeiss_length_nm(metadata.get("ap_pixel_size"))
    if image_pixel is not None:
        nm_per_px, detail = image_pixel[0], f"CZ_SEM ap_image_pixel_size = {image_pixel[1]}"
    elif pixel is not None and width_px:
        nm_per_px = pixel[0] * ZEISS_REFERENCE_WIDTH_PX / width_px
        detail = f"CZ_SEM ap_pixel_size = {pixel[1]} for {ZEISS_REFERENCE_WIDTH_PX} px, the image {width_px} px wide"
    elif width is not None and width_px:
        nm_per_px, detail = width[0] / width_px, f"CZ_SEM ap_width = {width[1]} over {width_px} px"
    else:
        return None
    return MetadataScale("zeiss", nm_per_px, hfw_nm, magnification, detail)


def _fei_metres_nm(section: Any, key: str) -> float | None:
    value = section.get(key) if isinstance(section, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return _positive(float(value) * 1e9)


def _from_fei(metadata: dict[str, Any]) -> MetadataScale | None:
    for name in _FEI_SECTIONS:
        nm_per_px = _fei_metres_nm(metadata.get(name), "PixelWidth")
        if nm_per_px is not None:
            hfw_nm = _fei_metres_nm(metadata.get(name), "HorFieldsize")
            return MetadataScale(
                vendor="fei",
                nm_per_px=nm_per_px,
                hfw_nm=hfw_nm,
                magnification=None,
                detail=f"FEI [{name}] PixelWidth = {metadata[name]['PixelWidth']!r} m",
            )
    return None
