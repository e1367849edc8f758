"""Feature directions that acquisition does not move: a projection learnt from images and their acquisition variants.

Within one category of a repository, images differ for two reasons: what the
specimen is (its sub-category) and how it was acquired (magnification, focus,
brightness, contrast, detector shading, noise).  A weight-free descriptor
mixes both in every column, and once standardised, the acquisition part
decides the distances: Ward's tree follows the operator's settings as much as
the specimens.

:func:`acquisition_variant` re-acquires an image as an operator might have:
a slightly higher magnification, a focus blur, another gamma, contrast and
brightness, a shading gradient, noise, a mirror.  Describing a sample of
images and their variants shows which feature directions acquisition moves.
:class:`NuisanceProjection` then keeps the directions in which images differ
most relative to how much their own variants differ: the generalised
eigenvectors of the rows' covariance against the covariance of the
image-minus-variant differences.  This is linear discriminant analysis with
each image and its variant as one class (the projection equals
scikit-learn's ``LinearDiscriminantAnalysis`` fitted on such pairs, up to
sign and scale), the nuisance-attribute projection of speaker verification,
and needs no label.

The variants never look at a category: they encode what acquisition does to
any SEM image, not what the repository's classes are.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import linalg, ndimage
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["NuisanceProjection", "acquisition_variant", "shrunk_for_variant"]

#: Magnification of a variant relative to its image: a crop of 1/1.0-1/1.3 of each side, resized back.
MAGNIFICATION = (1.0, 1.3)
#: Focus blur, the Gaussian's standard deviation in pixels of the image; below 0.2 px none is applied.
BLUR_PX = (0.0, 1.2)
#: Natural logarithm of the gamma applied to grey levels scaled to [0, 1].
LOG_GAMMA = (-0.25, 0.25)
#: Contrast factor about mid grey (128).
CONTRAST = (0.7, 1.3)
#: Brightness offset in grey levels.
BRIGHTNESS = (-30.0, 30.0)
#: Largest shading across the frame's longer side, in grey levels (a linear ramp in a random direction).
SHADING = 25.0
#: Largest standard deviation of the added Gaussian noise, grey levels.
NOISE = 8.0
#: Variants are drawn on the image shrunk to this many times the side its descriptor works at
#: (:func:`shrunk_for_variant`).
VARIANT_SCALE = 2


def shrunk_for_variant(image: np.ndarray, working_side: int) -> np.ndarray:
    """``image`` shrunk by a box filter so that its shorter side is :data:`VARIANT_SCALE` × ``working_side``
    pixels; unchanged when it is no larger.

    Why: the nuisances of :func:`acquisition_variant` are drawn in the
    image's own pixels, and the descriptor sees the image reduced to its
    working side (256 pixels for ``classic``).  On a 4,096-pixel-wide image a
    1-pixel blur and noise of 8 grey levels all but vanish in that 16-fold
    reduction, while on a 512-pixel one they stay; drawn at twice the working
    side, every image gets the same nuisance as its descriptor sees it.  It
    is also what makes the variants cheap: one variant of a 4,096 × 3,072
    image took 509 ms at full size and 22 ms shrunk so, of a 1,024 × 768
    image 21 and 11 ms (one core).

    Parameters
    ----------
    image : ndarray of shape (height, width), uint8
        A grey image.
    working_side : int
        Shorter side, in pixels, at which the image's descriptor works.

    Examples
    --------
    >>> shrunk_for_variant(np.zeros((1536, 2048), np.uint8), 256).shape
    (512, 683)
    >>> shrunk_for_variant(np.zeros((300, 400), np.uint8), 256).shape
    (300, 400)
    """
    height, width = image.shape
    side = VARIANT_SCALE * working_side
    if min(height, width) <= side:
        return image
    scale = side / min(height, width)
    size = (max(side, round(width * scale)), max(side, round(height * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BOX))


def acquisition_variant(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The same specimen as acquired again with other settings: one random draw of every acquisition nuisance.

    Parameters
    ----------
    image : ndarray of shape (height, width), uint8
        A grey image, data bar already cropped away.
    rng : numpy.random.Generator
        Source of every choice; the same state gives the same variant.

    Returns
    -------
    ndarray of shape (height, width), uint8
        In order: magnified by a factor drawn from :data:`MAGNIFICATION`
        (a random crop resized back, bilinear), blurred (:data:`BLUR_PX`),
        gamma (:data:`LOG_GAMMA`), contrast about grey 128 (:data:`CONTRAST`)
        and brightness (:data:`BRIGHTNESS`) changed, a linear shading ramp of
        up to :data:`SHADING` grey levels added, Gaussian noise of up to
        :data:`NOISE` grey levels added, mirrored left-right with probability
        1/2, then rounded and clipped to 0-255.

    Raises
    ------
    ValueError
        If ``image`` is not a 2-D array.

    Examples
    --------
    >>> flat = np.full((40, 60), 100, np.uint8)
    >>> variant = acquisition_variant(flat, np.random.default_rng(0))
    >>> variant.shape, variant.dtype
    ((40, 60), dtype('uint8'))
    """
    grey = np.asarray(image)
    if grey.ndim != 2:
        raise ValueError(f"expected a 2-D grey image, got shape {grey.shape}")
    height, width = grey.shape
    magnification = rng.uniform(*MAGNIFICATION)
    crop_height, crop_width = max(1, int(height / magnification)), max(1, int(width / magnification))
    top = int(rng.integers(0, height - crop_height + 1))
    left = int(rng.integers(0, width - crop_width + 1))
    crop = np.ascontiguousarray(grey[top : top + crop_height, left : left + crop_width], dtype=np.float32)
    levels = np.asarray(Image.fromarray(crop, mode="F").resize((width, height), Image.Resampling.BILINEAR))
    blur = rng.uniform(*BLUR_PX)
    if blur > 0.2:
        levels = ndimage.gaussian_filter(levels, blur)
    levels = np.float32(255.0) * (np.clip(levels, 0.0, 255.0) / np.float32(255.0)) ** np.float32(
        np.exp(rng.uniform(*LOG_GAMMA))
    )
    contrast, brightness = rng.uniform(*CONTRAST), rng.uniform(*BRIGHTNESS)
    levels = np.float32(contrast) * (levels - np.float32(128.0)) + np.float32(128.0 + brightness)
    direction = rng.uniform(0.0, 2.0 * np.pi)
    shading = rng.uniform(0.0, SHADING) / max(height, width)
    columns = (np.arange(width, dtype=np.float32) - width / 2) * np.float32(shading * np.cos(direction))
    rows = (np.arange(height, dtype=np.float32) - height / 2) * np.float32(shading * np.sin(direction))
    levels = levels.astype(np.float32) + rows[:, None] + columns[None, :]
    levels += rng.standard_normal(levels.shape, dtype=np.float32) * np.float32(rng.uniform(0.0, NOISE))
    if rng.random() < 0.5:
        levels = levels[:, ::-1]
    return np.clip(np.rint(levels), 0, 255).astype(np.uint8)


