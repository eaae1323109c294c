"""What a checkpoint says beside its weights, read without torch: the video settings
(``clipsearch.json``) and the image preprocessing (``preprocessor_config.json``).

Both the torch towers (:mod:`clipsearch.model`) and the ONNX export that serves queries
without torch (:mod:`clipsearch.onnx_model`) read them through here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Self, TypeVar

import numpy as np

from clipsearch.errors import ModelLoadError

VIDEO_CONFIG_NAME = "clipsearch.json"
PREPROCESS_NAME = "preprocessor_config.json"

# OpenAI CLIP's preprocessing constants, used when a checkpoint saves none.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

T = TypeVar("T")


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (library messages often span several)."""
    return " ".join(str(exc).split())


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norm, 1e-12)).astype(np.float32)


def pool_frames(frame_vectors: np.ndarray) -> np.ndarray:
    """Mean pooling: the clip vector from normalised per-frame vectors (T, D)."""
    return l2_normalize(frame_vectors.mean(axis=0, keepdims=True))[0]


def _load(path: Path, default: Callable[[], T], parse: Callable[[Any], T]) -> T:
    """``parse`` of the JSON file at ``path``; ``default()`` when there is none."""
    if not path.exists():
        return default()
    try:
        return parse(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise ModelLoadError(f"{path} is unreadable: {one_line(exc)}") from None


@dataclass(frozen=True)
class VideoConfig:
    """How a checkpoint turns a clip into vectors; saved as ``clipsearch.json``."""

    num_frames: int = 8
    pooling: str = "mean"  # "mean" or "temporal" (a head saved beside the weights)
    max_text_tokens: int = 77
    model_id: str | None = None
    temporal: dict[str, int] | None = None  # the temporal head's shape
    # "Class:colour" combinations withheld from training (evaluated as heldout_mAP)
    heldout: list[str] | None = None
    # search scores below this mean "no good match" (set by ``clipsearch calibrate``)
    min_score: float | None = None

    @classmethod
    def load(cls, directory: Path) -> VideoConfig:
        return _load(
            directory / VIDEO_CONFIG_NAME,
            cls,
            lambda data: cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__}),
        )

    def save(self, directory: Path) -> None:
        (directory / VIDEO_CONFIG_NAME).write_text(json.dumps(asdict(self), indent=2) + "\n")


@dataclass(frozen=True)
class PreprocessConfig:
    """CLIP image preprocessing: resize, centre crop, normalise.

    The resize is OpenAI CLIP's "shortest edge to N" (then a centre crop), or, when
    ``squash`` is set, straight to the crop size so nothing at the frame's edges is
    cut off (``{"height", "width"}`` sizes in ``preprocessor_config.json``).
    """

    shortest_edge: int = 224
    crop: tuple[int, int] = (224, 224)
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD
    squash: bool = False

    @classmethod
    def from_dict(cls, cfg: dict[str, Any]) -> Self:
        size = cfg.get("size") or {}
        if isinstance(size, int):
            size = {"shortest_edge": size}
        crop = cfg.get("crop_size") or {}
        if isinstance(crop, int):
            crop = {"height": crop, "width": crop}
        squash = "shortest_edge" not in size and "height" in size and "width" in size
        edge = int(size.get("shortest_edge") or size.get("height") or 224)
        if squash:
            crop = {"height": size["height"], "width": size["width"]}
        return cls(
            shortest_edge=edge,
            crop=(int(crop.get("height", edge)), int(crop.get("width", edge))),
            mean=tuple(cfg.get("image_mean") or CLIP_MEAN),
            std=tuple(cfg.get("image_std") or CLIP_STD),
            squash=squash,
        )

    @classmethod
    def load(cls, directory: Path) -> Self:
        """The settings saved in ``directory`` (CLIP's defaults when it has none)."""
        return _load(directory / PREPROCESS_NAME, cls, cls.from_dict)

    def to_processor_dict(self) -> dict[str, Any]:
        """The ``preprocessor_config.json`` content a CLIP image processor reads."""
        return {
            "image_processor_type": "CLIPImageProcessor",
            "do_resize": True,
            "size": (
                {"height": self.crop[0], "width": self.crop[1]}
                if self.squash
                else {"shortest_edge": self.shortest_edge}
            ),
            "resample": 3,
            "do_center_crop": True,
            "crop_size": {"height": self.crop[0], "width": self.crop[1]},
            "do_rescale": True,
            "rescale_factor": 1 / 255,
            "do_normalize": True,
            "image_mean": list(self.mean),
            "image_std": list(self.std),
            "do_convert_rgb": True,
        }

    def resized(self, height: int, width: int) -> tuple[int, int]:
        """The (height, width) a frame of ``height`` x ``width`` is resized to."""
        if self.squash:
            return self.crop
        scale = self.shortest_edge / min(height, width)
        return max(self.crop[0], round(height * scale)), max(self.crop[1], round(width * scale))

    def crop_origin(self, height: int, width: int) -> tuple[int, int]:
        """(top, left) of the centre crop in a resized frame of ``height`` x ``width``."""
        return (height - self.crop[0]) // 2, (width - self.crop[1]) // 2
