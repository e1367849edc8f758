"""The demo repository generator, checked from the files it writes rather than from its own code."""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from semcurate.datasets.demo_corpus import CONFLICTING_CATEGORIES, CORPUS_LOCK, make_sem_corpus
from semcurate.datasets.taxonomy import leaf_paths, top_categories
from semcurate.ingest.convert import encode_jpeg, reencode_like
from semcurate.ingest.store import hold_lock

N_IMAGES = 200
SEED = 11
SIZE_SCALE = 0.25
UNIT_NM = {"mm": 1e6, "µm": 1e3, "um": 1e3, "nm": 1.0}
LAYOUTS = {"zeiss_framed", "zeiss_plain", "thermo_table", "jeol", "hitachi_ruler", "tescan", "generic", "none"}


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("L"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    reported = []
    summary = make_sem_corpus(out, N_IMAGES, seed=SEED, workers=2, size_scale=SIZE_SCALE, progress=reported.append)
    with (out / "ground_truth.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return out, summary, rows, reported


def _by_kind(rows, kind):
    return [row for row in rows if row["kind"] == kind]


def _originals(rows):
    """image_id -> the original TIFF row (TIFF images) or original JPG row (JPG-only images)."""
    return {
        row["image_id"]: row
        for row in rows
        if row["kind"] in ("original", "near-duplicate")
        and row["format"] in ("TIFF", "JPG")
        and (row["format"] == "TIFF" or row["jpg_only"] == "true")
    }


def test_every_file_on_disk_has_exactly_one_row(corpus):
    out, _summary, rows, _reported = corpus
    on_disk = {path.relative_to(out).as_posix() for path in out.rglob("*") if path.is_file()} - {"ground_truth.csv"}
    paths = [row["path"] for row in rows]
    assert len(paths) == len(set(paths))
    assert set(paths) == on_disk
    assert all(not path.startswith("/") and ".." not in path.split("/") for path in paths)


def test_source_tree_is_a_jumble(corpus):
    _out, _summary, rows, _reported = corpus
    folders = {row["path"].rsplit("/", 1)[0] for row in rows if row["path"].startswith("new_dati_SEM/")}
    assert len(folders) >= 6
    assert max(folder.count("/") for folder in folders) >= 2
    assert any(not folder.isascii() or " " in folder or "#" in folder or "(" in folder for folder in folders)


def test_summary_counts_match_ground_truth(corpus):
    _out, summary, rows, reported = corpus
    kinds = Counter(row["kind"] for row in rows)
    source = [row for row in rows if row["kind"] != "labelled"]
    assert summary.n_files == len(rows)
    assert summary.n_images == N_IMAGES == len({row["image_id"] for row in source if row["image_id"]})
    assert summary.n_duplicate_files == kinds["duplicate"] + kinds["metadata-variant"] + kinds["jpg-pair"]
    assert summary.n_corrupt == kinds["corrupt"] >= 4
    assert summary.n_unsupported == kinds["unsupported"] >= 3
    assert summary.n_jpg_only == sum(row["kind"] == "original" and row["jpg_only"] == "true" for row in rows) >= 1
    assert summary.n_near_duplicate_pairs == len({row["image_id"] for row in _by_kind(rows, "near-duplicate")}) >= 1
    assert summary.files_per_format == dict(Counter(row["format"] for row in rows))
    assert {"TIFF", "JPG", "PDF", "BMP", "DM3", "TEXT"} <= set(summary.files_per_format)
    assert reported[-1] >= N_IMAGES and reported == sorted(reported)


def test_duplicates_are_byte_identical_to_a_file_of_their_image(corpus):
    out, _summary, rows, _reported = corpus
    md5_by_image = defaultdict(set)
    for row in rows:
        if row["kind"] in ("original", "jpg-pair"):
            md5_by_image[row["image_id"]].add(_md5(out / row["path"]))
    duplicates = _by_kind(rows, "duplicate")
    assert duplicates
    for row in duplicates:
        assert _md5(out / row["path"]) in md5_by_image[row["image_id"]], row["path"]


def test_jpg_pairs_match_their_tiff_by_store_encoding_or_own_tables(corpus):
    out, _summary, rows, _reported = corpus
    tiffs = _originals(rows)
    ways = Counter()
    for row in _by_kind(rows, "jpg-pair"):
        tiff = Image.fromarray(tifffile.imread(out / tiffs[row["image_id"]]["path"]))  # grey, or RGB (navcam)
        data = (out / row["path"]).read_bytes()
        if encode_jpeg(tiff) == data:
            ways["store"] += 1
        else:
            with Image.open(io.BytesIO(data)) as reference:
                assert reencode_like(tiff, reference) == data, row["path"]
            ways["own tables"] += 1
    assert ways["store"] > ways["own tables"] >= 1


def test_jpg_only_images_have_no_tiff(corpus):
    _out, _summary, rows, _reported = corpus
    jpg_only = {row["image_id"] for row in rows if row["kind"] == "original" and row["jpg_only"] == "true"}
    assert jpg_only
    assert not any(row["image_id"] in jpg_only and row["format"] == "TIFF" for row in rows)
    assert not any(row["near_duplicate_of"] in jpg_only for row in rows)


def test_metadata_variants_share_pixels_but_not_bytes(corpus):
    out, _summary, rows, _reported = corpus
    tiffs = _originals(rows)
    variants = _by_kind(rows, "metadata-variant")
    assert variants
    for row in variants:
        original = out / tiffs[row["image_id"]]["path"]
        assert np.array_equal(tifffile.imread(out / row["path"]), tifffile.imread(original))
        assert _md5(out / row["path"]) != _md5(original)
        assert encode_jpeg(Image.fromarray(tifffile.imread(out / row["path"]))) == encode_jpeg(
            Image.fromarray(tifffile.imread(original))
        )


def test_near_duplicates_differ_in_a_few_pixels_by_one(corpus):
    out, _summary, rows, _reported = corpus
    tiffs = _originals(rows)
    near = [row for row in _by_kind(rows, "near-duplicate") if row["format"] == "TIFF"]
    assert near
    for row in near:
        assert row["image_id"] != row["near_duplicate_of"]
        mine = tifffile.imread(out / row["path"]).astype(int)
        theirs = tifffile.imread(out / tiffs[row["near_duplicate_of"]]["path"]).astype(int)
        difference = mine - theirs
        assert 1 <= np.count_nonzero(difference) <= 50
        assert set(np.unique(np.abs(difference))) == {0, 1}
        assert encode_jpeg(Image.fromarray(mine.astype(np.uint8))) != encode_jpeg(
            Image.fromarray(theirs.astype(np.uint8))
        )


def test_corrupt_files_do_not_decode(corpus):
    out, _summary, rows, _reported = corpus
    corrupt = _by_kind(rows, "corrupt")
    assert {row["format"] for row in corrupt} == {"TIFF", "JPG", "TEXT"}
    assert any((out / row["path"]).stat().st_size == 0 for row in corrupt)
    for row in corrupt:
        assert row["image_id"] == ""
        # Pillow 13 raises OSError on a truncated TIFF, older Pillow ValueError; ingest catches both.
        with pytest.raises((OSError, ValueError)), Image.open(out / row["path"]) as image:
            image.load()


def test_unsupported_files_have_their_formats_signatures(corpus):
    out, _summary, rows, _reported = corpus
    signatures = {"PDF": b"%PDF-1.4", "BMP": b"BM", "DM3": b"\x00\x00\x00\x03", "DJVU": b"AT&TFORM"}
    for row in _by_kind(rows, "unsupported"):
        assert (out / row["path"]).read_bytes().startswith(signatures[row["format"]])
        if row["format"] == "BMP":
            with Image.open(out / row["path"]) as image:
                assert image.format == "BMP"


def test_vendor_metadata_states_the_true_pixel_size_of_its_vendors_layout(corpus):
    out, _summary, rows, _reported = corpus
    tiff_rows = [row for row in rows if row["format"] == "TIFF" and row["kind"] != "corrupt"]
    fei_rows = [row for row in tiff_rows if row["fei_metadata"] == "true"]
    zeiss_rows = [row for row in tiff_rows if row["zeiss_metadata"] == "true"]
    assert len(fei_rows) >= 5 and len(zeiss_rows) >= 5 and len(fei_rows) + len(zeiss_rows) < len(tiff_rows) / 2
    assert {row["layout"] for row in fei_rows} == {"thermo_table"}
    assert {row["layout"] for row in zeiss_rows} == {"zeiss_framed", "zeiss_plain"}
    image_pixel_sizes = 0
    for row in tiff_rows:
        nm_per_px = float(row["nm_per_px"])
        with tifffile.TiffFile(out / row["path"]) as tif:
            if row["fei_metadata"] == "true":
                assert tif.fei_metadata["Scan"]["PixelWidth"] == pytest.approx(nm_per_px * 1e-9, rel=1e-9)
                assert tif.fei_metadata["Scan"]["HorFieldsize"] == pytest.approx(
                    nm_per_px * 1e-9 * int(row["width"]), rel=1e-9
                )
            else:
                assert not tif.is_fei
            zeiss = tif.sem_metadata
            if row["zeiss_metadata"] == "true":
                to_nm = {"pm": 1e-3, **UNIT_NM}
                if "ap_image_pixel_size" in zeiss:  # newer SmartSEM: the image's own pixel size
                    _name, value, unit = zeiss["ap_image_pixel_size"]
                    assert value * to_nm[unit] == pytest.approx(nm_per_px, rel=1e-6)
                    image_pixel_sizes += 1
                _name, value, unit = zeiss["ap_pixel_size"]  # for a 1024 px frame, as SmartSEM states it
                assert value * to_nm[unit] * 1024 / int(row["width"]) == pytest.approx(nm_per_px, rel=1e-6)
                _name, width, unit = zeiss["ap_width"]
                assert width * UNIT_NM[unit] == pytest.approx(int(row["width"]) * nm_per_px, rel=5.01e-4)
                if row["field_nm"]:  # the printed Width is the metadata's
                    assert width * UNIT_NM[unit] == pytest.approx(float(row["field_nm"]), rel=1e-9)
            else:
                assert zeiss is None
    assert 0 < image_pixel_sizes < len(zeiss_rows)


def test_scale_truth_is_consistent_and_the_stripe_is_where_it_says(corpus):
    out, _summary, rows, _reported = corpus
    unit_nm = {"mm": 1e6, "µm": 1e3, "nm": 1.0}
    checked = 0
    for row in _originals(rows).values():
        pixels = _pixels(out / row["path"])
        assert pixels.shape == (int(row["height"]), int(row["width"]))
        if row["has_stripe"] != "true":
            assert row["stripe_box"] == "" and row["scale_value"] == "" and row["layout"] == "none"
            continue
        assert int(row["bar_px"]) * float(row["nm_per_px"]) == pytest.approx(
            float(row["scale_value"]) * unit_nm[row["scale_unit"]], rel=1e-12
        )
        x0, y0, x1, y1 = map(int, row["stripe_box"].split())
        assert (x0, x1, y1) == (0, pixels.shape[1], pixels.shape[0])
        if row["format"] != "TIFF":
            continue
        stripe = pixels[y0:y1]
        background = np.bincount(stripe.ravel(), minlength=256).argmax()
        assert np.mean(stripe == background) > 0.5
        # the specimen row above is not stripe, or a line along the stripe's top edge marks where it starts
        assert np.mean(pixels[y0 - 1] == background) < 0.5 or np.mean(pixels[y0] == background) < 0.1
        start, end, row_y = map(float, row["segment"].split())
        assert end - start == int(row["bar_px"]) and y0 <= row_y < y1
        # both measured ends lie on the bar's ink: a tick's centre column, or the first/last column of a bar
        assert pixels[int(row_y), int(start)] != background and pixels[int(row_y), math.ceil(end) - 1] != background
        label_x0, label_y0, label_x1, label_y1 = map(int, row["label_box"].split())
        assert (np.abs(pixels[label_y0:label_y1, label_x0:label_x1].astype(int) - int(background)) > 40).any()
        checked += 1
    assert checked >= 60


def test_new_columns_describe_layout_font_width_class_and_printed_field(corpus):
    _out, _summary, rows, _reported = corpus
    images = list(_originals(rows).values())
    assert {row["layout"] for row in images} == LAYOUTS
    assert {row["font"] for row in images if row["layout"] != "none"} >= {
        "DejaVu Sans",
        "DejaVu Sans Mono",
        "Liberation Sans",
        "Liberation Mono",
        "FreeSans",
        "FreeMono",
    }
    assert all((row["font"] == "") == (row["layout"] == "none") for row in images)
    classes = Counter(int(row["width_px"]) for row in images)
    assert set(classes) == {512, 1024, 2048, 3072, 4096}
    assert classes[1024] > classes[2048] > classes[512] > classes[3072] >= classes[4096] >= 4
    for row in images:
        assert int(row["width"]) == round(int(row["width_px"]) * SIZE_SCALE)
        assert 0.74 <= int(row["height"]) / int(row["width"]) <= 0.94
    printed = [row for row in images if row["field_nm"]]
    assert {row["layout"] for row in printed} >= {"zeiss_framed", "zeiss_plain", "thermo_table", "tescan"}
    assert not any(row["layout"] in ("jeol", "hitachi_ruler", "none") for row in printed)
    for row in printed:  # the printed field width is the image width times the pixel size, as rounded for print
        assert float(row["field_nm"]) == pytest.approx(int(row["width"]) * float(row["nm_per_px"]), rel=5.01e-3)


def test_labelled_files_sit_under_their_label_and_match_as_stated(corpus):
    out, _summary, rows, _reported = corpus
    tiffs = _originals(rows)
    source_jpg_md5 = {
        _md5(out / row["path"]) for row in rows if row["format"] == "JPG" and row["kind"] not in ("labelled", "corrupt")
    }
    store_md5 = {
        hashlib.md5(encode_jpeg(Image.fromarray(tifffile.imread(out / row["path"])))).hexdigest()
        for row in tiffs.values()
        if row["format"] == "TIFF"
    }
    labelled = _by_kind(rows, "labelled")
    datasets = Counter(row["dataset"] for row in labelled)
    assert set(datasets) == {"SEM_Dataset", "Hierarchical", "Majority"}
    expectations = Counter(row["expected_match"] for row in labelled)
    assert expectations["jpg_md5"] > expectations["reencoded"] >= 1 and expectations["none"] >= 1
    for row in labelled:
        path = Path(row["path"])
        assert row["path"] == f"datasets/{row['dataset']}/{row['label_path']}/{path.name}"
        if row["dataset"] == "Hierarchical":
            assert row["label_path"] in leaf_paths()
        else:
            assert row["label_path"] in top_categories()
        if row["label_path"] != row["category"] and row["dataset"] != "Hierarchical":
            assert row["dataset"] == "Majority" and {row["label_path"], row["category"]} == set(CONFLICTING_CATEGORIES)
        digest = _md5(out / row["path"])
        matched = digest in source_jpg_md5 or digest in store_md5
        if row["expected_match"] == "jpg_md5":
            assert matched, row["path"]
        elif row["expected_match"] == "reencoded":
            assert not matched
            tiff = Image.fromarray(tifffile.imread(out / tiffs[row["image_id"]]["path"]))
            with Image.open(out / row["path"]) as reference:
                assert reencode_like(tiff, reference) == (out / row["path"]).read_bytes()
        else:
            assert not matched and row["image_id"] not in tiffs


def _labelled_per_category(rows) -> dict[str, tuple[int, int]]:
    """Per category, from the truth table: (images with a SEM_Dataset file, images), near-duplicates included."""
    images = {row["image_id"]: row["category"] for row in rows if row["kind"] in ("original", "near-duplicate")}
    labelled = {row["image_id"] for row in rows if row["dataset"] == "SEM_Dataset"} & set(images)
    totals, counts = Counter(images.values()), Counter(images[image] for image in labelled)
    return {category: (counts[category], total) for category, total in totals.items()}


@pytest.mark.parametrize("share", [0.14, 0.5])
def test_sem_dataset_labels_the_share_asked_of_every_category_and_at_least_three(corpus, tmp_path, share):
    """The default is the thesis' 14 % (7,557 of the 52,682 images of its 1u-2u subset); every category is labelled,
    as every category of the real SEM_Dataset is, with 3 images at least (all of a smaller one)."""
    if share == 0.14:
        rows = corpus[2]  # the module's corpus, drawn with the default share
    else:
        make_sem_corpus(tmp_path, 60, seed=3, workers=1, size_scale=0.25, labelled_share=share, defects=False)
        with (tmp_path / "ground_truth.csv").open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    per_category = _labelled_per_category(rows)
    assert len(per_category) == (10 if share == 0.14 else 9)  # 60 images in this draw leave out one category
    for category, (labelled, total) in per_category.items():
        assert labelled == min(total, max(3, round(share * total))), (category, labelled, total)


def test_a_labelled_share_outside_0_to_1_is_refused(tmp_path):
    for share in (0, 1.5):
        with pytest.raises(ValueError, match=r"labelled_share must be in \(0, 1\]"):
            make_sem_corpus(tmp_path / "bad", 5, size_scale=0.25, workers=1, labelled_share=share)
    assert not (tmp_path / "bad").exists()


def test_a_corpus_being_written_into_the_same_folder_is_refused_and_nothing_is_written(tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    with hold_lock(out / CORPUS_LOCK, str(out), activity="demo-data"):  # another run, holding the folder
        busy = rf"^another demo-data is running on {re.escape(str(out))} \(pid {os.getpid()}\): wait for it to end$"
        with pytest.raises(ValueError, match=busy):
            make_sem_corpus(out, 5, size_scale=0.25, workers=1, defects=False)
        assert [path.name for path in out.iterdir()] == [CORPUS_LOCK]  # the holder's lock file only
    make_sem_corpus(out, 5, size_scale=0.25, workers=1, defects=False)
    assert sorted(path.name for path in out.iterdir()) == ["datasets", "ground_truth.csv", "new_dati_SEM"]


def test_majority_conflicts_are_byte_copies_under_the_other_category(corpus):
    out, _summary, rows, _reported = corpus
    majority = [row for row in rows if row["dataset"] == "Majority"]
    conflicts = [row for row in majority if row["label_path"] != row["category"]]
    assert conflicts
    for row in conflicts:
        twins = [
            other
            for other in majority
            if other["image_id"] == row["image_id"] and other["label_path"] == row["category"]
        ]
        assert twins and _md5(out / twins[0]["path"]) == _md5(out / row["path"])


def test_output_does_not_depend_on_the_number_of_workers(corpus, tmp_path):
    out, _summary, _rows, _reported = corpus
    make_sem_corpus(tmp_path, N_IMAGES, seed=SEED, workers=1, size_scale=SIZE_SCALE)

    def digests(root: Path) -> dict[str, str]:
        return {path.relative_to(root).as_posix(): _md5(path) for path in root.rglob("*") if path.is_file()}

    assert digests(tmp_path) == digests(out)


def test_refuses_to_mix_corpora(tmp_path):
    (tmp_path / "new_dati_SEM").mkdir()
    (tmp_path / "new_dati_SEM" / "old.tif").write_bytes(b"x")
    with pytest.raises(ValueError, match="not empty"):
        make_sem_corpus(tmp_path, 5, size_scale=0.25, workers=1)


def test_different_seeds_give_different_corpora(tmp_path):
    first = make_sem_corpus(tmp_path / "a", 8, seed=1, workers=1, size_scale=0.25)
    second = make_sem_corpus(tmp_path / "b", 8, seed=2, workers=1, size_scale=0.25)
    md5s = []
    for name in ("a", "b"):
        with (tmp_path / name / "ground_truth.csv").open(newline="", encoding="utf-8") as handle:
            md5s.append(
                {_md5(tmp_path / name / row["path"]) for row in csv.DictReader(handle) if row["kind"] == "original"}
            )
    assert first.n_images == second.n_images == 8
    assert len(md5s[0]) == 8 and not md5s[0] & md5s[1]


def test_quality_defects_are_drawn_where_the_truth_says(corpus):
    out, summary, rows, _reported = corpus
    images = _originals(rows)
    defects = Counter(row["defect"] for row in images.values() if row["defect"])
    assert set(defects) == {"blurred", "dark", "light", "charging", "blank", "colour"}
    assert summary.defects == dict(sorted(defects.items()))
    for row in images.values():
        if row["format"] != "TIFF" or not row["defect"]:
            continue
        pixels = tifffile.imread(out / row["path"])
        top = int(row["stripe_box"].split()[1]) if row["stripe_box"] else pixels.shape[0]
        if row["defect"] == "colour":
            assert pixels.ndim == 3 and np.ptp(pixels[: top // 2].astype(int), axis=2).mean() > 10
            assert (np.ptp(pixels[top:].astype(int), axis=2) == 0).all()  # the data bar stays grey
        elif row["defect"] == "charging":
            levels = pixels[:top, pixels.shape[1] // 2 :].mean(axis=1)
            for span in row["charging_rows"].split():
                first, last = map(int, span.split("-"))
                inside = levels[first : last + 1].mean()
                assert max(abs(inside - levels[first - 1]), abs(inside - levels[min(last + 1, top - 1)])) > 20
        elif row["defect"] == "dark":
            assert pixels[:top].mean() < 30
        elif row["defect"] == "blank":
            assert pixels[:top].std() < 6


def test_variants_are_resaved_copies_of_their_original(corpus):
    out, summary, rows, _reported = corpus
    images = _originals(rows)
    variants = _by_kind(rows, "variant")
    assert summary.n_variants == len(variants) >= 4
    assert Counter(row["near_duplicate_of"] for row in variants).most_common(1)[0][1] == 2
    for row in variants:
        original = images[row["near_duplicate_of"]]
        with Image.open(out / row["path"]) as image:
            assert image.size == (int(row["width"]), int(row["height"]))
            assert image.format == ("TIFF" if row["format"] == "TIFF" else "JPEG")
        field_nm = float(row["nm_per_px"]) * int(row["width"])
        if row["variant"] in ("resized", "recompressed", "contrast"):  # the same field of view
            assert field_nm == pytest.approx(float(original["nm_per_px"]) * int(original["width"]), rel=0.01)
        if row["variant"] == "no_bar":
            assert row["has_stripe"] == "false" and int(row["height"]) == int(original["stripe_box"].split()[1])
        assert row["jpg_only"] == ("true" if row["format"] == "JPG" else "false")


def test_without_defects_the_corpus_has_none(tmp_path):
    summary = make_sem_corpus(tmp_path / "plain", 30, seed=2, workers=1, size_scale=0.25, defects=False)
    with (tmp_path / "plain" / "ground_truth.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert summary.n_images == 30 and summary.n_variants == 0 and summary.defects == {}
    assert not any(row["defect"] or row["variant"] for row in rows)


@pytest.mark.parametrize("shape", [(96, 128), (300, 257), (1536, 2048)])
def test_the_focusing_blur_is_scipys_gaussian_filter(shape):
    """The defect's FFT blur against ``scipy.ndimage.gaussian_filter`` at the focusing shots' sigma (2.5-4 % of the
    shorter side), down to the uint8 levels the corpus writes."""
    from scipy import ndimage

    from semcurate.datasets.defects import gaussian_blur

    rng = np.random.default_rng(sum(shape))
    grey = rng.integers(0, 256, shape).astype(np.float64)
    for share in (0.025, 0.04):
        sigma = share * min(shape)
        ours, scipys = gaussian_blur(grey, sigma), ndimage.gaussian_filter(grey, sigma)
        assert np.abs(ours - scipys).max() < 1e-9
        noisy = rng.normal(0.0, 3.0, shape)
        assert np.array_equal(np.rint(ours + noisy), np.rint(scipys + noisy))


def test_the_colour_picture_is_the_one_drawn_over_the_whole_frame():
    """The colour defect tests each stub within its bounding box; drawn independently here over the whole frame,
    from the same random draws in the same order, it is the same picture to the byte."""
    from scipy import ndimage

    from semcurate.datasets.defects import apply_defect

    for seed, (height, width) in enumerate([(120, 160), (97, 203), (768, 1024)]):
        ours, _truth = apply_defect(np.zeros((height, width), np.uint8), "colour", np.random.default_rng(seed))
        rng = np.random.default_rng(seed)
        y, x = np.mgrid[0:height, 0:width].astype(np.float64)
        frame = np.empty((height, width, 3))
        frame[:] = rng.uniform(60, 160, 3)
        frame += (y / height)[..., None] * rng.uniform(-40, 40, 3)
        for _ in range(int(rng.integers(3, 8))):
            cx, cy = rng.uniform(0, width), rng.uniform(0, height)
            radius = rng.uniform(0.05, 0.2) * min(height, width)
            frame[(x - cx) ** 2 + (y - cy) ** 2 < radius**2] = rng.uniform(0, 255, 3)
        frame = ndimage.gaussian_filter(frame, (1.5, 1.5, 0)) + rng.normal(0, 4, frame.shape)
        assert np.array_equal(ours, np.clip(np.rint(frame), 0, 255).astype(np.uint8))
