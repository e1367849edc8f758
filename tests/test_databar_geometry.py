"""Stripe, segment and label-box finding, against bars drawn here with PIL and bars the demo generator burns.

The drawn bars (``draw_*`` below, PIL only, independent of
:mod:`semcurate.datasets.databar`) have lengths known by construction under
the measuring convention: a ticked bar between the centres of its end ticks,
a filled bar or plain line between its outer edges, a bar interrupted by its
label from end to end, a ruler from its first to its last tick.  The
generator's bars (``bars`` fixture) cover every vendor layout at 512-2048 px;
the bad inputs of the issue (blank, black, white, tiny, stripe on top, two
stripes, two bars) get a status instead of an exception.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import convention_length, specimen
from PIL import Image, ImageDraw, ImageFont

from semcurate.datasets.databar import LAYOUTS, burn_data_bar, random_data_bar_spec
from semcurate.datasets.demo_corpus import IMAGE_SIZES
from semcurate.ingest.databar_geometry import (
    GeometryProblem,
    Segment,
    Stripe,
    analyse_image,
    analyse_stripe,
    find_segment,
    find_stripe,
    label_candidates,
    text_boxes,
)

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def frame(width: int = 1024, height: int = 768, stripe_rows: int = 60, stripe_grey: int = 255) -> np.ndarray:
    """A noisy specimen with a flat stripe of ``stripe_rows`` rows at the bottom."""
    image = specimen(np.random.default_rng(width + stripe_rows), height, width)
    image[height - stripe_rows :] = stripe_grey
    return image


def draw(image: np.ndarray, paint) -> np.ndarray:
    """``image`` with ``paint(ImageDraw)`` applied (PIL's rectangle ends are inclusive)."""
    picture = Image.fromarray(image)
    paint(ImageDraw.Draw(picture))
    return np.asarray(picture).copy()


def label(text: str, x: int, y: int, size: int = 20, fill: int = 0):
    return lambda pen: pen.text((x, y), text, font=ImageFont.truetype(FONT, size), fill=fill)


def bracket(x0: int, centres: int, y: int, tick: int = 2, height: int = 16, fill: int = 0):
    """``|—|`` whose end ticks, ``tick`` px wide, have centres ``centres`` px apart (``tick`` even: integer ends)."""

    def paint(pen):
        x1 = x0 + centres + tick  # one past the right tick's last column
        pen.rectangle((x0, y, x1 - 1, y + 1), fill=fill)
        pen.rectangle((x0, y - height // 2, x0 + tick - 1, y + height // 2), fill=fill)
        pen.rectangle((x1 - tick, y - height // 2, x1 - 1, y + height // 2), fill=fill)

    return paint


def both(*painters):
    return lambda pen: [paint(pen) for paint in painters]


def measured(image: np.ndarray) -> Segment:
    stripe = find_stripe(image)
    assert isinstance(stripe, Stripe), stripe
    segment = find_segment(image, stripe)
    assert isinstance(segment, Segment), segment
    return segment


@pytest.mark.parametrize("tick", [2, 4])
def test_bracket_is_measured_between_its_tick_centres(tick):
    image = draw(frame(), both(bracket(40, 150, 740, tick=tick), label("2 µm", 90, 712)))
    segment = measured(image)
    assert segment.length_px == pytest.approx(150, abs=0.05)
    assert segment.convention == "tick centres"


@pytest.mark.parametrize("rows", [1, 3, 8])
def test_filled_bar_and_line_are_measured_between_their_outer_edges(rows):
    def bar(pen):
        pen.rectangle((300, 740, 499, 739 + rows), fill=240)

    segment = measured(draw(frame(stripe_grey=20), both(bar, label("500 nm", 520, 730, fill=240))))
    assert segment.length_px == pytest.approx(200, abs=0.05)
    assert segment.convention == "outer edges"


def test_ruler_is_measured_from_first_to_last_tick():
    def ruler(pen):
        pen.rectangle((100, 745, 301, 746), fill=0)
        for index in range(11):  # ticks 2 px wide, centres 20 px apart from 101 to 301
            top = 733 if index in (0, 10) else 739
            pen.rectangle((100 + 20 * index, top, 101 + 20 * index, 746), fill=0)

    segment = measured(draw(frame(), both(ruler, label("10 µm", 320, 730))))
    assert segment.length_px == pytest.approx(200, abs=0.05)


def test_bar_interrupted_by_its_label_is_one_bar_from_cap_to_cap():
    """A Helios bar: 3-px line in two pieces around "500 µm", 1-px caps one column inside its ends."""

    def helios(pen):
        for start, stop in ((341, 396), (435, 491)):
            pen.rectangle((start, 448, stop, 450), fill=250)
        for cap in (342, 490):
            pen.rectangle((cap, 447, cap, 451), fill=250)

    text_width = ImageFont.truetype(FONT, 9).getlength("500 µm")  # centred in the 38-px gap, touching neither piece
    image = draw(
        frame(512, 471, 29, stripe_grey=0), both(helios, label("500 µm", round(416 - text_width / 2), 443, 9, 250))
    )
    stripe = find_stripe(image)
    segment = find_segment(image, stripe)
    assert len(segment.pieces) == 2 and segment.length_px == pytest.approx(148, abs=0.05)
    side, box = label_candidates(segment, text_boxes(image, stripe, segment))[0]
    assert side == "inside" and 396 < box[0] < box[2] < 435


def test_sub_pixel_ends_of_a_downsampled_bar():
    """Drawn at 4x and averaged down: a bracket with tick centres 150.25 px apart, a bar 200.75 px long."""
    big = Image.fromarray(np.full((240, 4096), 255, np.uint8))
    pen = ImageDraw.Draw(big)
    pen.rectangle((160, 120, 768, 127), fill=0)  # 8-px ticks centred on 163.5 and 764.5: 601 = 4 x 150.25 apart
    pen.rectangle((160, 60, 167, 187), fill=0)
    pen.rectangle((761, 60, 768, 187), fill=0)
    pen.rectangle((2400, 120, 2400 + 803 - 1, 151), fill=0)  # 803 px = 4 x 200.75
    small = np.asarray(big.resize((1024, 60), Image.Resampling.BOX))
    for x0, x1, expected in ((0, 512, 150.25), (512, 1024, 200.75)):
        image = frame()
        image[708:, :] = 255
        image[708:, x0:x1] = small[:, x0:x1]
        image = draw(image, label("1 µm", 900 if x0 == 0 else 100, 712))
        assert measured(image).length_px == pytest.approx(expected, abs=0.15)


@pytest.mark.parametrize("stripe_rows", [38, 115])  # 5 % and 15 % of 768 rows
def test_stripes_of_five_to_fifteen_percent(stripe_rows):
    top = 768 - stripe_rows
    marker = bracket(40, 120, top + stripe_rows // 2 + 4, height=10)
    image = draw(frame(stripe_rows=stripe_rows), both(marker, label("1 µm", 80, top + 2, size=12)))
    stripe = find_stripe(image)
    assert stripe.box == (0, top, 1024, 768)
    assert measured(image).length_px == pytest.approx(120, abs=0.05)


def test_framed_white_stripe_includes_its_frame():
    """Zeiss: a 1-px black frame around a white stripe, a logo box at the right."""

    def zeiss(pen):
        pen.rectangle((2, 691, 1023, 766), outline=0)
        pen.rectangle((930, 700, 986, 760), fill=60)

    image = frame(stripe_rows=77)
    image[767] = image[690]  # a picture row under the frame, as on the 1k fixture
    image = draw(image, both(zeiss, bracket(21, 76, 733, height=26), label("200 µm", 23, 698)))
    stripe = find_stripe(image)
    assert stripe.box == (0, 691, 1024, 767)
    layout = analyse_stripe(image, stripe)
    assert layout.segment.length_px == pytest.approx(76, abs=0.05)
    assert not any(box[0] >= 925 for box in layout.boxes)  # the logo is not a line of text


def test_table_stripe_under_a_black_picture():
    """Thermo/FEI: black picture, black table stripe with white grid lines; the stripe starts at its top rule."""

    def table(pen):
        pen.rectangle((0, 442, 511, 442), fill=250)
        pen.rectangle((0, 470, 511, 470), fill=250)
        for x in (40, 120, 200, 320):
            pen.rectangle((x, 442, x, 470), fill=250)
        pen.rectangle((320, 456, 511, 456), fill=250)
        for x, text in ((50, "HFW"), (130, "WD"), (210, "mag")):
            pen.text((x, 444), text, font=ImageFont.truetype(FONT, 9), fill=250)
        pen.rectangle((340, 448, 490, 450), fill=250)

    image = draw(np.zeros((471, 512), np.uint8), both(table, label("1 µm", 380, 457, size=9, fill=250)))
    stripe = find_stripe(image)
    assert stripe.box == (0, 442, 512, 471)
    layout = analyse_stripe(image, stripe)
    assert layout.segment.length_px == pytest.approx(151, abs=0.05)
    for box in layout.boxes:  # grid lines are not text, nor part of a word's box
        assert box[3] - box[1] < 15


def test_stripe_under_a_flat_picture_without_a_rule():
    image = np.full((768, 1024), 255, np.uint8)
    image[:400] = specimen(np.random.default_rng(4), 400, 1024)
    image = draw(image, both(bracket(40, 150, 745), label("2 µm", 90, 712)))
    stripe = find_stripe(image)
    assert isinstance(stripe, Stripe) and stripe.box[3] == 768 and 640 <= stripe.box[1] <= 712
    assert measured(image).length_px == pytest.approx(150, abs=0.05)


def test_no_bar_one_bar_two_bars():
    text = label("EHT = 5.00 kV", 600, 712)
    none = draw(frame(), text)
    assert find_segment(none, find_stripe(none)).status == "no_segment"
    one = draw(frame(), both(text, bracket(100, 200, 740)))
    assert measured(one).length_px == pytest.approx(200, abs=0.05)
    two = draw(frame(), both(text, bracket(100, 200, 740), bracket(380, 120, 740)))
    result = find_segment(two, find_stripe(two))
    assert isinstance(result, GeometryProblem) and result.status == "multiple_segments"


def test_every_vendor_layout_is_found_and_measured(bars):
    for spec, image, truth in bars:
        key = (spec.layout, spec.width, spec.font)
        stripe = find_stripe(image)
        assert isinstance(stripe, Stripe), (key, stripe)
        _x0, y0, _x1, y1 = truth.stripe_box
        if spec.position == "overlay":  # flat picture above the stripe: its rows may join the stripe
            assert stripe.box[3] == y1 and stripe.box[1] <= y0, key
        else:
            assert stripe.box == truth.stripe_box, key
        assert stripe.dark == (spec.polarity == "dark"), key
        segment = find_segment(image, stripe)
        assert isinstance(segment, Segment), (key, segment)
        expected = convention_length(image, spec, truth)
        assert abs(segment.length_px - expected) <= 0.5, (key, spec.bar.style, segment.length_px, expected)
        candidates = label_candidates(segment, text_boxes(image, stripe, segment))
        side, (bx0, by0, bx1, by1) = candidates[0]
        lx0, ly0, lx1, ly1 = truth.label_box
        assert side == truth.label_position, (key, candidates[:2], truth.label_box)
        assert lx0 - 2 <= bx0 < bx1 <= lx1 + 2 and ly0 - 2 <= by0 < by1 <= ly1 + 2, (key, candidates[0])


def test_analyse_image_is_find_stripe_then_analyse_stripe_in_one_pass(bars):
    """The reader's one pass (the segment measured while choosing the stripe) gives what the two public steps give."""
    for spec, image, truth in bars:
        key = (spec.layout, spec.width, spec.font)
        layout = analyse_image(image)
        stripe = find_stripe(image)
        assert isinstance(stripe, Stripe), (key, stripe)
        separate = analyse_stripe(image, stripe)
        assert layout.stripe == stripe and layout.segment == separate.segment, key
        assert layout.boxes == separate.boxes and np.array_equal(layout.cleaned, separate.cleaned), key
        assert abs(layout.segment.length_px - convention_length(image, spec, truth)) <= 0.5, key
    assert analyse_image(np.zeros((8, 8), np.uint8)).status == "no_stripe"


def harness_bar(seed: int, layout: str, index: int, *, small: bool = True):
    """``(spec, pixels, truth)`` of the demo-corpus bar ``index`` of ``layout`` from ``seed``.

    The recipe of the accuracy study that found the reader's failures: a
    corpus size is drawn, then (``small``) one of the three 512-px frames instead, then the bar.
    """
    rng = np.random.default_rng([seed, LAYOUTS.index(layout), index])
    shares = np.array([share for *_size, share in IMAGE_SIZES])
    width, height, _share = IMAGE_SIZES[int(rng.choice(len(IMAGE_SIZES), p=shares / shares.sum()))]
    if small:
        width, height, _share = [size for size in IMAGE_SIZES if size[0] == 512][int(rng.integers(3))]
    spec = random_data_bar_spec(rng, width, height, layout)
    pixels, truth = burn_data_bar(specimen(np.random.default_rng(index), spec.specimen_height, width), spec)
    return spec, pixels, truth


@pytest.mark.parametrize(
    ("seed", "layout", "index"),
    [
        (7, "zeiss_framed", 14),  # "WD = 3.4 mm" in 8-px FreeSans: the arches of "mm", 2 px apart, are no bar
        (8, "generic", 52),  # a ruler split by "200 nm": the tick at the gap's left edge falls in the gap
    ],
)
def test_small_print_bars_are_one_segment_of_their_true_length(seed, layout, index):
    spec, image, truth = harness_bar(seed, layout, index)
    segment = measured(image)
    assert segment.length_px == pytest.approx(convention_length(image, spec, truth), abs=0.5)
    assert segment.convention == "tick centres"


def test_blurred_segment_ends_are_measured_to_sub_pixel(bars):
    """Each segment blurred along its rows (a 3-px box filter, as a resampled or JPEG-softened bar) keeps its length."""
    from scipy.ndimage import uniform_filter1d

    for spec, image, truth in bars:
        if spec.bar.style == "line" and spec.bar.caps:
            continue  # the generator measures capped lines end to end (see conftest.convention_length)
        x0, y0, x1, y1 = truth.segment_box
        blurred = image.copy()
        region = image[y0:y1, x0 - 3 : x1 + 3].astype(np.float32)
        blurred[y0:y1, x0 - 3 : x1 + 3] = uniform_filter1d(region, size=3, axis=1).round().astype(np.uint8)
        segment = find_segment(blurred, find_stripe(blurred))
        assert isinstance(segment, Segment), (spec.layout, spec.width, segment)
        assert abs(segment.length_px - truth.bar_px) <= 0.5, (spec.layout, spec.width, segment.length_px)


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((768, 1024), np.uint8),
        np.full((768, 1024), 255, np.uint8),
        np.full((768, 1024), 128, np.uint8),
        specimen(np.random.default_rng(1), 768, 1024),
        np.zeros((48, 64), np.uint8),
        np.zeros((8, 8), np.uint8),
    ],
    ids=["black", "white", "grey", "no stripe", "64x48 blank", "8x8"],
)
def test_images_without_a_stripe_say_so(image):
    result = find_stripe(image)
    assert isinstance(result, GeometryProblem) and result.status == "no_stripe" and result.reason


def test_stripe_at_the_top_is_not_taken(bars):
    _, image, _ = bars[0]
    flipped = np.ascontiguousarray(image[::-1])
    result = find_stripe(flipped)
    assert isinstance(result, GeometryProblem) and result.status == "no_stripe"


def test_two_stripes_are_reported_not_guessed(bars):
    _spec, image, truth = next(bar for bar in bars if bar[0].position != "overlay" and bar[0].width == 1024)
    _x0, y0, _x1, y1 = truth.stripe_box
    stripe_rows = image[y0:y1]
    doubled = np.vstack([image[: y0 - 2 * (y1 - y0)], stripe_rows, image[y0 - (y1 - y0) : y0], stripe_rows])
    assert find_stripe(doubled).status == "multiple_stripes"


MONO = "/usr/share/fonts/truetype/freefont/FreeMono.ttf"


def test_a_framed_icon_beside_the_text_is_not_a_bar():
    """Thermo/FEI's "⊞" next to "mag" has full rows at its top, middle and bottom: an icon, not a bracket."""

    def quad(pen):
        pen.rectangle((600, 722, 614, 736), outline=0)
        pen.line((600, 729, 614, 729), fill=0)
        pen.line((607, 722, 607, 736), fill=0)

    image = draw(frame(), both(quad, label("mag", 560, 722, 12), bracket(100, 180, 740), label("5 µm", 300, 730, 12)))
    assert measured(image).length_px == pytest.approx(180, abs=0.05)


def test_the_strokes_of_a_fixed_width_equals_sign_are_no_bar():
    """Two FreeMono "=" a short word apart on one line: each is two thin strokes, one over the other."""

    def text(pen):
        pen.text((300, 724), "A = 5 = 6", font=ImageFont.truetype(MONO, 16), fill=0)

    assert measured(draw(frame(), both(text, bracket(40, 150, 745)))).length_px == pytest.approx(150, abs=0.05)


def test_a_ruler_split_by_its_label_is_one_bar():
    """Ticks every 20 px on both halves (centres 101 to 201 and 281 to 381), "200nm" in the gap: 280 px."""

    def ruler(pen):
        for start in (100, 280):
            pen.rectangle((start, 745, start + 101, 746), fill=0)
            for index in range(6):
                pen.rectangle((start + 20 * index, 739, start + 1 + 20 * index, 746), fill=0)

    segment = measured(draw(frame(), both(ruler, label("200nm", 212, 733))))
    assert len(segment.pieces) == 2
    assert segment.length_px == pytest.approx(280, abs=0.05)


def test_a_bold_ruler_whose_ticks_cover_half_its_length():
    """Eleven 6-px ticks every 16 px along a 166-px ruler: 40 % of its columns hold tick ink."""

    def ruler(pen):
        pen.rectangle((100, 742, 265, 747), fill=0)
        for index in range(11):
            pen.rectangle((100 + 16 * index, 732, 105 + 16 * index, 747), fill=0)

    segment = measured(draw(frame(), both(ruler, label("10 µm", 300, 730))))
    assert segment.length_px == pytest.approx(160, abs=0.05)  # first tick's centre 102.5 to the last's 262.5


def test_a_filled_box_split_by_its_label_into_two_stubs():
    """A 16-px-high box of 120 px with its label inside leaves 28-px ends, too thick to be bars alone."""

    def box(pen):
        pen.rectangle((400, 730, 427, 745), fill=0)
        pen.rectangle((492, 730, 519, 745), fill=0)

    segment = measured(draw(frame(), both(box, label("2µm", 436, 726, 18))))
    assert len(segment.pieces) == 2
    assert segment.length_px == pytest.approx(120, abs=0.05)


def test_of_two_stripe_coloured_bands_the_one_with_a_marker_is_the_stripe():
    """A black picture band over a black stripe: only the stripe holds a scale marker."""
    image = frame(stripe_grey=0)
    image[560:640] = 0
    image = draw(image, lambda pen: pen.ellipse((200, 575, 240, 615), fill=200))  # a bright particle in the dark band
    image = draw(image, both(bracket(40, 150, 740, fill=255), label("2 µm", 90, 712, fill=255)))
    stripe = find_stripe(image)
    assert isinstance(stripe, Stripe) and stripe.box[3] == 768 and stripe.box[1] >= 700
    assert measured(image).length_px == pytest.approx(150, abs=0.05)


def test_a_blank_picture_over_a_dark_stripe():
    """A blank frame over a black stripe, its flat squares as many at grey 114.0 as at 115.3 (a tie one grey apart)."""
    image = frame(stripe_grey=21)
    rng = np.random.default_rng(5)
    image[:708, :512] = 114
    image[:708, 512:] = 115
    image[:708, 512:][rng.random((708, 512)) < 0.3] = 116  # squares' means near 115.3
    image = draw(image, both(bracket(40, 150, 740, fill=250), label("2 µm", 90, 712, fill=250)))
    stripe = find_stripe(image)
    # flat picture rows along its top edge pass for a frame rule: the box may start up to a sixth higher
    assert isinstance(stripe, Stripe) and 698 <= stripe.box[1] <= 708 and stripe.box[3] == 768
    assert measured(image).length_px == pytest.approx(150, abs=0.05)


def test_white_bands_of_an_over_exposed_picture_over_a_black_stripe():
    """Two saturated white bands low in the picture, each with a dark speck, over a black stripe with a bar."""
    image = frame(stripe_grey=11)
    image[560:620] = 255
    image[640:700] = 255
    image[580:590, 300:310] = 0
    image[660:670, 700:710] = 0
    image = draw(image, both(bracket(40, 150, 740, fill=250), label("2 µm", 90, 712, fill=250)))
    stripe = find_stripe(image)
    assert isinstance(stripe, Stripe) and stripe.box[3] == 768 and stripe.dark
    assert measured(image).length_px == pytest.approx(150, abs=0.05)


def test_a_table_whose_thick_bar_and_values_leave_little_background_is_one_stripe():
    """Thermo/FEI as the demo saves it (JPEG): a frame line, a row of headers, then the values beside a filled bar
    10 rows thick; those rows keep under 40 % of background, more rows than the search bridges, yet the bar's body
    crosses them all, so the table is one stripe from its frame (not the rows under the bar alone)."""
    bold = ImageFont.truetype(FONT.replace("DejaVuSans", "DejaVuSans-Bold"), 22)

    def table(pen):
        pen.rectangle((0, 707, 1023, 707), fill=218)  # the frame line and the table's bottom rule
        pen.rectangle((0, 767, 1023, 767), fill=218)
        cells = ((100, "HV", "2.00 kV"), (180, "curr", "1.6 nA"), (275, "mag", "58 900 x"), (390, "HFW", "3.52 µm"))
        for x, head, value in (*cells, (505, "det", "T1"), (560, "WD", "8.1 mm")):
            pen.rectangle((x, 707, x + 1, 767), fill=218)
            pen.text((x + 8, 710), head, font=bold, fill=230)
            pen.text((x + 8, 738), value, font=bold, fill=230)
        pen.rectangle((665, 707, 666, 767), fill=218)
        pen.text((815, 711), "1 µm", font=bold, fill=230)
        pen.rectangle((700, 747, 989, 756), fill=230)  # the filled bar: 290 px long, 10 rows thick

    image = np.full((768, 1024), 32, np.uint8)
    image[:707] = specimen(np.random.default_rng(7), 707, 1024)
    saved = io.BytesIO()
    Image.fromarray(draw(image, table)).save(saved, "JPEG", quality=85)
    image = np.asarray(Image.open(saved).convert("L"))
    background = (np.abs(image[708:767].astype(int) - 32) <= 3).mean(axis=1)
    assert (background[747 - 708 : 757 - 708] < 0.4).all()  # the premise: 10 rows under the row fraction
    stripe = find_stripe(image)
    assert isinstance(stripe, Stripe) and stripe.box[3] == 768
    assert stripe.box[1] in (707, 708)  # the frame, or the row under it where JPEG noise broke the flat line
    assert analyse_stripe(image, stripe).segment.length_px == pytest.approx(290, abs=0.5)
