"""Burn an SEM data bar (the stripe with the scale marker) under a specimen image, in real instruments' layouts.

Real SEM images carry their scale as pixels: a stripe ("data bar") at the
bottom of the image holds a scale segment with its length written next to it
("200 nm"), and usually other acquisition fields (high voltage, working
distance, magnification, field width, detector, date).  Each vendor draws its
own layout.  The demo corpus needs such images with a *known* answer so that
the scale-bar reader can be tested and scored on the layouts it will meet;
this module draws them and returns the truth.

Two pure steps, no file I/O besides opening the fonts:

* :func:`random_data_bar_spec` draws a :class:`DataBarSpec`: everything random
  about one data bar (layout, font, scale value, segment length, stripe
  geometry, the other fields and where they go).
* :func:`burn_data_bar` draws that spec under a specimen array and returns the
  full image with a :class:`DataBarTruth`.

Layouts (:data:`LAYOUTS`)
-------------------------
``zeiss_framed``, ``zeiss_plain``
    Zeiss SmartSEM: white or light stripe, framed by a 1-2 px border with
    optional internal cell lines (``zeiss_plain``: no frame); a bracket
    ``|-|`` with its value *above* it at the left ("200 µm"); columns of
    two fields such as ``EHT = 5.00 kV`` / ``WD = 8.5 mm``,
    ``Signal A = InLens`` / ``Mag = 500.00 K X``, ``Width = 556.0 nm`` /
    ``Date :3 Dec 2015``.
``thermo_table``
    Thermo Fisher / FEI (Helios, Quanta, Nova): black stripe of table cells
    with white grid lines, a header row of names (``HV | curr | mag ⊞ | HFW
    | mode | det | WD``) over a value row (``5.00 kV``, ``0.10 nA``,
    ``10 000 x``, ``2.98 µm``, ``SE``, ``TLD``, ``4.1 mm``), and the bar in
    the last cell: a line interrupted by its label (Helios, label
    ``inside``) or a filled bar under its label (Quanta/Nova, ``above``).
``jeol``
    JEOL: dark stripe, one row ``SEI  5.0kV  X10,000  1µm |-|  WD 10mm``: the
    value written to the *left* of a line with small end ticks.
``hitachi_ruler``
    Hitachi: ``S-4800 5.0kV 8.0mm x5.00k SE(U)`` and a ruler (one line with
    10 or 11 small ticks) with its total length printed at its right
    (``10.0um``).
``tescan``
    Tescan: light stripe with columns ``SEM HV: 10.0 kV`` / ``WD: 15.00 mm``,
    ``View field: 2.50 µm`` / ``Det: SE``, ``SEM MAG: 10.0 kx`` / date, and a
    filled bar with its value beside it.
``generic``
    The layout-free bars this module drew before: any segment style, the
    label above, below, left, right or inside the bar, fields in the Zeiss,
    FEI or a plain style packed around the scale block.
``none``
    No stripe at all (the thesis found about 3 % of images without one).

About 5 % of the stripes are ``overlay``: the bottom rows of the picture
above the stripe are flat (uniform grey or black), as when an instrument
draws its data bar over an empty bottom of the frame.

Measuring convention (``bar_px``)
---------------------------------
Coordinates are continuous: pixel column ``i`` covers ``[i, i + 1)``.

* ``bracket`` (ticked ends) and ``ruler`` (ticks along a line): between the
  *centres* of the end ticks, ``(x0 + tick_width / 2, x1 - tick_width / 2)``
  where ``x0 .. x1`` are the outer edges of the ink;
* ``rectangle`` (filled bar): between its outer edges;
* ``line`` without end caps, interrupted by its label or not: end to end;
* ``line`` with end caps (Thermo Fisher Helios: a cap ``tick_width`` wide,
  ``tick_width`` in from each end of the stroke): between the *centres* of
  the caps, ``(x0 + 1.5 tick_width, x1 - 1.5 tick_width)``.  This is what
  the instrument means: on the real Helios fixture (512 px wide, 500 µm bar)
  the stroke covers 151 columns, its caps' centres are 148 columns apart, and
  the TIFF's own pixel size gives 148.26 px for 500 µm.

``nm_per_px = value_in_nm / bar_px`` exactly; ``bar_px`` is an integer.

Fields and magnification
------------------------
The printed field width (Zeiss ``Width``, Thermo ``HFW``, Tescan ``View
field``, generic ``HFW``/``Width``) is ``width_px * nm_per_px`` rounded as
the vendor prints it: 4 significant digits for Zeiss and generic, 3 for
Thermo and Tescan.  The magnification is ``reference width / field width``
with the vendor's reference display width (:data:`REFERENCE_WIDTH_MM`):

* Zeiss: 280 mm, SmartSEM's display reference as measured by ``Mag x
  Width`` on real SmartSEM TIFFs (281 mm and 298 mm on the two hyperspy
  fixtures, 278 mm on ``Width = 556.0 nm``, ``Mag = 500.00 K X``);
* Thermo Fisher: 207.2 mm, the Helios fixture's ``[Image]
  MagCanvasRealWidth`` (0.2072 m; it prints ``120 x`` for ``HFW 1.73 mm``);
* JEOL, Hitachi, Tescan and generic: 127 mm, the "Polaroid" convention
  (a 4 x 5 inch print is 127 mm wide), used where the vendor's is unknown.

Printed magnifications keep 3 significant digits (Zeiss and generic: two
decimals of ``K X``; integers below 100 where the vendor prints integers).

Text
----
Text is set in one of :data:`FONTS` per bar (DejaVu Sans and Sans Mono,
Liberation Sans, Sans Narrow and Mono, FreeSans, FreeMono: the Arial,
Helvetica, Tahoma-like and fixed-width faces instrument software uses), each
with a real ``µ``.  The fonts are the Debian packages ``fonts-dejavu-core``,
``fonts-liberation`` and ``fonts-freefont-ttf`` (``scripts/setup.sh``
installs them); a missing one raises :class:`MissingFontError` naming its
package.  Liberation Sans Narrow, absent from ``fonts-liberation2``, falls
back to Liberation Sans.  The cap height is 1.37-2.34 % of the image width
(7-12 px on a 512 px image, 14-24 px on a 1024 px one), the stripe 5-15 %
of the image height, taller when its text needs it.  Micrometres are written
``µm`` or, in about a quarter of the bars (always on Hitachi's), ``um``.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from PIL import Image, ImageDraw, ImageFont

NM_PER_UNIT = {"mm": 1_000_000, "µm": 1_000, "nm": 1}

#: ``(value, unit, weight)``: the 19 scales of thesis Table 2.4 weighted by how many images of
#: images_flat show them, plus the 1-2-5 values Thermo Fisher instruments print (5, 50, 500) and the
#: occasional 2.5 µm and 400 nm, with smaller made-up weights.
SCALE_CHOICES: tuple[tuple[float, str, int], ...] = (
    (1, "mm", 163),
    (500, "µm", 1500),
    (300, "µm", 8),
    (200, "µm", 3265),
    (100, "µm", 5941),
    (50, "µm", 3000),
    (30, "µm", 60),
    (20, "µm", 9475),
    (10, "µm", 14729),
    (5, "µm", 6000),
    (3, "µm", 69),
    (2.5, "µm", 400),
    (2, "µm", 22575),
    (1, "µm", 30107),
    (500, "nm", 8000),
    (400, "nm", 400),
    (300, "nm", 187),
    (200, "nm", 37052),
    (100, "nm", 16531),
    (50, "nm", 2000),
    (30, "nm", 20),
    (20, "nm", 2423),
    (10, "nm", 62),
    (5, "nm", 30),
    (4, "nm", 6),
    (2, "nm", 6),
    (1, "nm", 69),
)

#: Horizontal field widths, in nm, that an SEM images (about 2,500,000× to 4× on a 127 mm display): a drawn scale
#: whose bar would make the field narrower or wider is drawn again.  Thesis Table 2.4's 1-5 nm scales thus appear
#: only where the bar is short enough.
SEM_FIELD_WIDTH_NM = (50.0, 30e6)
#: Scales drawn again, at most, to find one within :data:`SEM_FIELD_WIDTH_NM`.
MAX_SCALE_REDRAWS = 50

#: The layouts drawn (see the module docstring) and the share of bars drawn in each.
LAYOUT_SHARES: dict[str, float] = {
    "zeiss_framed": 0.17,
    "zeiss_plain": 0.13,
    "thermo_table": 0.20,
    "jeol": 0.10,
    "hitachi_ruler": 0.10,
    "tescan": 0.10,
    "generic": 0.17,
    "none": 0.03,
}
LAYOUTS = tuple(LAYOUT_SHARES)

#: Segment styles and label sides over all layouts (see "Measuring convention").
SEGMENT_STYLES = ("line", "bracket", "rectangle", "ruler")
LABEL_POSITIONS = ("above", "below", "left", "right", "inside")

#: Share of stripes drawn over a flat (uniform grey or black) bottom of the picture.
OVERLAY_PROBABILITY = 0.05

#: Reference display width of each layout's magnification, in mm (see "Fields and magnification").
REFERENCE_WIDTH_MM: dict[str, float] = {
    "zeiss_framed": 280.0,
    "zeiss_plain": 280.0,
    "thermo_table": 207.2,
    "jeol": 127.0,
    "hitachi_ruler": 127.0,
    "tescan": 127.0,
    "generic": 127.0,
    "none": 127.0,
}

#: Font name -> (folder under /usr/share/fonts/truetype, file name, Debian package).
FONTS: dict[str, tuple[str, str, str]] = {
    "DejaVu Sans": ("dejavu", "DejaVuSans.ttf", "fonts-dejavu-core"),
    "DejaVu Sans Mono": ("dejavu", "DejaVuSansMono.ttf", "fonts-dejavu-core"),
    "Liberation Sans": ("liberation", "LiberationSans-Regular.ttf", "fonts-liberation"),
    "Liberation Sans Narrow": ("liberation", "LiberationSansNarrow-Regular.ttf", "fonts-liberation"),
    "Liberation Mono": ("liberation", "LiberationMono-Regular.ttf", "fonts-liberation"),
    "FreeSans": ("freefont", "FreeSans.ttf", "fonts-freefont-ttf"),
    "FreeMono": ("freefont", "FreeMono.ttf", "fonts-freefont-ttf"),
}
#: Optional fonts and the font drawn instead where they are not installed.
FONT_FALLBACKS = {"Liberation Sans Narrow": "Liberation Sans"}
FONT_DIRS = (Path("/usr/share/fonts/truetype"), Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))

#: Smallest image the layouts fit into, in px.
MIN_WIDTH, MIN_HEIGHT = 64, 48

Box = tuple[int, int, int, int]
_T = TypeVar("_T")

_SCALE_CUMULATIVE = np.cumsum([weight for *_, weight in SCALE_CHOICES]) / sum(w for *_, w in SCALE_CHOICES)
_LAYOUT_CUMULATIVE = np.cumsum(list(LAYOUT_SHARES.values())) / sum(LAYOUT_SHARES.values())
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_FIRST_DAY = datetime.date(2008, 1, 1).toordinal()
_LAST_DAY = datetime.date(2020, 12, 31).toordinal()
_HV_KV = (0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0)
_SMALLEST_FONT = 6


class MissingFontError(RuntimeError):
    """A font the demo data bars are drawn in is not installed; the message names its Debian package."""


def _find_font_file(name: str) -> Path | None:
    folder, file_name, _package = FONTS[name]
    direct = FONT_DIRS[0] / folder / file_name
    if direct.is_file():
        return direct
    for root in FONT_DIRS[1:]:
        if root.is_dir():
            found = next(iter(sorted(root.rglob(file_name))), None)
            if found is not None:
                return found
    return None


@cache
def font_file(name: str) -> Path:
    """Path of the font file of ``name`` (a key of :data:`FONTS`); :class:`MissingFontError` when absent."""
    path = _find_font_file(name)
    if path is None:
        folder, file_name, package = FONTS[name]
        raise MissingFontError(
            f"font {name!r} ({file_name}) is not installed under {FONT_DIRS[0] / folder}: "
            f"install the Debian package {package} (sudo apt-get install {package}, or run scripts/setup.sh)"
        )
    return path


@cache
def drawn_font(name: str) -> str:
    """The font actually drawn for ``name``: itself, or its fallback when an optional font is missing."""
    if name in FONT_FALLBACKS and _find_font_file(name) is None:
        return FONT_FALLBACKS[name]
    font_file(name)
    return name


def require_fonts() -> None:
    """Raise :class:`MissingFontError` (one line naming the Debian package) unless every required font is there."""
    for name in FONTS:
        drawn_font(name)


@dataclass(frozen=True)
class TextCell:
    """One piece of text in the stripe: ``text`` with its top-left corner (ascender line) at ``(x, y)``.

    ``x`` and ``y`` are in px, stripe coordinates.
    """

    text: str
    x: int
    y: int


@dataclass(frozen=True)
class BarGraphic:
    """The scale segment as drawn, in stripe coordinates (px); its ink covers columns ``x0 .. x1 - 1``.

    ``style`` is ``line`` (a stroke; on Helios bars with small ``caps``, one
    ``tick_width`` in from each end, as its rounded ends),
    ``bracket`` (a stroke with an end tick at each end), ``ruler`` (a stroke
    with ``ticks`` evenly spaced ticks, the first and last at its ends) or
    ``rectangle`` (a filled box, rows ``tick_top .. tick_bottom - 1``).
    ``y`` is the middle row of the stroke (of the box), ``thickness`` the
    stroke's rows, ``tick_width`` the columns of each tick or cap and
    ``tick_top .. tick_bottom - 1`` their rows.  ``gap`` is the column range
    ``[g0, g1)`` left blank for a label drawn inside the bar.
    """

    style: str
    x0: int
    x1: int
    y: int
    thickness: int
    tick_width: int
    tick_top: int
    tick_bottom: int
    ticks: int = 0
    caps: bool = False
    gap: tuple[int, int] | None = None

    @property
    def stroke_top(self) -> int:
        """First row of the horizontal stroke."""
        return self.y - self.thickness // 2

    @property
    def measured_ends(self) -> tuple[float, float]:
        """The two ends the length is measured between (continuous px), by the module's convention."""
        if self.style in ("bracket", "ruler"):
            return self.x0 + self.tick_width / 2, self.x1 - self.tick_width / 2
        if self.style == "line" and self.caps:
            return self.x0 + 1.5 * self.tick_width, self.x1 - 1.5 * self.tick_width
        return float(self.x0), float(self.x1)

    @property
    def length_px(self) -> int:
        """The measured length in px (an integer by construction)."""
        start, end = self.measured_ends
        return round(end - start)

    @property
    def ink_box(self) -> Box:
        """``(x0, y0, x1, y1)`` of every pixel the graphic may ink, ends exclusive."""
        if self.style == "rectangle":
            return self.x0, self.tick_top, self.x1, self.tick_bottom
        top, bottom = self.stroke_top, self.stroke_top + self.thickness
        if self.style != "line" or self.caps:
            top, bottom = min(top, self.tick_top), max(bottom, self.tick_bottom)
        return self.x0, top, self.x1, bottom

    def tick_columns(self) -> list[int]:
        """First column of each tick (bracket, ruler) or end cap (line with caps)."""
        if self.style == "line" and self.caps:
            return [self.x0 + self.tick_width, self.x1 - 2 * self.tick_width]
        if self.style == "bracket":
            return [self.x0, self.x1 - self.tick_width]
        if self.style != "ruler":
            return []
        start, end = self.measured_ends
        step = (end - start) / (self.ticks - 1)
        return [round(start + index * step - self.tick_width / 2) for index in range(self.ticks)]


