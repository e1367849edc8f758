"""Reading one image's scale: data bar, printed field width, vendor metadata, and which to trust.

The core of thesis section 2.3, pure over a grey numpy image (the OCR engine
is passed in).  :func:`read_bar` reads the pixels:

1. the geometry of :mod:`semcurate.ingest.databar_geometry`: the stripe, its
   segment measured by the drawing's convention (tick centres or outer
   edges), its text boxes, the boxes that may hold the segment's value;
2. one batched OCR call over every text box of the stripe, each crop taken
   from the stripe with the segment and table lines painted out, upscaled to
   a cap height Tesseract reads well (:data:`LOOKS`, :mod:`semcurate.ingest.ocr`);
3. parsing (:mod:`semcurate.ingest.length_text`): the nearest candidate that
   reads as exactly one length is the label.  Text under
   :data:`SMALL_TEXT_PX` (512-px frames) is read again in other looks (another
   scale, binarised, the other polarity) until two looks agree, unless the
   bar and the printed field width (5.) agree at the first look;
4. plausibility, because a wrong scale is far worse than none:

   * the implied horizontal field width (``nm_per_px`` × image width) must lie
     in :data:`FIELD_WIDTH_RANGE_NM`, 50 nm to 30 mm — what SEMs image,
     from about 1,000,000× to about 5× (this is what rejects Zeiss' "20 nm"
     read as "20 mm");
   * a reading with an unusual value (mantissa not in :data:`USUAL_MANTISSAS`)
     is kept only when another field corroborates it: any length on the
     stripe whose value as a field width, or any magnification whose field
     width on a known reference display (:data:`MAGNIFICATION_REFERENCES_NM`:
     the Polaroid's 127 mm, Thermo Fisher's 207.2 mm), matches within
     :data:`CORROBORATION`;

5. the **printed field width** — Zeiss "Width = 556.0 nm", Thermo/FEI
   "HFW 2.98 µm" (or "HFW" over "2.98 µm" in a table cell), Tescan
   "View field: 2.50 µm" — is a second reading from the pixels,
   ``field_nm / image width``, read like the label.  It
   corroborates the bar when they agree within :data:`FIELD_AGREEMENT`; it is
   the reading (source ``field``) when the bar cannot be measured or its
   label not read; and when both exist and disagree the reader abstains
   (status ``conflict``) rather than pick one, unless a magnification
   agrees with the bar and with no reading of the printed field width (tiny
   print: "794 nm" read "734 nm"; :func:`reconcile`).  Magnifications never
   give a reading alone: their reference width is a display setting of the
   instrument, never printed on the stripe, and not even fixed per vendor
   (Mag x Width is 281 mm and 298 mm on the two Zeiss fixtures); nor do they
   corroborate a label that, on another display, would be a usual value
   with as many digits (the displays are 1.63 apart, close to 5 / 3 and 8 / 5).
   They settle a label read with its digits but not as a usual length
   ("100mm" for "100nm", "28 um" for "20 µm" in 7-px print) when they put
   exactly one usual value with those digits on the measured bar
   (:func:`label_from_magnifications`); and only a magnification two looks
   read alike may contradict a bar ("1.97 K X" read "197 KX" in one look).

:func:`combine` then applies the trust order (design.md, "Trust"): the
instrument's metadata (:mod:`semcurate.ingest.vendor_metadata`) is exact and
always gives ``nm_per_px`` when present; the pixels come second.  Every
source's pixel size is kept (:attr:`ScaleReading.candidates`); metadata and
the bar within :data:`~semcurate.ingest.vendor_metadata.DISAGREEMENT_THRESHOLD`
(1 %) is source ``both``, beyond it the image is flagged with both values in
the reason.

The result is a :class:`ScaleReading` with a status, never an exception.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TypeVar

import numpy as np
from PIL import Image

from semcurate.ingest.databar_geometry import (
    Box,
    GeometryProblem,
    StripeLayout,
    analyse_image,
    label_candidates,
)
from semcurate.ingest.images import DEFAULT_MAX_PIXELS, ImageProblem, decode_image
from semcurate.ingest.length_text import (
    DIGIT_LOOKALIKES,
    Length,
    find_lengths,
    parse_fields,
    parse_length,
    parse_magnification,
)
from semcurate.ingest.ocr import OcrEngine, prepare_crop
from semcurate.ingest.vendor_metadata import (
    DISAGREEMENT_THRESHOLD,
    MetadataScale,
    disagreement,
    read_metadata_scale,
)

#: Bumped whenever a change could change readings, so stored readings can be told apart.
READER_VERSION = "3"
#: Horizontal field widths an SEM can image, in nm (about 1,000,000× to 5× magnification).
FIELD_WIDTH_RANGE_NM = (50.0, 30e6)
#: Mantissas of scale-bar values that instruments print (1, 2, 2.5, 3, 4, 5, 6, 8 × 10^k).
USUAL_MANTISSAS = (1.0, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0)
#: Relative agreement with another length or magnification on the stripe that corroborates an unusual value.
CORROBORATION = 0.03
#: An unusual value within this relative difference of a usual one is that one misread ("206 nm", "506 nm" for
#: 200 and 500 nm at 7 px), whatever agrees with it: :data:`CORROBORATION` cannot tell them apart, and a field width
#: in the same font is misread the same way ("Width = 1.600 µm" read "1.666 µm" beside "200 nm" read "208 nm").
NEAR_USUAL = 0.05
#: Bar and printed field width agreeing within this relative difference corroborate each other; beyond, conflict.
FIELD_AGREEMENT = 0.02
#: Widths, in nm, of the displays magnifications are known to refer to: the Polaroid print (127 mm, used where
#: the vendor's is unknown) and Thermo Fisher/FEI's ``[Image] MagCanvasRealWidth`` (0.2072 m on the Helios
#: fixture, which prints "120 x" for HFW 1.73 mm).  Zeiss' is not fixed: 281 and 298 mm on its two fixtures.
MAGNIFICATION_REFERENCES_NM = {"Polaroid": 127e6, "Thermo Fisher": 207.2e6}
#: The widest display a magnification was seen to refer to, in nm: Zeiss' 298 mm (the Polaroid's 127 mm is the
#: narrowest).
WIDEST_MAGNIFICATION_REFERENCE_NM = 298e6
#: A bar whose field width is this many times wider than every magnification on the stripe allows (on
#: :data:`WIDEST_MAGNIFICATION_REFERENCE_NM`) is contradicted: a label read "500um" for "5.00um".
CONTRADICTION_FACTOR = 3.0
#: Candidate label boxes tried, nearest first.
MAX_LABEL_CANDIDATES = 3
#: Text whose tall glyphs are under this many px is read until two looks agree (one look suffices above).
SMALL_TEXT_PX = 13
#: Characters a scale label may hold; the fourth look restricts Tesseract to them.
LABEL_CHARACTERS = "0123456789.,µumnpy "
#: How a text box is read, in order: ``(cap height in px after scaling, binarise, same polarity, whitelist)``.
#: The first look reads every box; the others re-read a label or field width that did not parse or must be
#: confirmed.  Measured on labels drawn in DejaVu, Liberation and FreeSans at 7-12 px (see
#: :mod:`semcurate.ingest.ocr`): 28 px and 20 px read about as well and err on different labels, which is what
#: a second look needs; binarised and whitelisted looks recover a few more.
LOOKS: tuple[tuple[float, bool, bool, str | None], ...] = (
    (28.0, False, True, None),
    (20.0, False, True, None),
    (36.0, True, True, None),
    (28.0, False, True, LABEL_CHARACTERS),
    (28.0, False, False, None),
)
#: Words at most this many character heights apart on one line belong to one label ("200" "nm" in a fixed-width font).
PHRASE_GAP = 2.0
#: Field names whose value is the horizontal field width (keys of :data:`~semcurate.ingest.length_text.FIELD_NAMES`).
WIDTH_FIELDS = ("hfw", "width", "view_field")
#: Marks OCR puts between a number and its unit that carry no meaning on a scale bar.
_STRAY_MARKS = str.maketrans("", "", "\"“”'‘’`´~^—–_")  # noqa: RUF001 (the quote marks OCR reads, meant)
#: A box holding a field width's name alone (a table header); OCR was seen to split "HFW", add a letter
#: ("HF Wy", Helios fixture) and read its F as R ("HRW", DejaVu Sans Mono at 7 px).
_FIELD_NAME_ONLY = re.compile(
    r"^\s*(h\s?[fr]\s?w|width|view\s*field|fov|field\s*width)\s*[:=]?\s*[a-z]?\s*$", re.IGNORECASE
)
#: A field width's name anywhere in a text.
_WIDTH_NAME = re.compile(r"(?<![^\W\d_])(hfw|width|view\s*field)(?![^\W\d_])", re.IGNORECASE)
_Parsed = TypeVar("_Parsed")
_DIGIT = re.compile(r"\d")


@dataclass(frozen=True)
class ScaleReading:
    """One image's scale; see :class:`semcurate.db.models.ScaleReading` for the statuses and columns.

    ``value``/``unit`` are the bar's label, ``bar_px`` the segment length in
    px, ``nm_per_px`` the pixel size in nm, ``source`` ``ocr`` (the bar),
    ``field`` (the printed field width), ``metadata`` or ``both`` (metadata
    and bar agreeing within 1 %).  ``field_nm`` is the printed field width in
    nm and ``field_nm_per_px`` that over the image width; ``ocr_nm_per_px``
    and ``metadata_nm_per_px`` are the other sources' pixel sizes.
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

    @property
    def candidates(self) -> dict[str, float]:
        """Each source's pixel size in nm, for the sources that gave one: ``metadata``, ``ocr``, ``field``.

        Examples
        --------
        >>> ScaleReading("conflict", ocr_nm_per_px=11.8, field_nm_per_px=5.8).candidates
        {'ocr': 11.8, 'field': 5.8}
        """
        values = {"metadata": self.metadata_nm_per_px, "ocr": self.ocr_nm_per_px, "field": self.field_nm_per_px}
        return {source: value for source, value in values.items() if value is not None}


