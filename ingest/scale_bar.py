"""Reading one image's scale: data bar + OCR + plausibility + vendor metadata.

The core of thesis section 2.3, pure over a grey numpy image (the OCR engine
is passed in).  :func:`read_scale` runs

1. the geometry of :mod:`semcurate.ingest.databar_geometry` (stripe, segment,
   text boxes, the boxes that may hold the segment's value);
2. one batched OCR call over the candidate label boxes and every other text
   box of the stripe (:mod:`semcurate.ingest.ocr`);
3. parsing (:mod:`semcurate.ingest.length_text`): the nearest candidate that
   reads as exactly one length is the label;
4. plausibility, because a wrong scale is far worse than none:

   * the implied horizontal field width (``nm_per_px`` × image width) must lie
     in :data:`FIELD_WIDTH_RANGE_NM`, 50 nm to 30 mm — what SEMs image,
     from about 1,000,000× to about 5× (this is what rejects Zeiss' "20 nm"
     read as "20 mm");
   * a field named on the stripe as the field width (``HFW``, ``Width``)
     must agree within :data:`CONTRADICTION` or the bar reading is rejected;
   * a reading with an unusual value (mantissa not in :data:`USUAL_MANTISSAS`)
     is kept only when another field corroborates it: any length on the
     stripe whose value as a field width, or any magnification whose
     Polaroid field width (127 mm / Mag), matches within
     :data:`CORROBORATION`;

5. vendor metadata (:mod:`semcurate.ingest.vendor_metadata`): both pixel
   sizes are kept; within 2 % the source is ``both``; beyond, the bar
   reading is dropped (flagged) and the metadata's pixel size stands alone.

The result is a :class:`ScaleReading` with a status, never an exception.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from semcurate.ingest.databar_geometry import (
    Box,
    GeometryProblem,
    Segment,
    Stripe,
    find_segment,
    find_stripe,
    label_candidates,
    text_boxes,
)
from semcurate.ingest.images import DEFAULT_MAX_PIXELS, ImageProblem, decode_image
from semcurate.ingest.length_text import Length, find_lengths, parse_fields, parse_length, parse_magnification
from semcurate.ingest.ocr import OcrEngine, prepare_crop
from semcurate.ingest.vendor_metadata import (
    DISAGREEMENT_THRESHOLD,
    MetadataScale,
    disagreement,
    read_metadata_scale,
)

#: Bumped whenever a change could change readings, so stored readings can be told apart.
READER_VERSION = "1"
#: Horizontal field widths an SEM can image, in nm (about 1,000,000× to 5× magnification).
FIELD_WIDTH_RANGE_NM = (50.0, 30e6)
#: Mantissas of scale-bar values that instruments print (1, 2, 2.5, 3, 4, 5, 6, 8 × 10^k).
USUAL_MANTISSAS = (1.0, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0)
#: Relative agreement that corroborates a reading.
CORROBORATION = 0.03
#: Relative disagreement with a named field width that rejects a reading.
CONTRADICTION = 0.10
#: Width of the Polaroid print magnifications refer to, in nm.
POLAROID_WIDTH_NM = 127e6
#: Candidate label boxes tried, nearest first.
MAX_LABEL_CANDIDATES = 3
#: Second and third looks at a label that did not parse: (upscale, binarise, character whitelist).
RETRIES = ((3.0, True, None), (2.0, False, "0123456789.,µumnpy "))
#: Marks OCR puts between a number and its unit that carry no meaning on a scale bar.
_STRAY_MARKS = str.maketrans("", "", "\"“”'‘’`´~^—–_")  # noqa: RUF001 (the quote marks OCR reads, meant)
_FIELD_NAME_ONLY = re.compile(r"^\s*(hfw|width|fov|field\s*width)\s*[:=]?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class ScaleReading:
    """One image's scale; see :class:`semcurate.db.models.ScaleReading` for the statuses.

    ``value``/``unit`` are the bar's label, ``bar_px`` the segment length in
    px, ``nm_per_px`` the pixel size in nm, ``source`` ``ocr``/``metadata``/``both``.
    """

    status: str
    value: float | None = None
    unit: str | None = None
    bar_px: float | None = None
    nm_per_px: float | None = None
    source: str | None = None
    ocr_nm_per_px: float | None = None
    metadata_nm_per_px: float | None = None
    metadata_vendor: str | None = None
    field_nm: float | None = None
    field_nm_per_px: float | None = None
    disagreement: float | None = None
    flagged: bool = False
    stripe_box: tuple[int, int, int, int] | None = None
    label_text: str | None = None
    evidence: list[str] = field(default_factory=list)
    reason: str | None = None


def _is_usual(value: float) -> bool:
    mantissa = value / 10 ** math.floor(math.log10(value))
    return any(math.isclose(mantissa, usual, rel_tol=1e-6) for usual in USUAL_MANTISSAS)


def _crop(grey: np.ndarray, box: Box, stripe: Stripe) -> np.ndarray:
    x0, y0, x1, y1 = box
    sx0, sy0, sx1, sy1 = stripe.box
    pad = 2
    return grey[max(sy0, y0 - pad) : min(sy1, y1 + pad), max(sx0, x0 - pad) : min(sx1, x1 + pad)]


def _named_width_fields(boxes: list[Box], texts: list[str]) -> list[Length]:
    """Lengths the stripe names as the field width: same box ("HFW 3.6 µm") or the box under the name (FEI)."""
    named = [length for name, length in parse_fields(texts).lengths if name in ("hfw", "width")]
    for (nx0, ny0, nx1, ny1), text in zip(boxes, texts, strict=True):
        if not _FIELD_NAME_ONLY.match(text):
            continue
        below = [
            (by0 - ny1, other)
            for (bx0, by0, bx1, by1), other in zip(boxes, texts, strict=True)
            if by0 >= ny1 and min(nx1, bx1) - max(nx0, bx0) > 0 and by0 - ny1 < 2 * (ny1 - ny0)
        ]
        if below:
            lengths = find_lengths(min(below, key=lambda item: item[0])[1])
            named.extend(length for length, _span in lengths[:1])
    return named


def judge(
    nm_per_px: float, width_px: int, label: Length, other_texts: list[str], named: list[Length]
) -> tuple[str | None, list[str]]:
    """``(problem or None, evidence)`` for a bar reading against physics and the stripe's other fields.

    ``other_texts`` are the OCR texts of the stripe's other boxes, ``named``
    the lengths the stripe names as its field width.
    """
    field_nm = nm_per_px * width_px
    low, high = FIELD_WIDTH_RANGE_NM
    if not low <= field_nm <= high:
        return f"implied field width {field_nm:.3g} nm is outside what an SEM images ({low:g} nm to {high:g} nm)", []
    for width_field in named:
        implied = width_field.nm / width_px
        if abs(implied / nm_per_px - 1) > CONTRADICTION:
            return (
                f"the stripe's field width {width_field.value:g} {width_field.unit} implies "
                f"{implied:.4g} nm/px, the bar {nm_per_px:.4g} nm/px"
            ), []
    evidence = []
    for text in other_texts:
        for length, _span in find_lengths(text):
            if abs(length.nm / width_px / nm_per_px - 1) <= CORROBORATION:
                evidence.append(f"field width {length.value:g} {length.unit}")
        magnification = parse_magnification(text)
        if magnification and abs(POLAROID_WIDTH_NM / magnification / width_px / nm_per_px - 1) <= CORROBORATION:
            evidence.append(f"magnification {magnification:g}×")
    if not evidence and not _is_usual(label.value):
        return f"{label.value:g} {label.unit} is not a usual scale-bar value and nothing on the stripe confirms it", []
    return None, evidence


def _label(candidates: list[Box], text_of: dict[Box, str]) -> tuple[Box, Length] | None:
    """The label box and its length: the nearest candidate that reads as one length and nothing else.

    ``None`` when no candidate qualifies.

    Farther candidates are only looked at while the nearer ones hold no digit
    at all (a field name such as "Det" sitting closer than the value): a
    nearer box with digits that do not parse is the label misread, and the
    next box over is another field ("WD 3.7 mm") that must not stand in for it.
    """
    for box in candidates:
        text = text_of[box].translate(_STRAY_MARKS)
        length = parse_length(text)
        if length is not None:
            ((_length, (start, end)),) = find_lengths(text)
            leftover = text[:start] + text[end:]
            return (box, length) if sum(character.isalpha() for character in leftover) <= 1 else None
        if any(character.isdigit() for character in text):
            return None
    return None


def read_bar(grey: np.ndarray, engine: OcrEngine) -> ScaleReading:
    """Read the scale from the data bar of a 2-D uint8 image, OCR only."""
    stripe = find_stripe(grey)
    if isinstance(stripe, GeometryProblem):
        return ScaleReading(stripe.status, reason=stripe.reason)
    segment = find_segment(grey, stripe)
    if isinstance(segment, GeometryProblem):
        return ScaleReading(segment.status, stripe_box=stripe.box, reason=segment.reason)
    return _read_text(grey, stripe, segment, engine)


def _read_text(grey: np.ndarray, stripe: Stripe, segment: Segment, engine: OcrEngine) -> ScaleReading:
    boxes = text_boxes(grey, stripe, segment)
    candidates = [box for _side, box in label_candidates(segment, boxes)[:MAX_LABEL_CANDIDATES]]
    if not candidates:
        return ScaleReading(
            "unreadable", bar_px=segment.length_px, stripe_box=stripe.box, reason="no text next to the segment"
        )
    crops: list[Image.Image | np.ndarray] = [
        prepare_crop(_crop(grey, box, stripe), dark_text=not stripe.dark) for box in boxes
    ]
    text_of = {box: reading.text.strip() for box, reading in zip(boxes, engine.read_lines(crops), strict=True)}
    found = _label(candidates, text_of)
    for scale, binarize, whitelist in RETRIES if found is None else ():
        crop = prepare_crop(
            _crop(grey, candidates[0], stripe), scale=scale, binarize=binarize, dark_text=not stripe.dark
        )
        second_look = {candidates[0]: engine.read_line(crop, whitelist=whitelist).text.strip()}
        found = _label(candidates[:1], second_look)
        if found is not None:
            text_of.update(second_look)
            break
    if found is None:
        read = " | ".join(repr(text_of[box]) for box in candidates)
        return ScaleReading(
            "unreadable",
            bar_px=segment.length_px,
            stripe_box=stripe.box,
            reason=f"no length next to the segment (read {read})",
        )
    label_box, label = found
    nm_per_px = label.nm / segment.length_px
    others = [text for box, text in text_of.items() if box != label_box]
    named = _named_width_fields([box for box in boxes if box != label_box], others)
    problem, evidence = judge(nm_per_px, grey.shape[1], label, others, named)
    if problem:
        return ScaleReading(
            "unreadable", bar_px=segment.length_px, stripe_box=stripe.box, label_text=text_of[label_box], reason=problem
        )
    return ScaleReading(
        "ok",
        label.value,
        label.unit,
        segment.length_px,
        nm_per_px,
        "ocr",
        ocr_nm_per_px=nm_per_px,
        stripe_box=stripe.box,
        label_text=text_of[label_box],
        evidence=evidence,
    )


def combine(bar: ScaleReading, metadata: MetadataScale | None) -> ScaleReading:
    """Merge a bar reading with the vendor metadata's pixel size (if any)."""
    if metadata is None:
        return bar
    if bar.status != "ok":
        return ScaleReading(
            "ok",
            nm_per_px=metadata.nm_per_px,
            source="metadata",
            metadata_nm_per_px=metadata.nm_per_px,
            metadata_vendor=metadata.vendor,
            bar_px=bar.bar_px,
            stripe_box=bar.stripe_box,
            label_text=bar.label_text,
            reason=f"bar: {bar.status} ({bar.reason}); scale from {metadata.detail}",
        )
    assert bar.nm_per_px is not None, "an 'ok' bar reading always has a pixel size"
    difference = disagreement(bar.nm_per_px, metadata.nm_per_px)
    if difference <= DISAGREEMENT_THRESHOLD:
        return ScaleReading(
            "ok",
            bar.value,
            bar.unit,
            bar.bar_px,
            bar.nm_per_px,
            "both",
            ocr_nm_per_px=bar.nm_per_px,
            metadata_nm_per_px=metadata.nm_per_px,
            metadata_vendor=metadata.vendor,
            disagreement=difference,
            stripe_box=bar.stripe_box,
            label_text=bar.label_text,
            evidence=[*bar.evidence, metadata.detail],
        )
    return ScaleReading(
        "ok",
        nm_per_px=metadata.nm_per_px,
        source="metadata",
        ocr_nm_per_px=bar.nm_per_px,
        metadata_nm_per_px=metadata.nm_per_px,
        metadata_vendor=metadata.vendor,
        disagreement=difference,
        flagged=True,
        bar_px=bar.bar_px,
        stripe_box=bar.stripe_box,
        label_text=bar.label_text,
        reason=(
            f"bar read {bar.value:g} {bar.unit} = {bar.nm_per_px:.4g} nm/px, metadata {metadata.nm_per_px:.4g} "
            f"nm/px ({difference:.1%} apart): bar reading discarded"
        ),
    )


