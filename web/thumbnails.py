"""Thumbnails of the stored images: small WebP files, made once and cached in the store as ``thumbs/<md5>.webp``.

The core, :func:`thumbnail_of` (and :func:`thumbnail_bytes` over bytes),
turns an opened image into WebP bytes; the cache, :class:`ThumbnailCache`,
picks the quicker of the store's two files, makes the thumbnail and writes it
atomically (a unique temporary name in the same folder, then
:func:`os.replace`) so a reader never sees half a file and two servers racing
write the same bytes.

Speed (≥ 100 thumbnails per second per core is the target): what costs is
reading the pixels, not resizing or encoding them.  A JPEG is decoded at a
reduced size (``Image.draft``: libjpeg scales by 1/2, 1/4 or 1/8 while
decoding), but its entropy decoding still reads every coefficient: about
18 ms for the store's 2,048 × 1,536 quality-95 JPG on one core.  An
uncompressed 8-bit TIFF, as SEM instruments write them, is a copy to read:
about 4 ms for the same frame, ``reduce()`` and the resize included.  So the
TIFF is read when it is one of those (:func:`decodes_quickly`), the JPG
otherwise.  The WebP is written with ``method=0``, libwebp's fastest (about
1.5 ms for 256 × 192).
"""

from __future__ import annotations

import io
import math
import os
import re
import stat
import uuid
from pathlib import Path
from typing import BinaryIO

from PIL import Image

#: Longest side of a thumbnail in pixels.
THUMBNAIL_SIZE = 256
#: WebP quality (0-100) of the thumbnails: small files, the texture still legible.
WEBP_QUALITY = 70
#: libwebp's effort (0-6): 0 is its fastest, and at 256 px the files are hardly larger.
WEBP_METHOD = 0
#: What an md5 looks like; nothing else ever becomes part of a path.
MD5_PATTERN = re.compile(r"[0-9a-f]{32}")


