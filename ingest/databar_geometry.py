"""Finding the data bar, its scale segment and its text boxes in a grey image.

Pure numpy/scipy over a 2-D ``uint8`` array; no OCR, no files.  It follows
the thesis' algorithm (section 2.3) and makes each step measurable:

1. **Stripe** (:func:`find_stripe`).  In the lower 40 % of the image look for
   flat squares (grey-level standard deviation under :data:`FLAT_STD`); the
   most common mean of those is the probable stripe colour.  Rows where most
   pixels have that colour form runs; a run that is wide (its background
   spans ≥ 90 % of the width), not too tall (≤ 30 % of the image), and holds
   some content (text or a segment) is a stripe.  None is ``no_stripe``;
   more than one is ``multiple_stripes`` rather than a guess, unless only
   one of them holds a scale marker (dark picture over a dark stripe is
   flat enough to pass for a second one); the search goes through the three
   likeliest colours for a band with a marker (over-exposed white picture
   over a white or black stripe), and takes a single band without one only
   when no colour has one.  Real stripes
   need three more rules:

   * **rules** — rows that are one flat line across ≥ 90 % of the width in
     another colour (Zeiss' frame, the top and bottom lines of a Thermo/FEI
     table) — belong to the stripe when they lie along its top or bottom
     edge, and rows above a rule that hold no content are picture, not
     stripe (a black specimen over a black table);
   * a run taller than allowed that reaches the bottom of the image is the
     stripe merged with flat picture above it: it is cut at its topmost rule
     that leaves a stripe of allowed height, else just above its lowest block
     of content (so the box of a stripe under flat picture without a rule
     starts a few px above its first text);
   * rows crossed by one filled marker beside a line of text (Thermo's thick
     bar among its values) keep too little background to count, however many:
     they join the runs on either side when the marker's body runs through
     them all (:func:`_crossed_by_a_marker`), so the table is one stripe;
   * the stripe may be 8- or 16-bit or palette in the file: the caller passes
     the 8-bit grey rendering.

2. **Segment** (:func:`find_segment`).  Ink = pixels far from the stripe
   colour (dark stripes are handled by working on the absolute difference,
   which is the thesis' "invert dark stripes").  Connected components that
   are long (at least :data:`MIN_SEGMENT_CHARACTERS` character heights and
   :data:`MIN_SEGMENT_PX`, at most 60 % of the image width, so a rule across
   the stripe is not taken), thin (body at most :data:`MAX_BODY_FRACTION` of
   the length), whose body rows cover ≥ 90 % of their width and whose ink
   leaves the body in few interior columns (:func:`_pieces`: not touching
   glyphs) are segments: plain lines, filled bars, brackets ``|—|`` and tick
   rulers alike.  Two equal pieces on one row with ink centred between them
   are one bar interrupted by its own label (Thermo/FEI's ``━━ 500 µm ━━``).
   Several segments left are ``multiple_segments``, none ``no_segment``.
   The length follows the convention of how bars are drawn:

   * a **ticked** bar (bracket ``|—|``, ruler, a bar with end marks taller
     than its body) is measured between the **centres of its end ticks**
     (for a ruler: its first and last tick);
   * a **filled** bar or plain line between its **outer edges**;
   * a bar interrupted by its label from end to end, by the same two rules.

   Both are sub-pixel: a tick's centre is the centroid of the ink it adds
   above and below the body, partial coverage of grey, anti-aliased or
   blurred ticks included (the Helios fixture's caps, 1 px wide one column
   inside its 151-px stroke, are 148 px apart: its metadata says 148.3), and
   an outer edge is where coverage along the bar's row falls through one half.
3. **Text boxes** (:func:`text_boxes`).  The ink minus the segment and minus
   grid lines and frames (vertical strokes over most of the stripe's height,
   horizontal ones over :data:`LINE_FRACTION` of its width) is dilated
   horizontally by about half a character height, never across a grid line,
   and labelled: each component is a word or phrase box.
   :func:`label_candidates` ranks the boxes that can hold the segment's value
   — inside it (between its pieces), above, below, left or right of it — by
   distance.  :func:`analyse_stripe` does all three in one pass and also
   gives the stripe with the segment and the lines painted over, for OCR
   crops that hold text alone; :func:`analyse_image` finds the stripe first
   and keeps the ink and segment measured while choosing it (the scale
   reader's path: every image's segment is measured once).

Coordinates are ``(x0, y0, x1, y1)`` in image pixels, ends exclusive.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

#: The stripe is looked for in this lower fraction of the image.
SEARCH_FRACTION = 0.4
#: A square is "flat" (a candidate stripe background) below this grey-level standard deviation.
FLAT_STD = 2.5
#: Pixels within this many grey levels of the stripe colour are background.
BACKGROUND_TOLERANCE = 12
#: A row belongs to a stripe when at least this fraction of it is background.
ROW_BACKGROUND_FRACTION = 0.4
#: Rows between two runs of stripe rows that one filled marker crosses (Thermo's thick bar beside a line of
#: values) join them, however many, when each keeps at least this fraction of background.
GAP_BACKGROUND_FRACTION = 0.2
#: A row is a rule (frame or table line) when at least this fraction of it is one flat line off the stripe colour.
RULE_FRACTION = 0.9
#: The tallest plausible stripe, as a fraction of the image height.
MAX_STRIPE_FRACTION = 0.3
#: Foreground needs at least this grey-level contrast against the stripe.
MIN_CONTRAST = 40
#: Ink is contrast of at least this fraction of the stripe's full contrast (and of half of :data:`MIN_CONTRAST`).
INK_FRACTION = 0.35
#: Pixels of at least this fraction of the full contrast that touch the bar are its faint fringe (blurred ticks).
FAINT_FRACTION = 0.15
#: The shortest segment, in character heights of the stripe's text (a glyph's own strokes are shorter).
MIN_SEGMENT_CHARACTERS = 1.5
#: The shortest segment in px, whatever the text.
MIN_SEGMENT_PX = 8
#: The longest segment, as a fraction of the image width.
MAX_SEGMENT_FRACTION = 0.6
#: The thickest segment body, as a fraction of its length (a logo or a filled box is not a bar).
MAX_BODY_FRACTION = 0.35
#: The largest fraction of a bar's interior columns that may hold ink off its body (a ruler's minor ticks), unless
#: that ink is regular ticks (:func:`_regular_ticks`).
MAX_OFF_BODY_FRACTION = 0.35
#: The widest gap a label may open in its bar, in lengths of one of the two pieces (a wide label, short pieces).
MAX_LABEL_GAP = 8.0
#: Vertical strokes at least this fraction of the stripe's height are grid lines or frames, not text.
GRID_LINE_FRACTION = 0.8
#: Horizontal strokes at least this fraction of the stripe's width are lines, not text.
LINE_FRACTION = 0.15
#: A text box taller than this many character heights is a logo or an icon, not a line of text.
MAX_LINE_CHARACTERS = 2.5
#: The grey levels of an 8-bit image, for tests computed per level and looked up per pixel.
_GREY_LEVELS = np.arange(256, dtype=np.int16)
#: A box in image pixels: ``(x0, y0, x1, y1)``, the end coordinates exclusive.
Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Stripe:
    """A data bar: its box, its background grey level (0-255) and whether it is dark."""

    box: tuple[int, int, int, int]
    colour: float

    @property
    def dark(self) -> bool:
        return self.colour < 128


@dataclass(frozen=True)
class Segment:
    """The scale marker, measured.

    ``box`` bounds it, ``row`` is the row along its body, ``length_px`` its
    length in px (sub-pixel), ``pieces`` the boxes of its drawn parts (two
    when its label interrupts it) and ``convention`` how it was measured:
    ``"tick centres"`` or ``"outer edges"``.
    """

    box: tuple[int, int, int, int]
    row: int
    length_px: float
    pieces: tuple[Box, ...] = ()
    convention: str = "outer edges"


@dataclass(frozen=True)
class GeometryProblem:
    """Why no stripe or segment was found: ``status`` and a human-readable ``reason``."""

    status: str
    reason: str


def _flat_squares(region: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each ``side``-px square of ``region`` whose std is under :data:`FLAT_STD`."""
    rows, cols = region.shape[0] // side, region.shape[1] // side
    if rows == 0 or cols == 0:
        return np.empty(0), np.empty(0)
    blocks = region[: rows * side, : cols * side].astype(np.float32)
    blocks = blocks.reshape(rows, side, cols, side).transpose(0, 2, 1, 3).reshape(rows * cols, side * side)
    means, stds = blocks.mean(axis=1), blocks.std(axis=1)
    flat = stds < FLAT_STD
    return means[flat], stds[flat]


