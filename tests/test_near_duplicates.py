"""Near-duplicates made with Pillow (resize, JPEG quality 60, crop, autocontrast, bar cut off) are grouped; different
images of one kind, and other fields of view of one sample, are not."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
from PIL import Image, ImageOps
from sqlalchemy import delete, func, select, update

from semcurate.datasets.databar import burn_data_bar, random_data_bar_spec
from semcurate.datasets.specimens import draw_specimen
from semcurate.datasets.taxonomy import leaf_paths
from semcurate.db.models import Image as ImageRow
from semcurate.db.models import IngestRun
from semcurate.ingest.images import hamming, perceptual_hash
from semcurate.ingest.ingestion import ingest
from semcurate.ingest.near_duplicates import (
    TOP_SQUARE_BITS,
    WHOLE_IMAGE_BITS,
    candidate_pairs,
    comparison_view,
    confirmed,
    top_square_hash,
)

LEAVES = leaf_paths()


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue()))


def _acquisition(leaf: str, seed: int, width: int = 1024, height: int = 768) -> tuple[Image.Image, int]:
    """A drawn specimen with a burned data bar, and the first row of the bar."""
    rng = np.random.default_rng(seed)
    spec = random_data_bar_spec(rng, width, height, "zeiss_plain")
    pixels, truth = burn_data_bar(draw_specimen(leaf, rng, spec.specimen_height, width), spec)
    return Image.fromarray(pixels), truth.stripe_box[1]


def _copies(image: Image.Image, stripe_top: int) -> dict[str, Image.Image]:
    """What people do to an image when they save it again, done with Pillow alone."""
    width, height = image.size
    return {
        "half size": image.resize((width // 2, height // 2), Image.Resampling.LANCZOS),
        "jpeg q60": _jpeg(image, 60),
        "crop 10 px": image.crop((10, 10, width - 10, height)),
        "autocontrast": ImageOps.autocontrast(image, cutoff=2),
        "bar cut off": image.crop((0, 0, width, stripe_top)),
        "half, q60, cropped": _jpeg(
            image.resize((width // 2, height // 2)).crop((5, 5, width // 2 - 5, height // 2)), 60
        ),
    }


@pytest.fixture(scope="module")
def acquisitions():
    return [_acquisition(LEAVES[index], seed=index) for index in (0, 7, 14, 21, 28, 35)]


def test_every_copy_is_a_candidate_and_confirmed(acquisitions):
    for original, stripe_top in acquisitions:
        for name, copy in _copies(original, stripe_top).items():
            whole = hamming(perceptual_hash(original.convert("L")), perceptual_hash(copy.convert("L")))
            top = hamming(top_square_hash(original), top_square_hash(copy))
            assert whole <= WHOLE_IMAGE_BITS or top <= TOP_SQUARE_BITS, name
            assert confirmed(original, copy), name


def test_a_worker_band_passes_each_image_once_per_width_and_judges_as_confirmed_does(
    tmp_path, acquisitions, monkeypatch
):
    """An image in several candidate pairs of one task is decoded and band-passed once per view width."""
    from semcurate.ingest import ingestion, near_duplicates

    original, stripe_top = acquisitions[0]
    copies = _copies(original, stripe_top)
    pictures = {"original": original, **copies, "other": acquisitions[1][0]}
    md5s = {name: f"{number:032x}" for number, name in enumerate(pictures)}
    for name, picture in pictures.items():
        picture.convert("L").save(tmp_path / f"{md5s[name]}.jpg", quality=95)
    pairs = [(md5s["original"], md5s[name]) for name in pictures if name != "original"]
    pairs.append((md5s["other"], md5s["half size"]))
    made = []  # (image, view width) of every view made
    view = near_duplicates.comparison_view
    monkeypatch.setattr(
        near_duplicates,
        "comparison_view",
        lambda image, width=128: made.append((id(image), width)) or view(image, width),
    )
    verdicts = ingestion._confirm_pairs_task((tmp_path, pairs))
    assert verdicts == [True] * len(copies) + [False, False]  # every copy of the original, and not the other picture
    assert len(made) == len(set(made))  # no view made twice
    assert [width for _, width in made].count(near_duplicates.VIEW_WIDTH) == len(pictures)  # not one per pair
    stored = {md5: Image.open(tmp_path / f"{md5}.jpg") for pair in pairs for md5 in pair}
    assert verdicts == [confirmed(stored[a], stored[b]) for a, b in pairs]


def test_images_of_one_kind_and_other_fields_of_view_are_kept_apart():
    # Two acquisitions of one category: same texture statistics, different specimens.
    for leaf in (LEAVES[3], LEAVES[20], LEAVES[30]):
        first, _ = _acquisition(leaf, seed=1)
        second, _ = _acquisition(leaf, seed=2)
        assert not confirmed(first, second), leaf
    # One large specimen seen through two overlapping windows, and zoomed in on its centre.
    field = Image.fromarray(draw_specimen(LEAVES[10], np.random.default_rng(4), 1200, 2400))
    left, shifted = field.crop((0, 0, 1600, 1200)), field.crop((640, 0, 2240, 1200))  # 60 % overlap
    zoomed = field.crop((400, 300, 1200, 900)).resize((1600, 1200))
    assert confirmed(left, field.crop((8, 8, 1608, 1208)))
    assert not confirmed(left, shifted)
    assert not confirmed(left, zoomed)


def test_a_blank_frame_is_never_confirmed():
    blank = Image.fromarray(np.full((300, 400), 120, np.uint8))
    assert comparison_view(blank) is None
    assert not confirmed(blank, blank)


def test_candidate_pairs_equal_a_brute_force_hamming_search():
    rng = np.random.default_rng(0)
    base = [f"{value:016x}" for value in rng.integers(0, 2**63, 300, dtype=np.int64)]
    flipped = [
        f"{int(value, 16) ^ (1 << int(bit)):016x}"
        for value, bit in zip(base[:40], rng.integers(0, 64, 40), strict=True)
    ]
    column = base + flipped
    expected = {(i, j) for i, j in itertools.combinations(range(len(column)), 2) if hamming(column[i], column[j]) <= 6}
    assert set(candidate_pairs([(column, 6)])) == expected
    assert {(index, 300 + index) for index in range(40)} <= expected
    new = [5, 17, 300, 339, 17]  # a repeat is asked once
    assert candidate_pairs([(column, 6)], among=new) == sorted(pair for pair in expected if set(pair) & set(new))
    assert candidate_pairs([(column, 6)], among=[]) == []


def test_candidate_pairs_span_blocks_of_rows_as_a_brute_force_search_does():
    """1,300 hashes are three blocks of 512 rows: pairs within a block, across blocks and with the last, short one."""
    rng = np.random.default_rng(1)
    originals = [int(value) for value in rng.integers(0, 2**63, 1200, dtype=np.int64)]
    copied, flipped = rng.integers(0, 1200, 100), rng.integers(0, 64, 100)
    copies = [originals[int(at)] ^ (1 << int(bit)) for at, bit in zip(copied, flipped, strict=True)]
    values = [int(value) for value in rng.permutation(np.array(originals + copies, dtype=object))]
    column = [f"{value:016x}" for value in values]
    expected = {
        (i, j) for i, j in itertools.combinations(range(len(values)), 2) if (values[i] ^ values[j]).bit_count() <= 2
    }
    blocks = {(i // 512, j // 512) for i, j in expected}
    assert {(0, 0), (2, 2)} <= blocks and {(0, 1), (0, 2), (1, 2)} & blocks  # within and across blocks
    assert candidate_pairs([(column, 2)]) == sorted(expected)
    new = range(1024, 1300)
    assert candidate_pairs([(column, 2)], among=new) == sorted(pair for pair in expected if pair[1] >= 1024)


def test_ingest_groups_the_copies_with_their_original(tmp_path, sessions, acquisitions, monkeypatch):
    """Grouped at ingest, with the top-square hashes taken at admission; a store from before that is grouped alike."""
    from semcurate.db.models import ImageSignature
    from semcurate.ingest import ingestion

    def decode_store_jpg(_task):
        raise AssertionError("admission hashes every new image: no store JPG is decoded for its signature")

    monkeypatch.setattr(ingestion, "_signature_task", decode_store_jpg)
    source = tmp_path / "source"
    source.mkdir()
    expected = []
    for number, (original, stripe_top) in enumerate(acquisitions[:3]):
        original.save(source / f"acq{number}.tif")
        names = [f"acq{number}.tif"]
        for index, (name, copy) in enumerate(_copies(original, stripe_top).items()):
            file_name = f"acq{number}_copy{index}.{'jpg' if 'q60' in name else 'tif'}"
            (copy if copy.mode == "L" else copy.convert("L")).save(source / file_name, quality=60)
            names.append(file_name)
        expected.append(names)
    ingest(source, tmp_path / "store", sessions, workers=1)
    with sessions() as session:
        group_of = {row.md5: row.near_duplicate_group for row in session.scalars(select(ImageRow))}
        from semcurate.db.models import File

        md5_of = {row.relpath: row.image_md5 for row in session.scalars(select(File))}
    groups = []
    for names in expected:
        groups.append({group_of[md5_of[name]] for name in names})
    assert all(len(group) == 1 and None not in group for group in groups)
    assert len(set.union(*groups)) == 3  # three acquisitions, three groups

    # A store ingested before admission hashed: no signatures, no groups, no grouping rule on its run; its store
    # JPGs are decoded for them.  Regrouped by two worker processes, three candidate pairs a task: the same groups.
    monkeypatch.undo()
    monkeypatch.setattr(ingestion, "PAIRS_PER_TASK", 3)
    with sessions.begin() as session:
        session.execute(delete(ImageSignature))
        session.execute(update(ImageRow).values(near_duplicate_group=None))
        session.execute(update(IngestRun).values(summary_json="{}"))
    ingestion.Ingestion(source, tmp_path / "store", sessions, workers=2).group_near_duplicates()
    with sessions() as session:
        regrouped = {row.md5: row.near_duplicate_group for row in session.scalars(select(ImageRow))}
        assert session.scalar(select(func.count()).select_from(ImageSignature)) == len(regrouped)
    for names in expected:
        assert len({regrouped[md5_of[name]] for name in names} - {None}) == 1
    assert {md5 for md5, group in regrouped.items() if group} == {md5 for md5, group in group_of.items() if group}


def test_bit_counts_by_byte_table_equal_numpys_own(monkeypatch):
    """The NumPy < 2 path (a byte table) counts the bits NumPy 2's bitwise_count counts, and Python's int.bit_count."""
    from semcurate.ingest import images

    words = np.random.default_rng(1).integers(0, 2**63, size=(30, 20), dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    truth = np.vectorize(lambda word: int(word).bit_count())(words)
    if hasattr(np, "bitwise_count"):
        assert (images.bit_counts(words) == truth).all()
        monkeypatch.delattr(np, "bitwise_count")
    assert (images.bit_counts(words) == truth).all()


def _pearson_at_every_shift(view_a: np.ndarray, view_b: np.ndarray, reach: int, least_overlap: float) -> dict:
    """The correlation of the overlap at each shift, one shift at a time with numpy's corrcoef (the reference)."""
    found = {}
    for dy, dx in itertools.product(range(-reach, reach + 1), repeat=2):
        a = view_a[max(0, dy) :, max(0, dx) :]
        b = view_b[max(0, -dy) :, max(0, -dx) :]
        rows, columns = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
        if rows * columns >= least_overlap * min(view_a.size, view_b.size):
            found[dy, dx] = np.corrcoef(a[:rows, :columns].ravel(), b[:rows, :columns].ravel())[0, 1]
    return found


