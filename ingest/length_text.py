"""Turn OCR text from an SEM data bar into lengths and a magnification (pure functions, no OCR).

Step 4 of the thesis' scale reader (section 2.3) "cleans the text selecting
the scale elements only (digits followed by mm, µm, or nm)".  Tesseract's
output is not clean, though: the English model has no ``µ``, and small data-bar
fonts make it confuse digits with letters.  This module knows those
confusions and nothing else; it never guesses a unit.

* :func:`parse_length` reads a scale label ("200 nm"): exactly one length.
* :func:`find_lengths` finds every length in a longer line ("HFW 198.0 µm  WD 6.2 mm").
* :func:`parse_magnification` reads "Mag = 98.60 K X", "8 811 x", "x 5,000" ...
* :func:`parse_fields` pairs lengths with the field name written before them.

Tolerated OCR confusions
------------------------
Every mapping is there because Tesseract 5 (``eng`` model) was seen making
it, on two sources read the way :mod:`semcurate.ingest.scale_bar` reads them
(crop, :func:`~semcurate.ingest.ocr.prepare_crop` to a 20-28 px cap height,
one text line):

* the real instrument TIFFs of the test fixtures (Zeiss SmartSEM 1024 and
  512 px wide, Thermo Fisher/FEI Helios 512 px), "real";
* about 3 200 scale labels drawn with Pillow in DejaVu Sans, Liberation Sans
  and FreeSans (regular and bold), 7-16 px cap height, both polarities, with
  and without anti-aliasing, every scale of the thesis' Table 2.4 with and
  without a space, "drawn" (counts are out of 6 466 readings).

A wrong unit is worse than none, so anything else is rejected; in
particular a bare ``m`` is never a unit (``µ`` dropped: 236 readings),
units are case-sensitive (``PM`` is a time of day, not a misread ``µm``),
and confusions also seen the other way round are left out (``rm`` and
``mm`` for ``nm``, ``pnm`` and ``pn`` for ``µm``, ``d`` for both 1 and 3).

======================  =========  ==========================================
OCR text                reads as   seen
======================  =========  ==========================================
``µm`` ``μm`` (U+03BC)  µm         the unit itself (micro sign or Greek mu)
``um``                  µm         real (Zeiss "200 um"); drawn 1 799
``pm`` ``ym``           µm         real (Helios "500 pm", "500 ym"); drawn
                                   1 107 and 151
``yam`` ``wm``          µm         drawn in the demo's fixed-width faces
                                   (FreeMono "2 yam", Liberation Mono
                                   "648 wm", issue 12's failure study)
``yum`` ``pum``         µm         drawn 233 and 59: ``µ`` as descender + ``u``
``urn`` ``prn``         µm         real (Helios "500 urn"); drawn 8 and 4
                                   (``rn`` for ``m``)
``ren``                 nm         drawn 6 (FreeSans, Liberation)
``om``                  nm         drawn (FreeMono at 7 px: "200 om" in
                                   three looks of four)
``O`` ``o``             0          real (Zeiss 512 "2O %"); drawn ("SOnm")
``S`` ``s``             5          real (Helios "S00 pm"); drawn 48 ("Sum"
                                   for "5µm"), "sonm"
``Z`` ``z``             2          drawn ("Zum", "zmm")
``I`` ``l`` ``i``       1          drawn 26 ("I"), "lum", "imm" (74 of
                                   the "1mm" labels)
``T`` ``J`` ``t``       1          drawn 6, 1 and 6 ("tum" for "1µm"; real
                                   text: the generator's JEOL "1um")
======================  =========  ==========================================

A number token is a run of digits and the look-alike letters above, possibly
with one decimal separator, which OCR may follow with a space (Hitachi's
"20.0nm" in Liberation Mono read "20. 0nm") or, a point, precede with one ("1.00um" and "5.00nm" in
DejaVu Sans Mono and FreeMono at 7 px read "1 .00um", "5 .00nm"); it must start a word (not follow a letter, digit,
sign, ``:`` or ``/``) and hold at least one real digit, except that a single
look-alike directly before a unit is read as its digit: ``T``, ``J``, ``l``,
``I``, ``i``, ``t`` as 1 ("imm" → 1 mm), ``S`` ``s`` as 5 ("Sum", "S um" for
5 µm: drawn 48, and DejaVu Sans Mono at 7 px), ``Z`` ``z`` as 2 ("Zum" for 2 µm
in FreeSans at 5 px, three looks of five).  A comma is a decimal separator ("1,5 µm"), except
when exactly three digits follow it ("1,500 nm" → 1500 nm).

Known limits (drawn labels under 10 px): a lost decimal point ("1.5 µm"
read "15 µm": 19 readings, "2.5" as "25": 18) and ``3`` read as ``S`` (8)
give a plausible wrong length; the reader guards against them with a second
look and the stripe's printed field width, not here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Nanometres per canonical unit.
NM_PER_UNIT = {"nm": 1.0, "µm": 1e3, "mm": 1e6}

#: OCR spelling of a unit -> canonical unit (see the module docstring for why each is here).
UNIT_SPELLINGS: dict[str, str] = {
    "nm": "nm",
    "ren": "nm",
    "om": "nm",
    "µm": "µm",
    "μm": "µm",
    "um": "µm",
    "pm": "µm",
    "ym": "µm",
    "yam": "µm",
    "wm": "µm",
    "yum": "µm",
    "pum": "µm",
    "urn": "µm",
    "prn": "µm",
    "mm": "mm",
}

#: Letter (or sign) that OCR writes for a digit -> that digit; applied only inside number tokens.
DIGIT_LOOKALIKES: dict[str, str] = {
    "O": "0",
    "o": "0",
    "T": "1",
    "J": "1",
    "l": "1",
    "I": "1",
    "i": "1",
    "t": "1",
    "S": "5",
    "s": "5",
    "Z": "2",
    "z": "2",
}
#: Look-alikes that may stand alone for a one-digit number (1, 2, 5: the scale values of one digit) before a unit.
_LONE_DIGITS = frozenset("TJlItiSsZz")

_DIGIT_CLASS = "0-9" + re.escape("".join(DIGIT_LOOKALIKES))
_UNIT_ALTERNATIVES = "|".join(re.escape(spelling) for spelling in sorted(UNIT_SPELLINGS, key=len, reverse=True))
_LENGTH_PATTERN = re.compile(
    rf"(?<![\w.,:/+\-−–])"
    rf"(?P<number>[{_DIGIT_CLASS}]+(?:(?:[.,]| \.) ?[{_DIGIT_CLASS}]+)?)"
    rf"[ \t]{{0,2}}"
    rf"(?P<unit>{_UNIT_ALTERNATIVES})"
    rf"(?![^\W\d_]|\d)"
)
_DIGITS = re.compile(r"\d")
_DIGIT_TABLE = str.maketrans(DIGIT_LOOKALIKES)

#: A magnification's number: digit groups of three after a space or a comma (which OCR may pad: "93 , 000"), or a
#: decimal number.
_MAG_NUMBER = r"(?P<{name}>\d{{1,3}}(?:(?: ?, ?| )\d{{3}})+(?:\.\d+)?|\d+(?:[.,]\d+)?)"
_THOUSANDS = re.compile(r"\d{1,3}(?:(?: ?, ?| )\d{3})+(?:\.\d+)?")
_MAGNIFICATION_PATTERNS = (
    re.compile(r"(?<![\w.,])" + _MAG_NUMBER.format(name="number") + r"\s?(?P<kilo>[kK]{1,2})?\s?[xX×](?![^\W\d_])"),
    re.compile(
        r"(?<![^\W\d_])(?:[xX×#]|K(?=\d{1,3},\d{3}))\s?"
        + _MAG_NUMBER.format(name="number")
        # Thousands ("x22.2k"); else not followed by more number ("X93 , 000" is not 93), by a sign OCR made of
        # a digit ("X11?" for X117) or by a length unit ("x 5 mm" is no magnification); words may follow ("x575 SE").
        + r"(?:(?P<kilo>[kK])(?!\w)|(?![\d.,?]|[^\W\d_]|\s?[.,]|\s?(?:nm|µm|μm|um|mm)(?![^\W\d_])))"
    ),
)

#: Field name (as written, case-insensitive) -> key used in :class:`StripeFields`.
FIELD_NAMES: dict[str, str] = {
    "hfw": "hfw",
    "width": "width",
    "view field": "view_field",
    "wd": "wd",
    "pixel size": "pixel_size",
    "pixelsize": "pixel_size",
}
_FIELD_BEFORE = re.compile(
    r"(?<![^\W\d_])(?P<name>" + "|".join(re.escape(name) for name in FIELD_NAMES) + r")\s*[:=]?\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Length:
    """A length as written: ``value`` in ``unit``, one of ``"nm"``, ``"µm"``, ``"mm"``."""

    value: float
    unit: str

    @property
    def nm(self) -> float:
        """The length in nm.

        Examples
        --------
        >>> Length(2.5, "µm").nm
        2500.0
        """
        return self.value * NM_PER_UNIT[self.unit]


@dataclass(frozen=True)
class StripeFields:
    """The lengths found in a data bar's text, each with the field it belongs to.

    ``lengths`` holds ``(field, length)`` pairs in reading order; ``field`` is
    ``'hfw'``, ``'width'``, ``'view_field'``, ``'wd'`` or ``'pixel_size'`` when the field name is
    written just before the value on the same line, else None (the scale
    label, or a value whose name sits on another row).  ``magnification`` is
    the first magnification found (dimensionless), or None.
    """

    lengths: list[tuple[str | None, Length]]
    magnification: float | None = None


def _number_value(token: str) -> float | None:
    """The value of a number token (look-alikes mapped to digits), or None if it is not a number."""
    if not _DIGITS.search(token) and not (len(token) == 1 and token in _LONE_DIGITS):
        return None
    digits = token.replace(" ", "").translate(_DIGIT_TABLE)
    whole, comma, fraction = digits.partition(",")
    if comma:
        digits = whole + fraction if len(fraction) == 3 and whole != "0" else f"{whole}.{fraction}"
    return float(digits)


def find_lengths(text: str) -> list[tuple[Length, tuple[int, int]]]:
    """Every positive length (number + unit) in ``text``, with its ``(start, end)`` character span.

    Examples
    --------
    >>> [length for length, _span in find_lengths("HFW 198.0 µm  WD 6.2 mm")]
    [Length(value=198.0, unit='µm'), Length(value=6.2, unit='mm')]

    The span locates the length in the text, so the caller can look at what
    surrounds it (here the field name before it):

    >>> find_lengths("WD = 6.2 mm")
    [(Length(value=6.2, unit='mm'), (5, 11))]
    >>> find_lengths("20 kV  Mag 500 x")  # numbers without a length unit
    []
    """
    found = []
    for match in _LENGTH_PATTERN.finditer(text):
        value = _number_value(match.group("number"))
        if value is not None and value > 0:
            found.append((Length(value, UNIT_SPELLINGS[match.group("unit")]), match.span()))
    return found


def parse_length(text: str) -> Length | None:
    """The one length a scale label shows ("200 nm", "1µm", "10 pm" → 10 µm), or None.

    None when ``text`` holds no length, several, or another number besides the
    length (a label has exactly one number); which field the length belongs
    to is for the caller to decide.

    Examples
    --------
    >>> parse_length("200 nm")
    Length(value=200.0, unit='nm')
    >>> parse_length("10 pm")  # Tesseract's reading of "10 µm"
    Length(value=10.0, unit='µm')
    >>> parse_length("1,5 µm")  # a decimal comma
    Length(value=1.5, unit='µm')
    >>> parse_length("1,500 nm")  # three digits after the comma: thousands
    Length(value=1500.0, unit='nm')
    >>> print(parse_length("WD 6.2 mm 20 kV"))  # a second number: not a scale label
    None
    """
    found = find_lengths(text)
    if len(found) != 1:
        return None
    length, (start, end) = found[0]
    if _DIGITS.search(text[:start] + text[end:]):
        return None
    return length


def parse_magnification(text: str) -> float | None:
    """The first magnification in ``text`` as a plain factor ("Mag = 98.60 K X" → 98600.0), or None.

    Accepts a number followed by ``x`` (optionally with ``k``/``K``, doubled
    ``kK`` as OCR sometimes writes it, for thousands: "25.00 KX", "500x") or
    ``x`` followed by a number, with ``k`` for thousands after it as Hitachi
    prints it ("x 5,000", "x22.2k"; OCR reads that small ``x`` as ``#`` too, and JEOL's "X377,000" in FreeMono at
    8 px as "K377,000": a ``K`` only before comma-grouped thousands).  Digit groups separated by a space
    or a comma are thousands ("8 811 x"); a comma followed by one or two
    digits is a decimal comma ("1,20 kx").

    Examples
    --------
    >>> parse_magnification("Mag = 98.60 K X")
    98600.0
    >>> parse_magnification("x 5,000")
    5000.0
    >>> parse_magnification("SE x22.2k SE(U)")
    22200.0
    >>> parse_magnification("X93 , 000"), parse_magnification("x575 SE(U)")
    (93000.0, 575.0)
    >>> parse_magnification("8 811 x")
    8811.0
    >>> parse_magnification("1,20 kx")
    1200.0
    >>> print(parse_magnification("WD 6.2 mm"))
    None
    """
    matches = [match for pattern in _MAGNIFICATION_PATTERNS if (match := pattern.search(text))]
    if not matches:
        return None
    match = min(matches, key=lambda candidate: candidate.start())
    number = match.group("number")
    if _THOUSANDS.fullmatch(number):
        value = float(re.sub("[ ,]", "", number))
    else:
        value = float(number.replace(",", "."))
    if match.groupdict().get("kilo"):
        value *= 1000
    return value if value > 0 else None


def parse_fields(text_lines: list[str]) -> StripeFields:
    """Pair every length in the data bar's text lines with the field name written just before it.

    A name counts when only spaces, ``:`` or ``=`` separate it from the value
    ("HFW 198.0 µm", "WD = 6.2 mm", "Pixel Size: 3.1 nm"); FEI bars write
    names on one row and values on the next, so their values come back with
    no name, in reading order, for the caller to match by column.

    Examples
    --------
    >>> fields = parse_fields(["HFW 198.0 µm  WD = 6.2 mm", "200 nm", "Mag = 1.50 K X"])
    >>> for name, length in fields.lengths:
    ...     print(name, length.value, length.unit)
    hfw 198.0 µm
    wd 6.2 mm
    None 200.0 nm
    >>> fields.magnification
    1500.0
    """
    lengths: list[tuple[str | None, Length]] = []
    magnification = None
    for line in text_lines:
        previous_end = 0
        for length, (start, end) in find_lengths(line):
            name = _FIELD_BEFORE.search(line[previous_end:start])
            lengths.append((FIELD_NAMES[name.group("name").lower()] if name else None, length))
            previous_end = end
        if magnification is None:
            magnification = parse_magnification(line)
    return StripeFields(lengths, magnification)
