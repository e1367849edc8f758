"""Generate the embedded demo repository: a messy SEM source tree with known answers.

The thesis' source folder ``new_dati_SEM/`` is a jumble of nested folders with
odd names holding TIFFs, their JPG exports, exact duplicates, TIFFs differing
only in metadata, near-duplicates, corrupt files and a few unsupported
formats, and the published labelled datasets (SEM_Dataset, Hierarchical,
Majority) hold JPGs that must be tied back to those images.  This module
writes a small repository of that shape from synthetic specimens
(:func:`semcurate.datasets.specimens.draw_specimen`) with burnt-in data bars
(:mod:`semcurate.datasets.databar`), together with ``ground_truth.csv`` saying
what every file really is, so that every ingest step can be run and scored.

Layout under ``out``::

    new_dati_SEM/...                       the jumble (TIFF, JPG, corrupt, PDF, BMP, DM3, DJVU)
    datasets/SEM_Dataset/<Category>/*.jpg  ~14 % of each category's images, ~10 % re-encoded at quality 75
    datasets/Hierarchical/<leaf path>/*.jpg  ~6 % of images
    datasets/Majority/<Category>/*.jpg     ~40 % of images, some also under the conflicting category
    ground_truth.csv                       one row per written file (see :data:`GROUND_TRUTH_COLUMNS`)

``ground_truth.csv`` columns (booleans are ``true``/``false``, missing values empty):

``path``
    file path relative to ``out``, ``/``-separated.
``image_id``
    the image the file belongs to (``img00042``); empty for corrupt and
    unsupported files.  Labelled JPGs of images that exist nowhere in
    ``new_dati_SEM`` have ids ``ext00000``... and are not counted as images.
``kind``
    ``original`` (an image's TIFF, or the JPG of a JPG-only image),
    ``variant`` (a re-saved copy of another image, see ``variant``),
    ``jpg-pair`` (the JPG exported next to a TIFF), ``duplicate`` (byte copy
    of another file of ``new_dati_SEM``), ``metadata-variant`` (same pixels as
    the original TIFF, other tags), ``near-duplicate`` (a distinct image whose
    pixels differ from ``near_duplicate_of`` in 20-50 pixels by exactly 1; its
    TIFF has this kind, its JPG pair when it has one is a ``jpg-pair``), ``corrupt``,
    ``unsupported``, ``labelled`` (a file under ``datasets/``).
``format``
    ``TIFF``, ``JPG``, ``PDF``, ``BMP``, ``DM3``, ``DJVU`` or ``TEXT``; for a
    corrupt file, the format its name claims (``TEXT`` for text named ``.tif``).
``category``, ``subcategory_path``
    the image's true top category and leaf path.
``scale_value``, ``scale_unit``, ``bar_px``
    what the data bar shows (unit ``mm``/``µm``/``nm``; segment length in px);
    empty when the image has no stripe.
``nm_per_px``
    the true pixel size in nm (``scale_value`` in nm divided by ``bar_px``),
    set even when no stripe shows it.
``has_stripe``, ``stripe_box``
    whether a data bar is drawn and its box ``"x0 y0 x1 y1"`` (px, ends exclusive).
``segment``, ``segment_style``, ``label_text``, ``label_box``
    the scale segment ``"x0 x1 y"``: the two ends its length is measured
    between, in continuous px (column ``i`` covers ``[i, i + 1)``, so a tick
    centre may be ``12.5``; ``x1 - x0 == bar_px``) and the middle row of its
    stroke; its style; the label text as drawn (``um`` or ``µm``) and its ink
    box ``"x0 y0 x1 y1"``.  The ends follow
    :class:`~semcurate.datasets.databar.DataBarTruth`'s convention: a
    bracketed or ticked bar between the centres of its end ticks, a filled
    bar between its outer edges, a line (interrupted by its label or not)
    end to end, a ruler from its first to its last tick.
``width``, ``height``
    the image size in px, stripe included.
``jpg_only``
    true for images that exist only as JPG (no TIFF anywhere).
``fei_metadata``
    true for TIFF files carrying FEI INI metadata (tag 34682) with
    ``[Scan] PixelWidth = nm_per_px * 1e-9`` metres; only on ``thermo_table``
    images.
``near_duplicate_of``
    for near-duplicates, the id of the image they were made from.
``dataset``, ``label_path``
    for labelled files: ``SEM_Dataset``/``Hierarchical``/``Majority`` and the
    category path that dataset assigns (may disagree with ``category`` for
    the Majority conflicts between Patterned_surface and MEMS_devices_and_electrodes).
``expected_match``
    for labelled files: ``jpg_md5`` (byte copy of a JPG in ``new_dati_SEM`` or
    equal to ``encode_jpeg`` of a TIFF there), ``reencoded`` (Pillow JPG at
    quality 75: match by re-encoding the TIFF with this JPG's tables) or
    ``none`` (the image is not in ``new_dati_SEM``).
``layout``
    the data bar's layout (:data:`~semcurate.datasets.databar.LAYOUTS`:
    ``zeiss_framed``, ``zeiss_plain``, ``thermo_table``, ``jeol``,
    ``hitachi_ruler``, ``tescan``, ``generic``), ``none`` without a stripe.
``font``
    the font the stripe's text is set in (a key of
    :data:`~semcurate.datasets.databar.FONTS`); empty without a stripe.
``width_px``
    the image's width class: the nominal width in px of its size (512, 1024,
    2048, 3072 or 4096; see :data:`IMAGE_SIZES`) before ``size_scale``, so
    equal to ``width`` at the default scale.
``field_nm``
    the field width the stripe prints (Zeiss ``Width``, Thermo ``HFW``,
    Tescan ``View field``), in nm as printed (rounded); empty when none is
    printed.
``zeiss_metadata``
    true for TIFF files carrying Zeiss SmartSEM metadata (tag 34118,
    ``CZ_SEM``), only on ``zeiss_framed``/``zeiss_plain`` images:
    ``AP_PIXEL_SIZE`` for a 1024 px wide frame, as SmartSEM states it
    (``nm_per_px * width / 1024``), ``AP_WIDTH`` and ``AP_MAG`` as printed,
    and on about 70 % of them (newer SmartSEM) ``AP_IMAGE_PIXEL_SIZE``
    equal to ``nm_per_px``; pixel sizes with 7 significant digits.
``defect``
    the image-quality defect drawn on the image's picture (above its data bar,
    which is drawn as without it; :func:`semcurate.datasets.defects.apply_defect`):
    ``blurred``, ``dark``, ``light``, ``charging``, ``blank`` or ``colour``
    (a navigation-camera RGB photo); empty for a sound image.  The quality
    flag each should raise is :data:`~semcurate.datasets.defects.DEFECT_FLAGS`.
``charging_rows``
    for ``charging``: the image rows of each streak and band edge, ``"first-last"``
    (inclusive) separated by spaces.
``variant``
    for ``kind`` ``variant`` (another image saved from the same acquisition as
    ``near_duplicate_of``; :func:`~semcurate.datasets.defects.make_variant`):
    ``resized`` (JPG, 0.4-0.7 of the size), ``recompressed`` (a JPG export
    saved again at quality 60),
    ``cropped`` (TIFF, a few px off the left, right and top), ``contrast`` (JPG,
    contrast-stretched) or ``no_bar`` (TIFF of the picture alone).  Its scale
    columns describe the copy: boxes and ``bar_px`` scaled or shifted with it,
    ``nm_per_px`` divided by the resize factor, no stripe for ``no_bar``; a JPG
    variant is ``jpg_only`` (an image of its own, which ingest admits as such).

Image-quality defects and variants come from their own generator (spawned
from ``seed`` after the others), so ``defects=False`` writes exactly the
corpus of earlier versions.  With defects (the default), about
:data:`DEFECT_SHARES` of the images carry each defect and
:data:`VARIANT_SHARE` of the ``n_images`` are variants (two per source image;
every pair within a source and its variants is a near-duplicate pair).

Determinism: the layout, duplication and encoding decisions come from one
master generator; each image's pixels come from its own generator
(``np.random.SeedSequence(seed)`` spawned per image), so the files are the
same bytes whatever the number of ``workers``.
"""

