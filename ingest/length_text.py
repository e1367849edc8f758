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
Every mapping is there because it was seen, either on crops of the demo
corpus' font (Pillow's Aileron, ``µ`` drawn as ``u`` plus a descender) read by
Tesseract 5 ``eng`` ("observed"), or because the project brief lists it from
real instrument images ("reported").  A wrong unit is worse than none, so
anything else is rejected; in particular a bare ``m`` is never a unit, and
units are case-sensitive (``PM`` is a time of day, not a misread ``µm``).

======================  =========  ==========================================
OCR text                reads as   source
======================  =========  ==========================================
``µm`` ``μm`` (U+03BC)  µm         the unit itself (micro sign or Greek mu)
``um``                  µm         observed: ``µ`` without its descender
``pm`` ``ym``           µm         observed: ``µ``'s descender read as ``p``/``y``
``µ m`` ``u m``         µm         reported
``yum`` ``pum``         µm         observed: ``µ`` read as descender + ``u``
``jum`` ``urn`` ``pim``  µm         reported (``rn`` for ``m``)
``nrn``                 nm         reported (``rn`` for ``m``)
``rnm`` ``mrn``         mm         reported (``rn`` for ``m``)
``O`` ``o``             0          reported; only inside a number token
``T`` ``J``             1          observed: Aileron's flagged ``1`` ("1 µm" read "Tum", "Jum")
``l`` ``I`` ``|``       1          observed (``lum``) and reported
``i`` ``]`` ``!``       1          reported
``S`` ``s``             5          reported
``B``                   8          reported
``Z``                   2          reported
======================  =========  ==========================================

A number token is a run of digits and the look-alike letters above, possibly
with one decimal separator; it must start a word (not follow a letter, digit,
sign, ``:`` or ``/``) and hold at least one real digit, except that a single
``1``-look-alike (``T``, ``l``, ``I``, ``|``) directly before a unit is read as 1
("Tum" → 1 µm).  A comma is a decimal separator ("1,5 µm"), except when
exactly three digits follow it ("1,500 nm" → 1500 nm).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Nanometres per canonical unit.
NM_PER_UNIT = {"nm": 1.0, "µm": 1e3, "mm": 1e6}

#: OCR spelling of a unit -> canonical unit (see the module docstring for why each is here).
UNIT_SPELLINGS: dict[str, str] = {
    "nm": "nm",
    "nrn": "nm",
    "µm": "µm",
    "μm": "µm",
    "um": "µm",
    "pm": "µm",
    "ym": "µm",
    "µ m": "µm",
    "u m": "µm",
    "jum": "µm",
    "urn": "µm",
    "pim": "µm",
    "yum": "µm",
    "pum": "µm",
    "mm": "mm",
    "rnm": "mm",
    "mrn": "mm",
}

#: Letter (or sign) that OCR writes for a digit -> that digit; applied only inside number tokens.
DIGIT_LOOKALIKES: dict[str, str] = {
    "O": "0",
    "o": "0",
    "T": "1",
    "J": "1",
    "l": "1",
    "I": "1",
    "|": "1",
    "i": "1",
    "]": "1",
    "!": "1",
    "S": "5",
    "s": "5",
    "B": "8",
    "Z": "2",
}
#: Look-alikes that may stand alone for the number 1 when a unit follows directly.
_LONE_ONES = frozenset("TJlI|")

_DIGIT_CLASS = "0-9" + re.escape("".join(DIGIT_LOOKALIKES))
_UNIT_ALTERNATIVES = "|".join(re.escape(spelling) for spelling in sorted(UNIT_SPELLINGS, key=len, reverse=True))
_LENGTH_PATTERN = re.compile(
    rf"(?<![\w.,:/+\-−–])"
    rf"(?P<number>[{_DIGIT_CLASS}]+(?:[.,][{_DIGIT_CLASS}]+)?)"
    rf"[ \t]{{0,2}}"
    rf"(?P<unit>{_UNIT_ALTERNATIVES})"
    rf"(?![^\W\d_]|\d)"
)
_DIGITS = re.compile(r"\d")
_DIGIT_TABLE = str.maketrans(DIGIT_LOOKALIKES)

_MAG_NUMBER = r"(?P<{name}>\d{{1,3}}(?:[ ,]\d{{3}})+(?:\.\d+)?|\d+(?:[.,]\d+)?)"
_MAGNIFICATION_PATTERNS = (
    re.compile(r"(?<![\w.,])" + _MAG_NUMBER.format(name="number") + r"\s?(?P<kilo>[kK]{1,2})?\s?[xX×](?![^\W\d_])"),
    re.compile(r"(?<![^\W\d_])[xX×]\s?" + _MAG_NUMBER.format(name="number") + r"(?![\d.,]|\s?[^\W\d_])"),
)

#: Field name (as written, case-insensitive) -> key used in :class:`StripeFields`.
FIELD_NAMES: dict[str, str] = {
    "hfw": "hfw",
    "width": "width",
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
    ``'hfw'``, ``'width'``, ``'wd'`` or ``'pixel_size'`` when the field name is
    written just before the value on the same line, else None (the scale
    label, or a value whose name sits on another row).  ``magnification`` is
    the first magnification found (dimensionless), or None.
    """

    lengths: list[tuple[str | None, Length]]
    magnification: float | None = None


def _number_value(token: str) -> float | None:
    """The value of a number token (look-alikes mapped to digits), or None if it is not a number."""
    if not _DIGITS.search(token) and not (len(token) == 1 and token in _LONE_ONES):
        return None
    digits = token.translate(_DIGIT_TABLE)
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
    ``x`` followed by a number ("x 5,000").  Digit groups separated by a space
    or a comma are thousands ("8 811 x"); a comma followed by one or two
    digits is a decimal comma ("1,20 kx").

    Examples
    --------
    >>> parse_magnification("Mag = 98.60 K X")
    98600.0
    >>> parse_magnification("x 5,000")
    5000.0
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
    if re.fullmatch(r"\d{1,3}(?:[ ,]\d{3})+(?:\.\d+)?", number):
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