def thumbnail_of(image: Image.Image, size: int = THUMBNAIL_SIZE) -> bytes:
    """WebP bytes of opened (not yet loaded) ``image``, its longest side at most ``size`` px, aspect ratio kept.

    A JPEG is decoded at the smallest of 1/1, 1/2, 1/4, 1/8 scale that is
    still at least the thumbnail's box (``Image.draft``); any image is then
    shrunk by an integer factor (``reduce``, a box filter) to no less than
    twice the box and resized bilinearly to it.  Grey is encoded as grey
    (WebP files are RGB, so the file reads back as RGB), 16-bit and float grey
    as 8-bit grey, anything else as RGB.

    Raises
    ------
    OSError
        When PIL cannot decode the image.

    Examples
    --------
    >>> picture = Image.new("L", (2048, 1536), 128)
    >>> with Image.open(io.BytesIO(thumbnail_of(picture))) as thumbnail:
    ...     thumbnail.format, thumbnail.size, thumbnail.mode
    ('WEBP', (256, 192), 'RGB')
    """
    # Ask the decoder for the thumbnail's own box (not size × size), so libjpeg may scale by 1/8 where it can.
    scale = size / max(image.size)
    box = (max(1, math.ceil(image.width * scale)), max(1, math.ceil(image.height * scale)))
    if image.format == "JPEG":
        image.draft("L" if image.mode == "L" else "RGB", box)
    image.thumbnail((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    if image.mode not in ("L", "RGB"):
        grey = image.mode in ("I;16", "I;16B", "I;16L", "I", "F")
        image = image.convert("L" if grey else "RGB")
    out = io.BytesIO()
    image.save(out, "WEBP", quality=WEBP_QUALITY, method=WEBP_METHOD)
    return out.getvalue()


def thumbnail_bytes(data: bytes, size: int = THUMBNAIL_SIZE) -> bytes:
    """WebP bytes of the image in ``data`` (see :func:`thumbnail_of`).

    Raises
    ------
    OSError
        When PIL cannot decode ``data`` (``PIL.UnidentifiedImageError`` is one).
    """
    with Image.open(io.BytesIO(data)) as image:
        return thumbnail_of(image, size)


def decodes_quickly(image: Image.Image) -> bool:
    """Whether opened ``image`` is an uncompressed, single-page, 8-bit grey TIFF: its pixels are a copy to read.

    Such a TIFF shows what the store's JPG of it shows (the JPG is made from
    it, grey kept grey, without a stretch), so its thumbnail may stand for the
    JPG's; a compressed, multi-page, colour or 16-bit TIFF does not qualify.

    Examples
    --------
    >>> out = io.BytesIO()
    >>> Image.new("L", (64, 48)).save(out, "TIFF")
    >>> decodes_quickly(Image.open(out))
    True
    >>> out = io.BytesIO()
    >>> Image.new("L", (64, 48)).save(out, "TIFF", compression="tiff_lzw")
    >>> decodes_quickly(Image.open(out))
    False
    """
    return (
        image.format == "TIFF"
        and image.mode == "L"
        and image.info.get("compression") == "raw"
        and getattr(image, "n_frames", 1) == 1
    )


class ThumbnailCache:
    """Thumbnails of the images of flat store ``store``, kept in ``store/thumbs/``.

    Parameters
    ----------
    store : Path
        The flat store (``<md5>.tif`` and ``<md5>.jpg`` files); the
        thumbnails go in its ``thumbs/`` folder, created on the first write.
    """

    def __init__(self, store: Path):
        self.store = Path(store)
        self.folder = self.store / "thumbs"

    def path(self, md5: str) -> Path:
        """Where the thumbnail of ``md5`` is cached (``md5`` must be 32 lowercase hex digits)."""
        if not MD5_PATTERN.fullmatch(md5):
            raise ValueError(f"not an md5: {md5!r}")
        return self.folder / f"{md5}.webp"

    def get(self, md5: str) -> bytes:
        """The thumbnail of image ``md5``: from the cache, else made (:meth:`make`) and cached.

        A store that cannot be written (read-only, full) still gets its
        thumbnail, made in memory and not kept.  A cached entry that is not a
        regular file (a symbolic link planted there) is never followed.

        Raises
        ------
        FileNotFoundError
            The store has no ``<md5>.jpg``.
        OSError
            The image is not a regular file, or cannot be read or decoded.
        """
        cached = self.path(md5)
        try:
            return read_regular_file(cached)
        except FileNotFoundError:
            pass
        data = self.make(md5)
        try:
            self.folder.mkdir(exist_ok=True)
            staged = self.folder / f".{md5}.{uuid.uuid4().hex}.part"
            try:
                staged.write_bytes(data)
                os.replace(staged, cached)
            finally:
                staged.unlink(missing_ok=True)
        except OSError:
            pass  # a read-only or full store: serve the thumbnail all the same, uncached
        return data

    def make(self, md5: str) -> bytes:
        """A new thumbnail of image ``md5``: from ``<md5>.tif`` when it :func:`decodes_quickly`, else ``<md5>.jpg``.

        Neither file is read through a symbolic link; a TIFF that is missing,
        a link, or fails to decode is passed over for the JPG.

        Raises
        ------
        FileNotFoundError
            The store has no ``<md5>.jpg`` (and no quick TIFF).
        OSError
            The JPG is not a regular file, or cannot be decoded.
        """
        self.path(md5)  # refuses anything but an md5
        try:
            with open_regular_file(self.store / f"{md5}.tif") as handle, Image.open(handle) as image:
                if decodes_quickly(image):
                    return thumbnail_of(image)
        except (OSError, ValueError, Image.DecompressionBombError):
            pass  # no TIFF (a JPG-only image), a link, or a TIFF PIL cannot read: the JPG is what is shown
        with open_regular_file(self.store / f"{md5}.jpg") as handle, Image.open(handle) as image:
            return thumbnail_of(image)


def open_regular_file(path: Path) -> BinaryIO:
    """``path`` opened for binary reading if it is a regular file itself; a symbolic link (even to one) is refused.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    IsADirectoryError, OSError
        ``path`` is a symbolic link (``ELOOP``), a folder, a device or a pipe.
    """
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0) | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise IsADirectoryError(f"{path} is not a regular file")
        os.set_blocking(descriptor, True)
    except BaseException:
        os.close(descriptor)
        raise
    return os.fdopen(descriptor, "rb")


def read_regular_file(path: Path) -> bytes:
    """The bytes of ``path`` if it is a regular file itself; a symbolic link (even to a regular file) is refused.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    IsADirectoryError, OSError
        ``path`` is a symbolic link (``ELOOP``), a folder, a device or a pipe.
    """
    with open_regular_file(path) as handle:
        return handle.read()
