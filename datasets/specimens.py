"""Procedural SEM-like images of the 36 Hierarchical SEM leaf categories.

The demo corpus needs many labelled, realistic-looking scanning-electron
micrographs without shipping the real data set.  :func:`draw_specimen` draws
one: a small drawing function per leaf category builds a *relief* map (a
height/material map in ``[0, 1]``, 0 = deep substrate, 1 = top surface) at a
working resolution, and the shared secondary-electron renderer turns it into a
grey image: brightness rises with height and, strongly, with surface slope
(bright rims on edges), a shading gradient runs across the frame, focus is
sometimes slightly off, and the full-resolution image gets shot noise,
per-scan-line gain and sub-pixel line jitter.

Every length is a fraction of the image's shorter side, so one category looks
alike at every resolution.  Each category differs from the others by
construction (what is drawn), and varies strongly within itself (density,
size, rotation, magnification, contrast, noise, brightness).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage, special

from semcurate.datasets.taxonomy import leaf_paths

MIN_SIDE = 16
_WORKING_LONG_SIDE = 640  # relief maps are drawn at most this large, then upsampled
_F32 = np.float32


# ---------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------


def _coords(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel row and column coordinates as broadcastable ``(h, 1)`` and ``(1, w)`` arrays."""
    return (np.arange(height, dtype=_F32)[:, None], np.arange(width, dtype=_F32)[None, :])


def _rotated_coords(height: int, width: int, angle: float, centre: tuple[float, float] | None = None):
    """Coordinates ``(u, v)`` of every pixel in a frame rotated by ``angle`` radians about ``centre`` (x, y)."""
    y, x = _coords(height, width)
    cx, cy = centre if centre is not None else (width / 2, height / 2)
    cos, sin = _F32(math.cos(angle)), _F32(math.sin(angle))
    x = x - _F32(cx)
    y = y - _F32(cy)
    return x * cos + y * sin, y * cos - x * sin


def _centred_phase(x: np.ndarray, period: float) -> np.ndarray:
    """``x`` folded into ``[-period / 2, period / 2)``: signed offset from the nearest multiple of ``period``."""
    step = _F32(period)
    return x - np.floor(x / step + _F32(0.5)) * step


