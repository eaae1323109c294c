"""One loading path for every CLIP checkpoint, and the encoders built on it.

``load_model("openai/clip-vit-base-patch32")`` and ``load_model("var/models/demo")``
go through the same code: ``transformers`` ``CLIPModel`` (or only its text
tower), the tokenizer and the image-preprocessing settings saved beside it.
A checkpoint may carry a ``clipsearch.json`` with video settings (frames per
clip, pooling); hub checkpoints get the defaults.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from clipsearch import telemetry
from clipsearch.checkpoint import (
    PREPROCESS_NAME,
    PreprocessConfig,
    VideoConfig,
    l2_normalize,
    one_line,
    pool_frames,
)
from clipsearch.cpu import fastest_vision_dtype
from clipsearch.devices import cuda_autocast_dtype, resolve_device, vision_batch
from clipsearch.errors import InvalidInput, ModelLoadError
from clipsearch.settings import DEFAULT_CACHE_DIR, TEXT_DTYPES, VISION_DTYPES
from clipsearch.temporal import HEAD_FILE, TemporalPooling

log = logging.getLogger(__name__)

# Views pooled per head call (bounds the patch tokens held at once for long videos).
_VIEWS_PER_POOL = 64
_PREPROCESS_CHUNK = 32
POOLINGS = ("mean", "temporal")
Towers = Literal["both", "text", "vision"]


class ImagePreprocess(PreprocessConfig):
    """CLIP image preprocessing in torch (:class:`~clipsearch.checkpoint.PreprocessConfig`
    says what it does): on batches of frames, on any device."""

    def resize_crop(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 frames (N, H, W, 3) -> float tensor (N, 3, crop_h, crop_w) in [0, 1]."""
        x = torch.as_tensor(frames)
        if x.ndim == 3:
            x = x.unsqueeze(0)
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"expected frames of shape (N, H, W, 3), got {tuple(x.shape)}")
        x = x.permute(0, 3, 1, 2)
        # on the CPU, torch resizes uint8 frames itself (channels-last, vectorised): three
        # times faster than floats, and within one grey level of them
        in_bytes = x.dtype == torch.uint8 and x.device.type == "cpu"
        if not in_bytes:
            x = x.float().div_(255.0)
        h, w = x.shape[-2:]
        new_h, new_w = self.resized(h, w)
        if (new_h, new_w) != (h, w):
            x = F.interpolate(
                x, size=(new_h, new_w), mode="bicubic", align_corners=False, antialias=True
            )
        top, left = self.crop_origin(new_h, new_w)
        x = x[:, :, top : top + self.crop[0], left : left + self.crop[1]]
        return x.float().div_(255.0) if in_bytes else x.clamp_(0.0, 1.0)

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """[0, 1] pixels (N, 3, h, w) -> model input (channel mean/std normalised)."""
        mean = torch.tensor(self.mean, dtype=pixels.dtype, device=pixels.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=pixels.dtype, device=pixels.device).view(1, 3, 1, 1)
        return (pixels - mean) / std

    def __call__(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 frames (N, H, W, 3) -> normalised model input (N, 3, crop_h, crop_w)."""
        if len(frames) <= _PREPROCESS_CHUNK or frames.ndim != 4:
            return self.normalize(self.resize_crop(frames))
        # a few frames at a time: as floats at their decoded size, and through the resize,
        # a long video's frames would take gigabytes
        first = self.normalize(self.resize_crop(frames[:_PREPROCESS_CHUNK]))
        out = first.new_empty((len(frames), *first.shape[1:]))  # same device and dtype
        out[:_PREPROCESS_CHUNK] = first
        for i in range(_PREPROCESS_CHUNK, len(frames), _PREPROCESS_CHUNK):
            out[i : i + _PREPROCESS_CHUNK] = self.normalize(
                self.resize_crop(frames[i : i + _PREPROCESS_CHUNK])
            )
        return out


@dataclass(frozen=True)
class VideoEmbedding:
    """Per-frame vectors (N, D) and the pooled clip vector (D,), all L2-normalised; with
    a window plan also one vector per window (S, D) and the windows' (start_s, end_s)."""

    frames: np.ndarray
    pooled: np.ndarray
    windows: np.ndarray | None = None
    window_times: tuple[tuple[float, float], ...] = ()


def _features(output: Any) -> torch.Tensor:
    # transformers 5 returns an output object (features in pooler_output); 4.x a tensor.
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def vision_forward(
    model: Any, pixels: torch.Tensor, *, tokens: bool = False, layer: int = -1
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Projected image features (N, D), unnormalised, and when ``tokens`` is set the
    patch tokens (N, P, W) of hidden state ``layer`` (0: patch embedding, -1: last
    layer) that a temporal head's motion branch reads."""
    vision = getattr(model, "vision_model", None)
    projection = getattr(model, "visual_projection", None)
    weights = next(iter((vision or model).parameters()), None)
    if weights is not None and pixels.dtype != weights.dtype:  # a bf16 vision tower
        pixels = pixels.to(weights.dtype)
    if vision is None or projection is None:
        if tokens:
            raise ModelLoadError("this model does not expose its vision tower's patch tokens")
        if hasattr(model, "get_image_features"):
            return _features(model.get_image_features(pixel_values=pixels)), None
        return model(pixel_values=pixels).image_embeds, None
    if not tokens:
        return projection(vision(pixel_values=pixels).pooler_output), None
    out = vision(pixel_values=pixels, output_hidden_states=layer != -1)
    hidden = out.last_hidden_state if layer == -1 else out.hidden_states[layer]
    return projection(out.pooler_output), hidden[:, 1:]


def clip_frame_features(
    model: Any,
    temporal: TemporalPooling | None,
    pixels: torch.Tensor,
    vision: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor | None]] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Normalised model input (B, T, 3, h, w) -> unit frame vectors (B, T, D) and, when
    ``temporal`` has a motion branch, the patch tokens it reads (B, T, P, W). ``vision``
    (an int8 export giving both) replaces the torch tower."""
    b, t = pixels.shape[:2]
    wants_tokens = temporal is not None and temporal.needs_tokens
    layer = temporal.motion_layer if temporal is not None else -1
    if vision is not None:
        feats, tokens = vision(pixels.flatten(0, 1))
    else:
        feats, tokens = vision_forward(
            model, pixels.flatten(0, 1), tokens=wants_tokens, layer=layer
        )
    per_frame = F.normalize(feats.float(), dim=-1).view(b, t, -1)
    return per_frame, None if tokens is None else tokens.float().view(b, t, *tokens.shape[1:])


def pool_clips(
    temporal: TemporalPooling | None,
    per_frame: torch.Tensor,
    tokens: torch.Tensor | None,
    slots: torch.Tensor | None = None,
) -> torch.Tensor:
    """Unit clip vectors (B, D): the mean of the frame vectors, or the temporal head."""
    if temporal is None:
        return F.normalize(per_frame.mean(1), dim=-1)
    return temporal(per_frame, slots, tokens=tokens)


def vision_grid(model: Any) -> tuple[int, int]:
    """(patch tokens per frame, token width) of a CLIP vision tower."""
    cfg = getattr(model.config, "vision_config", model.config)
    return (cfg.image_size // cfg.patch_size) ** 2, cfg.hidden_size


class ClipEncoder:
    """A loaded CLIP checkpoint: text and/or vision tower, tokenizer, preprocessing."""

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        preprocess: ImagePreprocess,
        video: VideoConfig,
        model_id: str,
        towers: Towers = "both",
        temporal: TemporalPooling | None = None,
    ):
        if video.pooling not in POOLINGS:
            raise ModelLoadError(f"unknown pooling {video.pooling!r} (known: {POOLINGS})")
        if video.pooling == "temporal" and temporal is None and towers != "text":
            raise ModelLoadError(f"{model_id}: temporal pooling but no {HEAD_FILE}")
        self.model: Any = model.eval()
        self.temporal = temporal.eval() if temporal is not None else None
        self.tokenizer = tokenizer
        self.preprocess = preprocess
        self.video = video
        self.model_id = model_id
        self.towers = towers
        self.text_dtype = "fp32"
        self.vision_dtype = "fp32"
        self._onnx_text: Any = None
        self._onnx_vision: Any = None
        self._autocast: torch.dtype | None = None

    @property
    def device(self) -> torch.device:
        """Where the torch towers run (the int8 exports run on the CPU)."""
        weights = next(iter(self.model.parameters()), None)
        return weights.device if weights is not None else torch.device("cpu")

    def _on_device(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(frames)
        device = self.device
        return x if self._onnx_vision is not None or device.type == "cpu" else x.to(device)

    def _vision_precision(self) -> contextlib.AbstractContextManager[Any]:
        if self._autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self._autocast)

    def vision_to_autocast(self) -> None:
        """Run the vision tower under autocast from now on (a GPU: bf16 where it has it,
        else fp16; the weights stay fp32 and frame vectors come out float32)."""
        self._require("vision")
        if self.device.type != "cuda":
            raise ModelLoadError("autocast runs the vision tower on a GPU; on the CPU use bf16")
        if self.vision_dtype != "fp32":
            raise ModelLoadError(f"autocast starts from fp32 weights, not {self.vision_dtype}")
        self._autocast = cuda_autocast_dtype()
        self.vision_dtype = "autocast-" + ("bf16" if self._autocast == torch.bfloat16 else "fp16")

    def vision_to_bfloat16(self) -> None:
        """Run the vision tower in bf16 from now on (frame vectors still come out float32;
        the temporal head stays fp32). ``clipsearch bench-ingest`` reports what it changes."""
        self._require("vision")
        if self.towers == "vision":
            self.model.to(torch.bfloat16)
        else:
            self.model.vision_model.to(torch.bfloat16)
            self.model.visual_projection.to(torch.bfloat16)
        self.vision_dtype = "bf16"

    def vision_to_int8(self, cache_dir: str | os.PathLike[str], threads: int | None = None) -> None:
        """Run the vision tower as ONNX Runtime dynamic int8 from now on (exported on first
        use into ``cache_dir``; with the patch tokens a motion branch reads)."""
        from clipsearch.vision_onnx import OnnxVisionTower, cached_vision_int8

        self._require("vision")
        if self.vision_dtype != "fp32":
            raise ModelLoadError(
                f"the int8 export starts from fp32 weights, not {self.vision_dtype}"
            )
        layer = self.temporal.motion_layer if self.pools_tokens and self.temporal else None
        path = cached_vision_int8(self.model, self.preprocess.crop, layer, cache_dir)
        self._onnx_vision = OnnxVisionTower(path, threads=threads or torch.get_num_threads())
        self.vision_dtype = "int8"

    def text_to_int8(
        self,
        cache_dir: str | os.PathLike[str],
        threads: int | None = None,
        digest: str | None = None,
    ) -> None:
        """Run the text tower as ONNX Runtime dynamic int8 from now on (exported on first
        use into ``cache_dir``; ``digest``: the tower's, when the caller has it already)."""
        from clipsearch.onnx_session import TextSession
        from clipsearch.text_onnx import cached_int8

        self._require("text")
        if self.text_dtype != "fp32":
            raise ModelLoadError(f"the int8 export starts from fp32 weights, not {self.text_dtype}")
        path = cached_int8(self.model, self.tokenizer, cache_dir, digest)
        self._onnx_text = TextSession(path, threads=threads or torch.get_num_threads())
        self.text_dtype = "int8"

    def text_to_torch(self) -> None:
        """Leave the int8 ONNX path: the torch text tower (still in fp32) runs again."""
        self._onnx_text = None
        if self.text_dtype == "int8":
            self.text_dtype = "fp32"

    def text_to_bfloat16(self) -> None:
        """Run the text tower in bf16 from now on (vectors still come out as float32)."""
        self._require("text")
        if self.text_dtype != "fp32":
            raise ModelLoadError(f"bf16 starts from fp32 weights, not {self.text_dtype}")
        if self.towers == "text":
            self.model.to(torch.bfloat16)
        else:
            self.model.text_model.to(torch.bfloat16)
            self.model.text_projection.to(torch.bfloat16)
        self.text_dtype = "bf16"

    @property
    def dim(self) -> int:
        cfg = self.model.config
        return int(getattr(cfg, "projection_dim", None) or cfg.text_config.projection_dim)

    def _require(self, tower: str) -> None:
        if self.towers not in ("both", tower):
            raise ModelLoadError(f"{self.model_id} was loaded without its {tower} tower")

    @torch.inference_mode()
    def encode_text(
        self, texts: Sequence[str], *, normalize: bool = True, batch_size: int = 256
    ) -> np.ndarray:
        """Text vectors (N, D) float32; rows unit-length when ``normalize``."""
        self._require("text")
        out = []
        onnx = self._onnx_text
        for i in range(0, len(texts), batch_size):
            with telemetry.timed("tokenize"):
                batch = self.tokenizer(
                    list(texts[i : i + batch_size]),
                    padding=True,  # pad to the longest in the batch, never to 77
                    truncation=True,
                    max_length=self.video.max_text_tokens,
                    return_tensors="np" if onnx is not None else "pt",
                )
            ids, mask = batch["input_ids"], batch["attention_mask"]
            if onnx is not None:
                out.append(onnx(ids, mask))
                continue
            ids, mask = ids.to(self.device), mask.to(self.device)
            if hasattr(self.model, "get_text_features"):
                feats = _features(self.model.get_text_features(input_ids=ids, attention_mask=mask))
            else:
                feats = self.model(input_ids=ids, attention_mask=mask).text_embeds
            out.append(feats.float().cpu().numpy())
        vecs = np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)
        return l2_normalize(vecs) if normalize else vecs.astype(np.float32)

    @torch.inference_mode()
    def encode_frames(
        self, frames: np.ndarray, *, normalize: bool = True, batch_size: int = 64
    ) -> np.ndarray:
        """Image vectors (N, D) for uint8 RGB frames (N, H, W, 3)."""
        self._require("vision")
        out = []
        for i in range(0, len(frames), batch_size):
            pixels = self.preprocess(self._on_device(frames[i : i + batch_size]))
            if self._onnx_vision is not None:
                feats, _ = self._onnx_vision(pixels)
            else:
                with self._vision_precision():
                    feats, _ = vision_forward(self.model, pixels)
            out.append(feats.float().cpu().numpy())
        vecs = np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)
        return l2_normalize(vecs) if normalize else vecs.astype(np.float32)

    @property
    def pools_tokens(self) -> bool:
        """Whether pooling reads patch tokens as well as frame vectors (a motion branch)."""
        return self.temporal is not None and self.temporal.needs_tokens

    def embed_video(self, frames: np.ndarray) -> VideoEmbedding:
        """Per-frame vectors plus the pooled clip vector."""
        return self.embed_videos([frames])[0]

    @torch.inference_mode()
    def embed_videos(
        self, clips: Sequence[np.ndarray], *, batch_size: int | None = None
    ) -> list[VideoEmbedding]:
        """Embed several clips' uint8 frames (T_i, H_i, W_i, 3), the vision tower batched
        across clips (``batch_size`` frames a call; default: the device's); frame sizes may
        differ between clips."""
        views = [np.arange(len(c))[None] for c in clips]
        return [
            VideoEmbedding(vecs, pooled[0])
            for vecs, pooled in self._embed_views(clips, views, batch_size)
        ]

    @torch.inference_mode()
    def embed_views(
        self, videos: Sequence[tuple[np.ndarray, np.ndarray]], *, batch_size: int | None = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each video's frames (N, H, W, 3) and views (V, T) (each row: the indices
        of T frames pooled together), its unit frame vectors (N, D) and one pooled unit
        vector per view (V, D). The vision tower sees every frame once."""
        return self._embed_views([f for f, _ in videos], [v for _, v in videos], batch_size)

    def _embed_views(
        self, clips: Sequence[np.ndarray], views: Sequence[np.ndarray], batch_size: int | None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        self._require("vision")
        if not clips:
            return []
        feats, tokens = [], []
        for parts in _frame_batches(clips, batch_size or vision_batch(self.device)):
            pixels = torch.cat([self.preprocess(self._on_device(part)) for part in parts])
            with self._vision_precision():
                chunk_feats, chunk_tokens = clip_frame_features(
                    self.model, self.temporal, pixels[None], self._onnx_vision
                )
            feats.append(chunk_feats[0].float())
            if chunk_tokens is not None:
                tokens.append(chunk_tokens[0].float())
        all_feats = torch.cat(feats)
        all_tokens = torch.cat(tokens) if tokens else None
        out, offset = [], 0
        for clip, view in zip(clips, views, strict=True):
            n = len(clip)
            vecs = all_feats[offset : offset + n]
            tok = None if all_tokens is None else all_tokens[offset : offset + n]
            index = torch.as_tensor(np.asarray(view), dtype=torch.long, device=vecs.device)
            if (
                index.ndim != 2
                or index.shape[1] == 0
                or int(index.min()) < 0
                or int(index.max()) >= n
            ):
                raise InvalidInput(f"views must be (V, T) indices into {n} frames")
            pooled = []
            for j in range(0, len(index), _VIEWS_PER_POOL):
                rows = index[j : j + _VIEWS_PER_POOL]
                pooled.append(
                    pool_clips(self.temporal, vecs[rows], None if tok is None else tok[rows])
                )
            offset += n
            out.append((vecs.cpu().numpy(), torch.cat(pooled).cpu().numpy()))
        return out

    @torch.inference_mode()
    def pool(self, frame_vectors: np.ndarray) -> np.ndarray:
        """The clip vector (D,) from its unit frame vectors (T, D), in frame order.

        A head with a motion branch needs the frames themselves: use ``embed_videos``.
        """
        if self.temporal is None:
            return pool_frames(frame_vectors)
        if self.temporal.needs_tokens:
            raise ModelLoadError(f"{self.model_id}: its temporal head pools from the frames")
        vectors = torch.from_numpy(frame_vectors)[None].float().to(self.device)
        return self.temporal(vectors)[0].cpu().numpy()


def _frame_batches(clips: Sequence[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    """The frames of all ``clips`` (each (N, H, W, 3)), in order, in batches of ``size``
    frames (the last may be smaller), each batch as its parts from one clip apiece."""
    pending: list[np.ndarray] = []
    held = 0
    for clip in clips:
        start = 0
        while start < len(clip):
            part = clip[start : start + size - held]
            pending.append(part)
            held += len(part)
            start += len(part)
            if held == size:
                yield pending
                pending, held = [], 0
    if pending:
        yield pending


def _read_preprocess(name_or_path: str, local: Path | None) -> ImagePreprocess:
    if local is not None:
        return ImagePreprocess.load(local)
    from huggingface_hub import hf_hub_download

    try:
        return ImagePreprocess.from_dict(
            json.loads(Path(hf_hub_download(name_or_path, PREPROCESS_NAME)).read_text())
        )
    except Exception:  # a hub model without a preprocessor file gets CLIP's defaults
        return ImagePreprocess()


def load_model(
    name_or_path: str | os.PathLike[str],
    device: str = "cpu",
    *,
    towers: Towers = "both",
    threads: int | None = None,
    text_dtype: str = "fp32",
    cache_dir: str | os.PathLike[str] = DEFAULT_CACHE_DIR,
    text_threads: int | None = None,
    vision_dtype: str = "fp32",
) -> ClipEncoder:
    """Load a CLIP checkpoint by hub id or local directory.

    ``towers="text"`` loads only the text tower (what the query path needs);
    ``text_dtype="bf16"`` runs that tower in bf16, ``"int8"`` as an ONNX Runtime int8
    export cached under ``cache_dir``, on ``text_threads`` threads (default: ``threads``,
    else torch's), ``"auto"`` as it runs fastest here (:mod:`clipsearch.text_runtime`).
    ``vision_dtype="bf16"`` runs the vision tower in bf16, ``"int8"`` as an ONNX Runtime
    int8 export cached under ``cache_dir``, ``"auto"`` as the CPU runs fastest
    (:func:`clipsearch.cpu.fastest_vision_dtype`) or, on a GPU, under autocast.

    ``device`` is ``cpu``, ``cuda[:N]`` or ``auto`` (:func:`clipsearch.devices.resolve_device`);
    the int8 exports run on the CPU whatever it is, so int8 vision needs the CPU.
    """
    if vision_dtype not in VISION_DTYPES:
        raise InvalidInput(
            f"vision dtype must be one of {', '.join(VISION_DTYPES)}, got {vision_dtype!r}"
        )
    if text_dtype not in TEXT_DTYPES:
        raise InvalidInput(
            f"text dtype must be one of {', '.join(TEXT_DTYPES)}, got {text_dtype!r}"
        )
    from transformers import (
        AutoConfig,
        AutoTokenizer,
        CLIPModel,
        CLIPTextModelWithProjection,
        CLIPVisionModelWithProjection,
    )

    target = resolve_device(device)
    if target.type != "cpu" and vision_dtype == "int8" and towers != "text":
        raise InvalidInput(
            f"vision dtype int8 runs on the CPU (ONNX Runtime), not on {target}: "
            "use --device cpu, or auto/fp32/bf16 on the GPU"
        )
    if threads:
        torch.set_num_threads(threads)
    name = os.fspath(name_or_path)
    local = Path(name).expanduser()
    is_local = local.is_dir()
    if not is_local and (local.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1):
        raise ModelLoadError(f"model {name!r} is not a directory holding a CLIP checkpoint")
    model_cls: Any = {
        "both": CLIPModel,
        "text": CLIPTextModelWithProjection,
        "vision": CLIPVisionModelWithProjection,
    }[towers]
    where = "directory" if is_local else "Hugging Face Hub id"
    try:
        model_type = AutoConfig.from_pretrained(name).model_type
    except Exception as exc:  # transformers/hub raise many types; all mean "cannot load"
        hint = (
            ""
            if is_local
            else " (not a local directory either; offline? use a local copy of the checkpoint)"
        )
        raise ModelLoadError(f"cannot load CLIP {where} {name!r}: {one_line(exc)}{hint}") from None
    if model_type != "clip":
        raise ModelLoadError(f"{name!r} is a {model_type!r} checkpoint, not a CLIP model")
    try:
        model = model_cls.from_pretrained(name)  # on the CPU, where the int8 exports are made
        tokenizer = AutoTokenizer.from_pretrained(name) if towers != "vision" else None
        preprocess = _read_preprocess(name, local if is_local else None)
    except Exception as exc:
        raise ModelLoadError(f"cannot load CLIP {where} {name!r}: {one_line(exc)}") from None
    video = VideoConfig.load(local) if is_local else VideoConfig()
    temporal = None
    if video.pooling == "temporal" and towers != "text":
        try:
            dim = int(model.config.projection_dim)
            temporal = TemporalPooling.load(local, dim, video.temporal or {})
        except (OSError, RuntimeError, TypeError) as exc:
            raise ModelLoadError(
                f"cannot load the temporal head of {name!r}: {one_line(exc)}"
            ) from None
    model_id = (video.model_id or local.resolve().name) if is_local else name
    log.info("loaded %s (%s towers, text %s) on %s", model_id, towers, text_dtype, target)
    encoder = ClipEncoder(model, tokenizer, preprocess, video, model_id, towers, temporal)
    text_digest = None  # hashing the weights takes a while: once per load
    if text_dtype == "auto" and towers != "vision":
        from clipsearch.text_onnx import tower_digest

        text_digest = tower_digest(model)
        text_dtype = _fastest_text_dtype(
            encoder, name, cache_dir, threads, text_threads, text_digest
        )
    if text_dtype == "bf16" and towers != "vision":
        encoder.text_to_bfloat16()
    elif text_dtype == "int8" and towers != "vision":
        encoder.text_to_int8(cache_dir, threads=text_threads or threads, digest=text_digest)
    if target.type != "cpu":
        model.to(target)
        if temporal is not None:
            temporal.to(target)
    if vision_dtype == "auto":
        vision_dtype = "autocast" if target.type == "cuda" else fastest_vision_dtype()
    if vision_dtype == "autocast" and towers != "text":
        encoder.vision_to_autocast()
    elif vision_dtype == "bf16" and towers != "text":
        encoder.vision_to_bfloat16()
    elif vision_dtype == "int8" and towers != "text":
        encoder.vision_to_int8(cache_dir, threads=threads)
    return encoder


def _fastest_text_dtype(
    encoder: ClipEncoder,
    name: str,
    cache_dir: str | os.PathLike[str],
    threads: int | None,
    text_threads: int | None,
    digest: str,
) -> str:
    """What ``text_dtype="auto"`` means for ``encoder`` (its text tower still fp32, with
    weights ``digest``) here: measured once per checkpoint and machine
    (:mod:`clipsearch.text_runtime`)."""
    from clipsearch import text_runtime

    int8_threads = text_threads or threads

    def encoders(dtype: str) -> ClipEncoder:
        if dtype == "fp32":
            return encoder
        if dtype == "int8":
            encoder.text_to_int8(cache_dir, threads=int8_threads, digest=digest)
            return encoder
        return load_model(name, towers="text", text_dtype=dtype, threads=threads)

    try:
        return text_runtime.choose(
            digest,
            cache_dir,
            encoders,
            torch_threads=torch.get_num_threads(),
            text_threads=int8_threads or torch.get_num_threads(),
        )
    finally:
        encoder.text_to_torch()  # back to fp32; the caller applies the choice


def save_model(encoder: ClipEncoder, directory: str | os.PathLike[str]) -> Path:
    """Write a checkpoint that :func:`load_model` (and plain ``transformers``) can read."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    encoder.model.save_pretrained(out)
    if encoder.tokenizer is not None:
        encoder.tokenizer.save_pretrained(out)
    (out / PREPROCESS_NAME).write_text(
        json.dumps(encoder.preprocess.to_processor_dict(), indent=2) + "\n"
    )
    if encoder.temporal is not None:
        encoder.temporal.save(out)
    encoder.video.save(out)
    return out