def _candidate_colours(means: np.ndarray, stds: np.ndarray, min_squares: int) -> list[tuple[float, float]]:
    """``(colour, tolerance)`` of each cluster of flat squares, quietest first.

    A lossless stripe is exactly uniform, so its squares are the quietest of
    all; a smooth specimen may have more flat squares but never as flat.  The
    tolerance follows the cluster's own noise: tight for a lossless stripe
    (a dark smooth specimen above it is not taken for more stripe), up to
    :data:`BACKGROUND_TOLERANCE` for a JPEG stripe with ringing around text.
    """
    remaining = np.ones(means.size, dtype=bool)
    clusters = []
    while remaining.any():
        counts = np.bincount(np.rint(means[remaining]).astype(np.int64), minlength=256)
        peak = float(np.argmax(np.convolve(counts, np.ones(5), mode="same")))
        # Re-centre on the squares under the smoothing window: with a tie the argmax is the window's leftmost
        # position, and squares at its right edge would be left out (and found again, and again).
        peak = float(np.median(means[remaining & (np.abs(means - peak) <= 2.5)]))
        members = remaining & (np.abs(means - peak) <= 2)
        if not members.any():
            break
        remaining &= ~members
        if members.sum() < min_squares:
            continue
        noise = float(np.percentile(stds[members], 10))
        tolerance = float(np.clip(2 + 4 * noise, 3, BACKGROUND_TOLERANCE))
        clusters.append((noise, -int(members.sum()), float(means[members].mean()), tolerance))
    return [(colour, tolerance) for _, _, colour, tolerance in sorted(clusters)]


def _runs(flags: np.ndarray, max_gap: int) -> list[tuple[int, int]]:
    """``[start, end)`` runs of true values, bridging gaps of up to ``max_gap`` false values."""
    indices = np.flatnonzero(flags)
    if indices.size == 0:
        return []
    runs, start, previous = [], indices[0], indices[0]
    for index in indices[1:]:
        if index - previous > max_gap + 1:
            runs.append((int(start), int(previous) + 1))
            start = index
        previous = index
    runs.append((int(start), int(previous) + 1))
    return runs


