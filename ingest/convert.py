"""TIFF → JPG conversion, the way every image in the flat store is made.

Conversion rules (one per source mode; the note returned says which applied):

* 8-bit grey (``L``) and 8-bit colour (``RGB``) are kept as they are;
  an ``RGB`` image whose three channels are identical is stored as grey.
* Bilevel (``1``) becomes grey 0/255; grey with alpha (``LA``) drops alpha.
* Palette (``P``) becomes grey when the palette is grey, colour otherwise.
* ``RGBA``, ``CMYK``, ``YCbCr`` and other colour modes become ``RGB``.
* 16-bit and 32-bit integer and float grey (``I;16*``, ``I``, ``F``) are
  stretched linearly from the image's own minimum..maximum to 0..255:
  SEM detectors often fill only 10-12 of the 16 bits, so a fixed ``>> 8``
  would turn many of them black.  A constant image maps to 0.
* Multi-page TIFFs contribute their first page.

The JPG is written by Pillow at quality 95 with 4:4:4 chroma (no
subsampling), no Huffman optimisation and no metadata, so the same pixels
always give the same bytes and TIFFs that differ only in metadata give JPGs
with the same MD5 (the thesis' collision rule relies on this).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, JpegImagePlugin

JPEG_QUALITY = 95

_GREY_HIGH_DEPTH = {"I;16", "I;16B", "I;16L", "I;16N", "I;16S", "I", "F", "I;32", "I;32B"}


def _stretch_to_uint8(values: np.ndarray) -> np.ndarray:
    values = values.astype(np.float64)
    low, high = float(np.nanmin(values)), float(np.nanmax(values))
    if not np.isfinite(low) or high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    scaled = (np.nan_to_num(values, nan=low) - low) * (255.0 / (high - low))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def to_display(image: Image.Image) -> tuple[Image.Image, str | None]:
    """Return the 8-bit ``L`` or ``RGB`` image to encode, and a note on what was changed.

    The input must already be loaded; only its current frame is used.
    """
    mode = image.mode
    if mode == "L":
        return image, None
    if mode in _GREY_HIGH_DEPTH:
        grey = Image.fromarray(_stretch_to_uint8(np.asarray(image)), mode="L")
        return grey, f"{mode} stretched min..max to 8-bit grey"
    if mode == "1":
        return image.convert("L"), "bilevel converted to grey"
    if mode == "LA":
        return image.convert("L"), "grey+alpha: alpha dropped"
    if mode == "P":
        rgb = image.convert("RGB")
        array = np.asarray(rgb)
        if np.array_equal(array[..., 0], array[..., 1]) and np.array_equal(array[..., 1], array[..., 2]):
            return Image.fromarray(array[..., 0], mode="L"), "grey palette converted to grey"
        return rgb, "palette converted to RGB"
    rgb = image if mode == "RGB" else image.convert("RGB")
    array = np.asarray(rgb)
    if np.array_equal(array[..., 0], array[..., 1]) and np.array_equal(array[..., 1], array[..., 2]):
        return Image.fromarray(array[..., 0], mode="L"), f"grey {mode} stored as grey"
    return rgb, None if mode == "RGB" else f"{mode} converted to RGB"


def encode_jpeg(image: Image.Image) -> bytes:
    """Encode an ``L`` or ``RGB`` image as the store's JPG (quality 95, 4:4:4, no metadata)."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling=0, optimize=False)
    return buffer.getvalue()


def reencode_like(image: Image.Image, reference: Image.Image) -> bytes:
    """Encode ``image`` with the quantisation tables and chroma subsampling of JPEG ``reference``.

    A JPG made from a TIFF by Pillow at any quality is reproduced byte for byte
    this way, which is how a JPG is tied to the TIFF it came from when its MD5
    matches nothing we wrote (the thesis matched such files by "using a
    different compression in the conversion from TIFF to JPG").
    ``image`` is converted to the reference's mode first.  ``reference`` must
    be a JPEG as :func:`PIL.Image.open` returns it (a ``JpegImageFile``, which
    holds the tables); anything else is a ``TypeError``.
    """
    if not isinstance(reference, JpegImagePlugin.JpegImageFile):
        raise TypeError(f"reference must be a JPEG opened with PIL.Image.open, not {type(reference).__name__}")
    if image.mode != reference.mode:
        image = image.convert(reference.mode)
    buffer = io.BytesIO()
    image.save(
        buffer,
        format="JPEG",
        qtables=reference.quantization,
        subsampling=_sampling(reference),
        optimize=False,
    )
    return buffer.getvalue()


_SAMPLING_BY_FACTORS = {(1, 1): 0, (2, 1): 1, (2, 2): 2}


def _sampling(reference: JpegImagePlugin.JpegImageFile) -> int:
    """Pillow's ``subsampling`` code of a JPEG, grey ones included.

    ``JpegImagePlugin.get_sampling`` answers -1 for one-component (grey) JPEGs,
    but their header still records the encoder's sampling factors, and the
    bytes differ unless we ask for the same ones.
    """
    sampling = JpegImagePlugin.get_sampling(reference)
    if sampling != -1:
        return sampling
    _component, horizontal, vertical, _table = reference.layer[0]
    return _SAMPLING_BY_FACTORS.get((horizontal, vertical), 0)