@dataclass(frozen=True)
class PrintedField:
    """The horizontal field width printed on the stripe: its ``length``, the boxes it was read in and the text."""

    length: Length
    boxes: tuple[Box, ...]
    text: str


def nearest_usual_length(nm: float) -> Length:
    """The scale-bar value (mantissa in :data:`USUAL_MANTISSAS`) nearest to ``nm`` nm, in the unit a bar prints it.

    Examples
    --------
    >>> nearest_usual_length(10_113.0)
    Length(value=10.0, unit='µm')
    >>> nearest_usual_length(243.0)
    Length(value=250.0, unit='nm')
    """
    exponent = math.floor(math.log10(nm))
    candidates = [
        mantissa * 10.0**power for power in (exponent - 1, exponent, exponent + 1) for mantissa in USUAL_MANTISSAS
    ]
    best = min(candidates, key=lambda value: abs(math.log(value / nm)))
    unit, per_unit = ("nm", 1.0) if best < 1e3 else ("µm", 1e3) if best < 1e6 else ("mm", 1e6)
    return Length(float(f"{best / per_unit:.6g}"), unit)


#: OCR look-alike letters to digits, for comparing a misread label's digits with a value.
_LOOKALIKE_TABLE = str.maketrans(DIGIT_LOOKALIKES)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def _digits_compatible(text: str, length: Length) -> bool:
    """Whether a label's OCR ``text`` (that did not parse) shows ``length``'s first digit and number of digits.

    "19 pm" is compatible with 10 µm, "Z00 am" with 200 nm; "2000m" is not with 200 nm.
    """
    found = _NUMBER.search(text.translate(_LOOKALIKE_TABLE))
    if found is None:
        return False
    read = found.group().replace(".", "").replace(",", "")
    value = f"{length.value:g}".replace(".", "")
    return read[0] == value[0] and len(read) == len(value)


