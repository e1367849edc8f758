"""The particle block: component measures against scikit-image's ``regionprops``, shapes of known geometry.

The truths do not come from the code under test: area, perimeter,
eccentricity and extent are scikit-image's ``regionprops`` values; the
solidity of an L and of a notched square is counted by hand below; the
eccentricity of a rectangle of n x m pixels follows from the variance of a
discrete uniform distribution, (n^2 - 1) / 12; the count of drawn discs is
the number drawn; the facet block's truths are the symmetries of the
polygons drawn (a square's edges lie at two orientations 90 degrees apart,
a triangle's and a hexagon's at three 60 degrees apart, a disc's at all).
"""

from __future__ import annotations

import numpy as np
import pytest
from skimage.measure import label, regionprops

from semcurate.features.classic import ClassicDescriptor
from semcurate.features.extract import create_extractor
from semcurate.features.particles import (
    FACET_FEATURE_NAMES,
    PARTICLE_FEATURE_NAMES,
    facet_statistics,
    particle_measures,
    particle_statistics,
)

SIDE = 256


def shapes_on_ground(masks: list[np.ndarray], side: int = SIDE) -> np.ndarray:
    """Bright shapes (200) on a dark ground (40), uint8: the union of ``masks``."""
    return np.where(np.logical_or.reduce(masks), 200, 40).astype(np.uint8)


def disc(centre: tuple[float, float], radius: float, side: int = SIDE) -> np.ndarray:
    rows, cols = np.mgrid[0:side, 0:side]
    return (cols - centre[0]) ** 2 + (rows - centre[1]) ** 2 <= radius**2


def ellipse(centre: tuple[float, float], long: float, short: float, angle: float, side: int = SIDE) -> np.ndarray:
    rows, cols = np.mgrid[0:side, 0:side]
    x, y = cols - centre[0], rows - centre[1]
    along = x * np.cos(angle) + y * np.sin(angle)
    across = -x * np.sin(angle) + y * np.cos(angle)
    return (along / long) ** 2 + (across / short) ** 2 <= 1


def star(centre: tuple[float, float], radius: float, arm: float, side: int = SIDE) -> np.ndarray:
    """Three bars crossing at ``centre`` (a branched particle): each ``2 radius`` long and ``2 arm`` wide."""
    rows, cols = np.mgrid[0:side, 0:side]
    x, y = cols - centre[0], rows - centre[1]
    inside = np.zeros((side, side), dtype=bool)
    for angle in (0.0, np.pi / 3, 2 * np.pi / 3):
        along = x * np.cos(angle) + y * np.sin(angle)
        across = -x * np.sin(angle) + y * np.cos(angle)
        inside |= (np.abs(along) <= radius) & (np.abs(across) <= arm)
    return inside