def _length(dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    return np.sqrt(dx * dx + dy * dy)


def _smooth_noise(rng: np.random.Generator, height: int, width: int, feature_px: float) -> np.ndarray:
    """Smooth random field of about unit variance whose bumps are ``feature_px`` pixels apart."""
    feature_px = max(feature_px, 1.0)
    knots = rng.standard_normal((math.ceil(height / feature_px) + 2, math.ceil(width / feature_px) + 2), dtype=_F32)
    return np.asarray(Image.fromarray(knots, mode="F").resize((width, height), Image.Resampling.BICUBIC)) * _F32(1.2)


def _canvas(height: int, width: int, fill: float = 0.0) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("F", (width, height), float(fill))
    return image, ImageDraw.Draw(image)


def _relief(image: Image.Image) -> np.ndarray:
    return np.array(image, dtype=_F32)


def _smooth_paths(rng, starts, headings, step: float, points: int, wiggle: float) -> np.ndarray:
    """Random smooth curves, ``(count, points, 2)`` in (x, y), from ``starts`` along ``headings``."""
    turns = rng.normal(0.0, wiggle, (len(starts), points))
    angles = np.asarray(headings)[:, None] + np.cumsum(turns, axis=1)
    steps = step * np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    return np.asarray(starts)[:, None, :] + np.cumsum(steps, axis=1)


def _random_starts(rng, count: int, height: int, width: int, margin: float) -> np.ndarray:
    return np.stack([rng.uniform(-margin, width + margin, count), rng.uniform(-margin, height + margin, count)], axis=1)


def _stamp_domes(relief, xs, ys, radii, heights, *, carve: bool = False) -> None:
    """Raise round domes of the given ``heights`` in ``relief``, in place; with ``carve``, sink pits that deep."""
    h, w = relief.shape
    for x, y, r, top in zip(xs, ys, radii, heights, strict=True):
        x0, x1 = max(0, int(x - r)), min(w, int(x + r) + 2)
        y0, y1 = max(0, int(y - r)), min(h, int(y + r) + 2)
        if x0 >= x1 or y0 >= y1:
            continue
        yy = np.arange(y0, y1, dtype=_F32)[:, None] - _F32(y)
        xx = np.arange(x0, x1, dtype=_F32)[None, :] - _F32(x)
        dome = np.sqrt(np.clip(1.0 - (xx * xx + yy * yy) / _F32(r * r), 0.0, 1.0))
        patch = relief[y0:y1, x0:x1]
        if carve:
            np.minimum(patch, 1.0 - np.sqrt(dome) * _F32(top), out=patch)
        else:
            np.maximum(patch, dome * _F32(top) + (dome > 0) * _F32(top * 0.3), out=patch)


def _voronoi(rng, height: int, width: int, pitch: float) -> tuple[np.ndarray, np.ndarray]:
    """Distances to the nearest and second-nearest of jittered seeds about ``pitch`` pixels apart."""
    pitch = max(pitch, 2.0)
    rows, cols = math.ceil(height / pitch) + 2, math.ceil(width / pitch) + 2
    seed_y = ((np.arange(rows)[:, None] - 1 + rng.uniform(0.05, 0.95, (rows, cols))) * pitch).astype(_F32).ravel()
    seed_x = ((np.arange(cols)[None, :] - 1 + rng.uniform(0.05, 0.95, (rows, cols))) * pitch).astype(_F32).ravel()
    y, x = _coords(height, width)
    cell_row = (y / _F32(pitch)).astype(np.int64) + 1
    cell_col = (x / _F32(pitch)).astype(np.int64) + 1
    nearest = np.full((height, width), np.inf, dtype=_F32)
    second = np.full((height, width), np.inf, dtype=_F32)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            index = (cell_row + dr) * cols + (cell_col + dc)
            dist = _length(np.take(seed_x, index) - x, np.take(seed_y, index) - y)
            np.minimum(second, np.maximum(nearest, dist), out=second)
            np.minimum(nearest, dist, out=nearest)
    return nearest, second


def _lattice_offsets(u, v, pitch: float, hexagonal: bool, rng, disorder: float):
    """Offsets ``(du, dv)`` of every pixel from its lattice site (square or hexagonal), with jittered sites."""
    row_pitch = pitch * math.sqrt(3) / 2 if hexagonal else pitch
    row = np.floor(v / _F32(row_pitch) + 0.5)
    shift = (row - 2 * np.floor(row / 2)) * _F32(pitch / 2) if hexagonal else _F32(0)
    col = np.floor((u - shift) / _F32(pitch) + 0.5)
    du = u - shift - col * _F32(pitch)
    dv = v - row * _F32(row_pitch)
    if disorder > 0:
        table = 31
        jitter = rng.normal(0.0, disorder * pitch, (2, table * table)).astype(_F32)
        index = (row * table + col).astype(np.int64) % (table * table)
        du = du - np.take(jitter[0], index)
        dv = dv - np.take(jitter[1], index)
    return du, dv


def _soft_step(signed_distance, width: float):
    """0 outside, 1 inside a shape given the signed distance (positive inside), over ``width`` pixels."""
    return np.clip(signed_distance / _F32(max(width, 0.5)) + 0.5, 0.0, 1.0)


def _prism(draw, top: np.ndarray, drop: tuple[float, float], top_value: float, side_value: float, light: float):
    """Draw a prism seen tilted: visible side faces from ``top`` extruded by ``drop``, then the top face.

    Side faces are shaded by the direction they face (``light`` is the brightest direction, radians).
    """
    drop_x, drop_y = drop
    following = np.roll(top, -1, axis=0)
    winding = np.sign(np.sum(top[:, 0] * following[:, 1] - following[:, 0] * top[:, 1])) or 1.0
    for (ax, ay), (bx, by) in zip(top.tolist(), following.tolist(), strict=True):
        normal_x, normal_y = winding * (by - ay), -winding * (bx - ax)  # outward
        if normal_x * drop_x + normal_y * drop_y <= 0:  # faces away from the viewer
            continue
        value = side_value * (0.7 + 0.3 * math.cos(math.atan2(normal_y, normal_x) - light))
        face = [ax, ay, bx, by, bx + drop_x, by + drop_y, ax + drop_x, ay + drop_y]
        draw.polygon(face, fill=value)
    draw.polygon(top.ravel().tolist(), fill=float(top_value))


def _polygon(centre, radius, sides: int, angle: float, squash: float = 1.0) -> np.ndarray:
    turns = angle + np.arange(sides) * 2 * np.pi / sides
    return np.stack([centre[0] + radius * np.cos(turns), centre[1] + squash * radius * np.sin(turns)], axis=1)


# ---------------------------------------------------------------------------
# One drawing function per leaf: (rng, height, width) -> relief in [0, 1]
# ---------------------------------------------------------------------------


def _biological(rng, h, w):
    s = min(h, w)
    bodies = _smooth_noise(rng, h, w, s * rng.uniform(0.18, 0.4))
    folds = _smooth_noise(rng, h, w, s * rng.uniform(0.03, 0.08))
    membrane = 0.5 + 0.5 * np.tanh(rng.uniform(2.0, 5.0) * (bodies - _F32(rng.uniform(-0.5, 0.4))))
    crests = (1.0 - np.minimum(np.abs(folds), 1.0)) ** 4
    return membrane * (0.55 + 0.45 * crests) + 0.08 * folds


def _fibres(rng, h, w):
    s = min(h, w)
    image, draw = _canvas(h, w, 0.0)
    count = int(rng.integers(20, 60))
    step = s * 0.02
    paths = _smooth_paths(
        rng,
        _random_starts(rng, count, h, w, 0.3 * s) - step * 40,
        rng.uniform(0, 2 * np.pi, count) if rng.random() < 0.5 else rng.normal(rng.uniform(0, np.pi), 0.5, count),
        step,
        int(2.5 * max(h, w) / step),
        rng.uniform(0.02, 0.06),
    )
    widths = s * rng.uniform(0.012, 0.04, count) * rng.uniform(0.7, 1.3)
    for layer, (path, width) in enumerate(zip(paths, widths, strict=True)):
        top = 0.35 + 0.55 * (layer + 1) / count
        draw.line(path.ravel().tolist(), fill=top, width=max(1, round(width)))
        draw.line(path.ravel().tolist(), fill=top + 0.1, width=max(1, round(width * 0.45)))
    return _relief(image)


def _cracked_film(rng, h, w):
    s = min(h, w)
    pitch = s * rng.uniform(0.1, 0.3)
    nearest, second = _voronoi(rng, h, w, pitch)
    gap = second - nearest + _F32(pitch * 0.15) * _smooth_noise(rng, h, w, pitch * 0.5)
    crack = pitch * rng.uniform(0.03, 0.09)
    plate = _soft_step(gap - _F32(crack), crack)
    curl = np.exp(-gap / _F32(crack * 2.5))
    return 0.1 + 0.7 * plate + 0.25 * plate * curl + 0.04 * _smooth_noise(rng, h, w, s * 0.05)


def _particle_film(rng, h, w):
    s = min(h, w)
    pitch = s * rng.uniform(0.018, 0.05)
    nearest, _ = _voronoi(rng, h, w, pitch)
    radius = pitch * rng.uniform(0.45, 0.7)
    grains = np.sqrt(np.clip(1.0 - (nearest / _F32(radius)) ** 2, 0.0, 1.0))
    return 0.3 + 0.6 * grains + 0.1 * _smooth_noise(rng, h, w, s * 0.3)


def _smooth_film(rng, h, w):
    s = min(h, w)
    relief = 0.5 + 0.05 * _smooth_noise(rng, h, w, s * rng.uniform(0.3, 0.8))
    image, draw = _canvas(h, w, 0.0)
    for _ in range(int(rng.integers(0, 4))):
        x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
        angle, length = rng.uniform(0, np.pi), s * rng.uniform(0.3, 1.5)
        end = (x0 + length * math.cos(angle), y0 + length * math.sin(angle))
        draw.line([(x0, y0), end], fill=-0.25, width=max(1, round(s * 0.004)))
    relief += _relief(image)
    specks = int(rng.integers(2, 25))
    _stamp_domes(
        relief,
        rng.uniform(0, w, specks),
        rng.uniform(0, h, specks),
        s * rng.uniform(0.003, 0.015, specks),
        rng.uniform(0.7, 1.0, specks),
    )
    return relief


def _mems_3d_edge(rng, h, w):
    s = min(h, w)
    image, draw = _canvas(h, w, 0.05)
    mask, mask_draw = _canvas(h, w, 0.0)
    angle = rng.uniform(-0.5, 0.5)
    along, up = np.array([math.cos(angle), math.sin(angle)]), np.array([math.sin(angle), -math.cos(angle)])
    front = np.array([w * rng.uniform(0.3, 0.7), h * rng.uniform(0.35, 0.6)])
    left, right = 3 * max(h, w), s * rng.uniform(0.2, 1.5) if rng.random() < 0.5 else 3 * max(h, w)
    top = np.array(
        [
            front - along * left,
            front + along * right,
            front + along * right + up * 3 * s,
            front - along * left + up * 3 * s,
        ]
    )
    drop = (s * rng.uniform(-0.15, 0.15), s * rng.uniform(0.15, 0.4))
    light = rng.uniform(0, 2 * np.pi)
    _prism(draw, top, drop, 0.5, 0.95, light)
    _prism(mask_draw, top, drop, 0.0, 1.0, light)
    sidewall = _relief(mask) > 0.3
    striations = _smooth_noise(rng, 2, w, s * 0.008)[:1]
    return _relief(image) + sidewall * (0.1 * striations) + 0.03 * _smooth_noise(rng, h, w, s * 0.05)


def _close_up_line(rng, h, w):
    s = min(h, w)
    u, _v = _rotated_coords(h, w, rng.uniform(0, np.pi))
    pitch = s * rng.uniform(0.35, 0.8)
    duty = rng.uniform(0.35, 0.65)
    rough = _smooth_noise(rng, h, w, s * 0.03) * _F32(s * rng.uniform(0.005, 0.015))
    phase = _centred_phase(u + rough, pitch)
    line = _soft_step(_F32(duty * pitch / 2) - np.abs(phase), s * 0.01)
    grain = _smooth_noise(rng, h, w, s * rng.uniform(0.01, 0.03))
    return 0.15 + 0.65 * line + 0.06 * grain * (0.5 + line)


def _electrode(rng, h, w):
    s = min(h, w)
    angle = rng.choice([0.0, np.pi / 2]) + rng.normal(0, 0.15)
    u, v = _rotated_coords(h, w, angle, (w * rng.uniform(0.4, 0.6), h * rng.uniform(0.4, 0.6)))
    pitch = s * rng.uniform(0.06, 0.16)
    finger = pitch * rng.uniform(0.25, 0.45)
    span = s * rng.uniform(0.5, 0.9)
    gap = pitch * rng.uniform(0.4, 1.0)
    index = np.floor(u / _F32(pitch) + 0.5)
    in_finger = np.abs(u - index * _F32(pitch)) < _F32(finger / 2)
    from_top = (index - 2 * np.floor(index / 2)) == 0
    reach = (from_top & (v < _F32(span / 2 - gap))) | (~from_top & (v > _F32(-span / 2 + gap)))
    bars = np.abs(v) > _F32(span / 2)
    metal = (in_finger & reach & (np.abs(v) <= span / 2)) | bars
    return 0.15 + 0.6 * metal.astype(_F32) + 0.03 * _smooth_noise(rng, h, w, s * 0.02)


def _microfluidic(rng, h, w):
    s = min(h, w)
    image, draw = _canvas(h, w, 0.8)
    width = s * rng.uniform(0.04, 0.1)
    turns = int(rng.integers(2, 6))
    pitch = s * rng.uniform(0.12, 0.25)
    run = s * rng.uniform(0.4, 0.8)
    xs, ys = [], []
    for k in range(turns + 1):
        x = k * pitch
        ys_pair = (0.0, run) if k % 2 == 0 else (run, 0.0)
        xs += [x, x]
        ys += list(ys_pair)
    points = np.stack([xs, ys], axis=1) - np.array([turns * pitch / 2, run / 2])
    angle = rng.uniform(0, 2 * np.pi)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    points = points @ rotation.T + np.array([w / 2, h / 2]) + rng.normal(0, s * 0.05, 2)
    lead_in = points[0] - (points[1] - points[0]) * 2
    lead_out = points[-1] + (points[-1] - points[-2]) * 2
    path = np.vstack([lead_in, points, lead_out])
    draw.line(path.ravel().tolist(), fill=0.1, width=max(1, round(width)), joint="curve")
    for end in (points[0], points[-1]):
        radius = s * rng.uniform(0.07, 0.16)
        draw.ellipse([end[0] - radius, end[1] - radius, end[0] + radius, end[1] + radius], fill=0.1)
    return _relief(image) + 0.04 * _smooth_noise(rng, h, w, s * 0.02)


def _waveguide(rng, h, w):
    s = min(h, w)
    u, v = _rotated_coords(h, w, rng.uniform(0, np.pi))
    relief = np.full((h, w), 0.2, dtype=_F32)
    for _ in range(int(rng.integers(1, 3))):
        offset = s * rng.uniform(-0.3, 0.3)
        bend = s * rng.uniform(-0.25, 0.25) * (rng.random() < 0.6)
        centre_line = _F32(offset) + _F32(bend) * 0.5 * (1 + np.tanh(u / _F32(s * 0.15)))
        half = s * rng.uniform(0.01, 0.03)
        taper = _F32(half) * (1 + rng.uniform(0, 2.0) * 0.5 * (1 + np.tanh(-u / _F32(s * 0.2))))
        ridge = _soft_step(taper - np.abs(v - centre_line), s * 0.004)
        np.maximum(relief, 0.2 + 0.7 * ridge, out=relief)
    return relief + 0.02 * _smooth_noise(rng, h, w, s * 0.02)


def _draw_wires(rng, h, w, count, width_fraction, length_fraction, wiggle, margin):
    s = min(h, w)
    image, draw = _canvas(h, w, 0.0)
    step = s * 0.015
    points = max(2, int(length_fraction * s / step))
    paths = _smooth_paths(
        rng, _random_starts(rng, count, h, w, margin * s), rng.uniform(0, 2 * np.pi, count), step, points, wiggle
    )
    widths = s * width_fraction * rng.uniform(0.7, 1.3, count)
    for layer, (path, width) in enumerate(zip(paths, widths, strict=True)):
        draw.line(path.ravel().tolist(), fill=0.4 + 0.6 * (layer + 1) / count, width=max(1, round(width)))
    return _relief(image)


def _entangled_nanowires(rng, h, w):
    count = int(rng.integers(120, 260))
    wires = _draw_wires(rng, h, w, count, rng.uniform(0.004, 0.009), rng.uniform(0.4, 1.0), 0.12, 0.2)
    return 0.1 + 0.9 * wires


def _few_nanowires(rng, h, w):
    s = min(h, w)
    count = int(rng.integers(3, 9))
    wires = _draw_wires(rng, h, w, count, rng.uniform(0.008, 0.018), rng.uniform(0.25, 0.6), 0.03, -0.1)
    substrate = 0.15 + 0.04 * _smooth_noise(rng, h, w, s * 0.1)
    return np.maximum(substrate, wires)


def _individual_nanowire(rng, h, w):
    s = min(h, w)
    u, v = _rotated_coords(h, w, rng.uniform(0, np.pi), (w * rng.uniform(0.35, 0.65), h * rng.uniform(0.35, 0.65)))
    half = s * rng.uniform(0.06, 0.16)
    along = u + _F32(s * rng.uniform(-0.3, 0.2))
    distance = np.abs(v + _F32(rng.uniform(-0.002, 0.002)) * u * u / _F32(s))
    facet = half * rng.uniform(0.3, 0.6)
    profile = np.clip((_F32(half) - distance) / _F32(half - facet), 0.0, 1.0)
    body = profile * (along < 0)
    tip = np.sqrt(np.clip(1.0 - (along**2 + distance**2) / _F32(half * half * 1.3), 0.0, 1.0))
    wire = np.maximum(body, tip)
    return 0.12 + 0.75 * wire + 0.04 * _smooth_noise(rng, h, w, s * 0.05)


def _forest_crust(rng, h, w):
    s = min(h, w)
    pitch = s * rng.uniform(0.08, 0.22)
    nearest, second = _voronoi(rng, h, w, pitch)
    clump = np.clip((second - nearest) / _F32(pitch * rng.uniform(0.25, 0.5)), 0.0, 1.0)
    tips = _smooth_noise(rng, h, w, s * rng.uniform(0.006, 0.012))
    return 0.05 + 0.7 * np.sqrt(clump) + 0.22 * np.abs(tips) * clump


def _forest_parallel(rng, h, w):
    s = min(h, w)
    image, draw = _canvas(h, w, 0.05)
    tilt = rng.normal(0, 0.25) + np.pi / 2 * (rng.random() < 0.25)
    direction = np.array([math.sin(tilt), -math.cos(tilt)])
    across = np.array([direction[1] * -1, direction[0]])
    count = int(rng.integers(60, 200))
    base_offset = rng.uniform(0.5, 1.2) * s
    positions = rng.uniform(-1.0, 1.0, count) * max(h, w)
    lengths = s * rng.uniform(0.4, 1.2) * rng.uniform(0.7, 1.0, count)
    centre = np.array([w / 2, h / 2]) - direction * base_offset * 0.5
    width = max(1, round(s * rng.uniform(0.004, 0.01)))
    for position, length in zip(positions, lengths, strict=True):
        base = centre + across * position
        angle_noise = rng.normal(0, 0.03)
        wire = direction + across * angle_noise
        tip = base + wire * length
        draw.line([tuple(base), tuple(tip)], fill=float(rng.uniform(0.5, 1.0)), width=width)
    return _relief(image)


def _dispersed(rng, h, w):
    s = min(h, w)
    count = int(rng.integers(20, 120))
    relief = 0.1 + 0.03 * _smooth_noise(rng, h, w, s * 0.1)
    radii = s * rng.uniform(0.008, 0.03) * rng.uniform(0.6, 1.4, count)
    _stamp_domes(relief, rng.uniform(0, w, count), rng.uniform(0, h, count), radii, rng.uniform(0.6, 0.9, count))
    return relief


def _individual_particle(rng, h, w):
    s = min(h, w)
    relief = 0.1 + 0.03 * _smooth_noise(rng, h, w, s * 0.08)
    count = 1 + int(rng.random() < 0.35)
    radius = s * rng.uniform(0.15, 0.35)
    xs = w / 2 + rng.normal(0, s * 0.05, count) + np.array([0.0, radius * 1.6])[:count]
    ys = h / 2 + rng.normal(0, s * 0.05, count)
    _stamp_domes(relief, xs, ys, radius * rng.uniform(0.7, 1.0, count), np.full(count, 0.7))
    texture = _smooth_noise(rng, h, w, s * rng.uniform(0.02, 0.05))
    return relief + 0.06 * texture * (relief > 0.5)


def _other_shape(rng, h, w):
    s = min(h, w)
    image, draw = _canvas(h, w, 0.08)
    count = int(rng.integers(8, 45))
    kind = rng.integers(0, 4)  # the dominant shape; some mixing is allowed
    for _ in range(count):
        shape = kind if rng.random() < 0.7 else rng.integers(0, 4)
        centre = np.array([rng.uniform(0, w), rng.uniform(0, h)])
        size = s * rng.uniform(0.025, 0.08)
        angle = rng.uniform(0, 2 * np.pi)
        if shape == 0:  # cube seen tilted
            top = _polygon(centre, size, 4, angle, squash=0.6)
            _prism(draw, top, (0, size * 0.9), 0.6, 0.9, rng.uniform(0, 2 * np.pi))
        elif shape == 1:  # rod
            long, short = size * rng.uniform(1.5, 3.0), size * 0.35
            corners = np.array([[-long, -short], [long, -short], [long, short], [-long, short]])
            rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
            draw.polygon((corners @ rotation.T + centre).ravel().tolist(), fill=0.8)
        elif shape == 2:  # star
            tips = int(rng.integers(4, 7))
            outer = _polygon(centre, size * 1.3, tips, angle)
            inner = _polygon(centre, size * 0.45, tips, angle + np.pi / tips)
            star = np.stack([outer, inner], axis=1).reshape(-1, 2)
            draw.polygon(star.ravel().tolist(), fill=0.85)
        else:  # faceted: triangle or hexagon with bright facets
            sides = int(rng.choice([3, 6]))
            outline = _polygon(centre, size, sides, angle)
            for i in range(sides):
                facet = [tuple(centre), tuple(outline[i]), tuple(outline[(i + 1) % sides])]
                draw.polygon(sum(facet, ()), fill=float(0.55 + 0.35 * (i % 2)))
    return _relief(image)


def _small_clusters(rng, h, w):
    s = min(h, w)
    relief = 0.1 + 0.03 * _smooth_noise(rng, h, w, s * 0.1)
    clusters = int(rng.integers(5, 20))
    radius = s * rng.uniform(0.015, 0.035)
    xs, ys, radii = [], [], []
    for _ in range(clusters):
        members = int(rng.integers(3, 16))
        steps = rng.normal(0, 1, (members, 2))
        steps = steps / np.linalg.norm(steps, axis=1, keepdims=True) * radius * 1.5
        positions = np.cumsum(steps, axis=0) * 0.7 + np.array([rng.uniform(0, w), rng.uniform(0, h)])
        xs += positions[:, 0].tolist()
        ys += positions[:, 1].tolist()
        radii += (radius * rng.uniform(0.8, 1.2, members)).tolist()
    _stamp_domes(relief, xs, ys, radii, rng.uniform(0.6, 0.9, len(xs)))
    return relief


def _lattice_frame(rng, h, w, pitch_range=(0.05, 0.11)):
    s = min(h, w)
    u, v = _rotated_coords(h, w, rng.uniform(0, np.pi))
    return u, v, s * rng.uniform(*pitch_range)


def _3d_edge_patterned(rng, h, w):
    s = min(h, w)
    y, x = _coords(h, w)
    tilt = rng.uniform(0.4, 0.7)  # foreshortening of the top surface
    slope = rng.normal(0, 0.12)
    edge = h * rng.uniform(0.35, 0.7) + (x - w / 2) * _F32(slope)
    pitch = s * rng.uniform(0.05, 0.12)
    u = x * _F32(math.cos(slope)) + y * _F32(math.sin(slope))
    depth = (edge - y) / _F32(tilt)
    du = _centred_phase(u, pitch)
    dv = _centred_phase(depth, pitch)
    radius = pitch * rng.uniform(0.2, 0.4)
    holes = _soft_step(_length(du, dv) - _F32(radius), 1.0)
    top = (y < edge).astype(_F32)
    face_height = s * rng.uniform(0.1, 0.3)
    face = ((y >= edge) & (y < edge + _F32(face_height))).astype(_F32)
    teeth = (np.abs(du) < _F32(radius)).astype(_F32) * (y < edge + _F32(face_height * 0.3))
    below = 1.0 - top - face
    streaks = _smooth_noise(rng, 1, w, s * 0.02)
    return top * (0.35 + 0.4 * holes) + face * (0.75 + 0.2 * teeth + 0.05 * streaks) + below * 0.05


def _3d_line(rng, h, w):
    s = min(h, w)
    angle = rng.uniform(-0.6, 0.6) + np.pi / 2 * rng.integers(0, 2)
    u, v = _rotated_coords(h, w, angle)
    pitch = s * rng.uniform(0.07, 0.16)
    convergence = rng.uniform(0.0, 0.9) / s
    phase = u / (1 + v * _F32(convergence)) / _F32(pitch)
    position = (phase - np.floor(phase)) * _F32(pitch)
    top_width = pitch * rng.uniform(0.2, 0.45)
    side_width = pitch * rng.uniform(0.15, 0.35)
    on_top = position < _F32(top_width)
    on_side = (position >= _F32(top_width)) & (position < _F32(top_width + side_width))
    return 0.05 + 0.5 * on_top + 0.85 * on_side + 0.03 * _smooth_noise(rng, h, w, s * 0.02)


def _circle_array(rng, h, w):
    u, v, pitch = _lattice_frame(rng, h, w)
    du, dv = _lattice_offsets(u, v, pitch, rng.random() < 0.5, rng, rng.uniform(0, 0.04))
    radius = pitch * rng.uniform(0.18, 0.42)
    dot = _soft_step(_F32(radius) - _length(du, dv), 1.0)
    return 0.7 - 0.55 * dot if rng.random() < 0.5 else 0.15 + 0.65 * dot


def _line_array(rng, h, w):
    s = min(h, w)
    u, _v, pitch = _lattice_frame(rng, h, w, (0.03, 0.08))
    rough = _smooth_noise(rng, h, w, s * 0.02) * _F32(pitch * 0.03)
    duty = rng.uniform(0.3, 0.7)
    phase = _centred_phase(u + rough, pitch)
    line = _soft_step(_F32(duty * pitch / 2) - np.abs(phase), 1.0)
    return 0.15 + 0.6 * line


def _rings_spiral(rng, h, w):
    s = min(h, w)
    y, x = _coords(h, w)
    cx, cy = w / 2 + rng.normal(0, s * 0.1), h / 2 + rng.normal(0, s * 0.1)
    radius = _length(x - _F32(cx), y - _F32(cy))
    pitch = s * rng.uniform(0.03, 0.09)
    if rng.random() < 0.5:
        arms = int(rng.integers(1, 4))
        radius = radius + _F32(arms * pitch / (2 * np.pi)) * np.arctan2(y - _F32(cy), x - _F32(cx))
    phase = _centred_phase(radius, pitch)
    ring = _soft_step(_F32(pitch * rng.uniform(0.15, 0.3)) - np.abs(phase), 1.0)
    return 0.15 + 0.65 * ring


def _square_array(rng, h, w):
    u, v, pitch = _lattice_frame(rng, h, w)
    du, dv = _lattice_offsets(u, v, pitch, False, rng, rng.uniform(0, 0.03))
    half = pitch * rng.uniform(0.2, 0.4)
    square = _soft_step(_F32(half) - np.maximum(np.abs(du), np.abs(dv)), 1.0)
    return 0.7 - 0.55 * square if rng.random() < 0.4 else 0.15 + 0.65 * square


def _triangle_array(rng, h, w):
    u, v, pitch = _lattice_frame(rng, h, w)
    du, dv = _lattice_offsets(u, v, pitch, rng.random() < 0.5, rng, rng.uniform(0, 0.03))
    size = pitch * rng.uniform(0.2, 0.38)
    inside = _F32(size / 2) + dv  # three half-planes of an upward triangle
    for turn in (np.pi / 6, 5 * np.pi / 6):
        inside = np.minimum(inside, _F32(size / 2) - (du * _F32(math.cos(turn)) + dv * _F32(math.sin(turn))) * -1)
    triangle = _soft_step(inside, 1.0)
    return 0.15 + 0.65 * triangle


def _zigzag(rng, h, w):
    s = min(h, w)
    u, v = _rotated_coords(h, w, rng.uniform(0, np.pi))
    period = s * rng.uniform(0.1, 0.3)
    amplitude = period * rng.uniform(0.2, 0.6)
    wave = np.abs(_centred_phase(v, period)) * _F32(2 * amplitude / period)
    pitch = s * rng.uniform(0.04, 0.09)
    phase = _centred_phase(u + wave, pitch)
    line = _soft_step(_F32(pitch * rng.uniform(0.15, 0.3)) - np.abs(phase), 1.0)
    return 0.15 + 0.65 * line


def _individual_pillar(rng, h, w):
    s = min(h, w)
    image, draw = _canvas(h, w, 0.1)
    radius = s * rng.uniform(0.08, 0.22)
    tall = s * rng.uniform(0.4, 0.75)
    squash = rng.uniform(0.3, 0.6)
    centre = np.array([w / 2 + rng.normal(0, s * 0.08), h / 2 - tall / 2 + rng.normal(0, s * 0.05)])
    sides = int(rng.choice([4, 6, 32]))
    top = _polygon(centre, radius, sides, rng.uniform(0, np.pi), squash)
    _prism(draw, top, (0, tall), 0.6, 0.85, rng.uniform(0, 2 * np.pi))
    relief = _relief(image)
    return relief + 0.03 * _smooth_noise(rng, h, w, s * 0.03)


def _triangular_pillars(rng, h, w):
    s = min(h, w)
    image, draw = _canvas(h, w, 0.08)
    pitch = s * rng.uniform(0.12, 0.22)
    squash = rng.uniform(0.4, 0.7)
    tall = pitch * rng.uniform(0.5, 1.2)
    triangle = _polygon((0.0, 0.0), pitch * rng.uniform(0.25, 0.4), 3, rng.uniform(0, 2 * np.pi), squash)
    light = rng.uniform(0, 2 * np.pi)
    row_pitch = pitch * squash
    for row in range(-math.ceil((tall + pitch) / row_pitch), math.ceil(h / row_pitch) + 2):
        for col in range(-1, math.ceil(w / pitch) + 2):
            centre = ((col + 0.5 * (row % 2)) * pitch, row * row_pitch)
            _prism(draw, triangle + centre, (0, tall), 0.55, 0.9, light)
    return _relief(image)


def _zoom_in_pillar(rng, h, w):
    s = min(h, w)
    y, x = _coords(h, w)
    radius = w * rng.uniform(0.25, 0.45)
    centre = w / 2 + rng.normal(0, w * 0.05)
    across = (x - _F32(centre)) / _F32(radius)
    inside = np.clip(1.0 - across * across, 0.0, 1.0)
    top_y = h * rng.uniform(0.05, 0.4)
    squash = rng.uniform(0.2, 0.4)
    cap = top_y + np.sqrt(inside) * _F32(radius * squash)
    body = (y > cap).astype(_F32) * (inside > 0)
    scallop = np.sin(y / _F32(s * rng.uniform(0.01, 0.03)) * _F32(2 * np.pi))
    texture = _smooth_noise(rng, h, w, s * 0.02)
    face = np.sqrt(inside) * 0.5 + 0.35 + 0.08 * scallop + 0.05 * texture
    top_face = ((y <= cap) & (y > top_y - np.sqrt(inside) * _F32(radius * squash))).astype(_F32)
    return 0.05 + body * face + top_face * (0.5 + 0.08 * texture)


def _porous_sponge(rng, h, w):
    s = min(h, w)
    relief = 0.85 + 0.05 * _smooth_noise(rng, h, w, s * 0.1)
    typical = rng.uniform(0.025, 0.06)
    count = int(rng.uniform(0.6, 1.0) * (w / s) / (typical * typical * 2.5))
    radii = s * np.exp(rng.normal(math.log(typical), 0.4, count))
    depth = rng.uniform(0.6, 0.85, count)
    _stamp_domes(relief, rng.uniform(0, w, count), rng.uniform(0, h, count), radii, depth, carve=True)
    return relief


def _draw_grains(rng, draw, centres: np.ndarray, sizes: np.ndarray, facets: bool) -> None:
    """Irregular angular grains; with ``facets`` each is split into differently lit triangles."""
    sides = 7
    turns = np.sort(rng.uniform(0, 2 * np.pi, (len(centres), sides)), axis=1)
    radii = sizes[:, None] * rng.uniform(0.55, 1.0, (len(centres), sides))
    outlines = centres[:, None, :] + radii[..., None] * np.stack([np.cos(turns), np.sin(turns)], axis=-1)
    if not facets:
        for outline, value in zip(
            outlines.reshape(len(centres), -1).tolist(), rng.uniform(0.5, 1.0, len(centres)), strict=True
        ):
            draw.polygon(outline, fill=float(value))
        return
    middles = centres + rng.normal(0, 0.2, (len(centres), 2)) * sizes[:, None]
    for middle, outline in zip(middles, outlines, strict=True):
        for i, value in enumerate(rng.uniform(0.45, 1.0, sides)):
            facet = np.array([middle, outline[i], outline[(i + 1) % sides]])
            draw.polygon(facet.ravel().tolist(), fill=float(value))


def _zoomin_powder(rng, h, w):
    s = min(h, w)
    image, draw = _canvas(h, w, 0.05)
    count = int(rng.integers(4, 12))
    centres = np.stack([rng.uniform(0, w, count), rng.uniform(0, h, count)], axis=1)
    _draw_grains(rng, draw, centres, s * rng.uniform(0.2, 0.45, count), facets=True)
    return _relief(image) + 0.03 * _smooth_noise(rng, h, w, s * 0.02)


def _zoom_out_powder(rng, h, w):
    s = min(h, w)
    image, draw = _canvas(h, w, 0.05)
    count = int(rng.integers(200, 600))
    spread = rng.uniform(0.3, 0.8)
    centres = np.stack([rng.normal(w / 2, w * spread / 2, count), rng.normal(h / 2, h * spread / 2, count)], axis=1)
    _draw_grains(rng, draw, centres, s * rng.uniform(0.008, 0.03, count), facets=False)
    return _relief(image)


def _tip_on_cantilever(rng, h, w):
    s = min(h, w)
    image, draw = _canvas(h, w, 0.05)
    angle = rng.uniform(0, 2 * np.pi)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    length, half_width = s * rng.uniform(0.7, 1.3), s * rng.uniform(0.08, 0.18)
    end = np.array([w / 2, h / 2]) + rng.normal(0, s * 0.08, 2)
    beam = np.array([[0, -half_width], [-length, -half_width], [-length, half_width], [0, half_width]])
    beam = beam @ rotation.T + end
    _prism(draw, beam, (0, s * 0.03), 0.55, 0.85, rng.uniform(0, 2 * np.pi))
    apex_foot = np.array([-half_width * 1.2, 0]) @ rotation.T + end
    base = _polygon(apex_foot, half_width * 0.8, int(rng.choice([3, 4])), angle + rng.uniform(0, np.pi))
    apex = apex_foot + np.array([0, -half_width * rng.uniform(0.8, 1.6)])
    for i in range(len(base)):
        facet = np.array([apex, base[i], base[(i + 1) % len(base)]])
        draw.polygon(facet.ravel().tolist(), fill=float(0.6 + 0.35 * (i % 2)))
    return _relief(image) + 0.02 * _smooth_noise(rng, h, w, s * 0.05)


def _tip_zoom_in(rng, h, w):
    s = min(h, w)
    u, v = _rotated_coords(h, w, rng.normal(0, 0.4), (w * rng.uniform(0.35, 0.65), h * rng.uniform(0.2, 0.5)))
    half_angle = rng.uniform(0.2, 0.5)
    apex_radius = s * rng.uniform(0.005, 0.03)
    inside = v * _F32(math.sin(half_angle)) - np.abs(u) * _F32(math.cos(half_angle)) + _F32(apex_radius)
    cone = _soft_step(inside, s * 0.01)
    faces = int(rng.choice([0, 2, 3]))
    if faces:
        shade = (u > 0) * _F32(0.35) - _F32(0.1)
    else:
        shade = np.clip(u / (v * _F32(math.tan(half_angle)) + _F32(apex_radius)), -1, 1) * _F32(0.25)
    texture = _smooth_noise(rng, h, w, s * 0.015)
    return 0.05 + cone * (0.6 + shade + 0.05 * texture)


def _tip_zoom_out(rng, h, w):
    s = min(h, w)
    image, draw = _canvas(h, w, 0.05)
    angle = rng.uniform(0, 2 * np.pi)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    chip_half = np.array([s * rng.uniform(0.2, 0.4), s * rng.uniform(0.3, 0.6)])
    centre = np.array([w / 2, h / 2]) + rng.normal(0, s * 0.05, 2)
    chip = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * chip_half
    levers = int(rng.integers(1, 4))
    light = rng.uniform(0, 2 * np.pi)
    for k in range(levers):
        offset = (k - (levers - 1) / 2) * chip_half[1] * 0.6
        length, half_width = s * rng.uniform(0.1, 0.25), s * rng.uniform(0.01, 0.025)
        lever = np.array(
            [
                [0, offset - half_width],
                [length, offset - half_width],
                [length, offset + half_width],
                [0, offset + half_width],
            ]
        )
        lever = (lever + np.array([chip_half[0], 0])) @ rotation.T + centre
        _prism(draw, lever, (0, s * 0.01), 0.7, 0.9, light)
    _prism(draw, chip @ rotation.T + centre, (0, s * 0.08), 0.5, 0.85, light)
    return _relief(image) + 0.02 * _smooth_noise(rng, h, w, s * 0.05)


_DRAWERS: dict[str, Callable[[np.random.Generator, int, int], np.ndarray]] = {
    "Biological": _biological,
    "Fibres": _fibres,
    "Films_Coated_Surface/other_film": _cracked_film,
    "Films_Coated_Surface/particle_film": _particle_film,
    "Films_Coated_Surface/smooth_film": _smooth_film,
    "MEMS_devices_and_electrodes/3d_edge": _mems_3d_edge,
    "MEMS_devices_and_electrodes/close_up_line": _close_up_line,
    "MEMS_devices_and_electrodes/electrode": _electrode,
    "MEMS_devices_and_electrodes/microfluidic": _microfluidic,
    "MEMS_devices_and_electrodes/waveguide": _waveguide,
    "Nanowires/entangled_nanowires": _entangled_nanowires,
    "Nanowires/few": _few_nanowires,
    "Nanowires/individual": _individual_nanowire,
    "Nanowires/Forest/crust": _forest_crust,
    "Nanowires/Forest/parallel_aligned": _forest_parallel,
    "Particles/dispersed": _dispersed,
    "Particles/individal_NP": _individual_particle,
    "Particles/other_shape": _other_shape,
    "Particles/small_clusters": _small_clusters,
    "Patterned_surface/3d_edge_patterned": _3d_edge_patterned,
    "Patterned_surface/3d_line": _3d_line,
    "Patterned_surface/circle_array": _circle_array,
    "Patterned_surface/line_array": _line_array,
    "Patterned_surface/rings_spiral": _rings_spiral,
    "Patterned_surface/square_array": _square_array,
    "Patterned_surface/triangle_array": _triangle_array,
    "Patterned_surface/zigzag": _zigzag,
    "Patterned_surface/Pillars/individual_pillar": _individual_pillar,
    "Patterned_surface/Pillars/triangular_pillar": _triangular_pillars,
    "Patterned_surface/Pillars/zoom_in_pillar": _zoom_in_pillar,
    "Porous_Sponge": _porous_sponge,
    "Powder/zoomin_powder": _zoomin_powder,
    "Powder/zoom_out": _zoom_out_powder,
    "Tips/tip_on_cantilever": _tip_on_cantilever,
    "Tips/zoom_in": _tip_zoom_in,
    "Tips/zoom_out": _tip_zoom_out,
}
assert set(_DRAWERS) == set(leaf_paths()), "every leaf of the taxonomy needs a drawing function"


# ---------------------------------------------------------------------------
# Secondary-electron rendering
# ---------------------------------------------------------------------------


def _se_render(relief: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Secondary-electron brightness (about 0..1) of a relief map, at the relief's resolution."""
    h, w = relief.shape
    s = min(h, w)
    edge_sigma = max(0.6, s * rng.uniform(0.002, 0.005))
    reach = _F32(edge_sigma * 2.5)  # a unit step blurred by edge_sigma rises with slope about 1 / reach
    if rng.random() < 0.3:  # slightly out of focus: wider, dimmer rims
        edge_sigma *= rng.uniform(1.5, 3.0)
    smooth = ndimage.gaussian_filter(relief, edge_sigma, truncate=2.0)
    grad_x = np.zeros_like(smooth)
    grad_y = np.zeros_like(smooth)
    np.subtract(smooth[:, 2:], smooth[:, :-2], out=grad_x[:, 1:-1])
    np.subtract(smooth[2:], smooth[:-2], out=grad_y[1:-1])
    grad_x *= reach / 2
    grad_y *= reach / 2
    edges = np.minimum(_length(grad_x, grad_y), _F32(1))
    edges *= 2 - edges  # saturating: the rim of a step is about as bright as a steep wall
    detector = rng.uniform(0, 2 * np.pi)
    towards_detector = grad_x * _F32(math.cos(detector)) + grad_y * _F32(math.sin(detector))
    y, x = _coords(h, w)
    shade_angle = rng.uniform(0, 2 * np.pi)
    shade = rng.uniform(0.0, 0.25) / s
    shading = (x - w / 2) * _F32(shade * math.cos(shade_angle)) + (y - h / 2) * _F32(shade * math.sin(shade_angle))
    brightness = smooth * _F32(rng.uniform(0.35, 0.6))
    brightness += edges * _F32(rng.uniform(0.3, 0.55))
    brightness += np.clip(towards_detector, -1, 1) * _F32(rng.uniform(0.0, 0.12))
    brightness += shading + _F32(rng.uniform(0.0, 0.15))
    return brightness


def _noise_table(rng: np.random.Generator, row_offset_span: int) -> np.ndarray:
    """Lookup table: (clean grey level + row offset, uniform noise byte) -> noisy uint8 grey level.

    Shot-noise-like: the spread grows with the square root of the signal.
    """
    levels = np.arange(256 + 2 * row_offset_span, dtype=np.float64)[:, None] - row_offset_span
    normal_quantiles = special.ndtri((np.arange(256) + 0.5) / 256)[None, :]
    spread = rng.uniform(3, 16) * np.sqrt((np.clip(levels, 0, None) + 16) / 128)
    return np.clip(np.rint(levels + spread * normal_quantiles), 0, 255).astype(np.uint8).ravel()


def _scan(brightness: np.ndarray, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Grey levels of the scanned image: scan-line artefacts, upsampling to the output size, noise; uint8."""
    work_height = brightness.shape[0]
    # brightness/contrast as an operator sets them: the histogram roughly fills the chosen grey range
    low, high = np.quantile(brightness[::3, ::3], [0.005, 0.995])
    black, white = rng.uniform(0, 60), rng.uniform(175, 255)
    contrast = min((white - black) / max(high - low, 1e-6), 600.0)
    rows = rng.normal(1.0, rng.uniform(0.005, 0.02), (work_height, 1))
    grey = brightness * (contrast * rows).astype(_F32)
    grey += _F32(black - low * contrast)
    shift = rng.normal(0, rng.uniform(0.05, 0.3), (work_height, 1)).astype(_F32).clip(-1, 1)
    right = np.concatenate([grey[:, :1], grey[:, :-1]], axis=1)
    left = np.concatenate([grey[:, 1:], grey[:, -1:]], axis=1)
    grey += np.maximum(shift, 0) * (right - grey) + np.maximum(-shift, 0) * (left - grey)
    grey = np.clip(grey, 0, 255).astype(np.uint8)
    if grey.shape != (height, width):
        grey = np.asarray(Image.fromarray(grey).resize((width, height), Image.Resampling.BILINEAR))
    span = 6
    row_offsets = np.rint(rng.normal(span, rng.uniform(0.3, 2.0), (height, 1))).clip(0, 2 * span).astype(np.uint16)
    # (grey + offset) << 8 reaches (255 + 2 * span) * 256 + 255: past uint16, so uint32
    index = grey.astype(np.uint32)
    index += row_offsets
    index <<= 8
    index |= rng.integers(0, 256, (height, width), dtype=np.uint8)
    image = np.take(_noise_table(rng, span), index)
    jumped = np.flatnonzero(rng.random(height) < rng.uniform(0.0, 0.05))
    image[jumped] = np.roll(image[jumped], 1, axis=1)
    return image


def draw_specimen(leaf_path: str, rng: np.random.Generator, height: int = 768, width: int = 1024) -> np.ndarray:
    """Draw one SEM-like secondary-electron image of a Hierarchical SEM leaf category.

    Parameters
    ----------
    leaf_path : str
        A leaf of :func:`semcurate.datasets.taxonomy.leaf_paths`, e.g. ``"Nanowires/Forest/crust"``.
    rng : numpy.random.Generator
        Source of every random choice; the same generator state gives the same image.
    height, width : int
        Image size in pixels, each at least 16.  Features scale with the shorter side,
        so one category looks alike at every size.

    Returns
    -------
    numpy.ndarray
        ``uint8`` array of shape ``(height, width)``: grey levels 0-255.

    Raises
    ------
    ValueError
        If ``leaf_path`` is not a leaf category or a side is shorter than 16 pixels.
    """
    drawer = _DRAWERS.get(leaf_path)
    if drawer is None:
        raise ValueError(f"unknown leaf category path {leaf_path!r}; expected one of taxonomy.leaf_paths()")
    if height < MIN_SIDE or width < MIN_SIDE:
        raise ValueError(f"image size {height}x{width} is too small; both sides must be at least {MIN_SIDE} pixels")
    reduction = max(1, math.ceil(max(height, width) / _WORKING_LONG_SIDE))
    work_height = max(MIN_SIDE, round(height / reduction))
    work_width = max(MIN_SIDE, round(width / reduction))
    relief = drawer(rng, work_height, work_width).astype(_F32, copy=False)
    return _scan(_se_render(relief, rng), height, width, rng)