def _is_usual(value: float) -> bool:
    mantissa = value / 10 ** math.floor(math.log10(value))
    return any(math.isclose(mantissa, usual, rel_tol=1e-6) for usual in USUAL_MANTISSAS)


class _StripeText:
    """The OCR text of a stripe's boxes, per look, read on demand from the cleaned stripe."""

    def __init__(self, layout: StripeLayout, engine: OcrEngine) -> None:
        self.layout = layout
        self.engine = engine
        self._texts: dict[tuple[Box, int], str] = {}

    def _crop(self, box: Box, look: int) -> Image.Image:
        target, binarize, same_polarity, _whitelist = LOOKS[look]
        sx0, sy0, _sx1, _sy1 = self.layout.stripe.box
        x0, y0, x1, y1 = box
        pad = 2
        crop = self.layout.cleaned[max(0, y0 - sy0 - pad) : y1 - sy0 + pad, max(0, x0 - sx0 - pad) : x1 - sx0 + pad]
        dark_text = (not self.layout.stripe.dark) == same_polarity
        scale = float(np.clip(target / self.layout.char_height, 0.5, 8.0))
        return prepare_crop(crop, scale=scale, binarize=binarize, dark_text=dark_text)

    def read(self, boxes: list[Box], look: int = 0) -> list[str]:
        """The text of each box in ``look`` (one batched OCR call for the boxes not read yet in that look)."""
        missing = [box for box in boxes if (box, look) not in self._texts]
        if missing:
            whitelist = LOOKS[look][3]
            readings = self.engine.read_lines([self._crop(box, look) for box in missing], whitelist=whitelist)
            for box, reading in zip(missing, readings, strict=True):
                self._texts[box, look] = reading.text.strip()
        return [self._texts[box, look] for box in boxes]

    def read_phrase(self, phrase: tuple[Box, ...], look: int = 0) -> str:
        """The text of a phrase's words read as one line: one crop around them all, in ``look``.

        One crop rather than one per word: Tesseract reads a lone short word
        ("1", "µm" in a fixed-width font) far less reliably than the line it
        belongs to.
        """
        (text,) = self.read([_union(phrase)], look)
        return text

    def confirmed(
        self, boxes: tuple[Box, ...], parse: Callable[[str], _Parsed | None], looks: int
    ) -> tuple[_Parsed | None, str]:
        """``(value, text)`` of a phrase once ``looks`` looks parse to one value, else ``(None, text)``.

        ``boxes`` are the phrase's words, left to right, read as one text
        joined by spaces; ``parse`` maps a text to a value or None.  Looks
        are taken in the order of :data:`LOOKS`; the text returned is that of
        the first agreeing look, or of the first look when none agree.
        """
        votes: dict[_Parsed, list[str]] = {}
        for look in range(len(LOOKS)):
            text = self.read_phrase(boxes, look)
            value = parse(text)
            if value is not None:
                votes.setdefault(value, []).append(text)
                if len(votes[value]) >= looks:
                    return value, votes[value][0]
        return None, self.read_phrase(boxes)


def _phrases(box: Box, boxes: list[Box], char_height: float) -> list[tuple[Box, ...]]:
    """``box`` alone, then with the boxes continuing its line added one at a time, nearest first; left to right.

    A neighbour continues the line when it overlaps the line's rows by half
    its height and the gap is at most :data:`PHRASE_GAP` character heights: a
    fixed-width font's space splits "200 nm" into two boxes.
    """
    phrase = [box]
    phrases: list[tuple[Box, ...]] = [(box,)]
    reach = PHRASE_GAP * char_height
    while True:
        first, last = phrase[0], phrase[-1]
        neighbours = []
        for other in boxes:
            if other in phrase:
                continue
            if 0 <= first[0] - other[2] <= reach and _same_line(first, other):
                neighbours.append((first[0] - other[2], 0, other))
            elif 0 <= other[0] - last[2] <= reach and _same_line(last, other):
                neighbours.append((other[0] - last[2], len(phrase), other))
        if not neighbours:
            return phrases
        _gap, position, nearest = min(neighbours)
        phrase.insert(position, nearest)
        phrases.append(tuple(phrase))


def _smallest_reading(
    box: Box, layout: StripeLayout, reader: _StripeText, parse: Callable[[str], Length | None]
) -> tuple[Box, ...]:
    """The smallest phrase around ``box`` (:func:`_phrases`) that parses, in the first look where one does.

    When none parses in any look, the largest phrase (for the caller to report what it read).
    """
    phrases = _phrases(box, layout.boxes, layout.char_height)
    for look in range(len(LOOKS)):
        for phrase in phrases:
            if parse(reader.read_phrase(phrase, look)):
                return phrase
    return phrases[-1]


def _union(boxes: tuple[Box, ...]) -> Box:
    """The smallest box holding every one of ``boxes``."""
    return (
        min(box[0] for box in boxes),
        min(box[1] for box in boxes),
        max(box[2] for box in boxes),
        max(box[3] for box in boxes),
    )


def _same_line(box: Box, other: Box) -> bool:
    """Whether two boxes' rows overlap by at least half the shorter one's height."""
    _x0, y0, _x1, y1 = box
    _ox0, oy0, _ox1, oy1 = other
    return min(y1, oy1) - max(y0, oy0) >= 0.5 * min(y1 - y0, oy1 - oy0)


def _label_length(text: str) -> Length | None:
    """The length a label box reads as: exactly one length and at most one stray letter besides."""
    text = text.translate(_STRAY_MARKS)
    length = parse_length(text)
    if length is None:
        return None
    ((_length, (start, end)),) = find_lengths(text)
    leftover = text[:start] + text[end:]
    return length if sum(character.isalpha() for character in leftover) <= 1 else None


