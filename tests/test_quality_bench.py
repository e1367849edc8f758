"""The quality benchmark's own truths (bench/quality.py, issue 15), on pictures whose counts are set by hand.

The ``saturated`` row of the benchmark is scored against :func:`clipped_truth`, not against the
corpus's drawn defects; a wrong count there would make the row say nothing, so it is checked here
on store files written by the test with a known number of pixels at 0 and 255 above and below the bar.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import bench_script
from PIL import Image


@pytest.fixture(scope="module")
def quality_bench():
    with bench_script("quality") as module:
        yield module


def test_clipped_truth_counts_the_pixels_at_0_or_255_above_the_bar_only(quality_bench, tmp_path):
    # 100 rows x 50 columns, bar from row 80: 4000 pixels above it
    picture = np.full((100, 50), 128, np.uint8)
    picture[80:] = 255  # a white bar: clipped, but below the stripe's top, so never counted
    just_enough = picture.copy()
    just_enough[:2, :] = 0  # 100 black pixels
    just_enough[2:4, :] = 255  # and 100 white ones: 200 / 4000 = 0.05
    one_short = just_enough.copy()
    one_short[3, 0] = 254  # 199 / 4000 = 0.04975
    no_bar = np.full((100, 50), 128, np.uint8)
    no_bar[:5] = 255  # 250 / 5000 = 0.05 of the whole image, counted without a bar
    Image.fromarray(just_enough).save(tmp_path / "a.tif")
    Image.fromarray(one_short).save(tmp_path / "b.tif")
    Image.fromarray(picture).convert("RGB").save(tmp_path / "c.jpg", quality=100)  # no TIFF: the JPEG, as grey
    Image.fromarray(no_bar).save(tmp_path / "d.tif")
    bar = {"stripe_box": "0 80 50 100"}
    truth = {"a": bar, "b": bar, "c": bar, "d": {"stripe_box": ""}}
    assert quality_bench.clipped_truth(tmp_path, truth, 0.05) == {"a", "d"}
    assert quality_bench.clipped_truth(tmp_path, truth, 0.0497) == {"a", "b", "d"}
