"""Burn an SEM data bar (the stripe with the scale marker) under a specimen image.

Real SEM images carry their scale only as pixels: a stripe ("data bar") at the
bottom of the image holds a scale segment with its length written next to it
("200 nm"), and usually other acquisition fields (high voltage, working
distance, magnification, horizontal field width, detector, date, time).  The
demo corpus needs such images with a *known* answer so that the scale-bar
reader can be tested and scored; this module draws them and returns the truth.

Two pure steps, no file I/O:

* :func:`random_data_bar_spec` draws a :class:`DataBarSpec`: everything random
  about one data bar (scale value, segment length in px, stripe height and
  colours, segment style, label side, block placement, font size, the other
  fields and where they go).
* :func:`burn_data_bar` draws that spec under a specimen array and returns the
  full image with a :class:`DataBarTruth`.

Conventions
-----------
* The scale values and their frequencies follow the thesis' Table 2.4
  (images_flat column): :data:`SCALE_CHOICES`.
* ``nm_per_px = value_in_nm / bar_px`` exactly: the bar length is an integer
  number of pixels and the segment is drawn exactly that long.
* **Segment length** (``bar_px``) is, for every style, the number of image
  columns the segment graphic covers, end to end: columns ``x0 .. x1 - 1``
  with ``x1 - x0 == bar_px``.  Per style:

  - ``line``: a horizontal bar ``thickness`` px tall; its first and last
    columns are the ends.
  - ``bracket``: ``|—|``; the ends are the *outer* edges of the two end ticks
    (the ticks lie inside the segment).
  - ``rectangle``: a filled box; its left and right edges are the ends.
  - ``ruler``: a horizontal line with major end ticks and minor ticks between;
    the ends are the outer edges of the end ticks, as for ``bracket``.

  The truth's ``segment`` is ``(x0, x1, y)`` with ``x1`` exclusive and ``y`` the
  middle row of the horizontal stroke (of the box, for ``rectangle``).
* The other fields are consistent with the scale: the horizontal field width
  is ``HFW = width_px * nm_per_px`` and the magnification follows the
  "Polaroid" convention still printed by Zeiss and FEI instruments,
  ``Mag = 127 mm / HFW`` (a 4x5 inch Polaroid print is 127 mm wide).
  High voltage, working distance, detector, date and time are random.
* Micrometres are written ``µm`` or, in about a quarter of the bars, ``um``
  (:attr:`DataBarSpec.micro_text`).
* Text is set in DejaVu Sans, a sans face like the Arial/Tahoma of instrument
  software, with a real ``µ`` glyph; the file comes with matplotlib, so no
  system font is needed.  ``font_size`` is about 1.6-2.4 % of the image width
  (17-25 px at 1024 px wide, cap height 12-18 px), large enough for Tesseract.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

NM_PER_UNIT = {"mm": 1_000_000, "µm": 1_000, "nm": 1}

#: ``(value, unit, weight)``: the 19 scales of thesis Table 2.4, weighted by
#: how many images of images_flat show them.
SCALE_CHOICES: tuple[tuple[int, str, int], ...] = (
    (1, "mm", 163),
    (300, "µm", 8),
    (200, "µm", 3265),
    (100, "µm", 5941),
    (30, "µm", 60),
    (20, "µm", 9475),
    (10, "µm", 14729),
    (3, "µm", 69),
    (2, "µm", 22575),
    (1, "µm", 30107),
    (300, "nm", 187),
    (200, "nm", 37052),
    (100, "nm", 16531),
    (30, "nm", 20),
    (20, "nm", 2423),
    (10, "nm", 62),
    (4, "nm", 6),
    (2, "nm", 6),
    (1, "nm", 69),
)

SEGMENT_STYLES = ("line", "bracket", "rectangle", "ruler")
LABEL_POSITIONS = ("above", "below", "left", "right")
BLOCK_ANCHORS = ("left", "middle", "right")
#: Share of images drawn without any stripe (the thesis found ~2.8 % of
#: images where no stripe was detected, most of them having none).
NO_STRIPE_PROBABILITY = 0.03
#: Width of the "Polaroid" print the magnification refers to, in nm.
POLAROID_WIDTH_NM = 127e6

_SCALE_CUMULATIVE = np.cumsum([weight for _value, _unit, weight in SCALE_CHOICES]) / sum(
    weight for _value, _unit, weight in SCALE_CHOICES
)
_LABEL_POSITION_CUMULATIVE = np.cumsum([0.55, 0.15, 0.10, 0.20])  # above, below, left, right
_BLOCK_ANCHOR_CUMULATIVE = np.cumsum([0.60, 0.15, 0.25])  # left, middle, right
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DETECTORS = ("InLens", "SE2", "ETD", "TLD", "BSD", "CBS", "ESB")
_FIRST_DAY = datetime.date(2008, 1, 1).toordinal()
_LAST_DAY = datetime.date(2020, 12, 31).toordinal()


@dataclass(frozen=True)
class TextCell:
    """One piece of text in the stripe: ``text`` with its top-left corner (ascender line) at ``(x, y)``.

    ``x`` and ``y`` are in px, stripe coordinates.
    """

    text: str
    x: int
    y: int


@dataclass(frozen=True)
class DataBarSpec:
    """Everything random about one data bar; :func:`burn_data_bar` only draws it.

    Lengths are in px; positions are in stripe coordinates (origin at the
    stripe's top-left corner).  ``width`` x ``height`` is the size of the
    *whole* image, stripe included; the specimen area is ``width`` x
    :attr:`specimen_height`.
    """

    width: int
    height: int
    scale_value: int
    scale_unit: str  # canonical: 'mm', 'µm' or 'nm'
    micro_text: str  # how 'µm' is written on this bar: 'µm' or 'um'
    bar_px: int
    position: str  # 'bottom' (stripe appended under the specimen) or 'none'
    stripe_height: int
    polarity: str  # 'dark' (dark stripe, light text) or 'light'
    stripe_grey: int
    text_grey: int
    top_rule: bool  # a 1-2 px line in the text colour along the stripe's top edge
    font_size: int
    antialiased: bool
    segment_style: str
    segment_thickness: int
    tick_height: int  # end-tick height for 'bracket'/'ruler', box height for 'rectangle'
    ruler_divisions: int
    label_position: str
    block_anchor: str
    segment_x0: int
    segment_y: int  # middle row of the segment's horizontal stroke
    label: TextCell
    vendor_style: str  # 'zeiss' ('EHT = 5.00 kV'), 'fei' (name row over value row), 'plain' ('HV: 5.00 kV')
    field_names: tuple[str, ...]  # which fields appear: subset of HV, WD, Mag, HFW, Det, Date, Time
    field_cells: tuple[TextCell, ...]
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
        """Polaroid-convention magnification, ``127 mm / HFW``."""
        return POLAROID_WIDTH_NM / self.hfw_nm

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


@dataclass(frozen=True)
class DataBarTruth:
    """What :func:`burn_data_bar` drew, in full-image pixel coordinates.

    Boxes are ``(x0, y0, x1, y1)`` in px with exclusive ends.

    ``value``/``unit``/``bar_px``/``nm_per_px`` are the image's true scale even
    when ``has_stripe`` is false; ``stripe_box``, ``segment`` and
    ``label_box`` are then ``None`` because nothing was drawn.
    """

    value: int
    unit: str
    bar_px: int
    nm_per_px: float
    has_stripe: bool
    stripe_box: tuple[int, int, int, int] | None
    segment: tuple[int, int, int] | None  # (x0, x1, y): x1 exclusive, x1 - x0 == bar_px
    style: str
    label_position: str
    label_text: str
    label_box: tuple[int, int, int, int] | None


@cache
def _font(size: int) -> ImageFont.FreeTypeFont:
    """DejaVu Sans at ``size`` px, from the copy matplotlib ships (so no system font is needed)."""
    import matplotlib  # for the path of its fonts only; imported here so importing this module stays cheap

    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), size)


@cache
def _advance(character: str, size: int) -> float:
    return _font(size).getlength(character)


def _text_width(text: str, size: int) -> int:
    """Advance width of ``text`` in px: the sum of its characters' advances (the basic layout does no kerning)."""
    return int(np.ceil(sum(_advance(character, size) for character in text)))


def _line_height(size: int) -> int:
    ascent, descent = _font(size).getmetrics()
    return ascent + descent


def _draw_text(
    draw: ImageDraw.ImageDraw, cell: TextCell, size: int, fill: int, origin_y: int = 0
) -> tuple[int, int, int, int]:
    """Draw a cell and return its ink box ``(x0, y0, x1, y1)``, ends exclusive."""
    position = (cell.x, cell.y + origin_y)
    draw.text(position, cell.text, font=_font(size), fill=fill, anchor="la")
    x0, y0, x1, y1 = draw.textbbox(position, cell.text, font=_font(size), anchor="la")
    return int(x0), int(y0), int(x1), int(y1)


def _format_length(nm: float, micro_text: str) -> str:
    """A length in nm written with 4 significant digits in the largest unit it reaches (``'198.0 µm'``)."""
    unit, factor = next(
        ((unit, factor) for unit, factor in (("mm", 1e6), (micro_text, 1e3)) if nm >= factor), ("nm", 1.0)
    )
    value = nm / factor
    decimals = max(0, 3 - int(np.floor(np.log10(max(value, 1e-9)))))
    return f"{value:.{decimals}f} {unit}"


def _format_magnification(magnification: float, vendor_style: str) -> str:
    if vendor_style == "fei":
        return f"{round(magnification):,}".replace(",", " ") + " x"
    if magnification >= 1000:
        return f"{magnification / 1000:.2f} K X"
    return f"{magnification:.0f} X"


def _field_values(
    *,
    acquired: datetime.datetime,
    hv_kv: float,
    wd_mm: float,
    detector: str,
    hfw_nm: float,
    vendor_style: str,
    micro_text: str,
) -> dict[str, str]:
    """The text of every field, keyed by field name, in the vendor's style."""
    date_text = (
        f"{acquired.day} {_MONTHS[acquired.month - 1]} {acquired.year}"
        if vendor_style == "zeiss"
        else acquired.strftime("%d/%m/%Y")
    )
    return {
        "HV": f"{hv_kv:.2f} kV",
        "WD": f"{wd_mm:.1f} mm",
        "Mag": _format_magnification(POLAROID_WIDTH_NM / hfw_nm, vendor_style),
        "HFW": _format_length(hfw_nm, micro_text),
        "Det": detector,
        "Date": date_text,
        "Time": acquired.strftime("%H:%M:%S"),
    }


_FIELD_TITLES = {
    "zeiss": {"HV": "EHT", "WD": "WD", "Mag": "Mag", "HFW": "Width", "Det": "Signal A", "Date": "Date", "Time": "Time"},
    "fei": {"HV": "HV", "WD": "WD", "Mag": "mag", "HFW": "HFW", "Det": "det", "Date": "date", "Time": "time"},
    "plain": {"HV": "HV", "WD": "WD", "Mag": "Mag", "HFW": "HFW", "Det": "Det", "Date": "Date", "Time": "Time"},
}


def _field_columns(names: tuple[str, ...], values: dict[str, str], vendor_style: str) -> list[tuple[str, ...]]:
    """Group the fields into columns of at most two rows of text."""
    titles = _FIELD_TITLES[vendor_style]
    if vendor_style == "fei":
        return [(titles[name], values[name]) for name in names]
    separator = " = " if vendor_style == "zeiss" else ": "
    texts = [f"{titles[name]}{separator}{values[name]}" for name in names]
    return [tuple(texts[i : i + 2]) for i in range(0, len(texts), 2)]


class _Draws:
    """Uniform numbers drawn from ``rng`` in one batch and handed out one by one.

    One vectorised call instead of thirty scalar ones keeps a spec draw
    around 0.1 ms (numpy's per-call overhead dominates otherwise).
    """

    def __init__(self, rng: np.random.Generator, count: int) -> None:
        self._values = iter(rng.random(count).tolist())

    def uniform(self, low: float = 0.0, high: float = 1.0) -> float:
        return low + (high - low) * next(self._values)

    def integer(self, low: int, high: int) -> int:
        """An integer in ``low .. high - 1``."""
        return min(low + int(self.uniform() * (high - low)), high - 1)

    def pick(self, choices: tuple):
        return choices[self.integer(0, len(choices))]

    def weighted_index(self, cumulative: np.ndarray) -> int:
        """An index drawn with the probabilities whose running sum is ``cumulative``."""
        return min(int(np.searchsorted(cumulative, self.uniform(), side="right")), len(cumulative) - 1)


_DRAWS_PER_SPEC = 48


def random_data_bar_spec(rng: np.random.Generator, width: int, height: int) -> DataBarSpec:
    """Draw a random, self-consistent data bar for a ``width`` x ``height`` px image (stripe included).

    The scale follows :data:`SCALE_CHOICES`; the segment is 8-35 % of the
    width; the stripe is 5-10 % of the height, taller when its text needs it.
    About 3 % of specs have ``position='none'`` (no stripe at all).
    """
    draw = _Draws(rng, _DRAWS_PER_SPEC)
    scale_value, scale_unit, _weight = SCALE_CHOICES[draw.weighted_index(_SCALE_CUMULATIVE)]
    micro_text = "um" if draw.uniform() < 0.25 else "µm"
    bar_px = round(draw.uniform(0.08, 0.35) * width)
    position = "none" if draw.uniform() < NO_STRIPE_PROBABILITY else "bottom"
    polarity = "dark" if draw.uniform() < 0.7 else "light"
    dark, light = draw.integer(0, 40), draw.integer(215, 256)
    stripe_grey, text_grey = (dark, light) if polarity == "dark" else (light, dark)
    top_rule = draw.uniform() < 0.3
    font_size = max(6, round(draw.uniform(0.016, 0.024) * width))
    antialiased = draw.uniform() < 0.7
    segment_style = draw.pick(SEGMENT_STYLES)
    segment_thickness = max(1, round(draw.uniform(0.1, 0.25) * font_size))
    tick_height = max(3, round(draw.uniform(0.45, 0.8) * font_size))
    ruler_divisions = draw.pick((2, 4, 5, 10))
    label_position = LABEL_POSITIONS[draw.weighted_index(_LABEL_POSITION_CUMULATIVE)]
    block_anchor = BLOCK_ANCHORS[draw.weighted_index(_BLOCK_ANCHOR_CUMULATIVE)]
    vendor_style = draw.pick(("zeiss", "fei", "plain"))
    unit_text = micro_text if scale_unit == "µm" else scale_unit
    label_text = f"{scale_value}{' ' if draw.uniform() < 0.8 else ''}{unit_text}"

    field_order = ("HV", "WD", "Mag", "HFW", "Det", "Date", "Time")
    keep_share = draw.uniform(0.3, 1.0)
    field_names = tuple(name for name in field_order if draw.uniform() < keep_share)
    if draw.uniform() < 0.3:
        field_names = tuple(sorted(field_names, key=lambda _name: draw.uniform()))
    day = draw.integer(_FIRST_DAY, _LAST_DAY + 1)
    acquired = datetime.datetime.combine(
        datetime.date.fromordinal(day), datetime.time(draw.integer(7, 22), draw.integer(0, 60), draw.integer(0, 60))
    )
    hv_kv = draw.pick((0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 15.0, 20.0, 30.0))
    wd_mm = round(draw.uniform(2.0, 15.0), 1)
    detector = draw.pick(_DETECTORS)
    values = _field_values(
        acquired=acquired,
        hv_kv=hv_kv,
        wd_mm=wd_mm,
        detector=detector,
        hfw_nm=width * scale_value * NM_PER_UNIT[scale_unit] / bar_px,
        vendor_style=vendor_style,
        micro_text=micro_text,
    )

    # Stripe height: 5-10 % of the image, or what two rows of text need.
    line_height = _line_height(font_size)
    pad = max(2, font_size // 4)
    gap = max(2, font_size // 4)
    label_width = _text_width(label_text, font_size)
    graphic_height = segment_thickness if segment_style == "line" else tick_height
    if label_position in ("above", "below"):
        block_width = max(bar_px, label_width)
        block_height = line_height + gap + graphic_height
    else:
        block_width = bar_px + gap + label_width
        block_height = max(line_height, graphic_height)
    fields_height = 2 * line_height + gap if field_names else 0
    needed = max(block_height, fields_height) + 2 * pad
    stripe_height = max(needed, round(draw.uniform(0.05, 0.10) * height))

    # Scale block: horizontal placement from the anchor, vertically centred.
    margin = max(3, round(0.015 * width))
    if block_anchor == "left":
        block_x0 = margin
    elif block_anchor == "right":
        block_x0 = width - margin - block_width
    else:
        block_x0 = (width - block_width) // 2
    block_y0 = (stripe_height - block_height) // 2
    if label_position == "above":
        segment_x0 = block_x0 + (block_width - bar_px) // 2
        label = TextCell(label_text, segment_x0 + (bar_px - label_width) // 2, block_y0)
        graphic_y0 = block_y0 + line_height + gap
    elif label_position == "below":
        segment_x0 = block_x0 + (block_width - bar_px) // 2
        graphic_y0 = block_y0
        label = TextCell(label_text, segment_x0 + (bar_px - label_width) // 2, block_y0 + graphic_height + gap)
    elif label_position == "left":
        segment_x0 = block_x0 + label_width + gap
        graphic_y0 = block_y0 + (block_height - graphic_height) // 2
        label = TextCell(label_text, block_x0, block_y0 + (block_height - line_height) // 2)
    else:
        segment_x0 = block_x0
        graphic_y0 = block_y0 + (block_height - graphic_height) // 2
        label = TextCell(label_text, block_x0 + bar_px + gap, block_y0 + (block_height - line_height) // 2)
    segment_y = graphic_y0 + graphic_height // 2

    # Other fields: columns packed into the free space left and right of the block.
    intervals = [(margin, block_x0 - 2 * margin), (block_x0 + block_width + 2 * margin, width - margin)]
    rows_y = (stripe_height - fields_height) // 2
    cells: list[TextCell] = []
    placed_names: list[str] = []
    columns = _field_columns(field_names, values, vendor_style)
    names_per_column = (
        [(name,) for name in field_names]
        if vendor_style == "fei"
        else [tuple(field_names[i : i + 2]) for i in range(0, len(field_names), 2)]
    )
    column_index = 0
    for start, stop in intervals:
        chosen: list[tuple[tuple[str, ...], int, tuple[str, ...]]] = []
        used = 0
        while column_index < len(columns):
            column_width = max(_text_width(text, font_size) for text in columns[column_index])
            if used + column_width + (font_size if chosen else 0) > stop - start:
                break
            used += column_width + (font_size if chosen else 0)
            chosen.append((columns[column_index], column_width, names_per_column[column_index]))
            column_index += 1
        if not chosen:
            continue
        spare = (stop - start) - used
        spacing = font_size + (spare // len(chosen) if len(chosen) > 1 else 0)
        x = start + (spare // 2 if len(chosen) == 1 else 0)
        for texts, column_width, names in chosen:
            for row, text in enumerate(texts):
                cells.append(TextCell(text, int(x), int(rows_y + row * (line_height + gap))))
            placed_names.extend(names)
            x += column_width + spacing

    return DataBarSpec(
        width=width,
        height=height,
        scale_value=scale_value,
        scale_unit=scale_unit,
        micro_text=micro_text,
        bar_px=bar_px,
        position=position,
        stripe_height=stripe_height,
        polarity=polarity,
        stripe_grey=stripe_grey,
        text_grey=text_grey,
        top_rule=top_rule,
        font_size=font_size,
        antialiased=antialiased,
        segment_style=segment_style,
        segment_thickness=segment_thickness,
        tick_height=tick_height,
        ruler_divisions=ruler_divisions,
        label_position=label_position,
        block_anchor=block_anchor,
        segment_x0=segment_x0,
        segment_y=segment_y,
        label=label,
        vendor_style=vendor_style,
        field_names=tuple(placed_names),
        field_cells=tuple(cells),
        hv_kv=hv_kv,
        wd_mm=wd_mm,
        detector=detector,
        acquired=acquired,
    )


def _draw_segment(draw: ImageDraw.ImageDraw, spec: DataBarSpec) -> None:
    """Draw the segment so that it covers exactly columns ``segment_x0 .. segment_x0 + bar_px - 1``."""
    x0, x1 = spec.segment_x0, spec.segment_x0 + spec.bar_px - 1  # inclusive ends, as PIL draws them
    y, t, fill = spec.segment_y, spec.segment_thickness, spec.text_grey
    stroke_top = y - t // 2
    if spec.segment_style == "rectangle":
        half = spec.tick_height // 2
        draw.rectangle((x0, y - half, x1, y - half + spec.tick_height - 1), fill=fill)
        return
    draw.rectangle((x0, stroke_top, x1, stroke_top + t - 1), fill=fill)
    if spec.segment_style == "line":
        return
    tick_top = y - spec.tick_height // 2
    tick_bottom = tick_top + spec.tick_height - 1
    draw.rectangle((x0, tick_top, x0 + t - 1, tick_bottom), fill=fill)
    draw.rectangle((x1 - t + 1, tick_top, x1, tick_bottom), fill=fill)
    if spec.segment_style == "ruler":
        minor_top = stroke_top - max(1, spec.tick_height // 4)
        for division in range(1, spec.ruler_divisions):
            x = x0 + round(division * (spec.bar_px - t) / spec.ruler_divisions)
            draw.rectangle((x, minor_top, x + t - 1, stroke_top + t - 1), fill=fill)


def burn_data_bar(specimen: np.ndarray, spec: DataBarSpec) -> tuple[np.ndarray, DataBarTruth]:
    """Append the data bar of ``spec`` under ``specimen`` and return the full image and its truth.

    ``specimen`` is a ``uint8`` array of shape ``(spec.specimen_height, spec.width)``.
    The result has shape ``(spec.height, spec.width)``; with
    ``spec.position == 'none'`` it is the specimen itself, unchanged.
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
    )
    if not spec.has_stripe:
        return specimen, nothing_drawn

    stripe = Image.new("L", (spec.width, spec.stripe_height), spec.stripe_grey)
    draw = ImageDraw.Draw(stripe)
    draw.fontmode = "L" if spec.antialiased else "1"
    if spec.top_rule:
        draw.rectangle((0, 0, spec.width - 1, max(1, spec.font_size // 12) - 1), fill=spec.text_grey)
    for cell in spec.field_cells:
        _draw_text(draw, cell, spec.font_size, spec.text_grey)
    _draw_segment(draw, spec)
    label_x0, label_y0, label_x1, label_y1 = _draw_text(draw, spec.label, spec.font_size, spec.text_grey)

    top = spec.specimen_height
    image = np.vstack([specimen, np.asarray(stripe)])
    truth = replace(
        nothing_drawn,
        has_stripe=True,
        stripe_box=(0, top, spec.width, top + spec.stripe_height),
        segment=(spec.segment_x0, spec.segment_x0 + spec.bar_px, top + spec.segment_y),
        label_box=(label_x0, top + label_y0, label_x1, top + label_y1),
    )
    return image, truth