def _label(
    candidates: list[Box],
    layout: StripeLayout,
    reader: _StripeText,
    looks: int,
    plausible: Callable[[Length, tuple[Box, ...]], bool],
) -> tuple[tuple[Box, ...], Length | None, str]:
    """The label's words, its length (None when it does not read as one) and its text.

    The label is the nearest candidate that reads as a length, alone or with
    the words continuing its line ("200" and "nm" in a fixed-width font; a
    unit-only box "µm" nearest the bar, its number farther), in one of the
    first two looks; failing that, the nearest that holds a digit; failing
    that, the nearest.  It must read as exactly one length with at most one
    stray letter, in ``looks`` agreeing looks (:meth:`_StripeText.confirmed`).

    Farther candidates are only looked at while the nearer ones hold no digit
    at all (a field name such as "Det" sitting closer than the value): a
    nearer box with digits that do not parse is the label misread, and the
    next box over is another field ("WD 3.7 mm") that must not stand in for it.

    Looks whose length is not ``plausible`` (given the words) do not vote
    while another look may still give a plausible one: at 7-12 px a µ is read
    as an m in one look and right in the next.  When no look does, the
    label is what the looks agree on regardless, for the caller to judge
    and say why it is refused.
    """

    def reads_as_length(box: Box) -> bool:
        phrases = _phrases(box, layout.boxes, layout.char_height)
        return any(_label_length(reader.read_phrase(phrase, look)) for look in (0, 1) for phrase in phrases)

    def holds_digit(box: Box) -> bool:
        return any(_DIGIT.search(reader.read([box], look)[0]) for look in (0, 1))

    chosen = candidates[0]
    for box in candidates:
        if reads_as_length(box) or holds_digit(box):
            chosen = box
            break
    phrase = _smallest_reading(chosen, layout, reader, _label_length)

    def plausible_length(text: str) -> Length | None:
        length = _label_length(text)
        return length if length is not None and plausible(length, phrase) else None

    length, text = reader.confirmed(phrase, plausible_length, looks)
    if length is None:
        length, text = reader.confirmed(phrase, _label_length, looks)
    return phrase, length, text


def judge(
    nm_per_px: float,
    width_px: int,
    label: Length,
    other_texts: list[str],
    settled_magnifications: Callable[[], set[float]] | None = None,
) -> tuple[str | None, list[str]]:
    """``(problem or None, evidence)`` for a bar reading against physics and the stripe's other fields.

    A field width outside what SEMs image, or :data:`CONTRADICTION_FACTOR`
    times wider than every magnification on the stripe allows, is a problem.
    The magnifications are those of ``other_texts``; when they contradict the
    bar and ``settled_magnifications`` is given, it is asked for the
    magnifications as two looks read them, and only those can contradict:
    tiny print loses a magnification's decimal point as easily as a label's
    ("Mag = 1.97 K X" read "197 KX" at 8 px, in one look of four).

    ``other_texts`` are the OCR texts of the stripe's other boxes; a length
    among them that, as a field width, matches within
    :data:`CORROBORATION`, or a magnification whose field width on one of
    :data:`MAGNIFICATION_REFERENCES_NM` does (unambiguously:
    :func:`_corroborating_displays`), is evidence.  An unusual label
    value needs evidence, and one within :data:`NEAR_USUAL` of a usual value is refused whatever the evidence.
    """
    field_nm = nm_per_px * width_px
    low, high = FIELD_WIDTH_RANGE_NM
    if not low <= field_nm <= high:
        return f"implied field width {field_nm:.3g} nm is outside what an SEM images ({low:g} nm to {high:g} nm)", []
    magnifications = {found for text in other_texts if (found := parse_magnification(text))}
    if _contradicted(field_nm, magnifications) and settled_magnifications is not None:
        magnifications = settled_magnifications()
    if _contradicted(field_nm, magnifications):
        lowest = min(magnifications)  # the one that allows the widest field
        return (
            f"implied field width {field_nm:.3g} nm contradicts the magnification {lowest:g}× "
            f"(at most {WIDEST_MAGNIFICATION_REFERENCE_NM / lowest:.3g} nm)"
        ), []
    usual = nearest_usual_length(label.nm)
    if not _is_usual(label.value) and abs(label.nm / usual.nm - 1) <= NEAR_USUAL:
        return (
            f"{label.value:g} {label.unit} is not a usual scale-bar value but {usual.value:g} {usual.unit} misread",
            [],
        )
    evidence = []
    for text in other_texts:
        for length, _span in find_lengths(text):
            if abs(length.nm / width_px / nm_per_px - 1) <= CORROBORATION:
                evidence.append(f"field width {length.value:g} {length.unit}")
        magnification = parse_magnification(text)
        if magnification is None:
            continue
        for display in _corroborating_displays(field_nm, label, {magnification}):
            evidence.append(f"magnification {magnification:g}× on the {display} display")
    if not evidence and not _is_usual(label.value):
        return f"{label.value:g} {label.unit} is not a usual scale-bar value and nothing on the stripe confirms it", []
    return None, evidence


def _contradicted(field_nm: float, magnifications: set[float]) -> bool:
    """Whether a bar's field width of ``field_nm`` nm is :data:`CONTRADICTION_FACTOR` times wider than every one of
    ``magnifications`` allows (none: not contradicted).

    Only a field wider than the magnification allows: a label that lost its decimal point ("500um" for "5.00um")
    reads too long, while OCR that drops a digit group of the magnification ("100 x" for "26 100 x") makes it too
    small and must not discredit a right label.

    Examples
    --------
    >>> _contradicted(142_000.0, {197_000.0}), _contradicted(142_000.0, {1_970.0}), _contradicted(142_000.0, set())
    (True, False, False)
    """
    return bool(magnifications) and all(
        field_nm > WIDEST_MAGNIFICATION_REFERENCE_NM / magnification * CONTRADICTION_FACTOR
        for magnification in magnifications
    )


def _field_length(text: str) -> Length | None:
    """The horizontal field width named in ``text`` ("HFW 2.98 µm", "Width = 556.0 nm"), if exactly one."""
    widths = {length for name, length in parse_fields([text]).lengths if name in WIDTH_FIELDS}
    return widths.pop() if len(widths) == 1 else None


