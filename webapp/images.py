"""Uploaded query images: checked, decoded and shrunk before they reach the model."""

from __future__ import annotations

import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError
from werkzeug.datastructures import FileStorage

from clipsearch.errors import InvalidInput

# The model sees ~224 px; a bigger upload is shrunk first.
MAX_SIDE = 1024
# Decompression bombs (tiny files that decode to huge images) are refused.
MAX_PIXELS = 40_000_000


def read_upload(upload: FileStorage | None) -> tuple[np.ndarray, str]:
    """The RGB pixels (H, W, 3) uint8 and the file name of an uploaded image."""
    if upload is None or not upload.filename:
        raise InvalidInput(
            "missing image: send a multipart/form-data field named 'image'", code="missing_image"
        )
    name = upload.filename
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(upload.stream) as img:
                if img.width * img.height > MAX_PIXELS:
                    raise InvalidInput(
                        f"image is {img.width}x{img.height}; at most {MAX_PIXELS} pixels",
                        code="invalid_image",
                    )
                img.thumbnail((MAX_SIDE, MAX_SIDE))
                rgb = np.array(img.convert("RGB"))  # writable: torch warns on read-only ones
    except (
        UnidentifiedImageError,
        OSError,
        ValueError,
        Image.DecompressionBombWarning,
        Image.DecompressionBombError,
    ):
        raise InvalidInput(
            f"{name!r} is not an image that can be read (JPEG, PNG, WebP, ...)",
            code="invalid_image",
        ) from None
    if rgb.size == 0:
        raise InvalidInput(f"{name!r} is an empty image", code="invalid_image")
    return rgb, name