def read_scale(
    grey: np.ndarray,
    *,
    engine: OcrEngine | None,
    metadata: MetadataScale | None = None,
    source: str = "auto",
) -> ScaleReading:
    """Read one image's scale; ``source`` is ``auto`` (bar and metadata), ``ocr`` or ``metadata``.

    ``engine`` may be ``None`` only with ``source="metadata"``, which reads no text.
    """
    if source == "metadata":
        if metadata is None:
            return ScaleReading("no_metadata", reason="no Zeiss or FEI pixel size in the file")
        return combine(ScaleReading("unreadable", reason="bar not read (--source metadata)"), metadata)
    if engine is None:
        raise ValueError(f"read_scale needs an OCR engine to read the data bar (source={source!r})")
    bar = read_bar(grey, engine)
    return bar if source == "ocr" else combine(bar, metadata)


def read_scale_bytes(
    data: bytes, *, engine: OcrEngine | None, source: str = "auto", max_pixels: int = DEFAULT_MAX_PIXELS
) -> ScaleReading:
    """Read the scale of an image file's bytes (TIFF or JPG; 16-bit and colour are converted to 8-bit grey)."""
    try:
        decoded = decode_image(data, max_pixels)
    except ImageProblem as problem:
        return ScaleReading("error", reason=problem.reason)
    grey = np.asarray(decoded.display.convert("L"))
    metadata = read_metadata_scale(data) if source != "ocr" else None
    return read_scale(grey, engine=engine, metadata=metadata, source=source)