from __future__ import annotations

import csv
import datetime
import io
import os
import struct
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from semcurate.datasets.databar import (
    LAYOUT_SHARES,
    DataBarSpec,
    DataBarTruth,
    burn_data_bar,
    format_length,
    format_zeiss_magnification,
    random_data_bar_spec,
    require_fonts,
)
from semcurate.datasets.defects import VARIANTS, apply_defect, jpeg_bytes, make_variant
from semcurate.datasets.specimens import draw_specimen
from semcurate.datasets.taxonomy import leaf_paths
from semcurate.ingest.convert import encode_jpeg
from semcurate.ingest.store import StoreError, hold_lock

SOURCE_DIR = "new_dati_SEM"
DATASETS_DIR = "datasets"
GROUND_TRUTH_FILE = "ground_truth.csv"

#: ``(width, height, share)`` of the drawn images, in px: width classes 512 (15 %), 1024 (55 %), 2048 (22 %)
#: and 3072/4096 (8 %), heights 0.75-0.92 of the width (Zeiss 4:3, Helios 512 x 471 and 1024 x 943).
IMAGE_SIZES: tuple[tuple[int, int, float], ...] = (
    (512, 384, 0.05),
    (512, 442, 0.05),
    (512, 471, 0.05),
    (1024, 768, 0.30),
    (1024, 884, 0.10),
    (1024, 943, 0.15),
    (2048, 1536, 0.12),
    (2048, 1768, 0.10),
    (3072, 2304, 0.05),
    (4096, 3072, 0.03),
)
#: Share of the TIFFs of Zeiss-layout (Thermo-layout) images that carry Zeiss (FEI) metadata.
VENDOR_METADATA_SHARE = 0.6
#: Share of the Zeiss metadata that states ``AP_IMAGE_PIXEL_SIZE`` (newer SmartSEM) besides ``AP_PIXEL_SIZE``.
ZEISS_IMAGE_PIXEL_SIZE_SHARE = 0.7
#: Width of the frame SmartSEM's ``AP_PIXEL_SIZE`` refers to, in px (the 512 px hyperspy fixture states
#: ``Pixel Size = 5.825 nm`` with ``Width = 5.965 µm``: 1024 x 5.825 nm).
ZEISS_PIXEL_SIZE_FRAME_PX = 1024
#: Reference width of Thermo Fisher's magnification written as ``[Image] MagCanvasRealWidth``, in m.
THERMO_CANVAS_WIDTH_M = 0.2072

GROUND_TRUTH_COLUMNS = (
    "path",
    "image_id",
    "kind",
    "format",
    "category",
    "subcategory_path",
    "scale_value",
    "scale_unit",
    "bar_px",
    "nm_per_px",
    "has_stripe",
    "stripe_box",
    "segment",
    "segment_style",
    "label_text",
    "label_box",
    "width",
    "height",
    "jpg_only",
    "fei_metadata",
    "near_duplicate_of",
    "dataset",
    "label_path",
    "expected_match",
    "layout",
    "font",
    "width_px",
    "field_nm",
    "zeiss_metadata",
    "defect",
    "charging_rows",
    "variant",
)
#: Share of the images (near-duplicates and variants aside) that carry each image-quality defect.
DEFECT_SHARES: dict[str, float] = {
    "blurred": 0.04,
    "dark": 0.02,
    "light": 0.02,
    "charging": 0.03,
    "blank": 0.015,
    "colour": 0.015,
}
#: Share of ``n_images`` that are variants (re-saved copies) of other images, two per source image.
VARIANT_SHARE = 0.04
#: How each variant is saved: ``(format, JPEG quality)``; TIFFs carry no vendor metadata.
VARIANT_FORMATS: dict[str, tuple[str, int]] = {
    "resized": ("JPG", 90),
    "recompressed": ("JPG", 60),
    "cropped": ("TIFF", 0),
    "contrast": ("JPG", 90),
    "no_bar": ("TIFF", 0),
}

#: Share of the images labelled in SEM_Dataset: the thesis' setting, 7,557 of the 52,682 images of the 1u-2u
#: subset (14 %), so the tree places most images from few labels (issue 13).
SEM_DATASET_SHARE = 0.14
#: Fewest SEM_Dataset labels a category gets (all its images when it has fewer): every category of the thesis'
#: SEM_Dataset is labelled, and a placement classifier cannot learn a category from one example.
SEM_DATASET_MIN_PER_CATEGORY = 3
#: Lock file that one ``make_sem_corpus`` writing into a folder holds (an exclusive ``flock``), so that two runs
#: started on one folder at once cannot mix their corpora; removed when the run ends.
CORPUS_LOCK = ".demo-data.lock"
#: The two categories whose Majority labels conflict (thesis section 2.2).
CONFLICTING_CATEGORIES = ("Patterned_surface", "MEMS_devices_and_electrodes")

_FOLDER_WORDS = (
    "Übersicht",
    "campioni ç",
    "sample #3",
    "misure (old)",
    "copy of run2",
    "New Folder",
    "SEM dati",
    "nanowires",
    "wafer 7",
    "prove",
    "Bilder",
    "tesi",
    "da sistemare",
    "FIB-SEM",
    "images (2)",
    "Ordner #12",
    "risultati finali",
    "test",
    "José",
    "zzz_vecchio",
    "export",
    "señal SE2",
)
_FOLDER_PEOPLE = ("mario", "Giulia R", "lab_FBK", "AB", "dr. Rossi", "Chen", "marco.b", "Élodie")
_FILE_PREFIXES = ("img", "sample", "S", "scan", "Image", "campione", "wire", "pos", "area")
_TIFF_SUFFIXES = (".tif", ".tif", ".tif", ".tiff", ".TIF")
_JPG_SUFFIXES = (".jpg", ".jpg", ".jpg", ".JPG", ".jpeg")
_TIFF_SOFTWARE = ("SmartSEM", "xT microscope Control", "Quanta", "")
_VARIANT_SOFTWARE = ("Adobe Photoshop CS6 (Windows)", "ImageJ", "GIMP 2.10", "Microsoft Windows Photo Viewer")