@pytest.mark.parametrize("seed", range(6))
def test_similarity_equals_pearson_over_the_overlap_at_the_best_shift(seed):
    """The FFT search returns the shift and value a shift-by-shift Pearson correlation finds."""
    from semcurate.ingest import near_duplicates

    rng = np.random.default_rng(seed)
    texture = ndimage_smooth(rng.normal(size=(110, 150)))
    dy, dx = (int(v) for v in rng.integers(-7, 8, 2))
    view_a = texture[10:80, 10:138]
    # up to a tenth narrower and shorter, as the view of a cropped copy is (the shorter view sets no padding)
    view_b = texture[10 - dy : 80 - dy - int(rng.integers(0, 8)), 10 - dx : 138 - dx - int(rng.integers(0, 13))]
    view_b = view_b * 1.7 + 3 + rng.normal(scale=0.4, size=view_b.shape)  # contrast, offset and noise
    reach = round(near_duplicates.MAX_SHIFT * near_duplicates.VIEW_WIDTH)
    reference = _pearson_at_every_shift(view_a, view_b, reach, near_duplicates.MIN_OVERLAP)
    best_shift = max(reference, key=reference.get)
    value, shift = near_duplicates.similarity(view_a, view_b)
    assert shift == best_shift == (-dy, -dx)  # view_b[y, x] is texture[y + 10 - dy, x + 10 - dx]
    assert value == pytest.approx(reference[best_shift], abs=1e-9)
    unrelated = ndimage_smooth(rng.normal(size=view_b.shape))
    unrelated_reference = _pearson_at_every_shift(view_a, unrelated, reach, near_duplicates.MIN_OVERLAP)
    value, shift = near_duplicates.similarity(view_a, unrelated)
    assert value == pytest.approx(max(unrelated_reference.values()), abs=1e-9)
    assert shift == max(unrelated_reference, key=unrelated_reference.get)