def _bar(
    style: str,
    start: int,
    length: int,
    y: int,
    thickness: int,
    tick_width: int,
    tick_top: int,
    tick_height: int,
    **extra: Any,
) -> BarGraphic:
    """A :class:`BarGraphic` whose measured length is ``length`` px, its ink starting at column ``start``."""
    if style in ("bracket", "ruler"):
        outer = length + tick_width
    elif style == "line" and extra.get("caps"):
        outer = length + 3 * tick_width
    else:
        outer = length
    return BarGraphic(style, start, start + outer, y, thickness, tick_width, tick_top, tick_top + tick_height, **extra)


@dataclass(frozen=True)
class DataBarSpec:
    """Everything random about one data bar; :func:`burn_data_bar` only draws it.

    Lengths are in px; positions are in stripe coordinates (origin at the
    stripe's top-left corner).  ``width`` x ``height`` is the size of the
    *whole* image, stripe included; the specimen area is ``width`` x
    :attr:`specimen_height`.  ``position`` is ``bottom`` (stripe under a
    textured specimen), ``overlay`` (the last ``flat_rows`` rows of the
    specimen are flat at ``flat_grey``) or ``none`` (no stripe).
    ``field_cells`` are every printed text but the scale label;
    ``field_text`` is the one printing the field width (``''`` if none) and
    ``field_nm`` the width it prints, in nm.  ``rules`` are the frame and
    grid lines (filled boxes in the text colour), ``icons`` small drawn
    symbols (``('atom', box)``, ``('quad', box)``).
    """

    width: int
    height: int
    layout: str
    font: str
    scale_value: float
    scale_unit: str  # canonical: 'mm', 'µm' or 'nm'
    micro_text: str  # how 'µm' is written on this bar: 'µm' or 'um'
    bar_px: int
    position: str
    stripe_height: int
    polarity: str  # 'dark' (dark stripe, light text) or 'light'
    stripe_grey: int
    text_grey: int
    font_size: int
    antialiased: bool
    bar: BarGraphic
    label_position: str
    label: TextCell
    field_cells: tuple[TextCell, ...]
    field_text: str
    field_nm: float | None
    rules: tuple[Box, ...]
    icons: tuple[tuple[str, Box], ...]
    flat_rows: int
    flat_grey: int
    hv_kv: float
    wd_mm: float
    detector: str
    acquired: datetime.datetime

    @property
    def nm_per_px(self) -> float:
        """Pixel size in nm: the scale value in nm divided by the segment length in px."""
        return self.scale_value * NM_PER_UNIT[self.scale_unit] / self.bar_px

    @property
    def hfw_nm(self) -> float:
        """Horizontal field width in nm: image width (px) times the pixel size (nm)."""
        return self.width * self.nm_per_px

    @property
    def magnification(self) -> float:
        """The layout's magnification: its reference display width (:data:`REFERENCE_WIDTH_MM`) over the field."""
        return REFERENCE_WIDTH_MM[self.layout] * 1e6 / self.hfw_nm

    @property
    def has_stripe(self) -> bool:
        return self.position != "none"

    @property
    def specimen_height(self) -> int:
        """Height in px of the specimen area above the stripe (the whole height when there is no stripe)."""
        return self.height - self.stripe_height if self.has_stripe else self.height

    @property
    def label_text(self) -> str:
        return self.label.text

    @property
    def segment_style(self) -> str:
        return self.bar.style


