"""Finding the data bar, its scale segment and its text boxes in a grey image.

Pure numpy/scipy over a 2-D ``uint8`` array; no OCR, no files.  It follows
the thesis' algorithm (section 2.3) and makes each step measurable:

1. **Stripe** (:func:`find_stripe`).  In the lower 40 % of the image look for
   flat squares (grey-level standard deviation under :data:`FLAT_STD`); the
   most common mean of those is the probable stripe colour.  Rows where most
   pixels have that colour form runs; a run that is wide (its background
   spans ≥ 90 % of the width), not too tall (≤ 30 % of the image), and holds
   some content (text or a segment) is a stripe.  None is ``no_stripe``;
   more than one is ``multiple_stripes`` rather than a guess.
2. **Segment** (:func:`find_segment`).  Foreground = pixels far from the
   stripe colour (dark stripes are handled by working on the absolute
   difference, which is the thesis' "invert dark stripes").  Connected
   components that are long (≥ 4 % of the image width, ≤ 60 % of it, so a
   rule across the whole stripe is not taken) and whose longest row covers
   ≥ 90 % of their width are segments: plain lines, filled rectangles,
   brackets ``|—|`` and tick rulers alike.  The length is measured on that
   row as the sum of per-pixel coverage, so anti-aliased or JPEG-blurred ends
   count fractionally (sub-pixel); for brackets and rulers the end ticks lie
   on the row and count, as the thesis' segment ends do.
3. **Text boxes** (:func:`text_boxes`).  The remaining foreground is dilated
   horizontally by about half a character height and labelled: each component
   is a word or phrase box.  :func:`label_candidates` ranks the boxes that
   can hold the segment's value — above, below, left or right of it — by
   distance.

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
#: The tallest plausible stripe, as a fraction of the image height.
MAX_STRIPE_FRACTION = 0.3
#: Foreground needs at least this grey-level contrast against the stripe.
MIN_CONTRAST = 40
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
    """The scale marker: bounding box, the row measured and its length in px (sub-pixel)."""

    box: tuple[int, int, int, int]
    row: int
    length_px: float


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


def find_stripe(grey: np.ndarray) -> Stripe | GeometryProblem:
    """Locate the data bar in the lower part of ``grey`` (2-D uint8)."""
    height, width = grey.shape
    if height < 16 or width < 16:
        return GeometryProblem("no_stripe", f"image of {width}×{height} px is too small to hold a data bar")
    top = int(height * (1 - SEARCH_FRACTION))
    side = max(4, min(height, width) // 96)
    means, stds = _flat_squares(grey[top:], side)
    candidates = _candidate_colours(means, stds, min_squares=max(3, width // side // 4))
    if not candidates:
        return GeometryProblem("no_stripe", "no flat area in the lower part of the image")
    for colour, tolerance in candidates[:3]:
        stripes = _stripes_of_colour(grey, top, colour, tolerance)
        if len(stripes) > 1:
            spans = ", ".join(f"rows {y0}-{y1}" for y0, y1 in stripes)
            return GeometryProblem("multiple_stripes", f"{len(stripes)} candidate stripes ({spans})")
        if stripes:
            break
    else:
        return GeometryProblem("no_stripe", "no wide uniform band with text or a marker in the lower part")
    y0, y1 = stripes[0]
    # A rule drawn in the text colour along the stripe's top edge belongs to the stripe: a few
    # rows right above it, contrasting with the stripe colour and as flat as the stripe itself.
    while y0 > 0 and stripes[0][0] - y0 < max(3, (y1 - y0) // 6):
        row = grey[y0 - 1].astype(np.float32)
        if row.std() >= max(FLAT_STD, tolerance / 2) or abs(row.mean() - colour) < MIN_CONTRAST:
            break
        y0 -= 1
    return Stripe((0, y0, width, y1), colour)


def _stripes_of_colour(grey: np.ndarray, top: int, colour: float, tolerance: float) -> list[tuple[int, int]]:
    """Row spans ``[y0, y1)`` below ``top`` that qualify as a stripe of background ``colour``."""
    height, width = grey.shape
    region = grey[top:]
    background = np.abs(region.astype(np.int16) - colour) <= tolerance
    row_is_stripe = background.mean(axis=1) >= ROW_BACKGROUND_FRACTION
    stripes = []
    # Rows crossed by a tall marker or dense text may dip below the background fraction: bridge them.
    for start, end in _runs(row_is_stripe, max_gap=max(2, height // 80)):
        covered = background[start:end].any(axis=0)
        span = np.flatnonzero(covered)
        if end - start < max(4, height // 100) or end - start > MAX_STRIPE_FRACTION * height or span.size == 0:
            continue
        if span[-1] - span[0] + 1 < 0.9 * width or covered.mean() < 0.9:
            continue
        content = np.abs(region[start:end].astype(np.int16) - colour) >= MIN_CONTRAST
        if content.sum() < 10:
            continue
        stripes.append((top + start, top + end))
    return stripes


def foreground(grey: np.ndarray, stripe: Stripe) -> tuple[np.ndarray, np.ndarray, float]:
    """Contrast against the stripe colour inside the stripe, the foreground mask, and full contrast."""
    x0, y0, x1, y1 = stripe.box
    contrast = np.abs(grey[y0:y1, x0:x1].astype(np.float32) - stripe.colour)
    full = float(np.percentile(contrast, 99.7))
    if full < MIN_CONTRAST:
        return contrast, np.zeros(contrast.shape, dtype=bool), full
    return contrast, contrast >= 0.5 * full, full


def find_segment(grey: np.ndarray, stripe: Stripe) -> Segment | GeometryProblem:
    """Find the one scale marker inside ``stripe`` and measure it."""
    contrast, mask, full = foreground(grey, stripe)
    x0, y0, _, y1 = stripe.box
    width = grey.shape[1]
    labels, _count = ndimage.label(mask, structure=np.ones((3, 3)))
    candidates = []
    for index, slices in enumerate(ndimage.find_objects(labels), start=1):
        rows, cols = slices
        box_width, box_height = cols.stop - cols.start, rows.stop - rows.start
        if not (0.04 * width <= box_width <= 0.6 * width) or box_height > 0.8 * (y1 - y0):
            continue
        component = labels[slices] == index
        row_cover = component.sum(axis=1)
        best = int(np.argmax(row_cover))
        if row_cover[best] < 0.9 * box_width:
            continue
        candidates.append((rows, cols, best))
    if not candidates:
        return GeometryProblem("no_segment", "no long horizontal marker in the stripe")
    if len(candidates) > 1:
        return GeometryProblem("multiple_segments", f"{len(candidates)} long horizontal markers in the stripe")
    rows, cols, best = candidates[0]
    row = rows.start + best
    interior = contrast[row, cols.start + 1 : cols.stop - 1]
    level = float(np.median(interior)) if interior.size else full
    coverage = np.clip(contrast[row] / max(level, 1e-6), 0.0, 1.0)
    left = _half_crossing(coverage, cols.start, step=-1)
    right = _half_crossing(coverage, cols.stop - 1, step=1)
    return Segment((x0 + cols.start, y0 + rows.start, x0 + cols.stop, y0 + rows.stop), y0 + row, float(right - left))


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


def text_boxes(grey: np.ndarray, stripe: Stripe, segment: Segment | None) -> list[tuple[int, int, int, int]]:
    """Word or phrase boxes of the stripe's text (the segment excluded), top to bottom, left to right."""
    contrast, _, full = foreground(grey, stripe)
    # A lower threshold than the segment's keeps thin anti-aliased strokes of small text whole.
    mask = contrast >= max(MIN_CONTRAST / 2, 0.35 * full)
    x0, y0, _, _ = stripe.box
    if segment is not None:
        sx0, sy0, sx1, sy1 = segment.box
        mask[max(0, sy0 - y0 - 1) : sy1 - y0 + 1, max(0, sx0 - x0 - 1) : sx1 - x0 + 1] = False
    if not mask.any():
        return []
    labels, _ = ndimage.label(mask)
    glyph_heights = [
        slices[0].stop - slices[0].start
        for index, slices in enumerate(ndimage.find_objects(labels), start=1)
        if (labels[slices] == index).sum() >= 4
    ]
    # Digits and capitals are the tall glyphs; specks, dots and lower-case letters are shorter.
    char_height = float(np.percentile(glyph_heights, 90)) if glyph_heights else 8.0
    reach = max(2, round(0.6 * char_height))
    joined = ndimage.binary_dilation(mask, structure=np.ones((1, 2 * reach + 1), dtype=bool))
    labels, _ = ndimage.label(joined)
    boxes = []
    for rows, cols in ndimage.find_objects(labels):
        inner = mask[rows, cols]
        if inner.sum() < 6:
            continue
        ys, xs = np.nonzero(inner)
        if xs.max() - xs.min() + 1 > 0.6 * mask.shape[1] or ys.max() - ys.min() + 1 <= 2:
            continue  # a rule along the stripe, not text
        boxes.append(
            (
                x0 + cols.start + int(xs.min()),
                y0 + rows.start + int(ys.min()),
                x0 + cols.start + int(xs.max()) + 1,
                y0 + rows.start + int(ys.max()) + 1,
            )
        )
    return sorted(boxes, key=lambda box: (box[1], box[0]))


def label_candidates(segment: Segment, boxes: list[Box]) -> list[tuple[str, Box]]:
    """Boxes that may hold the segment's value, nearest first, each with its side: above/below/left/right.

    Above or below: at least half of the box lies over the segment's span.
    Left or right: the box straddles the segment's row.  Distance is the gap
    in px between box and segment.
    """
    sx0, sy0, sx1, sy1 = segment.box
    ranked = []
    for box in boxes:
        bx0, by0, bx1, by1 = box
        overlap = max(0, min(bx1, sx1) - max(bx0, sx0))
        over_span = overlap >= 0.5 * (bx1 - bx0)
        level = by0 - (by1 - by0) / 2 <= segment.row <= by1 + (by1 - by0) / 2
        if over_span and by1 <= sy0 + 1:
            ranked.append((sy0 - by1, "above", box))
        elif over_span and by0 >= sy1 - 1:
            ranked.append((by0 - sy1, "below", box))
        elif level and bx1 <= sx0 + 1:
            ranked.append((sx0 - bx1, "left", box))
        elif level and bx0 >= sx1 - 1:
            ranked.append((bx0 - sx1, "right", box))
    return [(side, box) for _, side, box in sorted(ranked, key=lambda item: item[0])]