def _crossed_by_a_marker(ink: np.ndarray, background: np.ndarray) -> bool:
    """Whether rows (``ink`` and ``background`` masks, one row each) are crossed by the body of one filled marker.

    The body is a run of columns that are ink in every row, as long as a bar
    that thick may be (at least the rows over :data:`MAX_BODY_FRACTION`, at
    most :data:`MAX_SEGMENT_FRACTION` of the width) and clear of both sides;
    and every row keeps :data:`GAP_BACKGROUND_FRACTION` of background (text
    beside the bar, not picture).  A picture's bright features are not that
    wide through that many rows, nor a bar that thick and that short.

    Examples
    --------
    >>> ink = np.zeros((6, 100), bool)
    >>> ink[:, 30:60] = True  # a bar 30 px long crosses all 6 rows
    >>> _crossed_by_a_marker(ink, ~ink), _crossed_by_a_marker(ink[:, :45], ~ink[:, :45])
    (True, False)
    """
    rows, width = ink.shape
    if rows == 0 or (background.mean(axis=1) < GAP_BACKGROUND_FRACTION).any():
        return False
    shortest, longest = max(MIN_SEGMENT_PX, rows / MAX_BODY_FRACTION), MAX_SEGMENT_FRACTION * width
    ink_throughout: np.ndarray = np.asarray(ink.all(axis=0))
    return any(
        start > 0 and end < width and shortest <= end - start <= longest
        for start, end in _runs(ink_throughout, max_gap=0)
    )


def find_stripe(grey: np.ndarray) -> Stripe | GeometryProblem:
    """Locate the data bar in the lower part of ``grey`` (2-D uint8)."""
    found = _find_stripe(grey)
    return found if isinstance(found, GeometryProblem) else found.stripe


@dataclass(frozen=True)
class _FoundStripe:
    """A stripe with what choosing it took: its ink and its segment (or why it has none), measured once."""

    stripe: Stripe
    ink: _Ink
    segment: Segment | GeometryProblem