@dataclass(frozen=True)
class DataBarTruth:
    """What :func:`burn_data_bar` drew, in full-image pixel coordinates.

    Boxes are ``(x0, y0, x1, y1)`` in px with exclusive ends.
    ``segment`` is ``(x0, x1, y)``: the two ends the scale is measured
    between, in continuous coordinates (column ``i`` covers ``[i, i + 1)``,
    so a tick centre may fall on ``.5``), with ``x1 - x0 == bar_px``, and
    ``y`` the middle row of the bar's stroke (of the box, for a filled bar).
    The ends follow the measuring convention: a bracketed or ticked bar
    between the centres of its end ticks; a filled bar between its outer
    edges; a line, interrupted by its label or not, from end to end (a
    capped line between the centres of its caps); a ruler from its first to
    its last tick.  ``segment_box`` holds all of the
    segment's ink, ``label_box`` the label's, ``field_box`` the ink of the
    text printing the field width; ``other_boxes`` every other drawn thing
    (field texts, frame and grid lines, icons), so that all ink of the stripe
    lies in these boxes.

    ``value``/``unit``/``bar_px``/``nm_per_px`` are the image's true scale
    even when ``has_stripe`` is false; the boxes and ``segment`` are then
    ``None`` (``other_boxes`` empty) because nothing was drawn.
    """

    value: float
    unit: str
    bar_px: int
    nm_per_px: float
    has_stripe: bool
    stripe_box: Box | None
    segment: tuple[float, float, int] | None
    style: str
    label_position: str
    label_text: str
    label_box: Box | None
    layout: str = "none"
    font: str = ""
    segment_box: Box | None = None
    field_text: str = ""
    field_nm: float | None = None
    field_box: Box | None = None
    other_boxes: tuple[Box, ...] = ()


# --- fonts and text ------------------------------------------------------------------------------------------


@cache
def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font_file(name)), size)


@cache
def _advance(name: str, size: int, character: str) -> float:
    return float(_font(name, size).getlength(character))


@cache
def _cap_ratio(name: str) -> float:
    """Ink height of the digits and a capital (``0123456789H``) over the font size: the print height of a label."""
    _x0, top, _x1, bottom = _font(name, 200).getbbox("0123456789H", anchor="ls")
    return (bottom - top) / 200


@dataclass(frozen=True)
class _Type:
    """One font at one size, with what the layouts need of its metrics (px)."""

    font: str
    size: int
    ascent: int
    descent: int
    cap: int

    def width(self, text: str) -> int:
        """Advance width of ``text``: the sum of its characters' advances (the basic layout does no kerning)."""
        return math.ceil(sum(_advance(self.font, self.size, character) for character in text))

    @property
    def height(self) -> int:
        """From the top of a capital to the bottom of a descender."""
        return self.cap + self.descent

    def cell(self, text: str, x: int, cap_top: int) -> TextCell:
        """``text`` at ``x`` with its capitals' top on row ``cap_top``."""
        return TextCell(text, x, cap_top - (self.ascent - self.cap))


@cache
def _type(font: str, size: int) -> _Type:
    ascent, descent = _font(font, size).getmetrics()
    return _Type(font, size, int(ascent), int(descent), max(1, round(_cap_ratio(font) * size)))


def _size_for_cap(font: str, cap_px: float) -> int:
    return max(_SMALLEST_FONT, round(cap_px / _cap_ratio(font)))


def _fit(build: Callable[[int], _T | None], size: int) -> _T:
    """``build`` at the largest font size from ``size`` down that fits (returns non-None)."""
    for candidate in range(size, _SMALLEST_FONT - 1, -1):
        result = build(candidate)
        if result is not None:
            return result
    raise ValueError("the data bar does not fit into the image; use an image at least 64 px wide")


# --- numbers as the vendors print them -----------------------------------------------------------------------


def _fixed(value: float, digits: int) -> str:
    """``value`` with ``digits`` significant digits, written without exponent (``2.98``, ``556.0``, ``120``)."""
    rounded = float(f"{value:.{digits}g}")
    decimals = max(0, digits - 1 - math.floor(math.log10(rounded))) if rounded > 0 else 0
    return f"{rounded:.{decimals}f}"


def format_length(nm: float, digits: int, micro_text: str = "µm") -> tuple[str, float]:
    """A length as instruments print it, and the nm that text states.

    ``nm`` is written in the largest of mm, µm (as ``micro_text``) and nm that
    it reaches, with ``digits`` significant digits:

    >>> format_length(556.04, 4)
    ('556.0 nm', 556.0)
    >>> format_length(2_976_400, 3, "um")
    ('2.98 mm', 2980000.0)
    >>> format_length(999.97, 4)
    ('1.000 µm', 1000.0)
    """
    rounded_nm = float(f"{nm:.{digits}g}")
    unit, factor = next(
        ((unit, factor) for unit, factor in (("mm", 1e6), (micro_text, 1e3)) if rounded_nm >= factor), ("nm", 1.0)
    )
    number = _fixed(rounded_nm / factor, digits)
    return f"{number} {unit}", float(number) * factor


def _value_text(value: float) -> str:
    return f"{value:g}"


def _spaced_thousands(value: float) -> str:
    return f"{round(value):,}".replace(",", " ")


def _three_digits(value: float) -> float:
    return float(f"{value:.3g}")


# --- random numbers ------------------------------------------------------------------------------------------


class _Draws:
    """Uniform numbers drawn from ``rng`` in batches and handed out one by one.

    One vectorised call instead of dozens of scalar ones keeps a spec draw
    well under a millisecond (numpy's per-call overhead dominates otherwise).
    """

    _BATCH = 64

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._values: list[float] = []

    def uniform(self, low: float = 0.0, high: float = 1.0) -> float:
        if not self._values:
            self._values = self._rng.random(self._BATCH).tolist()[::-1]
        return low + (high - low) * self._values.pop()

    def chance(self, probability: float) -> bool:
        return self.uniform() < probability

    def integer(self, low: int, high: int) -> int:
        """An integer in ``low .. high - 1``."""
        return min(low + int(self.uniform() * (high - low)), high - 1)

    def pick(self, choices: tuple[_T, ...]) -> _T:
        return choices[self.integer(0, len(choices))]

    def weighted_index(self, cumulative: np.ndarray) -> int:
        """An index drawn with the probabilities whose running sum is ``cumulative``."""
        return min(int(np.searchsorted(cumulative, self.uniform(), side="right")), len(cumulative) - 1)


@dataclass(frozen=True)
class _Common:
    """What every layout draws the same way."""

    width: int
    height: int
    layout: str
    font: str
    value: float
    unit: str
    micro_text: str
    hv_kv: float
    wd_mm: float
    acquired: datetime.datetime
    cap_fraction: float  # of the width, before fitting

    @property
    def unit_text(self) -> str:
        """The unit as this bar writes it (``um`` or ``µm`` for micrometres)."""
        return self.micro_text if self.unit == "µm" else self.unit

    def field_nm(self, bar_px: int) -> float:
        return self.width * self.value * NM_PER_UNIT[self.unit] / bar_px

    def magnification(self, bar_px: int) -> float:
        return REFERENCE_WIDTH_MM[self.layout] * 1e6 / self.field_nm(bar_px)

    def start_size(self) -> int:
        return _size_for_cap(self.font, self.cap_fraction * self.width)

    def max_stripe(self) -> int:
        return max(1, round(0.15 * self.height))


@dataclass(frozen=True)
class _Stripe:
    """One layout's drawing, before the choices common to all layouts are added."""

    stripe_height: int
    polarity: str
    stripe_grey: int
    text_grey: int
    font_size: int
    bar: BarGraphic
    label_position: str
    label: TextCell
    field_cells: tuple[TextCell, ...] = ()
    field_text: str = ""
    field_nm: float | None = None
    rules: tuple[Box, ...] = ()
    icons: tuple[tuple[str, Box], ...] = ()
    detector: str = ""
    framed: bool = False  # a line along the stripe's top edge: it shows where the stripe starts over any picture


def _greys(draw: _Draws, polarity: str, light_floor: int = 215) -> tuple[int, int]:
    """``(stripe_grey, text_grey)`` for a ``dark`` or ``light`` stripe."""
    dark, light = draw.integer(0, 36), draw.integer(light_floor, 256)
    return (dark, light) if polarity == "dark" else (light, dark)


def _scaled(pixels_at_1024: float, width: int) -> int:
    """A line width given for a 1024 px wide image, scaled to ``width`` (at least 1 px)."""
    return max(1, round(pixels_at_1024 * width / 1024))


def _columns_width(kind: _Type, columns: list[tuple[str, ...]]) -> list[int]:
    return [max(kind.width(text) for text in column) for column in columns]