def printed_field(layout: StripeLayout, reader: _StripeText, looks: int) -> PrintedField | None:
    """The horizontal field width the stripe prints, read in ``looks`` agreeing looks; None if none or several.

    Found in a box that names it ("HFW 2.98 µm", "Width = 556.0 nm",
    "View field: 2.50 µm"), or in the box right of or under a box holding
    the name alone (:func:`_value_boxes`; Thermo/FEI table cells: "HFW" over "1.73 mm"),
    with the words continuing its line (:func:`_phrases`) when a fixed-width
    font's spaces split it.
    """
    boxes = layout.boxes
    texts = reader.read(boxes)
    text_of = dict(zip(boxes, texts, strict=True))
    found: list[tuple[tuple[Box, ...], Callable[[str], Length | None]]] = []
    for box, text in text_of.items():
        if _field_length(text):
            found.append(((box,), _field_length))
        elif _FIELD_NAME_ONLY.match(text):
            for value_box in _value_boxes(box, boxes, text):
                # The value reads like a label: one length, at most one stray letter, so no other field's name
                # ("WD: 5.7 mm" under "HFW:" is the working distance).
                phrase = _smallest_reading(value_box, layout, reader, _label_length)
                first_look = reader.read_phrase(phrase)
                # A value that the first look misreads ("648 wm") is still the value: the looks confirm it.
                if _label_length(first_look) or (phrase == (value_box,) and _DIGIT.search(first_look)):
                    found.append((phrase, _label_length))
                    break
        elif _WIDTH_NAME.search(text):
            phrase = _smallest_reading(box, layout, reader, _field_length)
            if _field_length(reader.read_phrase(phrase)):
                found.append((phrase, _field_length))
    fields = []
    for phrase, parse in found:
        length, text = reader.confirmed(phrase, parse, looks)
        if length is not None:
            fields.append(PrintedField(length, phrase, text))
    if not fields or any(abs(other.length.nm / fields[0].length.nm - 1) > 1e-9 for other in fields[1:]):
        return None
    return fields[0]


def _value_boxes(name_box: Box, boxes: list[Box], name_text: str) -> list[Box]:
    """The boxes that may hold the value of a field whose name, read as ``name_text``, is alone in ``name_box``,
    likeliest first.

    First those right of it on its line, nearest first, within three name
    heights or four of the name's character advances, whichever is wider
    ("HFW:" "2.048 µm" in a fixed-width font; "Width = 3.471 µm" in 7-px
    FreeMono, its "=" too faint to be a box, puts 3.6 advances, 3.2 name
    heights, between name and value); then those under it (overlapping its
    columns, within two name heights: a Thermo/FEI table's "HFW" header over
    "1.73 mm"), nearest first.
    """
    nx0, ny0, nx1, ny1 = name_box
    height = ny1 - ny0
    advance = (nx1 - nx0) / max(1, len("".join(name_text.split())))
    reach = max(3 * height, 4 * advance)
    right, under = [], []
    for box in boxes:
        bx0, by0, bx1, by1 = box
        if bx0 >= nx1 and bx0 - nx1 < reach and by0 < ny1 and by1 > ny0:
            right.append((bx0 - nx1, box))
        elif by0 >= ny1 and by0 - ny1 < 2 * height and min(nx1, bx1) > max(nx0, bx0):
            under.append((by0 - ny1, box))
    return [box for _distance, box in sorted(right)] + [box for _distance, box in sorted(under)]


def read_bar(grey: np.ndarray, engine: OcrEngine) -> ScaleReading:
    """Read the scale from the pixels of a 2-D uint8 image: the data bar and the printed field width, OCR only."""
    layout = analyse_image(grey)
    if isinstance(layout, GeometryProblem):
        return ScaleReading(layout.status, reason=layout.reason)
    reader = _StripeText(layout, engine)
    width = grey.shape[1]
    # First the first look at everything: a bar and a printed field width (or magnification) that agree are two
    # independent readings, confirmation enough.  Otherwise small text is read until two looks agree (SMALL_TEXT_PX).
    bar, printed = _read_segment(layout, reader, width, 1), printed_field(layout, reader, 1)
    magnifications = _magnifications(layout, reader)
    first_look = reconcile(bar, printed, width, magnifications)
    corroborated = first_look.source == "ocr" and (first_look.field_nm is not None or len(first_look.evidence) > 1)
    if layout.char_height >= SMALL_TEXT_PX or corroborated:
        return first_look
    return reconcile(_read_segment(layout, reader, width, 2), printed_field(layout, reader, 2), width, magnifications)


def _first_look_magnifications(layout: StripeLayout, reader: _StripeText) -> list[tuple[Box, tuple[Box, ...], float]]:
    """``(box, phrase, magnification)`` for every phrase around each box (:func:`_phrases`, smallest first) whose
    words, as the first look reads them, parse as a magnification.

    Lines as well as words: a fixed-width font's spaces split "261 000 x" into three boxes.
    """
    texts = dict(zip(layout.boxes, reader.read(layout.boxes), strict=True))
    return [
        (box, phrase, magnification)
        for box in layout.boxes
        for phrase in _phrases(box, layout.boxes, layout.char_height)
        if (magnification := parse_magnification(" ".join(texts[word] for word in phrase))) is not None
    ]


def _magnifications(layout: StripeLayout, reader: _StripeText) -> set[float]:
    """Every magnification the stripe prints, from the first look at its words and at their lines."""
    return {magnification for _box, _phrase, magnification in _first_look_magnifications(layout, reader)}


def _settled_magnifications(layout: StripeLayout, reader: _StripeText) -> set[float]:
    """The magnifications of the stripe that two looks read alike (:meth:`_StripeText.confirmed`).

    Each is read as the smallest phrase around a box whose first look parses as a magnification
    (:func:`_first_look_magnifications`); one that no two looks agree on is left out.
    """
    smallest: dict[Box, tuple[Box, ...]] = {}
    for box, phrase, _magnification in _first_look_magnifications(layout, reader):
        smallest.setdefault(box, phrase)
    settled = (reader.confirmed(phrase, parse_magnification, 2)[0] for phrase in sorted(set(smallest.values())))
    return {magnification for magnification in settled if magnification is not None}


