"""Recognising file formats from their first bytes, with the extension as fallback.

The inventory (thesis Table 2.1) counts TIFF, JPG, PDF, BMP, DM3 and DJVU
files; everything else is ``OTHER``.  Content wins over the name: a PDF
named ``.tif`` is a PDF, a JPEG named ``.tif`` is a JPG.  Only when the
content matches no known signature does the extension decide, so that a text
file renamed ``.tif`` is inventoried as a (corrupt) TIFF, as an admin reading
the folder would count it.
"""

from __future__ import annotations

TIFF, JPG, PDF, BMP, DM3, DJVU, PNG, OTHER = "TIFF", "JPG", "PDF", "BMP", "DM3", "DJVU", "PNG", "OTHER"

#: Formats ingestion turns into images; the rest are inventoried as unsupported.
INGESTED_FORMATS = frozenset({TIFF, JPG})

#: Bytes of a file's start needed by :func:`format_from_content`.
SIGNATURE_BYTES = 16

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"II*\x00", TIFF),
    (b"MM\x00*", TIFF),
    (b"II+\x00", TIFF),  # BigTIFF
    (b"MM\x00+", TIFF),
    (b"\xff\xd8\xff", JPG),
    (b"%PDF", PDF),
    (b"BM", BMP),
    (b"\x00\x00\x00\x03", DM3),  # Gatan DigitalMicrograph 3: big-endian version 3
    (b"AT&TFORM", DJVU),
    (b"\x89PNG\r\n\x1a\n", PNG),
)

_EXTENSIONS = {
    ".tif": TIFF,
    ".tiff": TIFF,
    ".jpg": JPG,
    ".jpeg": JPG,
    ".jpe": JPG,
    ".pdf": PDF,
    ".bmp": BMP,
    ".dm3": DM3,
    ".djvu": DJVU,
    ".djv": DJVU,
    ".png": PNG,
}


def format_from_extension(name: str) -> str:
    """Format implied by a file name's extension (case-insensitive), ``OTHER`` if none."""
    dot = name.rfind(".")
    return _EXTENSIONS.get(name[dot:].lower(), OTHER) if dot >= 0 else OTHER


def format_from_content(head: bytes) -> str | None:
    """Format whose signature ``head`` starts with, or ``None`` when no signature matches."""
    for signature, fmt in _SIGNATURES:
        if head.startswith(signature):
            return fmt
    return None


def detect_format(head: bytes, name: str) -> str:
    r"""The inventory format of a file: by content, else by extension.

    Parameters
    ----------
    head : bytes
        The file's first bytes (:data:`SIGNATURE_BYTES` are enough; fewer, even none, are fine).
    name : str
        The file's name, for its extension.

    Returns
    -------
    str
        One of ``TIFF``, ``JPG``, ``PDF``, ``BMP``, ``DM3``, ``DJVU``, ``PNG``, ``OTHER``.

    Examples
    --------
    >>> detect_format(b"II*\x00\x08\x00\x00\x00", "sample.TIF")
    'TIFF'
    >>> detect_format(b"%PDF-1.7", "sample.tif")  # content wins over the name
    'PDF'
    >>> detect_format(b"\xff\xd8\xff\xe0", "sample.tif")
    'JPG'
    >>> detect_format(b"not an image", "sample.tif")  # no signature: the extension decides
    'TIFF'
    >>> detect_format(b"", "notes.txt")
    'OTHER'
    """
    return format_from_content(head) or format_from_extension(name)