def grid_centres(count: int, spacing: float) -> list[tuple[float, float]]:
    per_row = int(np.ceil(np.sqrt(count)))
    return [(spacing * (1 + index % per_row), spacing * (1 + index // per_row)) for index in range(count)]


def columns(image: np.ndarray) -> dict[str, float]:
    return dict(zip(PARTICLE_FEATURE_NAMES, particle_statistics(image).tolist(), strict=True))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_area_perimeter_eccentricity_and_extent_equal_scikit_images(seed):
    mask = np.random.default_rng(seed).random((90, 130)) < 0.45
    measures = particle_measures(mask)
    regions = regionprops(label(mask, connectivity=2))
    assert len(regions) == len(measures["area"]) > 50
    for name in ("area", "perimeter", "eccentricity", "extent"):
        np.testing.assert_allclose(measures[name], [getattr(region, name) for region in regions], atol=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_solidity_is_never_under_scikit_images_whose_hull_is_half_a_pixel_wider(seed):
    mask = np.random.default_rng(seed).random((90, 130)) < 0.45
    ours = particle_measures(mask)["solidity"]
    theirs = np.array([region.solidity for region in regionprops(label(mask, connectivity=2))])
    assert np.all(ours >= theirs - 1e-12) and np.all(ours <= 1.0 + 1e-12)
    assert np.any(ours > theirs + 0.05)  # the difference is real on ragged components


def test_a_rectangle_is_convex_with_the_eccentricity_of_its_pixel_variances():
    mask = np.zeros((20, 30), dtype=bool)
    mask[3:8, 10:18] = True  # 5 rows x 8 columns
    measures = particle_measures(mask)
    row_variance, col_variance = (5**2 - 1) / 12, (8**2 - 1) / 12  # 2 and 5.25
    assert measures["area"].tolist() == [40.0]
    assert measures["solidity"].tolist() == [1.0] and measures["extent"].tolist() == [1.0]
    assert measures["eccentricity"][0] == pytest.approx(np.sqrt(1 - row_variance / col_variance))
    assert measures["perimeter"][0] == pytest.approx(regionprops(mask.astype(int))[0].perimeter)


def test_an_l_shape_holds_nine_tenths_of_its_digital_hull():
    # a 6 x 6 square less its 3 x 3 top-right corner: 27 pixels.  The hull of the pixel centres runs from (0, 2)
    # to (3, 5); it leaves out the 6 centres with column - row > 2 and keeps the 4 on that line: 36 - 6 = 30
    mask = np.zeros((10, 10), dtype=bool)
    mask[2:8, 2:8] = True
    mask[2:5, 5:8] = False
    measures = particle_measures(mask)
    assert measures["area"].tolist() == [27.0]
    assert measures["solidity"][0] == pytest.approx(27 / 30)
    assert measures["extent"][0] == pytest.approx(27 / 36)


def test_lines_of_pixels_in_a_row_or_on_a_diagonal_are_convex():
    mask = np.zeros((12, 12), dtype=bool)
    mask[1, 1:9] = True  # a row
    mask[np.arange(3, 11), np.arange(2, 10)] = True  # a diagonal: collinear centres, no 2-D hull
    measures = particle_measures(mask)
    assert measures["area"].tolist() == [8.0, 8.0]
    assert measures["solidity"].tolist() == [1.0, 1.0]
    np.testing.assert_allclose(measures["eccentricity"], [1.0, 1.0])


def test_an_empty_mask_has_no_components():
    measures = particle_measures(np.zeros((16, 16), dtype=bool))
    assert all(len(values) == 0 for values in measures.values())


@pytest.mark.parametrize("count", [4, 9, 16])
def test_the_count_column_counts_the_discs_drawn(count):
    image = shapes_on_ground([disc(centre, 9) for centre in grid_centres(count, 48)])
    result = columns(image)
    assert result["particle_count"] == pytest.approx(np.log1p(1000 * count / SIDE**2))
    assert result["particle_solidity"] > 0.97 and result["particle_nonconvex_share"] == 0.0
    assert result["particle_eccentricity"] < 0.2
    # area within the disc's pixel count of pi r^2, +-10 % for the 1 px smoothing at the edge
    assert np.exp(result["particle_log_area_median"]) * SIDE**2 == pytest.approx(np.pi * 9**2, rel=0.1)


def test_ellipses_have_the_eccentricity_of_their_axes_and_discs_do_not():
    centres = grid_centres(9, 64)
    ellipses = columns(shapes_on_ground([ellipse(centre, 20, 8, 0.4 * index) for index, centre in enumerate(centres)]))
    discs = columns(shapes_on_ground([disc(centre, 12) for centre in centres]))
    assert ellipses["particle_eccentricity"] == pytest.approx(np.sqrt(1 - (8 / 20) ** 2), abs=0.03)  # 0.917
    assert discs["particle_eccentricity"] < 0.15
    assert ellipses["particle_solidity"] > 0.95 and discs["particle_solidity"] > 0.95
    assert discs["particle_circularity"] > ellipses["particle_circularity"] + 0.15


def test_branched_particles_are_not_convex_and_round_ones_are():
    centres = grid_centres(9, 64)
    branched = columns(shapes_on_ground([star(centre, 22, 3) for centre in centres]))
    round_ = columns(shapes_on_ground([disc(centre, 14) for centre in centres]))
    assert branched["particle_nonconvex_share"] == 1.0 and round_["particle_nonconvex_share"] == 0.0
    assert branched["particle_solidity"] < 0.6 < 0.95 < round_["particle_solidity"]
    assert branched["particle_solidity_q25"] < 0.6


def test_the_columns_do_not_change_with_brightness_and_contrast():
    rng = np.random.default_rng(3)
    image = shapes_on_ground([disc(centre, 6 + 6 * rng.random()) for centre in grid_centres(16, 48)])
    noisy = np.clip(image + rng.normal(0, 8, image.shape), 0, 255)
    darker = 0.5 * noisy + 30
    np.testing.assert_allclose(particle_statistics(noisy), particle_statistics(darker), rtol=1e-6, atol=1e-6)


def test_a_flat_image_or_one_without_particles_gives_zeros():
    assert particle_statistics(np.full((64, 96), 120.0)).tolist() == [0.0] * 12
    single_pixels = np.full((64, 64), 40.0)
    single_pixels[::9, ::9] = 200  # components of one pixel, under the 6-pixel floor (the opening removes them)
    assert particle_statistics(single_pixels).tolist() == [0.0] * 12


def test_the_descriptor_finds_a_flat_images_foreground_once(monkeypatch):
    """The particle and facet blocks share the descriptor's one foreground, also when it holds no pixel (a flat
    image): neither block looks for the particles again, and both are zeros."""
    import semcurate.features.classic as classic
    import semcurate.features.particles as particles

    calls, original = [], particles.particle_foreground

    def counted(level):
        calls.append(level.shape)
        return original(level)

    monkeypatch.setattr(classic, "particle_foreground", counted)
    monkeypatch.setattr(particles, "particle_foreground", counted)
    descriptor = ClassicDescriptor(particles=True, facets=True)
    vector = descriptor.describe(np.full((300, 400), 0.5, dtype=np.float32))
    assert len(calls) == 1
    assert vector[-15:].tolist() == [0.0] * 15  # 12 particle and 3 facet columns


def test_the_block_extends_the_blob_descriptor_and_the_extractor_fills_all_three_sets():
    particles, blobs = ClassicDescriptor(particles=True), ClassicDescriptor(blobs=True)
    assert particles.name == "classic_particles" and particles.dimension == blobs.dimension + 12 == 203
    assert particles.feature_names[: blobs.dimension] == blobs.feature_names
    assert particles.feature_names[blobs.dimension :] == list(PARTICLE_FEATURE_NAMES)
    image = shapes_on_ground([disc(centre, 10) for centre in grid_centres(9, 64)])
    vector = particles.describe(image)
    assert np.array_equal(vector[: blobs.dimension], blobs.describe(image))
    np.testing.assert_allclose(vector[blobs.dimension :], particle_statistics(image), rtol=1e-5, atol=1e-6)
    extractor = create_extractor("classic_particles")
    assert extractor.outputs == {"classic_particles": 203, "classic_blobs": 191, "classic": 160, "particle_facets": 3}
    rows = extractor.transform([image])
    assert np.array_equal(rows["classic_blobs"], blobs.transform([image]))
    assert np.array_equal(rows["classic_particles"], particles.transform([image]))
    np.testing.assert_allclose(rows["particle_facets"][0], facet_statistics(image), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="facets=True needs particles=True"):
        ClassicDescriptor(blobs=True, facets=True)


def polygon_mask(corners: int, centre: tuple[float, float], radius: float, turn: float, side: int = SIDE) -> np.ndarray:
    """A regular polygon of ``corners`` corners (a disc's outline at 60), its first corner at ``turn`` radians."""
    from skimage.draw import polygon

    angles = turn + 2 * np.pi * np.arange(corners) / corners
    mask = np.zeros((side, side), dtype=bool)
    rows, cols = polygon(centre[1] + radius * np.sin(angles), centre[0] + radius * np.cos(angles), mask.shape)
    mask[rows, cols] = True
    return mask


def facets(image: np.ndarray) -> dict[str, float]:
    return dict(zip(FACET_FEATURE_NAMES, facet_statistics(image).tolist(), strict=True))


@pytest.mark.parametrize("turn", [0.0, 0.2, 0.5, 0.9])
def test_the_facets_tell_squares_triangles_hexagons_and_discs_apart_however_they_are_turned(turn):
    """Four particles of one shape per image, all turned by ``turn``: the 4th orientation harmonic is large only
    for squares, the 6th only for triangles and hexagons, and a disc's edges spread over every orientation."""
    centres = grid_centres(4, 80)
    square, triangle, hexagon, round_ = (
        facets(shapes_on_ground([polygon_mask(corners, centre, 24, turn) for centre in centres]))
        for corners in (4, 3, 6, 60)
    )
    assert square["facet_fourfold"] > 0.8 and square["facet_sixfold"] < 0.1
    for shape in (triangle, hexagon):
        assert shape["facet_sixfold"] > 0.7 and shape["facet_fourfold"] < 0.1
    assert round_["facet_fourfold"] < 0.1 and round_["facet_sixfold"] < 0.1
    # a disc's edge weight in its 3 strongest 10-degree bins is near 3/18 (more on pixels, which favour the axes);
    # a polygon's edges fill a few bins
    assert (
        round_["facet_concentration"] < 0.35 < 0.5 < min(square["facet_concentration"], triangle["facet_concentration"])
    )


def test_the_facets_weigh_each_particle_by_its_area_and_ignore_brightness_and_contrast():
    """Two squares and two discs of the same size: the 4th harmonic is the mean of the two shapes' own; a square
    of 4 times the area pulls the mean its way; a darker, flatter copy of the image gives the same columns."""
    squares = [polygon_mask(4, centre, 24, 0.3) for centre in grid_centres(2, 80)]
    discs = [disc(centre, 17) for centre in grid_centres(4, 80)[2:]]
    alone = facet_statistics(shapes_on_ground(squares)), facet_statistics(shapes_on_ground(discs))
    mixed = facet_statistics(shapes_on_ground(squares + discs))
    areas = np.array([squares[0].sum(), discs[0].sum()], dtype=float)
    expected = (areas / areas.sum()) @ np.array([alone[0][0], alone[1][0]])
    assert mixed[0] == pytest.approx(expected, abs=0.03)
    rng = np.random.default_rng(5)
    noisy = np.clip(shapes_on_ground(squares + discs) + rng.normal(0, 8, (SIDE, SIDE)), 0, 255)
    np.testing.assert_allclose(facet_statistics(noisy), facet_statistics(0.5 * noisy + 30), rtol=1e-6, atol=1e-6)


def test_facets_of_a_flat_image_or_of_particles_too_small_for_edges_are_zeros():
    assert facet_statistics(np.full((64, 96), 120.0)).tolist() == [0.0] * 3
    specks = shapes_on_ground([disc(centre, 2) for centre in grid_centres(16, 40)])  # 13 pixels each, under 30
    assert facet_statistics(specks).tolist() == [0.0] * 3
