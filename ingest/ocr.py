"""One Tesseract OCR engine per process, fast enough to read every scale label.

The scale-bar reader (thesis section 2.3) reads a few short text lines per
image: the scale label next to the segment ("200 nm") and perhaps the other
fields of the data bar.  Over a repository of ~150 000 images the cost of each
call matters more than anything else:

* ``pytesseract`` starts the ``tesseract`` program and loads its model on every
  call: about 160-230 ms per crop.
* ``tesserocr`` keeps one ``PyTessBaseAPI`` (and its model) open: about 5 ms
  per small crop.

So :class:`OcrEngine` uses ``tesserocr`` when it can and falls back to
``pytesseract``, whose :meth:`OcrEngine.read_lines` then stacks many crops into
*one* image and one program call.  ``tesserocr`` is optional (the ``fast-ocr``
extra, ``pip install 'semcurate[fast-ocr]'``, which ``scripts/setup.sh``
installs); ``pytesseract`` is always installed, and both run Tesseract with the
same models, so the fallback reads the same text (``tests/test_ocr.py`` checks
it), only more slowly.
:func:`get_engine` hands each process (each worker of a pool) its own engine,
created on first use.

Notes
-----
* The ``tesserocr`` wheel bundles its own libtesseract, whose default model
  folder is ``./``; the folder is therefore always passed explicitly, found by
  :func:`find_tessdata`.
* Debian's libtesseract is built with OpenMP, which slows things down badly when
  several worker processes each start several threads; ``OMP_THREAD_LIMIT`` is
  set to 1 (unless already set) before any ``tesseract`` program is started.
* The engine does not invert or clean images: callers prepare crops, usually
  with :func:`prepare_crop`, which yields what Tesseract reads best (dark text,
  white background, a white margin, text 30-50 px tall).
* The ``eng`` model has no ``µ``: it reads it as ``u``, ``p``, ``y``, ``yu``,
  ``pu`` or drops it (the real Zeiss fixture's "200 µm" reads "200 um", the
  Helios' "500 µm" "500 pm", "500 ym" or "500 urn" depending on the scale);
  :mod:`semcurate.ingest.length_text` maps back only the spellings seen.
* Tesseract's LSTM normalises every line to its own height, so the time a
  crop takes grows with its number of characters, hardly with its scale
  (measured: "200 nm" 13 ms at x1 and x2, a 45-character line 51-62 ms, on
  a loaded 2-core machine); the scale only changes what is read.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image

#: Where Debian and Ubuntu install the Tesseract models.
DEBIAN_TESSDATA = ("/usr/share/tesseract-ocr/5/tessdata", "/usr/share/tesseract-ocr/4.00/tessdata")
BACKENDS = ("auto", "tesserocr", "pytesseract")
#: Resolution told to Tesseract, in dpi; it only matters for its text-size heuristics.
_DPI = 300
#: Height in px of the white band between two crops stacked for one ``pytesseract`` call.
_STACK_GAP_PX = 24
#: Tallest sheet of stacked crops read by one ``pytesseract`` call, in px (Tesseract refuses images over 32 767 px).
STACK_MAX_HEIGHT_PX = 8000
_INSTALL_HINT = (
    "no working Tesseract OCR engine: install it with `apt-get install tesseract-ocr` "
    "(or set TESSDATA_PREFIX to the folder holding {lang}.traineddata)"
)


class OcrUnavailable(RuntimeError):
    """No Tesseract engine could be started; the message says what to install."""


@dataclass(frozen=True)
class OcrText:
    """What Tesseract read in one crop.

    ``confidence`` is the mean word confidence, 0-100, or -1 when nothing was
    read (or the backend gave no confidence).
    """

    text: str
    confidence: float


def _models_present(folder: str, lang: str) -> bool:
    return all(os.path.isfile(os.path.join(folder, f"{part}.traineddata")) for part in lang.split("+"))


def _listed_tessdata() -> str | None:
    """The model folder named by ``tesseract --list-langs``, or None when the program is missing or silent."""
    program = shutil.which("tesseract")
    if program is None:
        return None
    try:
        _limit_openmp_threads()
        listing = subprocess.run([program, "--list-langs"], capture_output=True, text=True, timeout=30, env=os.environ)
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r'List of available languages in "([^"]+)"', listing.stdout + listing.stderr)
    return match.group(1) if match else None


def _tessdata_candidates() -> Iterator[str]:
    prefix = os.environ.get("TESSDATA_PREFIX")
    if prefix:
        yield prefix
        yield os.path.join(prefix, "tessdata")
    listed = _listed_tessdata()
    if listed:
        yield listed
    yield from DEBIAN_TESSDATA


def find_tessdata(lang: str = "eng") -> str | None:
    """The folder holding ``<lang>.traineddata`` for every ``+``-joined part of ``lang``, or None.

    Looks, in order, at ``$TESSDATA_PREFIX`` (the folder itself or its
    ``tessdata`` sub-folder), the folder ``tesseract --list-langs`` reports,
    then :data:`DEBIAN_TESSDATA`; the program is only run when the variable
    does not lead to the models.
    """
    return next((folder for folder in _tessdata_candidates() if _models_present(folder, lang)), None)


def _limit_openmp_threads() -> None:
    """Set ``OMP_THREAD_LIMIT=1`` in ``os.environ`` (``tesseract`` programs inherit it) unless already set."""
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")


def _as_image(image: Image.Image | np.ndarray) -> Image.Image:
    if isinstance(image, Image.Image):
        return image
    array = np.asarray(image)
    if array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    return Image.fromarray(array)


def _mean_confidence(confidences: list[float]) -> float:
    valid = [confidence for confidence in confidences if confidence >= 0]
    return float(np.mean(valid)) if valid else -1.0


def otsu_threshold(grey: np.ndarray) -> int:
    """Otsu's threshold of a ``uint8`` image: the level ``t`` that best splits it into ``<= t`` and ``> t``.

    Maximises the between-class variance of the grey-level histogram
    (Otsu 1979, "A threshold selection method from gray-level histograms").
    A uniform image gets its own grey level.
    """
    histogram = np.bincount(np.asarray(grey, dtype=np.uint8).ravel(), minlength=256).astype(np.float64)
    levels = np.arange(256, dtype=np.float64)
    weight_low = np.cumsum(histogram)
    weight_high = weight_low[-1] - weight_low
    sum_low = np.cumsum(histogram * levels)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_low = sum_low / weight_low
        mean_high = (sum_low[-1] - sum_low) / weight_high
        between = weight_low * weight_high * (mean_low - mean_high) ** 2
    between = np.nan_to_num(between, nan=-1.0)
    if between.max() <= 0:
        return int(np.asarray(grey).min())
    return int(np.argmax(between))


def prepare_crop(
    grey: np.ndarray, *, scale: float = 2.0, dark_text: bool = True, binarize: bool = False
) -> Image.Image:
    """Turn a grey crop of one text line into what Tesseract reads best: black text on white, upscaled, padded.

    Parameters
    ----------
    grey : ndarray of shape (height, width)
        The text line, ``uint8`` (other dtypes are clipped to 0-255).
    scale : float
        Resampling factor (Lanczos).  The scale reader passes the one that
        brings the stripe's cap height to 20-36 px (28 first), what
        Tesseract's LSTM model reads best: x4 for the 7-px print of a
        512-px frame, about x2 at 1024 px, below 1 at 4096 px.
    dark_text : bool
        True when the text is darker than its background; False inverts first.
    binarize : bool
        The crop is always stretched so that the mean ink level (the pixels at
        or below Otsu's threshold) becomes 0 and the mean background level
        255, clipping beyond them; antialiased edges stay grey.  True then
        thresholds the upscaled image at 128 (pure black and white).

    Returns
    -------
    PIL.Image.Image
        Mode ``"L"`` image of dark text on white with a white margin of half
        the upscaled height on every side.

    Notes
    -----
    Measured on scale labels drawn with Pillow in DejaVu Sans, Liberation
    Sans and FreeSans (the faces instrument software uses), both polarities,
    cropped 2 px around the ink, read by tesserocr and
    :func:`semcurate.ingest.length_text.parse_length`:

    * 7-12 px cap height (512-px frames), 216 labels, six values with ``µm``
      and ``nm``: x2 reads 98.1 % right, scaled to a 28 px cap height 97.2 %,
      none wrong either way; FreeSans' 8-px "2 µm" loses its µ ("2m").
    * The same at 12-20 px: 98.9 % right at x2 and at 28 px, none wrong.
    * Harder labels (anti-aliasing off, values such as 1.5 and 2.5 µm, bold
      faces), 7-12 px: about 86 % right and 2-3 % wrong in one look, mostly a
      lost decimal point ("1.5 µm" read "15 µm"), 5 read as 3 or S, and
      invented digits ("1006 nm"); hard binarisation errs more (3.0 % wrong).
      The reader therefore reads small print in two agreeing looks and checks
      it against the stripe's printed field width.
    """
    array = np.clip(np.asarray(grey, dtype=np.float64), 0, 255).astype(np.uint8)
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"expected a non-empty 2-D grey crop, got shape {array.shape}")
    if not dark_text:
        array = 255 - array
    threshold = otsu_threshold(array)
    ink = array[array <= threshold].mean()
    paper = array[array > threshold].mean() if (array > threshold).any() else 255.0
    array = np.clip((array - ink) * (255.0 / max(paper - ink, 1.0)), 0, 255).astype(np.uint8)
    height, width = array.shape
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    upscaled = np.asarray(Image.fromarray(array).resize(size, Image.Resampling.LANCZOS))
    if binarize:
        upscaled = np.where(upscaled < 128, 0, 255).astype(np.uint8)
    margin = max(4, size[1] // 2)
    return Image.fromarray(np.pad(upscaled, margin, constant_values=255))


class OcrEngine:
    """A Tesseract engine kept open for many single-line crops.

    Parameters
    ----------
    backend : {"auto", "tesserocr", "pytesseract"}
        ``"auto"`` uses ``tesserocr`` (the optional ``fast-ocr`` extra) when it
        imports and starts, else ``pytesseract``.
    lang : str
        Tesseract language(s), e.g. ``"eng"``.

    Raises
    ------
    OcrUnavailable
        When the requested backend (any backend, for ``"auto"``) cannot run.

    Notes
    -----
    Use as a context manager or call :meth:`close`.  Calls are serialised by a
    lock, so one engine may be shared by threads (it then reads one crop at a
    time); processes should each use :func:`get_engine`.
    """

    def __init__(self, *, backend: str = "auto", lang: str = "eng") -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.backend = backend
        self.lang = lang
        self._lock = threading.Lock()
        self._api = None
        failures = []
        for name in ("tesserocr", "pytesseract") if backend == "auto" else (backend,):
            try:
                self._start(name)
            except OcrUnavailable as error:
                failures.append(f"{name}: {error}")
                continue
            self.backend_name = name
            return
        raise OcrUnavailable(_INSTALL_HINT.format(lang=lang) + " [" + "; ".join(failures) + "]")

    def _start(self, name: str) -> None:
        tessdata = find_tessdata(self.lang)
        if name == "tesserocr":
            try:
                import tesserocr
            except ImportError as error:
                raise OcrUnavailable("tesserocr is not installed (pip install 'semcurate[fast-ocr]')") from error
            if tessdata is None:
                raise OcrUnavailable(f"no folder with {self.lang}.traineddata found")
            try:
                api = tesserocr.PyTessBaseAPI(path=tessdata + os.sep, lang=self.lang, psm=tesserocr.PSM.SINGLE_LINE)
            except RuntimeError as error:
                raise OcrUnavailable(f"tesserocr could not start: {error}") from error
            api.SetVariable("user_defined_dpi", str(_DPI))
            self._api = api
            return
        try:
            import pytesseract
        except ImportError as error:
            raise OcrUnavailable("pytesseract is not installed") from error
        if shutil.which(pytesseract.pytesseract.tesseract_cmd) is None:
            raise OcrUnavailable(f"the {pytesseract.pytesseract.tesseract_cmd!r} program is not on PATH")
        if tessdata is None:
            raise OcrUnavailable(f"no folder with {self.lang}.traineddata found")
        self._tessdata = tessdata

    def close(self) -> None:
        """Release the Tesseract model (``tesserocr``); the engine cannot be used afterwards."""
        with self._lock:
            if self._api is not None:
                self._api.End()
                self._api = None
            self.backend_name = "closed"

    def __enter__(self) -> OcrEngine:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def read_line(self, image: Image.Image | np.ndarray, *, whitelist: str | None = None) -> OcrText:
        """Read one line of text (Tesseract page segmentation mode 7, "single line").

        ``image`` is a PIL image or a ``uint8`` array, ideally from
        :func:`prepare_crop`; ``whitelist`` restricts the characters Tesseract
        may output (None: any).
        """
        return self.read_lines([image], whitelist=whitelist)[0]

    def read_lines(self, images: list[Image.Image | np.ndarray], *, whitelist: str | None = None) -> list[OcrText]:
        """Read many single-line crops; one :class:`OcrText` per crop, in order.

        With ``tesserocr`` each crop is read in turn (about 5 ms each).  With
        ``pytesseract`` the crops are stacked, with white gaps, into sheets of
        at most :data:`STACK_MAX_HEIGHT_PX` px, each read by one program call
        in page segmentation mode 6 ("uniform block of text"), and the words
        are split back by their vertical position; a single crop is read in
        mode 7 like :meth:`read_line`.  A uniform (blank) crop reads as
        ``OcrText("", -1.0)`` without calling Tesseract.
        """
        pictures = [_as_image(image).convert("L") for image in images]
        if self.backend_name not in ("tesserocr", "pytesseract"):
            raise RuntimeError("the OCR engine is closed")
        # Tesseract invents text ("Oe") in a blank image: uniform crops are answered without it.
        inked = [index for index, picture in enumerate(pictures) if len(set(picture.getextrema())) > 1]
        results = [OcrText("", -1.0)] * len(pictures)
        for index, text in zip(inked, self._read_inked([pictures[index] for index in inked], whitelist), strict=True):
            results[index] = text
        return results

    def _read_inked(self, pictures: list[Image.Image], whitelist: str | None) -> list[OcrText]:
        if self.backend_name == "tesserocr":
            return [self._read_tesserocr(picture, whitelist) for picture in pictures]
        if len(pictures) <= 1:
            return self._read_sheet(pictures, whitelist, page_mode=7) if pictures else []
        results: list[OcrText] = []
        sheet: list[Image.Image] = []
        for picture in pictures:
            if sheet and _sheet_height([*sheet, picture]) > STACK_MAX_HEIGHT_PX:
                results += self._read_sheet(sheet, whitelist, page_mode=6)
                sheet = []
            sheet.append(picture)
        return results + self._read_sheet(sheet, whitelist, page_mode=6)

    def _read_tesserocr(self, picture: Image.Image, whitelist: str | None) -> OcrText:
        with self._lock:
            if self._api is None:
                raise RuntimeError("the OCR engine is closed")
            self._api.SetVariable("tessedit_char_whitelist", whitelist or "")
            # Raw grey bytes: the same text as SetImage, without encoding a BMP file for every crop.
            self._api.SetImageBytes(picture.tobytes(), picture.width, picture.height, 1, picture.width)
            text = " ".join(self._api.GetUTF8Text().split())
            confidence = _mean_confidence(list(self._api.AllWordConfidences())) if text else -1.0
        return OcrText(text, confidence)

    def _read_sheet(self, pictures: list[Image.Image], whitelist: str | None, *, page_mode: int) -> list[OcrText]:
        """Stack ``pictures`` on one white sheet, read it with one ``tesseract`` call, split the words back."""
        import pytesseract

        sheet = Image.new(
            "L", (max(picture.width for picture in pictures) + 2 * _STACK_GAP_PX, _sheet_height(pictures)), 255
        )
        bands = []
        top = _STACK_GAP_PX
        for picture in pictures:
            sheet.paste(picture, (_STACK_GAP_PX, top))
            bands.append(top + picture.height + _STACK_GAP_PX / 2)
            top += picture.height + _STACK_GAP_PX
        config = f"--psm {page_mode} --dpi {_DPI} --tessdata-dir {shlex.quote(self._tessdata)}"
        if whitelist:
            config += " -c " + shlex.quote(f"tessedit_char_whitelist={whitelist}")
        with self._lock:
            _limit_openmp_threads()
            data = pytesseract.image_to_data(sheet, lang=self.lang, config=config, output_type=pytesseract.Output.DICT)
        words: list[list[tuple[int, str, float]]] = [[] for _ in pictures]
        for text, left, word_top, word_height, confidence in zip(
            data["text"], data["left"], data["top"], data["height"], data["conf"], strict=True
        ):
            if text.strip():
                index = min(int(np.searchsorted(bands, word_top + word_height / 2)), len(pictures) - 1)
                words[index].append((left, text.strip(), float(confidence)))
        return [
            OcrText(
                " ".join(text for _left, text, _confidence in sorted(line)), _mean_confidence([c for *_, c in line])
            )
            for line in words
        ]


def _sheet_height(pictures: list[Image.Image]) -> int:
    """Height in px of the sheet that stacks ``pictures`` with a white gap above, between and below them."""
    return sum(picture.height for picture in pictures) + _STACK_GAP_PX * (len(pictures) + 1)


_ENGINE: tuple[int, OcrEngine] | None = None
_ENGINE_LOCK = threading.Lock()


def get_engine() -> OcrEngine:
    """This process's shared :class:`OcrEngine` (``backend="auto"``, English), created on first use.

    A child process started by ``fork`` does not reuse its parent's engine:
    the cache is keyed by process id.
    """
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None or _ENGINE[0] != os.getpid():
            _ENGINE = (os.getpid(), OcrEngine())
        return _ENGINE[1]