def ndimage_smooth(noise: np.ndarray) -> np.ndarray:
    """Noise with a texture's correlation length (a Gaussian blur of 1.5 px), as a band-passed view has."""
    from scipy import ndimage

    return ndimage.gaussian_filter(noise, 1.5)


def _cone(seed: int) -> Image.Image:
    """A bright cone on a dark ground (a tip), its faces filled with a texture of its own: one shape, two seeds."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:384, 0:512]
    inside = (y > 60) & (np.abs(x - 300) < (y - 60) * 0.45)
    texture = ndimage.gaussian_filter(rng.normal(size=(384, 512)), 3) * 15 / 0.09  # about 15 grey levels
    picture = np.where(inside, 150 + texture, 40) + rng.normal(scale=6, size=(384, 512))
    return Image.fromarray(np.clip(picture, 0, 255).astype(np.uint8))


def test_two_specimens_of_one_shape_correlate_on_their_outline_yet_are_kept_apart():
    """The demo's tips drawn alike correlated at up to 0.96 over the whole view; their blocks of texture do not."""
    from semcurate.ingest.near_duplicates import MIN_AGREEMENT, MIN_CORRELATION, ComparedImage, match

    first, second = _cone(1), _cone(2)
    correlation, agreed = match(ComparedImage(first), ComparedImage(second))
    assert correlation >= MIN_CORRELATION  # the outline alone would have confirmed them
    assert agreed < MIN_AGREEMENT
    assert not confirmed(first, second)
    assert confirmed(first, _jpeg(first.resize((256, 192), Image.Resampling.LANCZOS), 60))