def _find_stripe(grey: np.ndarray) -> _FoundStripe | GeometryProblem:
    """:func:`find_stripe`, keeping each candidate band's ink and segment for :func:`analyse_image`."""
    height, width = grey.shape
    if height < 16 or width < 16:
        return GeometryProblem("no_stripe", f"image of {width}×{height} px is too small to hold a data bar")
    top = int(height * (1 - SEARCH_FRACTION))
    side = max(4, min(height, width) // 96)
    means, stds = _flat_squares(grey[top:], side)
    candidates = _candidate_colours(means, stds, min_squares=max(3, width // side // 4))
    if not candidates:
        return GeometryProblem("no_stripe", "no flat area in the lower part of the image")
    # The first colour whose bands hold exactly one with a scale marker gives the stripe.  Dark picture over a
    # dark stripe may pass for a second stripe, and flat white picture for a white one: only a band holding a
    # marker is surely a data bar.  Two such bands are reported, not guessed between; failing any marker, the
    # first colour's single band is the stripe (a data bar with text and no bar).
    fallback: _FoundStripe | GeometryProblem | None = None
    for colour, tolerance in candidates[:3]:
        stripes = [
            _with_edge_rules(grey, span, colour, tolerance) for span in _stripes_of_colour(grey, top, colour, tolerance)
        ]
        if not stripes:
            continue
        bands = []
        for stripe in stripes:
            ink = _ink(grey, stripe)
            bands.append(_FoundStripe(stripe, ink, _find_segment(ink, stripe, width)))
        with_marker = [band for band in bands if isinstance(band.segment, Segment)]
        if len(with_marker) == 1:
            return with_marker[0]
        several = None
        if len(stripes) > 1:
            spans = ", ".join(f"rows {stripe.box[1]}-{stripe.box[3]}" for stripe in stripes)
            several = GeometryProblem("multiple_stripes", f"{len(stripes)} candidate stripes ({spans})")
        if with_marker:
            return several if several is not None else with_marker[0]
        if fallback is None:
            fallback = several if several is not None else bands[0]
    if fallback is not None:
        return fallback
    return GeometryProblem("no_stripe", "no wide uniform band with text or a marker in the lower part")


def _with_edge_rules(grey: np.ndarray, span: tuple[int, int], colour: float, tolerance: float) -> Stripe:
    """The stripe of rows ``span``, grown over a rule along its top or bottom edge (a frame, a table's outer line)."""
    height, width = grey.shape
    y0, y1 = span
    reach = max(3, (y1 - y0) // 6)
    while y0 > 0 and span[0] - y0 < reach and _rule_rows(grey[y0 - 1 : y0], colour, tolerance)[0]:
        y0 -= 1
    while y1 < height and y1 - span[1] < reach and _rule_rows(grey[y1 : y1 + 1], colour, tolerance)[0]:
        y1 += 1
    return Stripe((0, y0, width, y1), colour)


def _rule_rows(rows: np.ndarray, colour: float, tolerance: float) -> np.ndarray:
    """Per row of ``rows`` (``uint8``): whether it is a rule, one flat line off the stripe colour over most of it.

    Off the colour: at least :data:`MIN_CONTRAST` (and twice the tolerance)
    away from it; flat: within the tolerance of the next pixel along the row.
    """
    off = (np.abs(_GREY_LEVELS - colour) >= max(MIN_CONTRAST, 2 * tolerance))[rows]
    flat = np.abs(np.diff(rows.astype(np.int16), axis=1)) <= tolerance
    return (off[:, 1:] & flat).mean(axis=1) >= RULE_FRACTION


def _stripes_of_colour(grey: np.ndarray, top: int, colour: float, tolerance: float) -> list[tuple[int, int]]:
    """Row spans ``[y0, y1)`` below ``top`` that qualify as a stripe of background ``colour``."""
    height, width = grey.shape
    region = grey[top:]
    # Per grey level, then looked up per pixel: the same test as on every pixel, at a fraction of the cost.
    distance = np.abs(_GREY_LEVELS - colour)
    background = (distance <= tolerance)[region]
    row_is_stripe = background.mean(axis=1) >= ROW_BACKGROUND_FRACTION
    is_rule = _rule_rows(region, colour, tolerance)
    ink = (distance >= MIN_CONTRAST)[region]
    content = ink.sum(axis=1)
    content[is_rule] = 0
    # Rows crossed by a tall marker or dense text may dip below the background fraction: bridge them, and any
    # number of rows that one filled marker crosses.
    runs: list[tuple[int, int]] = []
    for start, end in _runs(row_is_stripe, max_gap=max(2, height // 80)):
        if runs and _crossed_by_a_marker(ink[runs[-1][1] : start], background[runs[-1][1] : start]):
            start = runs.pop()[0]
        runs.append((start, end))
    stripes = []
    for run in runs:
        start, end = _trim(run, is_rule, content, height, reaches_bottom=top + run[1] >= height - 2)
        covered = background[start:end].any(axis=0)
        span = np.flatnonzero(covered)
        if end - start < max(4, height // 100) or end - start > MAX_STRIPE_FRACTION * height or span.size == 0:
            continue
        if span[-1] - span[0] + 1 < 0.9 * width or covered.mean() < 0.9:
            continue
        if content[start:end].sum() < 10:
            continue
        stripes.append((top + start, top + end))
    return stripes


def _trim(
    run: tuple[int, int], is_rule: np.ndarray, content: np.ndarray, height: int, *, reaches_bottom: bool
) -> tuple[int, int]:
    """Cut the picture off the top of a run of stripe-coloured rows (``content``: ink px per row, rules 0).

    Rows above a rule that hold no content are flat picture; a run taller
    than a stripe may be that reaches the bottom is cut at its topmost rule
    that leaves an allowed height, else just above its lowest content block.
    """
    start, end = run
    for rule in np.flatnonzero(is_rule[start:end]) + start:
        if content[start:rule].sum() >= 10:
            break
        start = int(rule) + 1
    allowed = int(MAX_STRIPE_FRACTION * height)
    if end - start <= allowed or not reaches_bottom:
        return start, end
    rules = [int(rule) for rule in np.flatnonzero(is_rule[end - allowed : end]) + end - allowed]
    if rules and content[rules[0] + 1 : end].sum() >= 10:
        return rules[0] + 1, end
    gap = max(8, round(0.03 * height))
    rows = np.flatnonzero(content[start:end] >= 2) + start
    if rows.size == 0:
        return start, end
    block_top = int(rows[-1])
    for row in rows[::-1]:
        if block_top - row > gap:
            break
        block_top = int(row)
    return max(start, block_top - gap // 2), end


def foreground(grey: np.ndarray, stripe: Stripe) -> tuple[np.ndarray, np.ndarray, float]:
    """Contrast against the stripe colour inside the stripe, the ink mask, and the full contrast.

    Ink is contrast of at least :data:`INK_FRACTION` of the full contrast
    (the 99.7th percentile): low enough to keep thin anti-aliased strokes of
    small text whole and grey bars (Zeiss draws some in mid-grey) in.
    """
    x0, y0, x1, y1 = stripe.box
    contrast = np.abs(grey[y0:y1, x0:x1].astype(np.float32) - stripe.colour)
    full = float(np.percentile(contrast, 99.7))
    if full < MIN_CONTRAST:
        return contrast, np.zeros(contrast.shape, dtype=bool), full
    return contrast, contrast >= max(MIN_CONTRAST / 2, INK_FRACTION * full), full


def _long_runs(mask: np.ndarray, length: int) -> np.ndarray:
    """The pixels of ``mask`` that lie in horizontal runs of at least ``length`` px."""
    padded = np.zeros((mask.shape[0], mask.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    steps = np.diff(padded, axis=1)
    rows, starts = np.nonzero(steps == 1)
    _rows, ends = np.nonzero(steps == -1)
    keep = ends - starts >= length
    # +1 where a long run starts, -1 just past its end (runs on a row never touch): the running sum marks it.
    marks = np.zeros((mask.shape[0], mask.shape[1] + 1), dtype=np.int8)
    marks[rows[keep], starts[keep]] = 1
    marks[rows[keep], ends[keep]] = -1
    return np.cumsum(marks, axis=1, dtype=np.int8)[:, :-1] > 0


@dataclass(frozen=True)
class _Ink:
    """A stripe's ink and what is derived from it once: contrast, full contrast, lines, character height (px)."""

    contrast: np.ndarray
    full: float
    mask: np.ndarray
    vertical_lines: np.ndarray
    lines: np.ndarray
    char_height: float


def _ink(grey: np.ndarray, stripe: Stripe) -> _Ink:
    """Analyse the ink of ``stripe``: grid lines and frames are vertical strokes over most of its height and
    horizontal ones over :data:`LINE_FRACTION` of its width; the character height is the 75th percentile of
    the heights of glyph-like components (at least 4 px, at most 2.5 times as wide as tall; 8 px without any):
    lower-case letters and specks are shorter, bars wider."""
    contrast, mask, full = foreground(grey, stripe)
    height, width = mask.shape
    vertical = _long_runs(mask.T, max(3, round(GRID_LINE_FRACTION * height))).T
    lines = vertical | _long_runs(mask, max(3, round(LINE_FRACTION * width)))
    labels, _count = ndimage.label(mask & ~lines)
    heights = []
    for index, (rows, cols) in enumerate(ndimage.find_objects(labels), start=1):
        glyph_height, glyph_width = rows.stop - rows.start, cols.stop - cols.start
        if glyph_width <= 2.5 * glyph_height and (labels[rows, cols] == index).sum() >= 4:
            heights.append(glyph_height)
    char_height = float(np.percentile(heights, 75)) if heights else 8.0
    return _Ink(contrast, full, mask, vertical, lines, char_height)


@dataclass(frozen=True)
class _Piece:
    """One long horizontal ink component: its slices in the stripe, its body's rows and middle row, its thickness."""

    rows: slice
    cols: slice
    body: slice
    thickness: float
    mask: np.ndarray

    @property
    def row(self) -> int:
        return (self.body.start + self.body.stop - 1) // 2

    @property
    def width(self) -> int:
        return self.cols.stop - self.cols.start

    @property
    def slender(self) -> bool:
        """Whether the piece is thin enough to be a bar on its own (:data:`MAX_BODY_FRACTION`)."""
        return self.thickness <= MAX_BODY_FRACTION * self.width


def _pieces(
    ink: np.ndarray, min_length: float, max_length: float, max_body_fraction: float = MAX_BODY_FRACTION
) -> list[_Piece]:
    """Components of ``ink`` shaped like a scale bar.

    Long; thin (body thickness, the median column's ink, at most
    :data:`MAX_BODY_FRACTION` of the length); a body of rows covering 90 % of
    the width, at least half as many as the body is thick, in one run (not the
    frame and cross of an icon such as "⊞"); and ink off the
    body in at most :data:`MAX_OFF_BODY_FRACTION` of the interior columns (the
    end ticks excluded).  Glyphs that share a row fail the last two — a pixel
    font's "m" or "%", two "4" whose crossbars touch: their one full row is
    thinner than their strokes make them, and their strokes leave the row in
    most columns, where a ruler's minor ticks leave it in a few.
    """
    labels, _count = ndimage.label(ink, structure=np.ones((3, 3)))
    pieces = []
    for index, (rows, cols) in enumerate(ndimage.find_objects(labels), start=1):
        box_width, box_height = cols.stop - cols.start, rows.stop - rows.start
        if not min_length <= box_width <= max_length or box_height > 0.8 * ink.shape[0]:
            continue
        # A scale bar keeps a margin from the frame's sides; ink running into them is picture (a bright band).
        if cols.start == 0 or cols.stop == ink.shape[1]:
            continue
        component = labels[rows, cols] == index
        row_cover, column_cover = component.sum(axis=1), component.sum(axis=0)
        thickness = float(np.median(column_cover))
        full = np.flatnonzero(row_cover >= 0.9 * box_width)
        if full.size < max(1, thickness / 2) or thickness > max_body_fraction * box_width:
            continue
        # A bar's full rows are one body; a framed icon's (Thermo's "⊞" beside "mag") are its top, middle and bottom.
        if full[-1] - full[0] + 1 > full.size + 1:
            continue
        # Ink off the body (its full rows and one row of fringe) in the interior: a ruler's minor ticks, a glyph's
        # strokes.  Glyphs that touch ("44" sharing a crossbar) have it in most columns, a ruler in a few.
        off_body = component.copy()
        off_body[max(0, full[0] - 1) : full[-1] + 2] = False
        ends = round(thickness) + 1
        interior = off_body[:, ends : box_width - ends].any(axis=0)
        if interior.size and interior.mean() > MAX_OFF_BODY_FRACTION and not _regular_ticks(interior):
            continue
        body = slice(rows.start + int(full[0]), rows.start + int(full[-1]) + 1)
        pieces.append(_Piece(rows, cols, body, thickness, component))
    return pieces


def _regular_ticks(columns: np.ndarray) -> bool:
    """Whether the true runs of ``columns`` are a ruler's ticks: at least five, of one width and evenly spaced (±1 px).

    A bold ruler's ticks may cover half its length, more than
    :data:`MAX_OFF_BODY_FRACTION`; glyphs sharing a row ("44") never leave it so regularly.
    """
    edges = np.diff(columns.astype(np.int8), prepend=0, append=0)
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    if starts.size < 5:
        return False
    # The first and last ticks may be cut by the end columns left out of ``columns``: only the inner ones count.
    widths, spacings = (stops - starts)[1:-1], np.diff(starts)[1:-1]
    return bool(np.ptp(widths) <= 1 and np.ptp(spacings) <= 2)


def _off_body_columns(piece: _Piece) -> np.ndarray:
    """Per column of ``piece``: whether it has ink above or below the body rows."""
    off_body = piece.mask.copy()
    off_body[piece.body.start - piece.rows.start : piece.body.stop - piece.rows.start] = False
    return np.asarray(off_body.any(axis=0))


def _interrupted_by_label(left: _Piece, right: _Piece, ink: np.ndarray, char_height: float) -> bool:
    """Whether two pieces are one bar with its label in between.

    Same row and thickness, lengths equal within a quarter (a label's
    glyph may touch one piece; FreeMono's "200 nm" in a Helios line makes
    pieces of 28 and 34 px) and of at least a character height, ink off the body only at their outer ends (end
    caps, never a glyph's stem) or ticks along both in numbers at most one apart (a
    ruler split by its label: the tick at the gap's one edge may fall in it), a gap of at least a character
    height (room for a label; the arches of "mm" in 8-px print are 2 px apart) and at most
    :data:`MAX_LABEL_GAP` times a piece, and ink filling
    at least half of the gap, centred in it, within a character height of
    the row.
    """
    gap = right.cols.start - left.cols.stop
    longer = max(left.width, right.width)
    if min(left.width, right.width) < char_height or gap < char_height or gap > MAX_LABEL_GAP * longer:
        return False
    if abs(left.row - right.row) > 1 or abs(left.width - right.width) > 0.25 * longer + 2:
        return False
    if abs(left.thickness - right.thickness) > 1:
        return False
    ends = round(left.thickness) + 2
    left_ticks = _tick_count(_off_body_columns(left)[ends:])
    right_ticks = _tick_count(_off_body_columns(right)[: right.width - ends])
    if abs(left_ticks - right_ticks) > 1:
        return False
    reach = max(2, round(char_height))
    between = ink[max(0, left.row - reach) : left.row + reach + 1, left.cols.stop : right.cols.start]
    columns = np.flatnonzero(between.any(axis=0))
    if columns.size == 0:
        return False
    centre = (columns[0] + columns[-1]) / 2
    return bool(abs(centre - (gap - 1) / 2) <= 0.25 * gap and columns[-1] - columns[0] + 1 >= 0.5 * gap)


def _tick_count(columns: np.ndarray) -> int:
    """The number of runs of true values in ``columns`` (the ticks along a piece, from its off-body columns)."""
    flags = columns.astype(np.int8)
    return int(np.count_nonzero(np.diff(flags, prepend=0) == 1))


def _bars(pieces: list[_Piece], ink: _Ink, min_length: float) -> list[list[_Piece]]:
    """The bars among ``pieces`` (sorted by column): pairs interrupted by their label, and pieces of ``min_length``.

    A label's own glyphs that look like pieces ("—", a mono font's "m") lie in
    its pair's gap and are no bar; a piece with a twin just above or below it
    (the strokes of a fixed-width "=") is none either.  A pair's pieces may be stubs thicker than
    a bar alone may be (a filled box with its label inside leaves two ends
    not much longer than high); a bar of one piece must be :attr:`_Piece.slender`.
    """
    # A fixed-width font's "=" is two pieces, one over the other: a bar has no such twin.
    twins = {
        i
        for i, piece in enumerate(pieces)
        for other in pieces
        if other is not piece
        and abs(other.cols.start - piece.cols.start) <= 1
        and abs(other.cols.stop - piece.cols.stop) <= 1
        and 0 < abs(other.row - piece.row) <= ink.char_height
    }
    bars, used = [], set(twins)
    for i, left in enumerate(pieces):
        partner = next(
            (
                j
                for j in range(i + 1, len(pieces))
                if i not in used and j not in used and _interrupted_by_label(left, pieces[j], ink.mask, ink.char_height)
            ),
            None,
        )
        if partner is None:
            continue
        right = pieces[partner]
        bars.append([left, right])
        used |= {i, partner}
        used |= {k for k in range(i + 1, partner) if pieces[k].cols.start >= left.cols.stop}
    bars += [[piece] for k, piece in enumerate(pieces) if k not in used and piece.slender and piece.width >= min_length]
    return bars


def find_segment(grey: np.ndarray, stripe: Stripe) -> Segment | GeometryProblem:
    """Find the one scale marker inside ``stripe`` and measure it (see the module docstring for the conventions)."""
    return _find_segment(_ink(grey, stripe), stripe, grey.shape[1])


def _find_segment(ink: _Ink, stripe: Stripe, image_width: int) -> Segment | GeometryProblem:
    x0, y0, _, _ = stripe.box
    min_length = max(MIN_SEGMENT_PX, MIN_SEGMENT_CHARACTERS * ink.char_height)
    pieces = sorted(
        _pieces(ink.mask, MIN_SEGMENT_PX, MAX_SEGMENT_FRACTION * image_width, max_body_fraction=1.0),
        key=lambda piece: piece.cols.start,
    )
    bars = _bars(pieces, ink, min_length)
    if not bars:
        return GeometryProblem("no_segment", "no long horizontal marker in the stripe")
    if len(bars) > 1:
        return GeometryProblem("multiple_segments", f"{len(bars)} long horizontal markers in the stripe")
    (bar,) = bars
    length, convention = _measure(ink.contrast, ink.full, bar)
    first, last = bar[0], bar[-1]
    row0, row1 = min(piece.rows.start for piece in bar), max(piece.rows.stop for piece in bar)
    boxes = tuple((x0 + p.cols.start, y0 + p.rows.start, x0 + p.cols.stop, y0 + p.rows.stop) for p in bar)
    box = (x0 + first.cols.start, y0 + row0, x0 + last.cols.stop, y0 + row1)
    return Segment(box, y0 + first.row, float(length), boxes, convention)


def _measure(contrast: np.ndarray, full: float, bar: list[_Piece]) -> tuple[float, str]:
    """Length in px of a bar made of ``bar``'s pieces, and the convention used (see the module docstring).

    ``contrast`` is the stripe's contrast against its colour and ``full`` its
    full contrast; faint pixels (:data:`FAINT_FRACTION` of it) connected to
    the bar count with their partial coverage, so that a blurred tick too
    faint to be ink still has its centre measured.
    """
    first, last = bar[0], bar[-1]
    col0, col1 = first.cols.start, last.cols.stop
    left, right = max(0, col0 - 1), min(contrast.shape[1], col1 + 1)
    window = contrast[:, left:right]
    drawn = np.zeros(window.shape, dtype=bool)
    for piece in bar:
        drawn[piece.rows, piece.cols.start - left : piece.cols.stop - left] |= piece.mask
    faint = window >= max(MIN_CONTRAST / 4, FAINT_FRACTION * full)
    labels, _count = ndimage.label(faint | drawn, structure=np.ones((3, 3)))
    touching = np.unique(labels[drawn])
    # The bar's pixels, faint or not, and one px around them: the grey fringe of anti-aliased or blurred strokes.
    support = ndimage.maximum_filter(np.isin(labels, touching[touching > 0]), size=3)
    level = float(np.median(window[first.row][drawn[first.row]]))
    coverage = np.clip(window / max(level, 1e-6), 0.0, 1.0) * support
    # Ticks are the ink above and below the body; what the body's own fringe adds everywhere is the baseline.
    coverage[min(piece.body.start for piece in bar) : max(piece.body.stop for piece in bar)] = 0.0
    off_body = coverage.sum(axis=0)
    ends = round(first.thickness) + 2
    interior = np.concatenate(
        [np.arange(piece.cols.start + ends, piece.cols.stop - ends) - left for piece in bar]
    ).astype(np.int64)
    excess = off_body - (float(np.median(off_body[interior])) if interior.size else 0.0)
    left_tick = _tick_centre(excess, col0 - left, 1, first.thickness)
    right_tick = _tick_centre(excess, col1 - 1 - left, -1, last.thickness)
    if left_tick is not None and right_tick is not None:
        return right_tick - left_tick, "tick centres"
    line = np.clip(contrast[first.row] / max(level, 1e-6), 0.0, 1.0)
    return _half_crossing(line, col1 - 1, step=1) - _half_crossing(line, col0, step=-1), "outer edges"


def _tick_centre(excess: np.ndarray, end: int, step: int, thickness: float) -> float | None:
    """Centre (column, sub-pixel) of the tick at the bar's end column ``end``, going inward by ``step``; or None.

    ``excess`` is each column's ink above and below the bar's body, in px,
    less what the body's fringe adds along the whole bar.  A tick is a run of
    columns each with more than half a px of it, starting between the column
    outside the end and the body's ``thickness`` + 1 columns inside (a rounded
    cap may come first), at most ``thickness`` + 2 columns wide (a blurred
    tick spreads by a column each side) and adding at least 1.5 px of ink.
    Its centre is the centroid of that excess.
    """
    widest = max(3, round(thickness) + 2)
    # From the column just outside the ink (a tick's grey fringe) inward.
    inside = [
        end + step * offset for offset in range(-1, round(thickness) + 2) if 0 <= end + step * offset < excess.size
    ]
    start = next((column for column in inside if excess[column] > 0.5), None)
    if start is None:
        return None
    run = [start]
    while 0 <= run[-1] + step < excess.size and excess[run[-1] + step] > 0.5 and len(run) <= widest:
        run.append(run[-1] + step)
    columns = np.array(run)
    if columns.size > widest or excess[columns].sum() < 1.5:
        return None
    return float((columns * excess[columns]).sum() / excess[columns].sum())


def _half_crossing(coverage: np.ndarray, end: int, step: int) -> float:
    """Sub-pixel position where ``coverage`` falls through 0.5 going outward from column ``end``.

    Pixel ``i`` covers ``[i - 0.5, i + 0.5]``; a crisp segment over columns
    ``a..b-1`` thus measures ``b - a``, and a blurred (anti-aliased, JPEG)
    end still crosses half coverage where the true edge is.
    """
    inside = end
    while 0 <= inside + step < coverage.size and coverage[inside + step] >= 0.5:
        inside += step
    outside = inside + step
    if not 0 <= outside < coverage.size:
        return inside + 0.5 * step
    high, low = coverage[inside], coverage[outside]
    fraction = (high - 0.5) / (high - low) if high > low else 0.5
    return inside + step * fraction


def _text_mask(ink: _Ink, stripe: Stripe, segment: Segment | None) -> np.ndarray:
    """The stripe's text ink: the ink without the segment's pieces, grid lines and frames."""
    text = ink.mask & ~ink.lines
    x0, y0, _, _ = stripe.box
    for px0, py0, px1, py1 in segment.pieces if segment is not None else ():
        text[max(0, py0 - y0 - 1) : py1 - y0 + 1, max(0, px0 - x0 - 1) : px1 - x0 + 1] = False
    return text


def text_boxes(grey: np.ndarray, stripe: Stripe, segment: Segment | None) -> list[tuple[int, int, int, int]]:
    """Word or phrase boxes of the stripe's text (the segment excluded), top to bottom, left to right."""
    return _text_boxes(_ink(grey, stripe), stripe, segment)


def _text_boxes(ink: _Ink, stripe: Stripe, segment: Segment | None) -> list[Box]:
    mask = _text_mask(ink, stripe, segment)
    if not mask.any():
        return []
    x0, y0, _, _ = stripe.box
    reach = max(2, round(0.6 * ink.char_height))
    # Words are joined along their line, never across a table's grid line.
    joined = ndimage.maximum_filter1d(mask, size=2 * reach + 1, axis=1) & ~ink.vertical_lines
    labels, _ = ndimage.label(joined)
    boxes = []
    for rows, cols in ndimage.find_objects(labels):
        inner = mask[rows, cols]
        if inner.sum() < 6:
            continue
        ys, xs = np.nonzero(inner)
        box_width, box_height = xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
        if box_width > 0.6 * mask.shape[1] or box_height <= 2 or box_width <= 2:
            continue  # a rule along the stripe or a stub of a frame, not text
        if box_height > MAX_LINE_CHARACTERS * ink.char_height:
            continue  # a logo or an icon, taller than a line of text
        boxes.append(
            (
                x0 + cols.start + int(xs.min()),
                y0 + rows.start + int(ys.min()),
                x0 + cols.start + int(xs.max()) + 1,
                y0 + rows.start + int(ys.max()) + 1,
            )
        )
    return sorted(boxes, key=lambda box: (box[1], box[0]))


@dataclass(frozen=True)
class StripeLayout:
    """What the scale reader needs from one stripe, from one pass over its ink.

    ``segment`` is the measured marker or why there is none, ``boxes`` the
    text boxes (image px), ``char_height`` the height of the tall glyphs in
    px, and ``cleaned`` the stripe's pixels (``uint8``, the stripe box's
    shape) with the segment, grid lines and frames painted in the stripe
    colour, so that OCR crops hold text alone (a table line next to a value
    is not read as a ``1``).
    """

    stripe: Stripe
    segment: Segment | GeometryProblem
    boxes: list[Box]
    char_height: float
    cleaned: np.ndarray


def analyse_stripe(grey: np.ndarray, stripe: Stripe) -> StripeLayout:
    """Segment, text boxes, character height and the cleaned stripe of ``stripe`` in ``grey``."""
    ink = _ink(grey, stripe)
    return _layout(grey, _FoundStripe(stripe, ink, _find_segment(ink, stripe, grey.shape[1])))


def analyse_image(grey: np.ndarray) -> StripeLayout | GeometryProblem:
    """:func:`find_stripe` then :func:`analyse_stripe`, measuring the chosen stripe's segment once, not twice."""
    found = _find_stripe(grey)
    return found if isinstance(found, GeometryProblem) else _layout(grey, found)


def _layout(grey: np.ndarray, band: _FoundStripe) -> StripeLayout:
    """The :class:`StripeLayout` of a stripe whose ink and segment are known."""
    stripe, ink, segment = band.stripe, band.ink, band.segment
    found = segment if isinstance(segment, Segment) else None
    text = _text_mask(ink, stripe, found)
    x0, y0, x1, y1 = stripe.box
    cleaned = grey[y0:y1, x0:x1].copy()
    cleaned[ndimage.maximum_filter(ink.mask & ~text, size=3) & ~text] = np.uint8(round(stripe.colour))
    return StripeLayout(stripe, segment, _text_boxes(ink, stripe, found), ink.char_height, cleaned)


def label_candidates(segment: Segment, boxes: list[Box]) -> list[tuple[str, Box]]:
    """Boxes that may hold the segment's value, nearest first, each with its side.

    Inside: the box lies within the segment's span, across its row (a label
    that interrupts the bar).  Above or below: at least half of the box, or
    of the segment when the box is wider, lies over the segment's span.  Left or right: the box straddles the segment's
    row.  Distance is the gap in px between box and segment (0 inside).
    """
    sx0, sy0, sx1, sy1 = segment.box
    ranked = []
    for box in boxes:
        bx0, by0, bx1, by1 = box
        overlap = max(0, min(bx1, sx1) - max(bx0, sx0))
        over_span = overlap > 0 and overlap >= 0.5 * min(bx1 - bx0, sx1 - sx0)
        level = by0 - (by1 - by0) / 2 <= segment.row <= by1 + (by1 - by0) / 2
        if bx0 >= sx0 and bx1 <= sx1 and by0 <= segment.row < by1:
            ranked.append((0, "inside", box))
        elif over_span and by1 <= sy0 + 1:
            ranked.append((sy0 - by1, "above", box))
        elif over_span and by0 >= sy1 - 1:
            ranked.append((by0 - sy1, "below", box))
        elif level and bx1 <= sx0 + 1:
            ranked.append((sx0 - bx1, "left", box))
        elif level and bx0 >= sx1 - 1:
            ranked.append((bx0 - sx1, "right", box))
    return [(side, box) for _, side, box in sorted(ranked, key=lambda item: item[0])]
