"""Uploaded files: checked to be a reasonable image before anything decodes them.

An upload is only ever *read as an image* (PIL, from memory); nothing uploaded is unpickled,
saved, or passed to ``torch.load``. The checks, in order, each ending in one clear line
(:class:`UploadError`, HTTP 400/413) while the server keeps serving:

1. size: more than ``max_bytes`` -> refused while still streaming (the rest is never read);
2. zero bytes;
3. PIL recognises the header and the format is one of :data:`FORMATS`;
4. width x height <= ``max_pixels``, checked on the *header*, before the pixels are decoded
   (a 100-megapixel PNG of a few kB is a decompression bomb: decoding it would take 100+ MB);
   PIL's own ``DecompressionBombError`` guard stays on underneath;
5. the pixels decode (a truncated file says so).
"""
from __future__ import annotations

import io
import warnings
from typing import Any

from ..i18n import t
from . import messages  # noqa: F401 - registers the messages below

FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF", "MPO")
MAX_BYTES = 20_000_000
MAX_PIXELS = 40_000_000


class UploadError(Exception):
    """A refused upload; ``status`` is the HTTP code, ``str(exc)`` the one-line reason."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def human_size(n: float) -> str:
    """``20 MB``, ``10 kB``, ``512 bytes``."""
    for unit, size in (("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} bytes"


def check_size(n: int, max_bytes: int = MAX_BYTES, lang: str | None = None) -> None:
    if n > max_bytes:
        raise UploadError(t("err_too_big", lang, size=human_size(n), limit=human_size(max_bytes)), status=413)


def check_image(data: bytes, name: str = "upload", max_pixels: int = MAX_PIXELS, lang: str | None = None) -> Any:
    """Checks 2-4 on the header alone (cheap: nothing decoded); returns the lazy PIL image."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise UploadError(t("err_empty", lang))
    try:
        with warnings.catch_warnings():  # PIL warns of a bomb on the header; the size check below answers it
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))  # reads the header only
    except UnidentifiedImageError:
        raise UploadError(t("err_not_image", lang, name=name)) from None
    except Image.DecompressionBombError:  # PIL's guard fires on the header past 2 x MAX_IMAGE_PIXELS
        raise UploadError(t("err_bomb", lang, name=name, limit=max_pixels / 1e6), status=413) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise UploadError(t("err_corrupt", lang, name=name, why=_why(exc))) from None
    if im.format not in FORMATS:
        raise UploadError(t("err_format", lang, name=name, fmt=im.format or "?"))
    w, h = im.size
    if w * h > max_pixels:
        raise UploadError(t("err_pixels", lang, name=name, mp=w * h / 1e6, w=w, h=h, limit=max_pixels / 1e6), status=413)
    return im


def decode_image(data: bytes, name: str = "upload", max_pixels: int = MAX_PIXELS, lang: str | None = None) -> Any:
    """Bytes -> an RGB/L PIL image (EXIF orientation applied), or :class:`UploadError`.

    The server calls it only once a model is free (on the model's worker thread), so 50 queued
    requests hold 50 compressed files, not 50 decoded photos."""
    from PIL import Image, ImageOps

    im = check_image(data, name, max_pixels, lang)
    w, h = im.size
    try:
        im.load()
        if getattr(im, "is_animated", False):
            im.seek(0)
        im = ImageOps.exif_transpose(im)
    except Image.DecompressionBombError:
        raise UploadError(t("err_pixels", lang, name=name, mp=w * h / 1e6, w=w, h=h, limit=max_pixels / 1e6), status=413) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise UploadError(t("err_corrupt", lang, name=name, why=_why(exc))) from None
    return im


def _why(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:120] or type(exc).__name__