def _magnification_agrees(field_nm: float, magnifications: set[float]) -> bool:
    """Whether one of ``magnifications`` gives a field width within :data:`CORROBORATION` of ``field_nm`` nm on one
    of :data:`MAGNIFICATION_REFERENCES_NM`."""
    return any(
        abs(reference_nm / magnification / field_nm - 1) <= CORROBORATION
        for magnification in magnifications
        for reference_nm in MAGNIFICATION_REFERENCES_NM.values()
    )


def _corroborating_displays(field_nm: float, label: Length, magnifications: set[float]) -> list[str]:
    """The displays of :data:`MAGNIFICATION_REFERENCES_NM` on which one of ``magnifications`` corroborates a bar.

    The bar reads ``label`` and implies a field width of ``field_nm`` nm.  A
    display counts when a magnification's field width on it agrees within
    :data:`CORROBORATION`, unless on another display the magnification would
    fit a usual value with as many digits as the label (a likely misreading of it): the references are 1.63 apart,
    within 2 % of 5 / 3 and 8 / 5, so "100nm" misread "160nm" (or "166nm") on a Polaroid-referred stripe agrees with its
    magnification on the Thermo Fisher display, and "500 nm" misread "300 nm" would agree the other way.
    """
    displays = []
    for display, reference_nm in MAGNIFICATION_REFERENCES_NM.items():
        implied = [reference_nm / magnification for magnification in magnifications]
        if not any(abs(field / field_nm - 1) <= CORROBORATION for field in implied):
            continue
        others = [label.nm * other_nm / reference_nm for other_nm in MAGNIFICATION_REFERENCES_NM.values()]
        if not any(
            other != label.nm
            and abs(nearest_usual_length(other).nm / other - 1) <= CORROBORATION
            and _same_digit_count(label, nearest_usual_length(other).nm)
            for other in others
        ):
            displays.append(display)
    return displays


def _same_digit_count(label: Length, other_nm: float) -> bool:
    """Whether ``other_nm`` nm, written in ``label``'s unit, has as many characters as ``label``'s value.

    OCR misreads digits ("100" read "160" or "166") but rarely adds or drops
    one with the rest right; a value of another length is no misreading of it.

    Examples
    --------
    >>> _same_digit_count(Length(166, "nm"), 100.0), _same_digit_count(Length(1, "µm"), 600.0)
    (True, False)
    """
    return len(f"{label.value:g}") == len(f"{other_nm * label.value / label.nm:g}")


def _read_segment(layout: StripeLayout, reader: _StripeText, width: int, looks: int) -> ScaleReading:
    """The bar reading (``ocr``) of a stripe, or why there is none."""
    segment, stripe_box = layout.segment, layout.stripe.box
    if isinstance(segment, GeometryProblem):
        return ScaleReading(segment.status, stripe_box=stripe_box, reason=segment.reason)
    candidates = [box for _side, box in label_candidates(segment, layout.boxes)[:MAX_LABEL_CANDIDATES]]
    reader.read(layout.boxes)
    if not candidates:
        return ScaleReading(
            "unreadable", bar_px=segment.length_px, stripe_box=stripe_box, reason="no text next to the segment"
        )
    texts = dict(zip(layout.boxes, reader.read(layout.boxes), strict=True))

    @functools.cache
    def settled_magnifications() -> set[float]:
        # read again only when a magnification contradicts the bar: rare, and each costs a few OCR calls
        return _settled_magnifications(layout, reader)

    def plausible(label: Length, phrase: tuple[Box, ...]) -> bool:
        others = [text for box, text in texts.items() if box not in phrase]
        return judge(label.nm / segment.length_px, width, label, others, settled_magnifications)[0] is None

    phrase, label, label_text = _label(candidates, layout, reader, looks, plausible)
    if label is None:
        return ScaleReading(
            "unreadable",
            bar_px=segment.length_px,
            stripe_box=stripe_box,
            label_text=label_text,
            reason=f"no length next to the segment (read {label_text!r})",
        )
    nm_per_px = label.nm / segment.length_px
    others = [text for box, text in texts.items() if box not in phrase]
    problem, evidence = judge(nm_per_px, width, label, others, settled_magnifications)
    if problem:
        return ScaleReading(
            "unreadable", bar_px=segment.length_px, stripe_box=stripe_box, label_text=label_text, reason=problem
        )
    return ScaleReading(
        "ok",
        label.value,
        label.unit,
        segment.length_px,
        nm_per_px,
        "ocr",
        ocr_nm_per_px=nm_per_px,
        stripe_box=stripe_box,
        label_text=label_text,
        evidence=[f"segment measured between its {segment.convention}", *evidence],
    )


@dataclass(frozen=True)
class MagnifiedLabel:
    """The scale-bar value a magnification puts on the bar: ``length``, from ``magnification`` on ``display``
    (a key of :data:`MAGNIFICATION_REFERENCES_NM`), ``apart`` its relative distance from the exact figure."""

    length: Length
    magnification: float
    display: str
    apart: float


def label_from_magnifications(bar_px: float, width_px: int, magnifications: set[float]) -> MagnifiedLabel | None:
    """The one usual scale-bar value that the stripe's magnifications put on a bar of ``bar_px`` px, or None.

    On each display of :data:`MAGNIFICATION_REFERENCES_NM` a magnification
    implies a field width, so a length on the bar; it counts when a usual
    value (:data:`USUAL_MANTISSAS`) lies within :data:`CORROBORATION` of it.
    None unless exactly one value counts: on a display that is not known
    (Zeiss: 281 and 298 mm) no usual value comes that close, and two values
    mean the display cannot be told.

    Examples
    --------
    >>> label_from_magnifications(35.0, 512, {86_800.0}).length  # JEOL "X86,800", Polaroid display
    Length(value=100.0, unit='nm')
    >>> print(label_from_magnifications(35.0, 512, {61_000.0}))  # 142 nm on the bar: no usual value within 3 %
    None
    """
    found: dict[float, MagnifiedLabel] = {}
    for magnification in sorted(magnifications):
        for display, reference_nm in MAGNIFICATION_REFERENCES_NM.items():
            on_bar_nm = reference_nm / magnification / width_px * bar_px
            usual = nearest_usual_length(on_bar_nm)
            apart = abs(usual.nm / on_bar_nm - 1)
            if apart <= CORROBORATION:
                found.setdefault(usual.nm, MagnifiedLabel(usual, magnification, display, apart))
    return next(iter(found.values())) if len(found) == 1 else None