@dataclass
class CorpusSummary:
    """Counts of what :func:`make_sem_corpus` wrote.

    ``n_images`` counts the distinct images of ``new_dati_SEM`` (near-duplicates
    included); ``n_duplicate_files`` counts the files that add no image there
    (``duplicate`` + ``metadata-variant`` + ``jpg-pair``); ``n_variants`` the
    re-saved copies (``variant``) and ``defects`` the images per drawn defect.
    """

    n_images: int
    n_files: int
    n_duplicate_files: int
    n_corrupt: int
    n_unsupported: int
    n_jpg_only: int
    n_near_duplicate_pairs: int
    n_labelled: int
    files_per_format: dict[str, int] = field(default_factory=dict)
    n_variants: int = 0
    defects: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _FilePlan:
    """One file an image task writes.

    ``product`` names the bytes: ``tiff`` (with the image's tags),
    ``tiff-variant`` (same pixels, other tags), ``pair`` (the JPG pair),
    ``store`` (``encode_jpeg``), ``q75`` (Pillow quality 75), ``jpg-only``
    (the JPG of a JPG-only image).  ``truncate`` cuts the bytes to that
    fraction (corrupt files).  ``of_near`` selects the task's near-duplicate.
    """

    path: str
    product: str
    kind: str
    of_near: bool = False
    truncate: float | None = None
    dataset: str = ""
    label_path: str = ""
    expected_match: str = ""


@dataclass
class _ImageTask:
    """Everything a worker needs to draw one image (and its near-duplicate) and write its files."""

    image_id: str
    seed: np.random.SeedSequence
    leaf: str
    width: int
    height: int
    layout: str
    width_class: int
    jpg_only: bool = False
    vendor: str = ""  # 'fei' or 'zeiss': the vendor metadata its TIFFs carry
    zeiss_image_pixel_size: bool = False  # Zeiss metadata states AP_IMAGE_PIXEL_SIZE too
    pair_quality: int | None = None  # None: the pair is encode_jpeg; else Pillow at this quality
    jpg_only_quality: int = 90
    near_id: str = ""
    near_seed: np.random.SeedSequence | None = None
    files: list[_FilePlan] = field(default_factory=list)
    defect: str = ""  # a key of defects.DEFECT_FLAGS drawn on the picture
    defect_seed: np.random.SeedSequence | None = None
    variants: list[_VariantPlan] = field(default_factory=list)


@dataclass(frozen=True)
class _VariantPlan:
    """A re-saved copy of a task's image: its id, how it is made (:data:`VARIANTS`), where it goes, its seed."""

    image_id: str
    variant: str
    path: str
    seed: np.random.SeedSequence


def _how_many(total: int, fraction: float, minimum_from: int = 20) -> int:
    """``round(total * fraction)``, at least 1 once ``total`` reaches ``minimum_from``."""
    count = round(total * fraction)
    return max(count, 1) if total >= minimum_from else count