class NuisanceProjection(TransformerMixin, BaseEstimator):
    """Project feature rows onto the directions acquisition moves least relative to how much images differ.

    Parameters
    ----------
    n_components : int or "auto", default="auto"
        Directions kept.  ``"auto"`` keeps every direction whose variance over
        the images is at least ``min_ratio`` times its variance between an
        image and its acquisition variant (at least one).
    min_ratio : float, default=5.0
        The ratio ``"auto"`` asks for.  It keeps 34 of the descriptor's 160
        directions on the demo's specimens and 23 on the independent textures
        (bench/categorisation.py's corpora).
    regularisation : float, default=1e-3
        Added to the difference covariance's diagonal, relative to its mean
        diagonal, so that a direction no variant moved does not divide by 0.

    Attributes
    ----------
    mean_, scale_ : ndarray of shape (n_features,)
        The rows' column means and standard deviations (0 replaced by 1): the
        rows are standardised before the projection, so its result does not
        depend on the columns' units.
    components_ : ndarray of shape (n_components_, n_features)
        The kept directions in standardised columns, best first, each scaled
        so that the image-minus-variant differences have unit mean square
        along it: a projected distance counts acquisition's typical change
        as 1.
    variance_ratios_ : ndarray of shape (n_features,)
        Every direction's variance over the rows divided by its difference
        variance, descending.
    n_components_ : int
        Directions kept.
    n_features_in_ : int

    Notes
    -----
    With ``S`` the covariance of the standardised rows and ``N`` the mean
    outer product of the standardised image-minus-variant differences (plus
    the regularisation), the directions solve ``S v = r N v``; ``r`` is
    :attr:`variance_ratios_`.  The differences are not centred: a change
    every variant makes the same way (a magnification is always upwards) is
    nuisance too.
    """

    def __init__(self, *, n_components: int | str = "auto", min_ratio: float = 5.0, regularisation: float = 1e-3):
        self.n_components = n_components
        self.min_ratio = min_ratio
        self.regularisation = regularisation

    def fit(self, X, y=None, *, originals=None, variants=None):
        """Learn the directions from rows ``X`` and pairs of (image, its acquisition variant) rows.

        Parameters
        ----------
        X : array-like of shape (n_rows, n_features)
            Feature rows of the images (all of them, or a sample): their
            covariance is what the projection keeps.
        y : ignored
        originals, variants : array-like of shape (n_pairs, n_features)
            Rows of some images and of one :func:`acquisition_variant` of each,
            in the same order.  At least 2 pairs.

        Returns
        -------
        self
        """
        rows = validate_data(self, X, dtype=np.float64, ensure_min_samples=2)
        if originals is None or variants is None:
            raise ValueError("NuisanceProjection.fit needs originals= and variants=: rows of images and their variants")
        originals = np.asarray(originals, dtype=np.float64)
        variants = np.asarray(variants, dtype=np.float64)
        if originals.shape != variants.shape or originals.ndim != 2 or originals.shape[1] != rows.shape[1]:
            raise ValueError(
                f"originals {originals.shape} and variants {variants.shape} must both be "
                f"(n_pairs, {rows.shape[1]}) arrays"
            )
        if len(originals) < 2:
            raise ValueError(f"need at least 2 pairs of an image and its variant, got {len(originals)}")
        if isinstance(self.n_components, str) and self.n_components != "auto":
            raise ValueError(f"n_components must be a whole number or 'auto', not {self.n_components!r}")
        if not isinstance(self.n_components, str) and not 1 <= self.n_components <= rows.shape[1]:
            raise ValueError(f"n_components must be between 1 and {rows.shape[1]}, got {self.n_components}")
        self.mean_ = rows.mean(axis=0)
        scale = rows.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        standard = (rows - self.mean_) / self.scale_
        differences = (originals - variants) / self.scale_
        nuisance = differences.T @ differences / len(differences)
        nuisance += self.regularisation * max(np.trace(nuisance) / len(nuisance), 1e-12) * np.eye(len(nuisance))
        ratios, directions = linalg.eigh(np.cov(standard, rowvar=False, bias=True), nuisance)
        order = np.argsort(ratios)[::-1]
        self.variance_ratios_ = ratios[order]
        directions = directions[:, order]
        if self.n_components == "auto":
            self.n_components_ = max(1, int(np.sum(self.variance_ratios_ >= self.min_ratio)))
        else:
            self.n_components_ = int(self.n_components)
        self.components_ = directions[:, : self.n_components_].T
        return self

    def transform(self, X):
        """Rows projected onto :attr:`components_`, shape ``(n_rows, n_components_)``, in units of acquisition's
        typical change."""
        check_is_fitted(self)
        rows = validate_data(self, X, dtype=np.float64, reset=False)
        return ((rows - self.mean_) / self.scale_) @ self.components_.T