def _describe_bar(bar: ScaleReading) -> str:
    return f"the bar reads {bar.value:g} {bar.unit} over {bar.bar_px:.1f} px = {bar.ocr_nm_per_px:.4g} nm/px"


def reconcile(
    bar: ScaleReading, printed: PrintedField | None, width_px: int, magnifications: set[float] | None = None
) -> ScaleReading:
    """The pixels' reading: the bar (``bar``, status ``ok`` or why not) checked against the printed field width.

    A printed field width outside what an SEM images (:data:`FIELD_WIDTH_RANGE_NM`)
    is a misreading and is ignored.  Otherwise, with the bar agreeing within
    :data:`FIELD_AGREEMENT`: the bar, corroborated; disagreeing: ``conflict``,
    no pixel size, both values kept; no bar reading: the field width over
    ``width_px`` is the reading (source ``field``).

    ``magnifications`` (those printed on the stripe) settle a disagreement
    only one way: when one of them, on a display of
    :data:`MAGNIFICATION_REFERENCES_NM`, agrees with the bar's field width and
    none agrees with the printed one, the printed field width is the misread
    one (tiny print: "794 nm" read "734 nm", "4.491 µm" read "4491 µm") and
    the bar stands, the field width left out of the reading and told in its
    evidence.  A magnification that agrees with the printed field width
    leaves the conflict: a label misread 5 → 3 may match the same
    magnification on the other display (127 / 207.2 mm is within 2 % of 3 / 5).
    They also settle a bar whose label was read but not as a usual length:
    the one usual value they put on the measured bar, when the label shows
    its digits and the printed field width (if any) puts the same value
    nearest (``_taken_from_magnification``).
    """
    low, high = FIELD_WIDTH_RANGE_NM
    if printed is None or not low <= printed.length.nm <= high:
        return _taken_from_magnification(bar, width_px, magnifications or set(), None) or bar
    field_nm = printed.length.nm
    field_nm_per_px = field_nm / width_px
    described = f"the printed field width {printed.length.value:g} {printed.length.unit} over {width_px} px"
    if bar.status == "ok":
        assert bar.ocr_nm_per_px is not None, "an 'ok' bar reading always has a pixel size"
        apart = disagreement(bar.ocr_nm_per_px, field_nm_per_px)
        if apart <= FIELD_AGREEMENT:
            return replace(
                bar,
                field_nm=field_nm,
                field_nm_per_px=field_nm_per_px,
                evidence=[*bar.evidence, f"{described} agrees ({apart:.1%} apart)"],
            )
        assert bar.value is not None and bar.unit is not None, "an 'ok' bar reading always has its label"
        bar_field_nm = bar.ocr_nm_per_px * width_px
        label = Length(bar.value, bar.unit)
        if _corroborating_displays(bar_field_nm, label, magnifications or set()) and not _magnification_agrees(
            field_nm, magnifications or set()
        ):
            return replace(
                bar,
                evidence=[
                    *bar.evidence,
                    f"the magnification agrees with the bar; {described} = {field_nm_per_px:.4g} nm/px "
                    f"({apart:.1%} apart) agrees with neither: misread, left out",
                ],
            )
        return ScaleReading(
            "conflict",
            bar_px=bar.bar_px,
            ocr_nm_per_px=bar.ocr_nm_per_px,
            field_nm=field_nm,
            field_nm_per_px=field_nm_per_px,
            stripe_box=bar.stripe_box,
            label_text=bar.label_text,
            reason=f"{_describe_bar(bar)}, {described} = {field_nm_per_px:.4g} nm/px: {apart:.1%} apart",
        )
    if bar.bar_px is not None:
        # The bar was measured but its label not read: the field width says what the label must be.
        implied = nearest_usual_length(field_nm_per_px * bar.bar_px)
        apart = disagreement(implied.nm / bar.bar_px, field_nm_per_px)
        if apart > FIELD_AGREEMENT:
            taken = _taken_from_magnification(bar, width_px, magnifications or set(), printed)
            if taken is not None:
                return taken
            return ScaleReading(
                "conflict",
                bar_px=bar.bar_px,
                field_nm=field_nm,
                field_nm_per_px=field_nm_per_px,
                stripe_box=bar.stripe_box,
                label_text=bar.label_text,
                reason=(
                    f"{described} puts {field_nm_per_px * bar.bar_px:.4g} nm on the bar's {bar.bar_px:.1f} px, "
                    f"not a value scale bars show (nearest {implied.value:g} {implied.unit}, {apart:.1%} apart)"
                ),
            )
        if bar.label_text and _digits_compatible(bar.label_text, implied):
            evidence = [
                f"label read {bar.label_text!r}, taken as {implied.value:g} {implied.unit}: {described} "
                f"agrees ({apart:.1%} apart)"
            ]
            return _bar_read_as(bar, implied, evidence, field_nm=field_nm, field_nm_per_px=field_nm_per_px)
    return ScaleReading(
        "ok",
        bar_px=bar.bar_px,
        nm_per_px=field_nm_per_px,
        source="field",
        field_nm=field_nm,
        field_nm_per_px=field_nm_per_px,
        stripe_box=bar.stripe_box,
        label_text=bar.label_text,
        evidence=[f"{described} (read {printed.text!r})"],
        reason=f"bar: {bar.status} ({bar.reason}); scale from {described}",
    )