class _Namer:
    """Hands out unique, odd-looking file and folder names under ``new_dati_SEM``."""

    def __init__(self, rng: np.random.Generator, n_images: int) -> None:
        self.rng = rng
        self.used: set[str] = set()
        self.folders: list[str] = []
        self.siblings: dict[str, str] = {}
        parents = [SOURCE_DIR]
        for _ in range(max(6, n_images // 12)):
            parent = parents[int(rng.integers(len(parents)))]
            folder = self._unique(f"{parent}/{self._folder_name()}")
            self.folders.append(folder)
            if folder.count("/") < 4:
                parents.append(folder)

    def pick(self, choices: tuple[str, ...]) -> str:
        return choices[int(self.rng.integers(len(choices)))]

    def _folder_name(self) -> str:
        style = self.rng.random()
        if style < 0.35:
            return self.pick(_FOLDER_WORDS)
        if style < 0.6:
            return self.pick(_FOLDER_PEOPLE)
        if style < 0.8:
            year, month, day = (
                2008 + int(self.rng.integers(13)),
                1 + int(self.rng.integers(12)),
                1 + int(self.rng.integers(28)),
            )
            return (
                f"{year}-{month:02d}-{day:02d}"
                if self.rng.random() < 0.5
                else f"{day:02d}.{month:02d}.{year % 100:02d}"
            )
        return f"{self.pick(_FOLDER_PEOPLE)} {self.pick(_FOLDER_WORDS)}"

    def _unique(self, path: str) -> str:
        path = unicodedata.normalize("NFC", path)
        candidate, copy = path, 1
        while candidate.casefold() in self.used:
            copy += 1
            stem, dot, suffix = path.rpartition(".") if "." in path.rsplit("/", 1)[-1] else (path, "", "")
            candidate = f"{stem} ({copy}){dot}{suffix}"
        self.used.add(candidate.casefold())
        return candidate

    def folder(self, avoid: str = "") -> str:
        choices = [folder for folder in self.folders if folder != avoid] or self.folders
        return choices[int(self.rng.integers(len(choices)))]

    def sibling(self, folder: str) -> str:
        """The folder next to ``folder`` that holds its JPG exports (``<name> jpg`` in the same parent)."""
        if folder not in self.siblings:
            self.siblings[folder] = self._unique(f"{folder} {self.pick(('jpg', 'JPG export', 'jpeg'))}")
        return self.siblings[folder]

    def stem(self) -> str:
        prefix = self.pick(_FILE_PREFIXES)
        number = int(self.rng.integers(1, 1000))
        separator = self.pick(("_", "", " ", "-"))
        stem = f"{prefix}{separator}{number:03d}"
        if self.rng.random() < 0.1:
            stem += self.pick((" (1)", " copy", "_bis", " - Copia"))
        return stem

    def file(self, folder: str, suffix: str, stem: str | None = None) -> str:
        return self._unique(f"{folder}/{stem or self.stem()}{suffix}")

    def label_file(self, folder: str) -> str:
        return self._unique(f"{folder}/{int(self.rng.integers(16**8)):08x}.jpg")


def _draw_image(task: _ImageTask) -> tuple[np.ndarray, DataBarSpec, DataBarTruth, tuple[tuple[int, int], ...]]:
    """The pixels of one image: a specimen of ``task.leaf`` with a data bar, ``(height, width)`` uint8.

    A task's defect is drawn on the specimen from its own generator, so the
    data bar is the one drawn without it; a ``colour`` picture (RGB) replaces
    the rows above the stripe after the bar is burnt, which stays grey in all
    three channels.  Also returns the charging rows (empty without charging).
    """
    rng = np.random.default_rng(task.seed)
    spec = random_data_bar_spec(rng, task.width, task.height, task.layout)
    specimen = np.asarray(draw_specimen(task.leaf, rng, spec.specimen_height, task.width), dtype=np.uint8)
    rows: tuple[tuple[int, int], ...] = ()
    colour = None
    if task.defect:
        defect_rng = np.random.default_rng(task.defect_seed)
        drawn, defect_truth = apply_defect(specimen, task.defect, defect_rng)
        rows = defect_truth.rows
        if drawn.ndim == 3:
            colour = drawn
        else:
            specimen = drawn
    pixels, truth = burn_data_bar(specimen, spec)
    if colour is not None:
        picture_end = spec.specimen_height - spec.flat_rows if truth.has_stripe else spec.specimen_height
        pixels = np.repeat(pixels[..., None], 3, axis=2)
        pixels[:picture_end] = colour[:picture_end]
    return pixels, spec, truth, rows


def _nudge_pixels(pixels: np.ndarray, rng: np.random.Generator, specimen_height: int, count: int) -> np.ndarray:
    """A copy of ``pixels`` with ``count`` distinct specimen pixels changed by +1 or -1 (staying in 0..255)."""
    nudged = pixels.copy()
    flat = rng.choice(specimen_height * pixels.shape[1], size=count, replace=False)
    rows, columns = np.divmod(flat, pixels.shape[1])
    steps = rng.choice(np.array([-1, 1]), size=count)
    values = nudged[rows, columns].astype(np.int16)
    steps[values == 0] = 1
    steps[values == 255] = -1
    nudged[rows, columns] = (values + steps).astype(np.uint8)
    return nudged


def _fei_text(spec: DataBarSpec, truth: DataBarTruth) -> str:
    """FEI Helios-style INI metadata consistent with the data bar (lengths in metres, HV in volts)."""
    pixel_m = truth.nm_per_px * 1e-9
    acquired = spec.acquired
    return (
        "[User]\r\n"
        f"Date={acquired.strftime('%m/%d/%Y')}\r\n"
        f"Time={acquired.strftime('%I:%M:%S %p')}\r\n"
        "User=supervisor\r\n"
        "[System]\r\nType=DualBeam\r\nDnumber=D8439\r\nSoftware=4.2.2.1898\r\nSource=FEG\r\n"
        "[Beam]\r\n"
        f"HV={spec.hv_kv * 1000:g}\r\n"
        "Beam=EBeam\r\nScan=EScan\r\n"
        "[EBeam]\r\n"
        f"HV={spec.hv_kv * 1000:g}\r\n"
        f"WD={spec.wd_mm * 1e-3!r}\r\n"
        "BeamCurrent=1.3e-10\r\n"
        "[Scan]\r\n"
        "InternalScan=true\r\n"
        "Dwelltime=3e-06\r\n"
        f"PixelWidth={pixel_m!r}\r\n"
        f"PixelHeight={pixel_m!r}\r\n"
        f"HorFieldsize={spec.width * pixel_m!r}\r\n"
        f"VerFieldsize={spec.specimen_height * pixel_m!r}\r\n"
        "[Image]\r\n"
        f"ResolutionX={spec.width}\r\n"
        f"ResolutionY={spec.specimen_height}\r\n"
        f"MagCanvasRealWidth={THERMO_CANVAS_WIDTH_M}\r\n"
        "[Detectors]\r\n"
        f"Name={spec.detector}\r\n"
        f"[PrivateFei]\r\nDatabarHeight={spec.stripe_height}\r\n"
    )


def _pixel_size_text(nm: float) -> str:
    """A pixel size with 7 significant digits in pm, nm, µm or mm, as Zeiss writes it (``2.614514 µm``)."""
    unit, factor = next(
        ((unit, factor) for unit, factor in (("mm", 1e6), ("µm", 1e3), ("nm", 1.0)) if nm >= factor), ("pm", 1e-3)
    )
    return f"{nm / factor:.7g} {unit}"


def _zeiss_bytes(spec: DataBarSpec, truth: DataBarTruth, image_pixel_size: bool) -> bytes:
    """Zeiss SmartSEM-style CZ_SEM metadata (tag 34118) consistent with the data bar, latin-1 (µ as 0xB5).

    Pixel sizes are written with 7 significant digits: ``AP_PIXEL_SIZE`` for
    a :data:`ZEISS_PIXEL_SIZE_FRAME_PX` wide frame, ``AP_IMAGE_PIXEL_SIZE``
    (the image's own, when ``image_pixel_size``); width and magnification as
    the stripe prints them (4 significant digits, ``K X``).
    """
    acquired = spec.acquired
    width_text, _width_nm = format_length(spec.width * truth.nm_per_px, 4)
    frame_pixel_nm = truth.nm_per_px * spec.width / ZEISS_PIXEL_SIZE_FRAME_PX
    entries = {
        "AP_IMAGE_PIXEL_SIZE": f"Image Pixel Size = {_pixel_size_text(truth.nm_per_px)}",
        "AP_PIXEL_SIZE": f"Pixel Size = {_pixel_size_text(frame_pixel_nm)}",
        "AP_WIDTH": f"Width = {width_text}",
        "AP_HEIGHT": f"Height = {format_length(spec.specimen_height * truth.nm_per_px, 4)[0]}",
        "AP_MAG": f"Mag = {format_zeiss_magnification(spec.magnification)}",
        "AP_ACTUALKV": f"EHT = {spec.hv_kv:.2f} kV",
        "AP_WD": f"WD = {spec.wd_mm:.1f} mm",
        "DP_DETECTOR_CHANNEL": f"Signal A = {spec.detector}",
        "DP_IMAGE_STORE": f"Store resolution = {spec.width} * {spec.specimen_height}",
        "AP_DATE": f"Date :{acquired.day} {acquired.strftime('%b')} {acquired.year}",
        "AP_TIME": f"Time :{acquired.hour}:{acquired.minute:02d}:{acquired.second:02d}",
    }
    if not image_pixel_size:
        del entries["AP_IMAGE_PIXEL_SIZE"]
    text = "0\r\n0\r\n" + "".join(f"{key}\r\n{line}\r\n" for key, line in entries.items()) + "END\r\n"
    return text.encode("latin-1")


def _tiff_bytes(
    pixels: np.ndarray,
    *,
    software: str,
    datetime_text: str | None,
    description: str | None,
    vendor_tag: tuple[int, str | bytes] | None,
) -> bytes:
    """A TIFF of ``pixels`` with the given tags; ``vendor_tag`` is ``(tag, text)``: FEI 34682 or Zeiss 34118."""
    buffer = io.BytesIO()
    tifffile.imwrite(
        buffer,
        pixels,
        photometric="rgb" if pixels.ndim == 3 else "minisblack",
        metadata=None,
        software=software,
        datetime=datetime_text,
        description=description,
        extratags=[(vendor_tag[0], "s", 0, vendor_tag[1], True)] if vendor_tag else (),
    )
    return buffer.getvalue()


def _pillow_jpeg(pixels: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _format_box(box: Iterable[float] | None) -> str:
    """``"x0 y0 x1 y1"`` (or ``"x0 x1 y"``), integers without a decimal point, halves as ``.5``."""
    return "" if box is None else " ".join(f"{value:g}" for value in box)


def _image_columns(task: _ImageTask, truth: DataBarTruth, image_id: str, near_of: str) -> dict[str, object]:
    shown = truth.has_stripe
    return {
        "image_id": image_id,
        "category": task.leaf.split("/", 1)[0],
        "subcategory_path": task.leaf,
        "scale_value": truth.value if shown else "",
        "scale_unit": truth.unit if shown else "",
        "bar_px": truth.bar_px if shown else "",
        "nm_per_px": repr(truth.nm_per_px),
        "has_stripe": shown,
        "stripe_box": _format_box(truth.stripe_box),
        "segment": _format_box(truth.segment),
        "segment_style": truth.style if shown else "",
        "label_text": truth.label_text if shown else "",
        "label_box": _format_box(truth.label_box),
        "width": task.width,
        "height": task.height,
        "jpg_only": task.jpg_only,
        "near_duplicate_of": near_of,
        "layout": truth.layout,
        "font": truth.font,
        "width_px": task.width_class,
        "field_nm": "" if truth.field_nm is None else f"{truth.field_nm:.10g}",
        "defect": task.defect,
    }


def _scaled_box(box: Iterable[float] | None, scale: float, dx: float, dy: float, xy: str) -> str:
    """A truth box moved by ``(-dx, -dy)`` then scaled: ``xy`` names each value's axis (``"xyxy"`` or ``"xxy"``)."""
    if box is None:
        return ""
    moved = [(value - (dx if axis == "x" else dy)) * scale for value, axis in zip(box, xy, strict=True)]
    return _format_box(round(value, 3) for value in moved)


def _variant_rows(out: Path, task: _ImageTask, pixels: np.ndarray, truth: DataBarTruth) -> list[dict[str, object]]:
    """Write the task's variants (re-saved copies of its image) and return their ground-truth rows."""
    rows = []
    stripe_top = truth.stripe_box[1] if truth.stripe_box is not None else None
    for plan in task.variants:
        copy, geometry = make_variant(pixels, stripe_top, plan.variant, np.random.default_rng(plan.seed))
        file_format, quality = VARIANT_FORMATS[plan.variant]
        if file_format == "TIFF":
            data = _tiff_bytes(copy, software="ImageJ", datetime_text=None, description=None, vendor_tag=None)
        else:
            data = jpeg_bytes(copy, quality)
        _write(out, plan.path, data)
        columns = _image_columns(task, truth, plan.image_id, task.image_id)
        scale, (dx, dy, _x1, _y1) = geometry.scale, geometry.box
        shown = truth.has_stripe and plan.variant != "no_bar"
        columns.update(
            width=copy.shape[1],
            height=copy.shape[0],
            nm_per_px=repr(truth.nm_per_px / scale),
            has_stripe=shown,
            stripe_box=_scaled_box(truth.stripe_box, scale, dx, dy, "xyxy") if shown else "",
            segment=_scaled_box(truth.segment, scale, dx, dy, "xxy") if shown else "",
            label_box=_scaled_box(truth.label_box, scale, dx, dy, "xyxy") if shown else "",
            bar_px=f"{truth.bar_px * scale:g}" if shown else "",
            field_nm=columns["field_nm"] if shown else "",
            variant=plan.variant,
            jpg_only=file_format == "JPG",
        )
        if not shown:
            columns.update(scale_value="", scale_unit="", segment_style="", label_text="", layout="none", font="")
        rows.append({"path": plan.path, **columns, "kind": "variant", "format": file_format})
    return rows


def _write(out: Path, relative: str, data: bytes) -> None:
    path = out / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _run_image_task(out: Path, task: _ImageTask) -> list[dict[str, object]]:
    """Draw the task's image (and near-duplicate), write its planned files, return their ground-truth rows."""
    pixels, spec, truth, charging_rows = _draw_image(task)
    software = _TIFF_SOFTWARE[int(spec.acquired.toordinal()) % len(_TIFF_SOFTWARE)]
    datetime_text = spec.acquired.strftime("%Y:%m:%d %H:%M:%S")
    vendor_tag: tuple[int, str | bytes] | None = None
    if task.vendor == "fei":
        vendor_tag = (34682, _fei_text(spec, truth))
    elif task.vendor == "zeiss":
        vendor_tag = (34118, _zeiss_bytes(spec, truth, task.zeiss_image_pixel_size))

    def products_of(image: np.ndarray, with_vendor: bool) -> dict[str, Callable[[], bytes]]:
        return {
            "tiff": lambda: _tiff_bytes(
                image,
                software=software,
                datetime_text=datetime_text,
                description=None,
                vendor_tag=vendor_tag if with_vendor else None,
            ),
            "tiff-variant": lambda: _tiff_bytes(
                image,
                software=_VARIANT_SOFTWARE[int(spec.acquired.day) % len(_VARIANT_SOFTWARE)],
                datetime_text=(spec.acquired + datetime.timedelta(days=400)).strftime("%Y:%m:%d %H:%M:%S"),
                description=f"{task.leaf.rsplit('/', 1)[-1]} re-saved",
                vendor_tag=vendor_tag if with_vendor else None,
            ),
            "pair": lambda: (
                encode_jpeg(Image.fromarray(image))
                if task.pair_quality is None
                else _pillow_jpeg(image, task.pair_quality)
            ),
            "store": lambda: encode_jpeg(Image.fromarray(image)),
            "q75": lambda: _pillow_jpeg(image, 75),
            "jpg-only": lambda: _pillow_jpeg(image, task.jpg_only_quality),
        }

    makers = {False: products_of(pixels, bool(task.vendor))}
    if task.near_seed is not None:
        near_rng = np.random.default_rng(task.near_seed)
        original_jpeg = encode_jpeg(Image.fromarray(pixels, mode="L"))
        for count in range(int(near_rng.integers(20, 41)), 51, 5):
            near_pixels = _nudge_pixels(pixels, near_rng, spec.specimen_height, count)
            if encode_jpeg(Image.fromarray(near_pixels, mode="L")) != original_jpeg:
                break
        else:
            raise RuntimeError(f"near-duplicate of {task.image_id} encodes to the same JPG")
        makers[True] = products_of(near_pixels, False)
        makers[True]["pair"] = makers[True]["store"]

    cache: dict[tuple[bool, str], bytes] = {}
    rows = []
    for plan in task.files:
        key = (plan.of_near, plan.product)
        if key not in cache:
            cache[key] = makers[plan.of_near][plan.product]()
        data = cache[key]
        corrupt = plan.truncate is not None
        if plan.truncate is not None:
            data = data[: int(len(data) * plan.truncate)]
        _write(out, plan.path, data)
        is_tiff = plan.product.startswith("tiff")
        row = {
            "path": plan.path,
            **(
                {}
                if corrupt
                else _image_columns(
                    task, truth, task.near_id if plan.of_near else task.image_id, task.image_id if plan.of_near else ""
                )
            ),
            "kind": plan.kind,
            "format": "TIFF" if is_tiff else "JPG",
            "fei_metadata": is_tiff and not corrupt and task.vendor == "fei" and not plan.of_near,
            "zeiss_metadata": is_tiff and not corrupt and task.vendor == "zeiss" and not plan.of_near,
            "dataset": plan.dataset,
            "label_path": plan.label_path,
            "expected_match": plan.expected_match,
        }
        if charging_rows and not corrupt:
            row["charging_rows"] = " ".join(f"{first}-{last}" for first, last in charging_rows)
        rows.append(row)
    return rows + _variant_rows(out, task, pixels, truth)


def _scaled_sizes(size_scale: float) -> tuple[list[tuple[int, int]], np.ndarray]:
    sizes = [(max(64, round(w * size_scale)), max(48, round(h * size_scale))) for w, h, _ in IMAGE_SIZES]
    shares = np.array([share for _w, _h, share in IMAGE_SIZES])
    return sizes, shares / shares.sum()


def _quota_draw(rng: np.random.Generator, count: int, shares: np.ndarray) -> list[int]:
    """``count`` indices into ``shares``, each as often as its share says (largest remainders), shuffled.

    Unlike independent draws, every choice with ``count * share >= 1`` is
    present, so that even a small corpus holds every layout and size class.
    """
    expected = count * shares / shares.sum()
    counts = np.floor(expected).astype(int)
    remainders = np.argsort(-(expected - counts), kind="stable")[: count - int(counts.sum())]
    counts[remainders] += 1
    return rng.permutation(np.repeat(np.arange(len(shares)), counts)).tolist()


def _plan(
    n_images: int, seed: int, size_scale: float, defects: bool = True, labelled_share: float = SEM_DATASET_SHARE
) -> tuple[list[_ImageTask], list[tuple[str, bytes, dict]]]:
    """Decide every file of the corpus: image tasks for the workers, small extra files for the parent."""
    master_seed, image_seeds_root, defect_seed = np.random.SeedSequence(seed).spawn(3)
    rng = np.random.default_rng(master_seed)
    namer = _Namer(rng, n_images)
    leaves = leaf_paths()
    sizes, size_shares = _scaled_sizes(size_scale)

    n_near = _how_many(n_images, 0.02)
    n_variants = 2 * (_how_many(n_images, VARIANT_SHARE) // 2) if defects else 0
    n_base = n_images - n_near - n_variants
    image_seeds = image_seeds_root.spawn(n_images + max(1, n_images // 50))
    order = rng.permutation(n_base)
    n_tiff_only, n_jpg_only = _how_many(n_base, 0.08, 10), _how_many(n_base, 0.08, 10)
    tiff_only = set(order[:n_tiff_only].tolist())
    jpg_only = set(order[n_tiff_only : n_tiff_only + n_jpg_only].tolist())

    layouts = list(LAYOUT_SHARES)
    size_indices = _quota_draw(rng, n_base, size_shares)
    layout_indices = _quota_draw(rng, n_base, np.array(list(LAYOUT_SHARES.values())))
    tasks: list[_ImageTask] = []
    for index in range(n_base):
        width, height = sizes[size_indices[index]]
        task = _ImageTask(
            image_id=f"img{index:05d}",
            seed=image_seeds[index],
            leaf=leaves[int(rng.integers(len(leaves)))],
            width=width,
            height=height,
            layout=layouts[layout_indices[index]],
            width_class=IMAGE_SIZES[size_indices[index]][0],
            jpg_only=index in jpg_only,
        )
        folder = namer.folder()
        stem = namer.stem()
        if task.jpg_only:
            task.jpg_only_quality = int(rng.integers(80, 96))
            task.files.append(_FilePlan(namer.file(folder, namer.pick(_JPG_SUFFIXES), stem), "jpg-only", "original"))
        else:
            task.files.append(_FilePlan(namer.file(folder, namer.pick(_TIFF_SUFFIXES), stem), "tiff", "original"))
            if index not in tiff_only:
                task.pair_quality = None if rng.random() < 0.75 else int(rng.integers(75, 91))
                pair_folder = folder if rng.random() < 0.6 else namer.sibling(folder)
                task.files.append(
                    _FilePlan(namer.file(pair_folder, namer.pick(_JPG_SUFFIXES), stem), "pair", "jpg-pair")
                )
        tasks.append(task)

    tiff_tasks = [task for task in tasks if not task.jpg_only]
    for vendor, vendor_layouts in (("zeiss", ("zeiss_framed", "zeiss_plain")), ("fei", ("thermo_table",))):
        candidates = [task for task in tiff_tasks if task.layout in vendor_layouts]
        for task in _sample(rng, candidates, _how_many(len(candidates), VENDOR_METADATA_SHARE, 1)):
            task.vendor = vendor
            task.zeiss_image_pixel_size = vendor == "zeiss" and rng.random() < ZEISS_IMAGE_PIXEL_SIZE_SHARE
    for task in _sample(rng, tiff_tasks, _how_many(len(tiff_tasks), 0.04)):
        task.files.append(
            _FilePlan(namer.file(namer.folder(), namer.pick(_TIFF_SUFFIXES)), "tiff-variant", "metadata-variant")
        )
    for offset, task in enumerate(_sample(rng, tiff_tasks, n_near)):
        task.near_id = f"img{n_base + offset:05d}"
        task.near_seed = image_seeds[n_base + offset]
        folder = namer.folder()
        stem = namer.stem()
        task.files.append(
            _FilePlan(namer.file(folder, namer.pick(_TIFF_SUFFIXES), stem), "tiff", "near-duplicate", of_near=True)
        )
        if rng.random() < 0.5:
            task.files.append(_FilePlan(namer.file(folder, ".jpg", stem), "pair", "jpg-pair", of_near=True))

    # Exact duplicates: 1-3 byte copies of an image's TIFF or JPG elsewhere.
    for task in _sample(rng, tasks, _how_many(len(tasks), 0.10)):
        sources = [plan for plan in task.files if plan.kind in ("original", "jpg-pair")]
        for _ in range(int(rng.integers(1, 4))):
            source = sources[int(rng.integers(len(sources)))]
            suffix = "." + source.path.rsplit(".", 1)[-1]
            folder = namer.folder(avoid=source.path.rsplit("/", 1)[0])
            task.files.append(_FilePlan(namer.file(folder, suffix), source.product, "duplicate"))

    # Corrupt files made from real images' bytes.
    n_corrupt_each = _how_many(n_images, 0.01)
    for task in _sample(rng, tiff_tasks, n_corrupt_each):
        task.files.append(
            _FilePlan(namer.file(namer.folder(), ".tif"), "tiff", "corrupt", truncate=float(rng.uniform(0.4, 0.7)))
        )
    jpg_tasks = [task for task in tasks if any(plan.product in ("pair", "jpg-only") for plan in task.files)]
    for task in _sample(rng, jpg_tasks, n_corrupt_each):
        product = "jpg-only" if task.jpg_only else "pair"
        task.files.append(
            _FilePlan(namer.file(namer.folder(), ".jpg"), product, "corrupt", truncate=float(rng.uniform(0.4, 0.7)))
        )

    extra_files = _plan_small_files(rng, namer, n_images, n_corrupt_each)
    if defects:
        _plan_defects(np.random.default_rng(defect_seed), namer, tasks, n_base + n_near, n_variants)
    tasks.extend(_plan_labels(rng, namer, tasks, sizes, size_shares, image_seeds[n_images:], labelled_share))
    return tasks, extra_files


def _plan_defects(
    rng: np.random.Generator, namer: _Namer, tasks: list[_ImageTask], first_id: int, n_variants: int
) -> None:
    """Give :data:`DEFECT_SHARES` of the tasks a defect and plan ``n_variants`` variants, two per source image.

    Neither touches a task with a near-duplicate; variants come from sound
    TIFF images with a data bar, and take the ids from ``first_id`` on.
    """
    candidates = [task for task in tasks if not task.near_id]
    order = rng.permutation(len(candidates)).tolist()
    seeds = iter(np.random.SeedSequence(int(rng.integers(2**63))).spawn(len(candidates) + n_variants))
    taken = 0
    for defect, share in DEFECT_SHARES.items():
        for index in order[taken : taken + _how_many(len(tasks), share)]:
            candidates[index].defect = defect
            candidates[index].defect_seed = next(seeds)
        taken += _how_many(len(tasks), share)
    sources = [
        candidates[index]
        for index in order[taken:]
        if not candidates[index].jpg_only and candidates[index].layout != "none"
    ][: n_variants // 2]
    kinds = [VARIANTS[index % len(VARIANTS)] for index in rng.permutation(2 * len(sources))]
    next_id = first_id
    for number, source in enumerate(sources):
        pair = kinds[2 * number : 2 * number + 2]
        if pair[0] == pair[1]:
            pair[1] = VARIANTS[(VARIANTS.index(pair[0]) + 1) % len(VARIANTS)]
        for variant in pair:
            suffix = ".tif" if VARIANT_FORMATS[variant][0] == "TIFF" else ".jpg"
            path = namer.file(namer.folder(), suffix, f"{namer.stem()} {variant.replace('_', ' ')}")
            source.variants.append(_VariantPlan(f"img{next_id:05d}", variant, path, next(seeds)))
            next_id += 1


def _sample(rng: np.random.Generator, items: list, count: int) -> list:
    count = min(count, len(items))
    return [items[i] for i in sorted(rng.choice(len(items), size=count, replace=False).tolist())]


def _minimal_pdf() -> bytes:
    """A valid one-page PDF 1.4 with a correct cross-reference table."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] >>",
    ]
    body = b"%PDF-1.4\n"
    offsets = []
    for number, content in enumerate(objects, start=1):
        offsets.append(len(body))
        body += f"{number} 0 obj\n".encode() + content + b"\nendobj\n"
    xref = len(body)
    body += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    body += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    body += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return body


def _dm3_bytes(rng: np.random.Generator) -> bytes:
    """Bytes opening like a Gatan DM3 file: big-endian version 3, root length, little-endian flag, then a tag group."""
    payload = rng.integers(0, 256, size=512, dtype=np.uint8).tobytes()
    return struct.pack(">III", 3, len(payload) + 6, 1) + b"\x00\x01" + struct.pack(">I", 0) + payload


def _djvu_bytes(rng: np.random.Generator) -> bytes:
    chunk = b"INFO" + struct.pack(">I", 10) + struct.pack(">HHBBHBB", 64, 48, 24, 0, 300, 22, 0)
    body = b"DJVU" + chunk + rng.integers(0, 256, size=256, dtype=np.uint8).tobytes()
    return b"AT&TFORM" + struct.pack(">I", len(body)) + body


def _bmp_bytes(rng: np.random.Generator) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, size=(48, 64), dtype=np.uint8), mode="L").save(buffer, format="BMP")
    return buffer.getvalue()


def _plan_small_files(
    rng: np.random.Generator, namer: _Namer, n_images: int, n_corrupt_each: int
) -> list[tuple[str, bytes, dict]]:
    """Zero-byte and text-as-TIFF corrupt files and the unsupported formats: ``(path, bytes, row)``."""
    files = []
    for _ in range(max(1, n_corrupt_each)):
        suffix = ".tif" if rng.random() < 0.5 else ".jpg"
        files.append(
            (
                namer.file(namer.folder(), suffix),
                b"",
                {"kind": "corrupt", "format": "TIFF" if suffix == ".tif" else "JPG"},
            )
        )
        text = b"Scan log\nsample: wafer 7\noperator: mario\nnot an image\n"
        files.append((namer.file(namer.folder(), ".tif"), text, {"kind": "corrupt", "format": "TEXT"}))
    unsupported = [
        ("PDF", ".pdf", max(1, n_images // 400), lambda: _minimal_pdf()),
        ("BMP", ".bmp", max(1, n_images // 400), lambda: _bmp_bytes(rng)),
        ("DM3", ".dm3", 1 + n_images // 2000, lambda: _dm3_bytes(rng)),
        ("DJVU", ".djvu", 1 if n_images >= 200 else 0, lambda: _djvu_bytes(rng)),
    ]
    for file_format, suffix, count, make in unsupported:
        for _ in range(count):
            files.append((namer.file(namer.folder(), suffix), make(), {"kind": "unsupported", "format": file_format}))
    return files


def _label_source(task: _ImageTask, of_near: bool, rng: np.random.Generator, reencode_share: float) -> tuple[str, str]:
    """``(product, expected_match)`` of a labelled copy of ``task``'s image, or of its near-duplicate."""
    if task.jpg_only:
        return "jpg-only", "jpg_md5"
    has_pair = any(plan.product == "pair" and plan.of_near == of_near for plan in task.files)
    if rng.random() < reencode_share:
        pair_is_q75 = has_pair and not of_near and task.pair_quality == 75
        return ("pair", "jpg_md5") if pair_is_q75 else ("q75", "reencoded")
    return ("pair" if has_pair else "store"), "jpg_md5"


def _plan_labels(
    rng: np.random.Generator,
    namer: _Namer,
    tasks: list[_ImageTask],
    sizes: list[tuple[int, int]],
    size_shares: np.ndarray,
    spare_seeds: list[np.random.SeedSequence],
    labelled_share: float,
) -> list[_ImageTask]:
    """Add the labelled dataset files to the tasks; return the extra tasks of images found only in SEM_Dataset."""

    def label(task: _ImageTask, of_near: bool, dataset: str, label_path: str, product: str, expected: str) -> None:
        path = namer.label_file(f"{DATASETS_DIR}/{dataset}/{label_path}")
        task.files.append(
            _FilePlan(
                path,
                product,
                "labelled",
                of_near=of_near,
                dataset=dataset,
                label_path=label_path,
                expected_match=expected,
            )
        )

    # Every image of new_dati_SEM as (task, of_near): the task's own image or its near-duplicate.
    images = [(task, False) for task in tasks] + [(task, True) for task in tasks if task.near_id]

    def chosen(share: float) -> list[tuple[_ImageTask, bool]]:
        return _sample(rng, images, _how_many(len(images), share))

    def chosen_per_category(share: float, at_least: int) -> list[tuple[_ImageTask, bool]]:
        """``share`` of each top category's images, at least ``at_least`` of them (all, when it has fewer)."""
        by_category: dict[str, list[tuple[_ImageTask, bool]]] = {}
        for image in images:
            by_category.setdefault(image[0].leaf.split("/", 1)[0], []).append(image)
        return [
            image
            for category in sorted(by_category)
            for image in _sample(
                rng, by_category[category], max(at_least, _how_many(len(by_category[category]), share))
            )
        ]

    for task, of_near in chosen_per_category(labelled_share, SEM_DATASET_MIN_PER_CATEGORY):
        category = task.leaf.split("/", 1)[0]
        product, expected = _label_source(task, of_near, rng, reencode_share=0.10)
        for _copy in range(2 if rng.random() < 0.02 else 1):
            label(task, of_near, "SEM_Dataset", category, product, expected)
    for task, of_near in chosen(0.06):
        label(task, of_near, "Hierarchical", task.leaf, *_label_source(task, of_near, rng, reencode_share=0.0))
    majority = chosen(0.40)
    conflicting = [i for i, (task, _) in enumerate(majority) if task.leaf.split("/", 1)[0] in CONFLICTING_CATEGORIES]
    conflicts = set(_sample(rng, conflicting, _how_many(len(majority), 0.15, 1)))
    for position, (task, of_near) in enumerate(majority):
        category = task.leaf.split("/", 1)[0]
        product, expected = _label_source(task, of_near, rng, reencode_share=0.0)
        label(task, of_near, "Majority", category, product, expected)
        if position in conflicts:
            other = CONFLICTING_CATEGORIES[1 - CONFLICTING_CATEGORIES.index(category)]
            label(task, of_near, "Majority", other, product, expected)

    external = []
    n_sem = sum(1 for task in tasks for plan in task.files if plan.dataset == "SEM_Dataset")
    leaves = leaf_paths()
    layouts = list(LAYOUT_SHARES)
    layout_shares = np.array(list(LAYOUT_SHARES.values()))
    for index in range(_how_many(n_sem, 0.01, 10)):
        size_index = int(rng.choice(len(sizes), p=size_shares))
        leaf = leaves[int(rng.integers(len(leaves)))]
        task = _ImageTask(
            image_id=f"ext{index:05d}",
            seed=spare_seeds[index],
            leaf=leaf,
            width=sizes[size_index][0],
            height=sizes[size_index][1],
            layout=layouts[int(rng.choice(len(layouts), p=layout_shares / layout_shares.sum()))],
            width_class=IMAGE_SIZES[size_index][0],
        )
        label(task, False, "SEM_Dataset", leaf.split("/", 1)[0], "store", "none")
        external.append(task)
    return external


def ensure_fresh(out: Path) -> None:
    """Raise ``ValueError`` when ``out`` already holds a corpus, so corpora never mix."""
    for name in (SOURCE_DIR, DATASETS_DIR):
        folder = out / name
        if folder.exists() and any(folder.iterdir()):
            raise ValueError(f"{folder} already exists and is not empty; write the demo corpus into a new folder")


def _csv_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def make_sem_corpus(
    out: Path,
    n_images: int,
    seed: int = 0,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    size_scale: float = 1.0,
    defects: bool = True,
    labelled_share: float = SEM_DATASET_SHARE,
) -> CorpusSummary:
    """Write a demo SEM repository with ``n_images`` distinct images under ``out`` and return its counts.

    Parameters
    ----------
    out : Path
        Folder to write into (created if missing).  Nothing is written outside
        it.  Refused (``ValueError``) when ``out/new_dati_SEM`` or
        ``out/datasets`` already holds files, so corpora never mix.
    n_images : int
        Distinct images in ``new_dati_SEM``, near-duplicates included.
    seed : int
        Seed of everything; the same seed gives the same bytes.
    workers : int, optional
        Processes drawing and writing images (default ``os.cpu_count()``);
        the output does not depend on it.
    progress : callable, optional
        Called after each drawn image with the number of images (near-duplicates
        and dataset-only images included) written so far.
    size_scale : float
        Multiplies every image size (px); 1.0 gives the real sizes
        (512 to 4096 px wide, mostly 1024; :data:`IMAGE_SIZES`), 0.25 gives
        small images for tests.
    defects : bool
        Draw the image-quality defects (:data:`DEFECT_SHARES`) and the
        variants (:data:`VARIANT_SHARE` of ``n_images``); False writes the corpus
        without them, byte for byte as before they existed.
    labelled_share : float
        Share of each category's images labelled in SEM_Dataset (at least
        :data:`SEM_DATASET_MIN_PER_CATEGORY` of them), in ``(0, 1]``; the
        default, :data:`SEM_DATASET_SHARE`, is the thesis' 14 %.

    Returns
    -------
    CorpusSummary

    Raises
    ------
    ValueError
        When ``out`` already holds a corpus or another process is writing one
        there, ``n_images < 1`` or ``labelled_share`` is outside ``(0, 1]``.
    semcurate.datasets.databar.MissingFontError
        When a font the data bars are drawn in is not installed (the message
        names the Debian package), before anything is written.
    """
    if n_images < 1:
        raise ValueError(f"n_images must be at least 1, got {n_images}")
    if not 0 < labelled_share <= 1:
        raise ValueError(f"labelled_share must be in (0, 1], got {labelled_share}")
    out = Path(out)
    require_fonts()  # one clear line naming the missing Debian package, before anything is written
    out.mkdir(parents=True, exist_ok=True)
    lock = out / CORPUS_LOCK
    try:
        with hold_lock(lock, str(out), activity="demo-data"):
            try:
                ensure_fresh(out)  # under the lock: no other run can have begun writing since
                tasks, extra_files = _plan(n_images, seed, size_scale, defects, labelled_share)
                rows = _write_corpus(out, tasks, extra_files, workers or os.cpu_count() or 1, progress)
            finally:
                lock.unlink(missing_ok=True)  # still held: a run that opens the path later locks a new file
    except StoreError as error:
        raise ValueError(str(error)) from None
    return _summarise(rows)


def _write_corpus(
    out: Path,
    tasks: list[_ImageTask],
    extra_files: list[tuple[str, bytes, dict]],
    workers: int,
    progress: Callable[[int], None] | None,
) -> list[dict[str, object]]:
    """Write every planned file under ``out`` (images on ``workers`` processes) and ``ground_truth.csv``; return
    the truth table's rows."""
    rows: list[dict[str, object]] = []
    done = 0
    results: Iterator[list[dict[str, object]]]
    if workers == 1:
        results = (_run_image_task(out, task) for task in tasks)
        executor = None
    else:
        executor = ProcessPoolExecutor(max_workers=workers)
        results = executor.map(_run_image_task, [out] * len(tasks), tasks, chunksize=4)
    try:
        for task, task_rows in zip(tasks, results, strict=True):
            rows.extend(task_rows)
            done += 1 + bool(task.near_id) + len(task.variants)
            if progress is not None:
                progress(done)
    finally:
        if executor is not None:
            executor.shutdown(cancel_futures=True)

    for relative, data, columns in extra_files:
        _write(out, relative, data)
        rows.append({"path": relative, **columns})

    rows.sort(key=lambda row: str(row["path"]))
    with (out / GROUND_TRUTH_FILE).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=GROUND_TRUTH_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({column: _csv_value(row.get(column)) for column in GROUND_TRUTH_COLUMNS})
    return rows


def _summarise(rows: list[dict[str, object]]) -> CorpusSummary:
    kinds = Counter(str(row["kind"]) for row in rows)
    source_rows = [row for row in rows if row["kind"] != "labelled"]
    image_ids = {row["image_id"] for row in source_rows if row.get("image_id")}
    return CorpusSummary(
        n_images=len(image_ids),
        n_files=len(rows),
        n_duplicate_files=kinds["duplicate"] + kinds["metadata-variant"] + kinds["jpg-pair"],
        n_corrupt=kinds["corrupt"],
        n_unsupported=kinds["unsupported"],
        n_jpg_only=sum(1 for row in source_rows if row["kind"] == "original" and row.get("jpg_only")),
        n_near_duplicate_pairs=len({row["image_id"] for row in source_rows if row["kind"] == "near-duplicate"}),
        n_labelled=kinds["labelled"],
        files_per_format=dict(sorted(Counter(str(row["format"]) for row in rows).items())),
        n_variants=kinds["variant"],
        defects=dict(
            sorted(
                Counter(
                    str(row["defect"]) for row in source_rows if row["kind"] == "original" and row.get("defect")
                ).items()
            )
        ),
    )