def _spread(start: int, stop: int, widths: list[int], spacing: int, most: int) -> list[int] | None:
    """Left x of items of ``widths`` laid out from ``start``, spacing spread up to ``most``; None if past ``stop``."""
    used = sum(widths) + spacing * (len(widths) - 1)
    if start + used > stop:
        return None
    extra = 0 if len(widths) < 2 else min(most - spacing, (stop - start - used) // (len(widths) - 1))
    positions, x = [], start
    for width in widths:
        positions.append(x)
        x += width + spacing + max(0, extra)
    return positions


def _band_top(row: tuple[int, int], kind: _Type) -> int:
    """Cap top of text centred (capital top to descender bottom) in the rows ``row[0] .. row[1] - 1``."""
    return row[0] + (row[1] - row[0] - kind.height) // 2


# --- Zeiss SmartSEM ------------------------------------------------------------------------------------------


def format_zeiss_magnification(magnification: float) -> str:
    """Magnification as Zeiss SmartSEM prints it.

    >>> format_zeiss_magnification(500_000), format_zeiss_magnification(104.4)
    ('500.00 K X', '104 X')
    """
    if magnification >= 1e6:
        return f"{magnification / 1e6:.2f} M X"
    if magnification >= 1e3:
        return f"{magnification / 1e3:.2f} K X"
    return f"{_three_digits(magnification):.0f} X"


def _zeiss(draw: _Draws, common: _Common, framed: bool) -> _Stripe:
    """Zeiss SmartSEM: light stripe (``framed``: border and cell lines), bracket under its label, field columns."""
    width, height = common.width, common.height
    border = _scaled(draw.uniform(1.0, 2.4), width) if framed else 0
    cell_lines = framed and draw.chance(0.6)
    stroke = _scaled(draw.uniform(1.0, 2.4), width)
    tick_scale = draw.uniform(1.2, 2.0)
    stripe_fraction = draw.uniform(0.07, 0.12)
    bar_px = max(16, round(draw.uniform(0.03, 0.15) * width))
    margin_em = draw.uniform(0.5, 1.2)
    label_indent = draw.uniform(0.0, 0.3)
    polarity = "light"
    stripe_grey, text_grey = (draw.integer(240, 256), draw.integer(0, 26)) if framed else _greys(draw, polarity, 200)
    detector = draw.pick(("InLens", "SE2", "HE-SE2", "ESB", "AsB", "BSD"))
    field_text, field_nm = format_length(common.field_nm(bar_px), 4, common.micro_text)
    acquired = common.acquired
    texts = {
        "Width": f"Width = {field_text}",
        "Mag": f"Mag = {format_zeiss_magnification(common.magnification(bar_px))}",
        "EHT": f"EHT = {common.hv_kv:.2f} kV",
        "WD": f"WD = {common.wd_mm:.1f} mm",
        "Signal": f"Signal A = {detector}",
        "Date": f"Date :{acquired.day} {_MONTHS[acquired.month - 1]} {acquired.year}",
        "Time": f"Time :{acquired.hour}:{acquired.minute:02d}:{acquired.second:02d}",
        "Brightness": f"Brightness = {draw.uniform(30, 60):.1f} %",
        "Contrast": f"Contrast = {draw.uniform(20, 40):.1f} %",
    }
    shares = (0.75, 0.9, 0.9, 0.85, 0.7, 0.5, 0.3, 0.3, 0.3)
    chosen = [name for name, share in zip(texts, shares, strict=True) if draw.chance(share)]
    # SmartSEM's data zone is configured by its user: the fields come in any order, two to a column.
    order = sorted(chosen, key=lambda _name: draw.uniform()) if draw.chance(0.7) else chosen[2:] + chosen[:2]
    label_text = f"{_value_text(common.value)} {common.unit_text}"

    def build(size: int) -> _Stripe | None:
        kind = _type(common.font, size)
        gap = max(2, round(0.35 * kind.cap))
        tick_height = max(4, round(tick_scale * kind.cap))
        pad = max(2, size // 4)
        bracket_top = kind.height + gap
        bracket_centre = bracket_top + tick_height // 2
        second_row = bracket_centre - kind.cap // 2
        content = max(bracket_top + tick_height, second_row + kind.height)
        needed = content + 2 * (pad + border)
        if needed > common.max_stripe() and size > _SMALLEST_FONT:
            return None
        stripe_height = max(needed, min(common.max_stripe(), round(stripe_fraction * height)))
        top = (stripe_height - content) // 2
        left = border + max(2, round(margin_em * size))
        label_width = kind.width(label_text)
        indent = round(label_indent * size)
        cell_width = max(bar_px + stroke, indent + label_width)
        if left + cell_width + border + 2 > width:
            return None
        bar = _bar(
            "bracket",
            left,
            bar_px,
            top + bracket_centre,
            stroke,
            stroke,
            top + bracket_top,
            tick_height,
            ticks=2,
        )
        label = kind.cell(label_text, left + indent, top)
        spacing = size
        stop = width - border - max(2, round(margin_em * size))
        start = left + cell_width + spacing
        placed = list(order)
        positions = None
        while placed and positions is None:
            columns = [tuple(texts[name] for name in placed[i : i + 2]) for i in range(0, len(placed), 2)]
            positions = _spread(start, stop, _columns_width(kind, columns), spacing, 6 * size)
            if positions is None:
                placed.remove(next(name for name in reversed(texts) if name in placed))  # least wanted first
        columns = [tuple(texts[name] for name in placed[i : i + 2]) for i in range(0, len(placed), 2)]
        cells = [
            kind.cell(text, x, top + (0 if row == 0 else second_row))
            for column, x in zip(columns, positions or [], strict=True)
            for row, text in enumerate(column)
        ]
        rules: list[Box] = []
        if border:
            rules += [
                (0, 0, width, border),
                (0, stripe_height - border, width, stripe_height),
                (0, 0, border, stripe_height),
                (width - border, 0, width, stripe_height),
            ]
        if cell_lines and positions:
            edges = [left + cell_width, *(x + w for x, w in zip(positions, _columns_width(kind, columns), strict=True))]
            for edge, x in zip(edges, positions, strict=False):
                line_x = (edge + x) // 2
                rules.append((line_x, 0, line_x + border, stripe_height))
        printed = texts["Width"]
        shown = "Width" in placed
        return _Stripe(
            stripe_height=stripe_height,
            polarity=polarity,
            stripe_grey=stripe_grey,
            text_grey=text_grey,
            font_size=size,
            bar=bar,
            label_position="above",
            label=label,
            field_cells=tuple(cells),
            field_text=printed if shown else "",
            field_nm=field_nm if shown else None,
            rules=tuple(rules),
            detector=detector,
            framed=bool(border),
        )

    return _fit(build, common.start_size())


# --- Thermo Fisher / FEI -------------------------------------------------------------------------------------

#: Thermo Fisher cells in display order, with the share of bars that show each.
_THERMO_FIELDS = (
    ("HV", 0.95),
    ("curr", 0.7),
    ("mag", 0.9),
    ("HFW", 0.85),
    ("mode", 0.6),
    ("det", 0.9),
    ("WD", 0.9),
    ("date", 0.15),
)
#: The cells dropped first when the stripe is too narrow.
_THERMO_DROP_ORDER = ("date", "curr", "mode", "WD", "det", "HV", "mag", "HFW")


def _thermo(draw: _Draws, common: _Common) -> _Stripe:
    """Thermo Fisher / FEI: black table of header/value cells, the bar in the last cell (label inside, or above)."""
    width, height = common.width, common.height
    grid = _scaled(draw.uniform(1.0, 1.6), width)
    stripe_fraction = draw.uniform(0.05, 0.08)
    filled = draw.chance(0.35)
    logo = draw.chance(0.7)
    bar_fraction = draw.uniform(0.14, 0.3)
    stroke_share = draw.uniform(0.25, 0.4)
    box_share = draw.uniform(0.35, 0.6)
    caps = draw.chance(0.6)
    detector = draw.pick(("ETD", "TLD", "CBS", "ICE", "ABS", "T1", "T2"))
    mode = draw.pick(("SE", "SE", "BSE"))
    current = draw.pick(("0.10 nA", "6.3 pA", "25 pA", "0.20 nA", "1.6 nA", "50 pA", "13 nA"))
    user_text = draw.pick(("Helios E-Beam", "Quanta FEG", "Nova NanoSEM", "sample A3", "wafer 7", ""))
    stripe_grey, text_grey = _greys(draw, "dark")
    wanted = [name for name, share in _THERMO_FIELDS if draw.chance(share)]
    acquired = common.acquired
    fixed_values = {
        "HV": f"{common.hv_kv:.2f} kV",
        "curr": current,
        "mode": mode,
        "det": detector,
        "WD": f"{common.wd_mm:.1f} mm",
        "date": f"{acquired.month}/{acquired.day}/{acquired.year}",
    }
    label_text = f"{_value_text(common.value)} {common.unit_text}"

    def build(size: int) -> _Stripe | None:
        kind = _type(common.font, size)
        pad_y, pad_x = max(1, round(0.2 * kind.cap)), max(2, round(0.45 * kind.cap))
        row_height = kind.height + 2 * pad_y
        needed = 3 * grid + 2 * row_height
        if needed > common.max_stripe() and size > _SMALLEST_FONT:
            return None
        stripe_height = max(needed, min(common.max_stripe(), round(stripe_fraction * height)))
        first_row = (stripe_height - 3 * grid) // 2
        rows = ((grid, grid + first_row), (2 * grid + first_row, stripe_height - grid))
        label_width = kind.width(label_text)
        gap = max(2, round(0.5 * kind.cap))
        smallest_bar = label_width + 2 * gap + 2 * max(6, size) if not filled else 16
        bar_px = max(smallest_bar, round(bar_fraction * width))
        bar_cell = max(bar_px, label_width) + 2 * pad_x
        hfw_text, hfw_nm = format_length(common.field_nm(bar_px), 3, common.micro_text)
        magnification = _spaced_thousands(_three_digits(common.magnification(bar_px)))
        values = {**fixed_values, "mag": f"{magnification} x", "HFW": hfw_text}

        def header_width(name: str) -> int:
            return kind.width(name) + (kind.width(" ") + kind.cap if name == "mag" else 0)

        def cell_width(name: str) -> int:
            return max(header_width(name), kind.width(values[name])) + 2 * pad_x

        logo_width = stripe_height - 2 * grid + 2 * pad_x

        def used(names: list[str]) -> int:
            return (logo_width + grid if logo and names else 0) + sum(cell_width(name) + grid for name in names)

        shown = list(wanted)
        while shown and used(shown) + bar_cell > width:
            shown.remove(next(name for name in _THERMO_DROP_ORDER if name in shown))
        if used(shown) + bar_cell > width:
            return None

        rules: list[Box] = [(0, 0, width, grid), (0, stripe_height - grid, width, stripe_height)]
        icons: list[tuple[str, Box]] = []
        cells: list[TextCell] = []
        x = 0
        if logo and shown:
            side = stripe_height - 2 * grid - 2 * pad_y
            left, top = (logo_width - side) // 2, (stripe_height - side) // 2
            icons.append(("atom", (left, top, left + side, top + side)))
            rules.append((logo_width, 0, logo_width + grid, stripe_height))
            x = logo_width + grid
        header_top, value_top = _band_top(rows[0], kind), _band_top(rows[1], kind)
        for name in shown:
            inner = cell_width(name)
            header_x = x + (inner - header_width(name)) // 2
            cells.append(kind.cell(name, header_x, header_top))
            if name == "mag":
                icon_x = header_x + kind.width("mag ")
                icons.append(("quad", (icon_x, header_top, icon_x + kind.cap, header_top + kind.cap)))
            cells.append(kind.cell(values[name], x + (inner - kind.width(values[name])) // 2, value_top))
            x += inner
            rules.append((x, 0, x + grid, stripe_height))
            x += grid

        bar_x0 = x + (width - x - bar_px) // 2
        label_x = bar_x0 + (bar_px - label_width) // 2
        label = kind.cell(label_text, label_x, header_top)
        if filled:
            box_height = max(3, round(box_share * kind.cap))
            box_top = (rows[1][0] + rows[1][1]) // 2 - box_height // 2
            bar = _bar("rectangle", bar_x0, bar_px, box_top + (box_height - 1) // 2, box_height, 0, box_top, box_height)
        else:
            thickness = max(1, round(stroke_share * kind.cap))
            cap_width = max(1, thickness // 3)  # Helios at 512 px: a 3 px stroke, 1 px bumps 1 px in from the ends
            cap_height = thickness + 2 * cap_width if caps else 0
            y = header_top + kind.cap // 2
            bar = _bar(
                "line",
                bar_x0,
                bar_px,
                y,
                thickness,
                cap_width if caps else 0,
                y - cap_height // 2,
                cap_height,
                caps=caps,
                gap=(label_x - gap, label_x + label_width + gap),
            )
            rules.append((x, rows[0][1], width, rows[0][1] + grid))
            if user_text and kind.width(user_text) <= width - x - 2 * pad_x:
                cells.append(kind.cell(user_text, x + (width - x - kind.width(user_text)) // 2, value_top))
        hfw_shown = "HFW" in shown
        return _Stripe(
            stripe_height=stripe_height,
            polarity="dark",
            stripe_grey=stripe_grey,
            text_grey=text_grey,
            font_size=size,
            bar=bar,
            label_position="above" if filled else "inside",
            label=label,
            field_cells=tuple(cells),
            field_text=hfw_text if hfw_shown else "",
            field_nm=hfw_nm if hfw_shown else None,
            rules=tuple(rules),
            icons=tuple(icons),
            detector=detector,
            framed=True,
        )

    return _fit(build, common.start_size())


# --- JEOL ----------------------------------------------------------------------------------------------------


def _jeol(draw: _Draws, common: _Common) -> _Stripe:
    """JEOL: one row on a dark stripe, the value written left of a bar with small end ticks."""
    width, height = common.width, common.height
    stripe_fraction = draw.uniform(0.05, 0.08)
    bar_px = max(16, round(draw.uniform(0.06, 0.16) * width))
    stroke = _scaled(draw.uniform(1.0, 2.4), width)
    tick_share = draw.uniform(0.5, 0.9)
    ticks_up = draw.chance(0.5)
    label_gap = draw.uniform(0.3, 0.8)
    detector = draw.pick(("SEI", "SEI", "LEI", "COMPO", "BEC"))
    label_text = f"{_value_text(common.value)}{' ' if draw.chance(0.3) else ''}{common.unit_text}"
    hv_kv = common.hv_kv
    magnification = f"X{round(_three_digits(common.magnification(bar_px))):,}"
    wd_text = f"WD {common.wd_mm:.0f}mm" if draw.chance(0.5) else f"WD{common.wd_mm:.1f}mm"
    photo = f"{draw.integer(0, 10000):04d}" if draw.chance(0.5) else ""
    tag = draw.pick(("NTU", "SEM", "JSM-6700F", "", ""))
    stripe_grey, text_grey = _greys(draw, "dark")
    scale_block = "\0"  # stands for the label and its bar among the texts
    items = [detector, f"{hv_kv:.1f}kV" if hv_kv < 10 else f"{hv_kv:.0f}kV", magnification, scale_block, wd_text]
    items += [text for text in (photo, tag) if text]
    drop_order = [tag, photo, detector, wd_text, items[1], magnification]

    def build(size: int) -> _Stripe | None:
        kind = _type(common.font, size)
        pad = max(2, size // 4)
        tick_height = max(3, round(tick_share * kind.cap))
        content = max(kind.height, tick_height + kind.descent)
        needed = content + 2 * pad
        if needed > common.max_stripe() and size > _SMALLEST_FONT:
            return None
        stripe_height = max(needed, min(common.max_stripe(), round(stripe_fraction * height)))
        cap_top = (stripe_height - kind.height) // 2
        label_width = kind.width(label_text)
        gap = max(2, round(label_gap * size))
        block_width = label_width + gap + bar_px + stroke
        margin = max(3, round(0.015 * width))
        shown = list(items)
        positions = None
        while positions is None:
            widths = [block_width if text == scale_block else kind.width(text) for text in shown]
            positions = _spread(margin, width - margin, widths, size, 5 * size)
            if positions is None:
                if len(shown) == 1:
                    return None
                shown.remove(next(text for text in drop_order if text in shown))
        cells = [kind.cell(text, x, cap_top) for text, x in zip(shown, positions, strict=True) if text != scale_block]
        block_x = positions[shown.index(scale_block)]
        y = cap_top + kind.cap // 2
        stroke_bottom = y - stroke // 2 + stroke
        tick_top = stroke_bottom - tick_height if ticks_up else y - tick_height // 2
        bar = _bar("bracket", block_x + label_width + gap, bar_px, y, stroke, stroke, tick_top, tick_height, ticks=2)
        return _Stripe(
            stripe_height=stripe_height,
            polarity="dark",
            stripe_grey=stripe_grey,
            text_grey=text_grey,
            font_size=size,
            bar=bar,
            label_position="left",
            label=kind.cell(label_text, block_x, cap_top),
            field_cells=tuple(cells),
            detector=detector,
        )

    return _fit(build, common.start_size())


# --- Hitachi -------------------------------------------------------------------------------------------------


def _hitachi_magnification(magnification: float) -> str:
    if magnification >= 1000:
        return f"x{_fixed(magnification / 1000, 3)}k"
    return f"x{_fixed(magnification, 3)}"


def _hitachi(draw: _Draws, common: _Common) -> _Stripe:
    """Hitachi: instrument, kV, WD, magnification and detector, then a ruler with its length at its right."""
    width, height = common.width, common.height
    stripe_fraction = draw.uniform(0.05, 0.08)
    bar_fraction = draw.uniform(0.12, 0.3)
    ticks = draw.pick((10, 11))
    stroke = _scaled(draw.uniform(1.0, 2.0), width)
    tick_share = draw.uniform(0.35, 0.6)
    model = draw.pick(("S-4800", "S-4700", "SU8010", "SU8230", "SU70", "S-3400N"))
    detector = draw.pick(("SE(U)", "SE(L)", "SE(M)", "SE(U,LA0)", "BSE(U)"))
    acquired = common.acquired
    date = f"{acquired.month}/{acquired.day}/{acquired.year} {acquired.hour}:{acquired.minute:02d}"
    with_date = draw.chance(0.4)
    polarity = "dark" if draw.chance(0.85) else "light"
    stripe_grey, text_grey = _greys(draw, polarity)
    label_text = f"{_fixed(common.value, 3)}{common.unit_text}"

    def build(size: int) -> _Stripe | None:
        kind = _type(common.font, size)
        pad = max(2, size // 4)
        needed = kind.height + 2 * pad
        if needed > common.max_stripe() and size > _SMALLEST_FONT:
            return None
        stripe_height = max(needed, min(common.max_stripe(), round(stripe_fraction * height)))
        cap_top = (stripe_height - kind.height) // 2
        margin = max(3, round(0.015 * width))
        gap = max(2, size // 2)
        label_width = kind.width(label_text)
        room = width - 2 * margin - label_width - gap - stroke
        bar_px = min(max(3 * (ticks - 1), round(bar_fraction * width)), room)
        if bar_px < 3 * (ticks - 1):
            return None
        label_x = width - margin - label_width
        bar_x0 = label_x - gap - (bar_px + stroke)
        parts = [model, f"{common.hv_kv:.1f}kV", f"{common.wd_mm:.1f}mm"]
        parts += [_hitachi_magnification(common.magnification(bar_px)), detector] + ([date] if with_date else [])
        for drop in (date, detector, model, parts[2], parts[1], parts[3]):
            if margin + kind.width(" ".join(parts)) + 2 * size <= bar_x0:
                break
            if drop in parts:
                parts.remove(drop)
        info = " ".join(parts)
        fits = bool(parts) and margin + kind.width(info) + 2 * size <= bar_x0
        cells = [kind.cell(info, margin, cap_top)] if fits else []
        tick_height = max(3, round(tick_share * kind.cap))
        y = cap_top + kind.cap - stroke + stroke // 2  # the stroke's last row on the capitals' last row
        tick_top = y - stroke // 2 + stroke - tick_height
        bar = _bar("ruler", bar_x0, bar_px, y, stroke, stroke, tick_top, tick_height, ticks=ticks)
        return _Stripe(
            stripe_height=stripe_height,
            polarity=polarity,
            stripe_grey=stripe_grey,
            text_grey=text_grey,
            font_size=size,
            bar=bar,
            label_position="right",
            label=kind.cell(label_text, label_x, cap_top),
            field_cells=tuple(cells),
            detector=detector,
        )

    return _fit(build, common.start_size())


# --- Tescan --------------------------------------------------------------------------------------------------


def _tescan(draw: _Draws, common: _Common) -> _Stripe:
    """Tescan: light stripe of two-row columns (``View field``, ``SEM MAG``), a filled bar with its value beside it."""
    width, height = common.width, common.height
    stripe_fraction = draw.uniform(0.06, 0.1)
    bar_px = max(16, round(draw.uniform(0.08, 0.22) * width))
    label_left = draw.chance(0.3)
    box_share = draw.uniform(0.4, 0.8)
    framed = draw.chance(0.5)
    border = _scaled(draw.uniform(1.0, 1.8), width) if framed else 0
    brand = draw.pick(("MIRA3 TESCAN", "VEGA3 TESCAN", "MAIA3 TESCAN", ""))
    detector = draw.pick(("SE", "BSE", "InBeam", "In-Beam SE", "LVSTD"))
    stripe_grey, text_grey = _greys(draw, "light", 200)
    view_text, view_nm = format_length(common.field_nm(bar_px), 3, common.micro_text)
    magnification = common.magnification(bar_px)
    mag_text = f"{_fixed(magnification / 1000, 3)} kx" if magnification >= 1000 else f"{_fixed(magnification, 3)} x"
    view_cell = f"View field: {view_text}"
    columns: list[tuple[str, ...]] = [
        (f"SEM HV: {common.hv_kv:.1f} kV", f"WD: {common.wd_mm:.2f} mm"),
        (view_cell, f"Det: {detector}"),
        (f"SEM MAG: {mag_text}", f"Date(m/d/y): {common.acquired.strftime('%m/%d/%y')}"),
    ]
    if draw.chance(0.4):
        columns.append((f"Scan speed: {draw.integer(1, 10)}", draw.pick(("VAC: HiVac", "VAC: LoVac"))))
    drop_order = [columns[-1], columns[0], columns[2], columns[1]]  # the view field kept longest
    label_text = f"{_value_text(common.value)} {common.unit_text}"
    scale_block: tuple[str, ...] = ("\0",)  # stands for the label and its bar among the columns

    def build(size: int) -> _Stripe | None:
        kind = _type(common.font, size)
        pad, row_gap = max(2, size // 4), max(2, round(0.35 * kind.cap))
        content = 2 * kind.height + row_gap
        needed = content + 2 * (pad + border)
        if needed > common.max_stripe() and size > _SMALLEST_FONT:
            return None
        stripe_height = max(needed, min(common.max_stripe(), round(stripe_fraction * height)))
        top = (stripe_height - content) // 2
        rows = (top, top + kind.height + row_gap)
        label_width = kind.width(label_text)
        gap = max(2, size // 2)
        block_width = label_width + gap + bar_px
        margin = border + max(3, round(0.6 * size))
        items = [*columns, scale_block] + ([(brand,)] if brand else [])
        positions = None
        while positions is None:
            widths = [block_width if item == scale_block else max(map(kind.width, item)) for item in items]
            positions = _spread(margin, width - margin, widths, 2 * size, 5 * size)
            if positions is None:
                if len(items) == 1:
                    return None
                items.remove(next(item for item in [(brand,), *drop_order] if item in items))
        cells: list[TextCell] = []
        block_x = 0
        for item, x in zip(items, positions, strict=True):
            if item == scale_block:
                block_x = x
            elif len(item) == 1:
                cells.append(kind.cell(item[0], x, (stripe_height - kind.height) // 2))
            else:
                cells += [kind.cell(text, x, row) for text, row in zip(item, rows, strict=True)]
        cap_top = (stripe_height - kind.height) // 2
        box_height = max(3, round(box_share * kind.cap))
        box_top = cap_top + (kind.cap - box_height) // 2
        bar_x0 = block_x + label_width + gap if label_left else block_x
        label_x = block_x if label_left else block_x + bar_px + gap
        bar = _bar("rectangle", bar_x0, bar_px, box_top + (box_height - 1) // 2, box_height, 0, box_top, box_height)
        rules: list[Box] = []
        if border:
            rules += [
                (0, 0, width, border),
                (0, stripe_height - border, width, stripe_height),
                (0, 0, border, stripe_height),
                (width - border, 0, width, stripe_height),
            ]
            widths = [block_width if item == scale_block else max(map(kind.width, item)) for item in items]
            for (x, item_width), next_x in zip(zip(positions, widths, strict=True), positions[1:], strict=False):
                line_x = (x + item_width + next_x) // 2
                rules.append((line_x, 0, line_x + border, stripe_height))
        shown = any(cell.text == view_cell for cell in cells)
        return _Stripe(
            stripe_height=stripe_height,
            polarity="light",
            stripe_grey=stripe_grey,
            text_grey=text_grey,
            font_size=size,
            bar=bar,
            label_position="left" if label_left else "right",
            label=kind.cell(label_text, label_x, cap_top),
            field_cells=tuple(cells),
            field_text=view_cell if shown else "",
            field_nm=view_nm if shown else None,
            rules=tuple(rules),
            detector=detector,
            framed=bool(border),
        )

    return _fit(build, common.start_size())


# --- generic -------------------------------------------------------------------------------------------------

_GENERIC_LABEL_CUMULATIVE = np.cumsum([0.45, 0.12, 0.10, 0.18, 0.15])  # above, below, left, right, inside
_GENERIC_ANCHOR_CUMULATIVE = np.cumsum([0.60, 0.15, 0.25])  # left, middle, right
_GENERIC_TITLES = {
    "zeiss": {"HV": "EHT", "WD": "WD", "Mag": "Mag", "HFW": "Width", "Det": "Signal A", "Date": "Date", "Time": "Time"},
    "fei": {"HV": "HV", "WD": "WD", "Mag": "mag", "HFW": "HFW", "Det": "det", "Date": "date", "Time": "time"},
    "plain": {"HV": "HV", "WD": "WD", "Mag": "Mag", "HFW": "HFW", "Det": "Det", "Date": "Date", "Time": "Time"},
}


def _generic_magnification(magnification: float, vendor_style: str) -> str:
    if vendor_style == "fei":
        return f"{_spaced_thousands(magnification)} x"
    if magnification >= 1000:
        return f"{magnification / 1000:.2f} K X"
    return f"{magnification:.0f} X"


def _generic(draw: _Draws, common: _Common) -> _Stripe:
    """Layout-free: any segment style and label side, Zeiss, FEI or plain fields packed around the scale block."""
    width, height = common.width, common.height
    bar_fraction = draw.uniform(0.08, 0.35)
    polarity = "dark" if draw.chance(0.7) else "light"
    stripe_grey, text_grey = _greys(draw, polarity)
    top_rule = draw.chance(0.3)
    style = draw.pick(SEGMENT_STYLES)
    thickness_share, tick_share = draw.uniform(0.1, 0.25), draw.uniform(0.45, 0.8)
    ruler_ticks = draw.pick((3, 5, 6, 11))
    label_position = LABEL_POSITIONS[draw.weighted_index(_GENERIC_LABEL_CUMULATIVE)]
    anchor = ("left", "middle", "right")[draw.weighted_index(_GENERIC_ANCHOR_CUMULATIVE)]
    vendor_style = draw.pick(("zeiss", "fei", "plain"))
    label_text = f"{_value_text(common.value)}{' ' if draw.chance(0.8) else ''}{common.unit_text}"
    keep_share = draw.uniform(0.3, 1.0)
    field_names = [name for name in ("HV", "WD", "Mag", "HFW", "Det", "Date", "Time") if draw.chance(keep_share)]
    if draw.chance(0.3):
        field_names.sort(key=lambda _name: draw.uniform())
    detector = draw.pick(("InLens", "SE2", "ETD", "TLD", "BSD", "CBS", "ESB"))
    stripe_fraction = draw.uniform(0.05, 0.10)
    titles = _GENERIC_TITLES[vendor_style]
    acquired = common.acquired
    date = (
        f"{acquired.day} {_MONTHS[acquired.month - 1]} {acquired.year}"
        if vendor_style == "zeiss"
        else acquired.strftime("%d/%m/%Y")
    )

    def build(size: int) -> _Stripe | None:
        kind = _type(common.font, size)
        thickness = max(1, round(thickness_share * size))
        tick_height = max(3, round(tick_share * size))
        gap, pad = max(2, size // 4), max(2, size // 4)
        label_width = kind.width(label_text)
        tick_width = thickness if style in ("bracket", "ruler") else 0
        bar_px = max(16, round(bar_fraction * width))
        if label_position == "inside":
            bar_px = max(bar_px, label_width + 2 * gap + 2 * max(6, size) + 2 * tick_width)
        outer = bar_px + tick_width
        # As many ruler ticks as leave at least 3 blank columns between two ticks.
        ruler_ticks_fitting = next(
            t for t in (11, 6, 5, 3, 2) if t <= ruler_ticks and bar_px >= (t - 1) * (tick_width + 3)
        )
        graphic_height = thickness if style == "line" else tick_height
        if label_position in ("above", "below"):
            block_width, block_height = max(outer, label_width), kind.height + gap + graphic_height
        elif label_position in ("left", "right"):
            block_width, block_height = outer + gap + label_width, max(kind.height, graphic_height)
        else:
            block_width, block_height = outer, max(kind.height, graphic_height)
        rule = max(1, size // 12) if top_rule else 0
        fields_height = 2 * kind.height + gap if field_names else 0
        needed = max(block_height, fields_height) + 2 * pad + rule
        margin = max(3, round(0.015 * width))
        if (needed > common.max_stripe() and size > _SMALLEST_FONT) or block_width + 2 * margin > width:
            return None
        stripe_height = max(needed, min(common.max_stripe(), round(stripe_fraction * height)))
        block_x0 = {
            "left": margin,
            "right": width - margin - block_width,
            "middle": (width - block_width) // 2,
        }[anchor]
        block_y0 = rule + (stripe_height - rule - block_height) // 2
        segment_x0 = block_x0 + (block_width - outer) // 2
        label_x = segment_x0 + (outer - label_width) // 2
        label_top = block_y0 + (block_height - kind.height) // 2
        graphic_y0 = block_y0 + (block_height - graphic_height) // 2
        if label_position == "above":
            label_top, graphic_y0 = block_y0, block_y0 + kind.height + gap
        elif label_position == "below":
            label_top, graphic_y0 = block_y0 + graphic_height + gap, block_y0
        elif label_position == "left":
            label_x, segment_x0 = block_x0, block_x0 + label_width + gap
        elif label_position == "right":
            segment_x0, label_x = block_x0, block_x0 + outer + gap
        else:
            graphic_y0 = label_top + kind.cap // 2 - graphic_height // 2
        y = graphic_y0 + (graphic_height - 1) // 2 if style == "rectangle" else graphic_y0 + graphic_height // 2
        bar = _bar(
            style,
            segment_x0,
            bar_px,
            y,
            tick_height if style == "rectangle" else thickness,
            tick_width,
            graphic_y0,
            graphic_height,
            ticks={"bracket": 2, "ruler": ruler_ticks_fitting}.get(style, 0),
            gap=(label_x - gap, label_x + label_width + gap) if label_position == "inside" else None,
        )

        hfw_text, hfw_nm = format_length(common.field_nm(bar_px), 4, common.micro_text)
        values = {
            "HV": f"{common.hv_kv:.2f} kV",
            "WD": f"{common.wd_mm:.1f} mm",
            "Mag": _generic_magnification(common.magnification(bar_px), vendor_style),
            "HFW": hfw_text,
            "Det": detector,
            "Date": date,
            "Time": acquired.strftime("%H:%M:%S"),
        }
        names_per_column: list[tuple[str, ...]]
        columns: list[tuple[str, ...]]
        if vendor_style == "fei":
            names_per_column = [(name,) for name in field_names]
            columns = [(titles[name], values[name]) for name in field_names]
        else:
            separator = " = " if vendor_style == "zeiss" else ": "
            names_per_column = [tuple(field_names[i : i + 2]) for i in range(0, len(field_names), 2)]
            texts = {name: f"{titles[name]}{separator}{values[name]}" for name in field_names}
            columns = [tuple(texts[name] for name in names) for names in names_per_column]
        # Columns packed into the free space left and right of the block, each centred when alone.
        rows_y = (stripe_height + rule - fields_height) // 2
        cells: list[TextCell] = []
        field_text = ""
        intervals = [(margin, block_x0 - 2 * margin), (block_x0 + block_width + 2 * margin, width - margin)]
        column_index = 0
        for start, stop in intervals:
            chosen: list[int] = []
            used = 0
            while column_index < len(columns):
                column_width = max(kind.width(text) for text in columns[column_index])
                if used + column_width + (size if chosen else 0) > stop - start:
                    break
                used += column_width + (size if chosen else 0)
                chosen.append(column_index)
                column_index += 1
            if not chosen:
                continue
            spare = (stop - start) - used
            spacing = size + (spare // len(chosen) if len(chosen) > 1 else 0)
            x = start + (spare // 2 if len(chosen) == 1 else 0)
            for index in chosen:
                for row, text in enumerate(columns[index]):
                    cells.append(kind.cell(text, x, rows_y + row * (kind.height + gap)))
                if "HFW" in names_per_column[index]:
                    row = names_per_column[index].index("HFW")
                    field_text = columns[index][1] if vendor_style == "fei" else columns[index][row]
                x += max(kind.width(text) for text in columns[index]) + spacing
        return _Stripe(
            stripe_height=stripe_height,
            polarity=polarity,
            stripe_grey=stripe_grey,
            text_grey=text_grey,
            font_size=size,
            bar=bar,
            label_position=label_position,
            label=kind.cell(label_text, label_x, label_top),
            field_cells=tuple(cells),
            field_text=field_text,
            field_nm=hfw_nm if field_text else None,
            rules=((0, 0, width, rule),) if rule else (),
            detector=detector,
            framed=bool(rule),
        )

    return _fit(build, common.start_size())


# --- the spec and the drawing --------------------------------------------------------------------------------

_BUILDERS: dict[str, Callable[[_Draws, _Common], _Stripe]] = {
    "zeiss_framed": lambda draw, common: _zeiss(draw, common, framed=True),
    "zeiss_plain": lambda draw, common: _zeiss(draw, common, framed=False),
    "thermo_table": _thermo,
    "jeol": _jeol,
    "hitachi_ruler": _hitachi,
    "tescan": _tescan,
    "generic": _generic,
    "none": _generic,
}
#: Cap height range of each layout, as a fraction of the image width (7-12 px at 512 px wide for most).
_CAP_FRACTIONS = {
    "zeiss_framed": (0.0137, 0.0234),
    "zeiss_plain": (0.0137, 0.0234),
    "thermo_table": (0.0137, 0.0195),
    "jeol": (0.0137, 0.0234),
    "hitachi_ruler": (0.0137, 0.0234),
    "tescan": (0.0137, 0.0215),
    "generic": (0.0137, 0.0234),
    "none": (0.0137, 0.0234),
}


def random_data_bar_spec(rng: np.random.Generator, width: int, height: int, layout: str | None = None) -> DataBarSpec:
    """Draw a random, self-consistent data bar for a ``width`` x ``height`` px image (stripe included).

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of every random choice; the same generator state gives the same spec.
    width, height : int
        Size of the whole image in px, at least :data:`MIN_WIDTH` x :data:`MIN_HEIGHT`.
    layout : str, optional
        One of :data:`LAYOUTS`; drawn with :data:`LAYOUT_SHARES` when omitted.

    Returns
    -------
    DataBarSpec
        The scale follows :data:`SCALE_CHOICES`, the font :data:`FONTS`
        (uniformly), the layout its vendor (module docstring).  Raises
        :class:`MissingFontError` when the drawn font is not installed.
    """
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        raise ValueError(f"a data bar needs an image of at least {MIN_WIDTH} x {MIN_HEIGHT} px, got {width} x {height}")
    if layout is not None and layout not in LAYOUT_SHARES:
        raise ValueError(f"unknown layout {layout!r}; one of {', '.join(LAYOUTS)}")
    draw = _Draws(rng)
    chosen = layout or LAYOUTS[draw.weighted_index(_LAYOUT_CUMULATIVE)]
    value, unit, _weight = SCALE_CHOICES[draw.weighted_index(_SCALE_CUMULATIVE)]
    micro_text = "um" if chosen == "hitachi_ruler" or draw.chance(0.25) else "µm"
    font = drawn_font(draw.pick(tuple(FONTS)))
    antialiased = draw.chance(0.7)
    day = draw.integer(_FIRST_DAY, _LAST_DAY + 1)
    clock = datetime.time(draw.integer(7, 22), draw.integer(0, 60), draw.integer(0, 60))
    overlay, flat_share, flat_black, flat_mid = (
        draw.chance(OVERLAY_PROBABILITY),
        draw.uniform(0.1, 0.4),
        draw.chance(0.5),
        draw.integer(90, 161),
    )
    common = _Common(
        width=width,
        height=height,
        layout=chosen,
        font=font,
        value=value,
        unit=unit,
        micro_text=micro_text,
        hv_kv=draw.pick(_HV_KV),
        wd_mm=round(draw.uniform(2.0, 15.0), 1),
        acquired=datetime.datetime.combine(datetime.date.fromordinal(day), clock),
        cap_fraction=draw.uniform(*_CAP_FRACTIONS[chosen]),
    )
    stripe = _BUILDERS[chosen](draw, common)
    low, high = SEM_FIELD_WIDTH_NM
    for _redraw in range(MAX_SCALE_REDRAWS):
        if low <= common.field_nm(stripe.bar.length_px) <= high:
            break
        # The value is drawn before the bar's length; a 5 nm bar a fifth of a 2048-px frame wide is a 25 nm field.
        value, unit, _weight = SCALE_CHOICES[draw.weighted_index(_SCALE_CUMULATIVE)]
        common = replace(common, value=value, unit=unit)
        stripe = _BUILDERS[chosen](draw, common)
    else:
        raise RuntimeError(f"no scale of SCALE_CHOICES fits a {width}-px {chosen} bar within {SEM_FIELD_WIDTH_NM} nm")
    position = "none" if chosen == "none" else "overlay" if overlay else "bottom"
    flat_rows = round(flat_share * (height - stripe.stripe_height)) if position == "overlay" else 0
    # A black picture bottom only where a line along the stripe's top (or its contrast) still shows where it starts.
    black_allowed = stripe.framed or stripe.polarity == "light"
    return DataBarSpec(
        width=width,
        height=height,
        layout=chosen,
        font=font,
        scale_value=value,
        scale_unit=unit,
        micro_text=micro_text,
        bar_px=stripe.bar.length_px,
        position=position,
        stripe_height=stripe.stripe_height,
        polarity=stripe.polarity,
        stripe_grey=stripe.stripe_grey,
        text_grey=stripe.text_grey,
        font_size=stripe.font_size,
        antialiased=antialiased,
        bar=stripe.bar,
        label_position=stripe.label_position,
        label=stripe.label,
        field_cells=stripe.field_cells,
        field_text=stripe.field_text,
        field_nm=stripe.field_nm,
        rules=stripe.rules,
        icons=stripe.icons,
        flat_rows=flat_rows,
        flat_grey=(flat_mid // 16) if flat_black and black_allowed else flat_mid,
        hv_kv=common.hv_kv,
        wd_mm=common.wd_mm,
        detector=stripe.detector,
        acquired=common.acquired,
    )


def _draw_text(draw: ImageDraw.ImageDraw, cell: TextCell, font: ImageFont.FreeTypeFont, fill: int) -> Box:
    """Draw a cell and return its ink box ``(x0, y0, x1, y1)``, ends exclusive."""
    draw.text((cell.x, cell.y), cell.text, font=font, fill=fill, anchor="la")
    # The box of the glyph mask Pillow draws: textbbox() can miss a column of a glyph's ink.
    mask, (dx, dy) = font.getmask2(cell.text, mode=draw.fontmode, anchor="la")
    x0, y0, x1, y1 = mask.getbbox() or (0, 0, 0, 0)
    return cell.x + dx + x0, cell.y + dy + y0, cell.x + dx + x1, cell.y + dy + y1


def _draw_bar(draw: ImageDraw.ImageDraw, bar: BarGraphic, fill: int) -> None:
    """Draw ``bar`` so that its ink covers exactly columns ``bar.x0 .. bar.x1 - 1`` (less its gap)."""

    def box(x0: int, y0: int, x1: int, y1: int) -> None:
        pieces = [(x0, x1)] if bar.gap is None else [(x0, min(x1, bar.gap[0])), (max(x0, bar.gap[1]), x1)]
        for start, stop in pieces:
            if stop > start and y1 > y0:
                draw.rectangle((start, y0, stop - 1, y1 - 1), fill=fill)  # PIL's ends are inclusive

    if bar.style == "rectangle":
        box(bar.x0, bar.tick_top, bar.x1, bar.tick_bottom)
        return
    box(bar.x0, bar.stroke_top, bar.x1, bar.stroke_top + bar.thickness)
    for column in bar.tick_columns():
        box(column, bar.tick_top, column + bar.tick_width, bar.tick_bottom)


def _draw_icon(draw: ImageDraw.ImageDraw, kind: str, box: Box, fill: int) -> None:
    """A Thermo Fisher logo-like atom (``atom``) or the quad-view symbol after ``mag`` (``quad``) filling ``box``."""
    x0, y0, x1, y1 = box
    line = max(1, (x1 - x0) // 12)
    if kind == "atom":
        middle_x, middle_y = (x0 + x1) // 2, (y0 + y1) // 2
        quarter_x, quarter_y = (x1 - x0) // 4, (y1 - y0) // 4
        draw.ellipse((x0, middle_y - quarter_y, x1 - 1, middle_y + quarter_y), outline=fill, width=line)
        draw.ellipse((middle_x - quarter_x, y0, middle_x + quarter_x, y1 - 1), outline=fill, width=line)
        draw.ellipse((middle_x - line, middle_y - line, middle_x + line, middle_y + line), fill=fill)
    else:
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), outline=fill, width=line)
        draw.rectangle(((x0 + x1) // 2, y0, (x0 + x1) // 2 + line - 1, y1 - 1), fill=fill)
        draw.rectangle((x0, (y0 + y1) // 2, x1 - 1, (y0 + y1) // 2 + line - 1), fill=fill)


def burn_data_bar(specimen: np.ndarray, spec: DataBarSpec) -> tuple[np.ndarray, DataBarTruth]:
    """Append the data bar of ``spec`` under ``specimen`` and return the full image and its truth.

    ``specimen`` is a ``uint8`` array of shape ``(spec.specimen_height, spec.width)``.
    The result has shape ``(spec.height, spec.width)``; with
    ``spec.position == 'none'`` it is the specimen itself, unchanged; with
    ``'overlay'`` the specimen's last ``spec.flat_rows`` rows are first set
    to ``spec.flat_grey`` (on a copy).
    """
    if specimen.dtype != np.uint8 or specimen.shape != (spec.specimen_height, spec.width):
        raise ValueError(
            f"specimen must be uint8 of shape {(spec.specimen_height, spec.width)}, "
            f"got {specimen.dtype} {specimen.shape}"
        )
    nothing_drawn = DataBarTruth(
        value=spec.scale_value,
        unit=spec.scale_unit,
        bar_px=spec.bar_px,
        nm_per_px=spec.nm_per_px,
        has_stripe=False,
        stripe_box=None,
        segment=None,
        style=spec.segment_style,
        label_position=spec.label_position,
        label_text=spec.label_text,
        label_box=None,
        layout=spec.layout,
    )
    if not spec.has_stripe:
        return specimen, nothing_drawn

    stripe = Image.new("L", (spec.width, spec.stripe_height), spec.stripe_grey)
    draw = ImageDraw.Draw(stripe)
    draw.fontmode = "L" if spec.antialiased else "1"
    font = _font(spec.font, spec.font_size)
    for x0, y0, x1, y1 in spec.rules:
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=spec.text_grey)
    for kind, box in spec.icons:
        _draw_icon(draw, kind, box, spec.text_grey)
    text_boxes = [_draw_text(draw, cell, font, spec.text_grey) for cell in spec.field_cells]
    _draw_bar(draw, spec.bar, spec.text_grey)
    label_box = _draw_text(draw, spec.label, font, spec.text_grey)

    top = spec.specimen_height
    if spec.flat_rows:
        specimen = specimen.copy()
        specimen[top - spec.flat_rows :] = spec.flat_grey

    def placed(box: Box) -> Box:
        return box[0], box[1] + top, box[2], box[3] + top

    field_boxes = [box for cell, box in zip(spec.field_cells, text_boxes, strict=True) if cell.text == spec.field_text]
    start, end = spec.bar.measured_ends
    truth = replace(
        nothing_drawn,
        has_stripe=True,
        stripe_box=(0, top, spec.width, top + spec.stripe_height),
        segment=(start, end, top + spec.bar.y),
        label_box=placed(label_box),
        font=spec.font,
        segment_box=placed(spec.bar.ink_box),
        field_text=spec.field_text,
        field_nm=spec.field_nm,
        field_box=placed(field_boxes[0]) if field_boxes else None,
        other_boxes=tuple(placed(box) for box in [*text_boxes, *spec.rules, *(box for _kind, box in spec.icons)]),
    )
    return np.vstack([specimen, np.asarray(stripe)]), truth