@pytest.mark.parametrize("seed", range(4))
def test_agreement_equals_a_block_by_block_pearson_count(seed):
    """Against numpy's corrcoef on each 16-px block of the overlap, blocks without detail left out."""
    from semcurate.ingest import near_duplicates

    rng = np.random.default_rng(seed)
    texture = ndimage_smooth(rng.normal(size=(100, 150)))
    dy, dx = (int(v) for v in rng.integers(-7, 8, 2))
    view_a = texture[10:80, 10:138]
    view_b = texture[10 - dy : 80 - dy, 10 - dx : 138 - dx] + rng.normal(scale=0.05, size=(70, 128))
    view_b[:, 64:] = ndimage_smooth(rng.normal(size=(70, 64)))  # its right half another picture
    view_b[:16, :16] = 0.0  # a flat block: not counted
    view_a, view_b = view_a * 8, view_b * 8  # grey levels, so that MIN_DETAIL applies as in a view
    shift = (-dy, -dx)
    a = view_a[max(0, shift[0]) :, max(0, shift[1]) :]
    b = view_b[max(0, -shift[0]) :, max(0, -shift[1]) :]
    rows, columns = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
    side = near_duplicates.BLOCK
    verdicts = []
    for top, left in itertools.product(range(0, rows - side + 1, side), range(0, columns - side + 1, side)):
        block_a, block_b = a[top : top + side, left : left + side], b[top : top + side, left : left + side]
        if min(block_a.std(), block_b.std()) >= near_duplicates.MIN_DETAIL:
            verdicts.append(np.corrcoef(block_a.ravel(), block_b.ravel())[0, 1] >= near_duplicates.BLOCK_CORRELATION)
    assert 0.2 < np.mean(verdicts) < 0.8
    assert near_duplicates.agreement(view_a, view_b, shift) == pytest.approx(np.mean(verdicts), abs=1e-12)