def _taken_from_magnification(
    bar: ScaleReading, width_px: int, magnifications: set[float], printed: PrintedField | None
) -> ScaleReading | None:
    """The bar's reading with its label taken from the magnification, when the label was read but not as a usual
    length ("100mm" for "100nm", "28 um" for "20 µm"), or None.

    The label must show the digits (:func:`_digits_compatible`) of the one usual value the magnifications put on the
    measured bar (:func:`label_from_magnifications`), and a printed field width, when there is one, must put the
    same usual value nearest on the bar though not within :data:`FIELD_AGREEMENT` (both misread in tiny print).
    """
    if bar.status == "ok" or bar.bar_px is None or not bar.label_text:
        return None
    magnified = label_from_magnifications(bar.bar_px, width_px, magnifications)
    if magnified is None or not _digits_compatible(bar.label_text, magnified.length):
        return None
    length = magnified.length
    evidence = [
        f"label read {bar.label_text!r}, taken as {length.value:g} {length.unit}: the magnification "
        f"{magnified.magnification:g}× on the {magnified.display} display puts it on the bar's {bar.bar_px:.1f} px "
        f"({magnified.apart:.1%} apart)"
    ]
    if printed is not None:
        if nearest_usual_length(printed.length.nm / width_px * bar.bar_px) != length:
            return None
        evidence.append(
            f"the printed field width {printed.length.value:g} {printed.length.unit} (read {printed.text!r}) puts "
            f"{length.value:g} {length.unit} nearest, more than {FIELD_AGREEMENT:.0%} apart: misread, left out"
        )
    return _bar_read_as(bar, length, evidence)


def _bar_read_as(
    bar: ScaleReading,
    label: Length,
    evidence: list[str],
    field_nm: float | None = None,
    field_nm_per_px: float | None = None,
) -> ScaleReading:
    """``bar`` (measured, its label misread) read as ``label`` over its length, settled by ``evidence``; the printed
    field width that agrees with it, if any, is kept (``field_nm`` nm, ``field_nm_per_px`` over the image width)."""
    assert bar.bar_px is not None, "only a measured bar can be read as a label"
    nm_per_px = label.nm / bar.bar_px
    return replace(
        bar,
        status="ok",
        value=label.value,
        unit=label.unit,
        nm_per_px=nm_per_px,
        source="ocr",
        ocr_nm_per_px=nm_per_px,
        field_nm=field_nm,
        field_nm_per_px=field_nm_per_px,
        evidence=evidence,
        reason=None,
    )


def combine(pixels: ScaleReading, metadata: MetadataScale | None) -> ScaleReading:
    """Apply the trust order to the pixels' reading and the vendor metadata's pixel size (if any).

    With metadata, ``nm_per_px`` is the metadata's, always.  The source is
    ``both`` when the bar's reading agrees with it within
    :data:`~semcurate.ingest.vendor_metadata.DISAGREEMENT_THRESHOLD` (1 %),
    else ``metadata``; every pixel reading (bar, printed field) further apart
    than that flags the image, and the reason says both values.  The label's
    value and unit are kept only when the bar agrees.
    """
    if metadata is None:
        return pixels
    pixel_sizes = {
        name: value
        for name, value in (("bar", pixels.ocr_nm_per_px), ("printed field width", pixels.field_nm_per_px))
        if value is not None
    }
    apart = {name: disagreement(value, metadata.nm_per_px) for name, value in pixel_sizes.items()}
    worst = max(apart.values(), default=None)
    flagged = worst is not None and worst > DISAGREEMENT_THRESHOLD
    agreeing_bar = pixels.status == "ok" and "bar" in apart and apart["bar"] <= DISAGREEMENT_THRESHOLD
    if flagged:
        reason = "; ".join(
            f"{name} {pixel_sizes[name]:.4g} nm/px, {apart[name]:.1%} from the metadata's {metadata.nm_per_px:.4g}"
            for name in apart
            if apart[name] > DISAGREEMENT_THRESHOLD
        )
        reason = f"{reason}: metadata kept"
    elif pixels.status != "ok":
        reason = f"pixels: {pixels.status} ({pixels.reason}); scale from {metadata.detail}"
    else:
        reason = None
    return replace(
        pixels,
        status="ok",
        value=pixels.value if agreeing_bar and not flagged else None,
        unit=pixels.unit if agreeing_bar and not flagged else None,
        nm_per_px=metadata.nm_per_px,
        source="both" if agreeing_bar and not flagged else "metadata",
        metadata_nm_per_px=metadata.nm_per_px,
        metadata_vendor=metadata.vendor,
        disagreement=worst,
        flagged=flagged,
        evidence=[*pixels.evidence, metadata.detail],
        reason=reason,
    )


def read_scale(
    grey: np.ndarray,
    *,
    engine: OcrEngine | None,
    metadata: MetadataScale | None = None,
    source: str = "auto",
) -> ScaleReading:
    """Read one image's scale; ``source`` is ``auto`` (pixels and metadata), ``ocr`` (pixels only) or ``metadata``.

    ``engine`` may be ``None`` only with ``source="metadata"``, which reads no text.
    """
    if source == "metadata":
        if metadata is None:
            return ScaleReading("no_metadata", reason="no Zeiss or FEI pixel size in the file")
        return combine(ScaleReading("unreadable", reason="bar not read (--source metadata)"), metadata)
    if engine is None:
        raise ValueError(f"read_scale needs an OCR engine to read the data bar (source={source!r})")
    pixels = read_bar(grey, engine)
    return pixels if source == "ocr" else combine(pixels, metadata)


def read_scale_bytes(
    data: bytes, *, engine: OcrEngine | None, source: str = "auto", max_pixels: int = DEFAULT_MAX_PIXELS
) -> ScaleReading:
    """Read the scale of an image file's bytes (TIFF or JPG; 16-bit, palette and colour are converted to 8-bit grey)."""
    try:
        decoded = decode_image(data, max_pixels)
    except ImageProblem as problem:
        return ScaleReading("error", reason=problem.reason)
    grey = np.asarray(decoded.display.convert("L"))
    metadata = read_metadata_scale(data) if source != "ocr" else None
    return read_scale(grey, engine=engine, metadata=metadata, source=source)