def test_false_candidates_stay_rare_among_distinct_acquisitions():
    """400 acquisitions, no two of one: whole-image hashes within 10 bits paired 32-42 of their 79,800 pairs (the
    data bar weighs in them), which grows with the square of the images; the candidates now are a few."""
    from semcurate.datasets.databar import random_data_bar_spec

    whole, top = [], []
    for index in range(400):
        rng = np.random.default_rng(1000 + index)
        spec = random_data_bar_spec(rng, 256, 192)
        pixels, _ = burn_data_bar(draw_specimen(LEAVES[index % len(LEAVES)], rng, spec.specimen_height, 256), spec)
        grey = Image.fromarray(pixels).convert("L")
        whole.append(perceptual_hash(grey))
        top.append(top_square_hash(grey))
    candidates = candidate_pairs([(whole, WHOLE_IMAGE_BITS), (top, TOP_SQUARE_BITS)])
    assert len(candidates) <= 8  # 1e-4 of the pairs
    assert len(candidate_pairs([(whole, 10)])) >= 4 * max(1, len(candidates))


def test_a_later_ingest_compares_only_pairs_with_a_new_image(tmp_path, sessions, acquisitions, monkeypatch):
    """A second run over the same source compares no pair; a new copy is compared with the images it may copy
    and joins their group.  (After a run of an older rule, none recorded, every pair is compared again: the
    regrouping in the test above.)"""
    from semcurate.ingest import ingestion

    source = tmp_path / "source"
    source.mkdir()
    for number, (original, stripe_top) in enumerate(acquisitions[:3]):
        original.save(source / f"acq{number}.tif")
        _copies(original, stripe_top)["jpeg q60"].convert("L").save(source / f"acq{number}_q60.jpg", quality=60)
    searched = []  # the images each run searched candidate pairs for (None: all)
    search = ingestion.candidate_pairs
    monkeypatch.setattr(
        ingestion, "candidate_pairs", lambda columns, among=None: searched.append(among) or search(columns, among)
    )
    first = ingest(source, tmp_path / "store", sessions, workers=1)
    assert first["near_duplicate_candidates"] >= 3 and first["near_duplicate_rule"] == "2"
    assert ingest(source, tmp_path / "store", sessions, workers=1)["near_duplicate_candidates"] == 0
    assert searched == [None, []]  # the second run searched for no pair at all

    compared: list[tuple[str, str]] = []
    confirm = ingestion._confirm_pairs_task
    monkeypatch.setattr(ingestion, "_confirm_pairs_task", lambda task: compared.extend(task[1]) or confirm(task))
    original, stripe_top = acquisitions[0]
    _copies(original, stripe_top)["crop 10 px"].save(source / "acq0_cropped.tif")
    third = ingest(source, tmp_path / "store", sessions, workers=1)
    with sessions() as session:
        from semcurate.db.models import File

        md5_of = {row.relpath: row.image_md5 for row in session.scalars(select(File))}
        group_of = {row.md5: row.near_duplicate_group for row in session.scalars(select(ImageRow))}
    new = md5_of["acq0_cropped.tif"]
    assert third["near_duplicate_candidates"] == len(compared) >= 2
    assert all(new in pair for pair in compared)  # no pair of two older images
    assert searched[2] == [sorted(group_of).index(new)]  # the new image's pairs only were searched for
    assert (
        group_of[new] is not None and group_of[new] == group_of[md5_of["acq0.tif"]] == group_of[md5_of["acq0_q60.jpg"]]
    )
