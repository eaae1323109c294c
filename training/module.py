"""The LightningModule that trains a CLIP (a ``transformers`` ``CLIPModel``) on video clips.

The network itself is the plain ``CLIPModel``; this module only adds the video
pooling, the loss and the optimiser, so the trained weights save and load as
an ordinary CLIP checkpoint.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from clipsearch.model import ImagePreprocess, clip_frame_features, pool_clips
from clipsearch.temporal import TemporalPooling

AUX_SCALE = 16.0  # logit scale of the auxiliary cosine classifier


def multi_positive_nce(
    logits: torch.Tensor, positives: torch.Tensor, undecided: torch.Tensor | None = None
) -> torch.Tensor:
    """Symmetric InfoNCE where a clip may have several positive texts and a text several
    positive clips.

    ``logits`` (B, N) clips x texts (the batch's own texts, then extra hard-negative
    texts), ``positives`` (B, N) bool. Clip-to-text terms count only for clips some text
    describes (a clip no text describes, a scene with its object erased, is only a
    negative for every text); text-to-clip terms only for texts that describe some clip.
    ``undecided`` (B, N) bool marks pairs that are neither positive nor negative (the
    clip's size is between two words, say): they drop out of both softmaxes.
    """
    if undecided is not None:
        logits = logits.masked_fill(undecided & ~positives, -1e4)
    pos = positives.float()
    described = pos.sum(1) > 0
    pos_v = pos[described]
    v2t = -(pos_v / pos_v.sum(1, keepdim=True) * logits[described].log_softmax(1)).sum(1).mean()
    pos_t = pos.t()
    has = pos_t.sum(1) > 0
    t2v_rows = -(pos_t[has] / pos_t[has].sum(1, keepdim=True) * logits.t()[has].log_softmax(1))
    return (v2t + t2v_rows.sum(1).mean()) / 2


class ClipVideoModule(L.LightningModule):
    def __init__(
        self,
        model: Any,
        preprocess: ImagePreprocess,
        *,
        lr: float,
        weight_decay: float,
        warmup_steps: int,
        class_prompts: dict[str, torch.Tensor] | None = None,
        class_loss_weight: float = 1.0,
        class_templates: int = 0,
        temporal: TemporalPooling | None = None,
        head_lr: float | None = None,
        head_start: float = 0.0,
        n_classes: int = 0,
        aux_loss_weight: float = 0.0,
        attribute_heads: dict[str, int] | None = None,
        attribute_loss_weight: float = 0.0,
        reverse_of: list[int] | None = None,
        tower_dtype: torch.dtype | None = None,
    ):
        super().__init__()
        # the towers run under autocast to this dtype (None: as their weights are)
        self.tower_dtype = tower_dtype
        self.temporal = temporal
        # class index -> the class that is its time reversal (-1: none); with a temporal
        # head, every such clip also trains reversed, as a clip of that other class
        self.reverse_of = (
            torch.tensor(reverse_of)
            if reverse_of and temporal is not None and any(r >= 0 for r in reverse_of)
            else None
        )
        self.head_lr = lr if head_lr is None else head_lr
        self.head_start = head_start
        # training-only cosine classifier on clip vectors (not saved with the model): a class
        # signal for the vision tower from step one, before the text tower means anything
        self.aux_loss_weight = aux_loss_weight
        self.class_head = (
            nn.Parameter(torch.randn(n_classes, model.config.projection_dim) * 0.02)
            if n_classes and aux_loss_weight > 0
            else None
        )
        # training-only cosine classifiers of attributes (colour, size) on clip vectors: the
        # clip vector must keep what the texts name besides the class
        self.attribute_loss_weight = attribute_loss_weight
        self.attribute_heads = nn.ParameterDict(
            {
                name: nn.Parameter(torch.randn(n, model.config.projection_dim) * 0.02)
                for name, n in (attribute_heads or {}).items()
            }
            if attribute_loss_weight > 0
            else {}
        )
        # tokenised "template x class" prompts, (n_templates * n_classes, L), class-major
        self.class_prompts = class_prompts
        self.class_loss_weight = class_loss_weight
        # templates per class in a step's class vectors, drawn at random (0: all)
        self.class_templates = class_templates
        self.model = model
        self.preprocess = preprocess
        self.lr = lr
        self.weight_decay = weight_decay
        self.warmup_steps = warmup_steps

    def towers(self) -> contextlib.AbstractContextManager[Any]:
        """Autocast for a tower's forward (and so its backward) to ``tower_dtype``."""
        if self.tower_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.tower_dtype)

    @staticmethod
    def jitter(pixels: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """Each clip's zoom/shift/stretch (``theta`` (B, 2, 3), drawn by the dataset) on
        every frame: (B, T, 3, h, w) floats."""
        t = pixels.shape[1]
        theta = theta.float().repeat_interleave(t, dim=0).to(pixels.device)
        flat = pixels.flatten(0, 1)
        grid = F.affine_grid(theta, list(flat.shape), align_corners=False)
        out = F.grid_sample(flat, grid, padding_mode="border", align_corners=False)
        return out.view_as(pixels)

    def encode_clips(self, frames: torch.Tensor, theta: torch.Tensor | None = None) -> torch.Tensor:
        """uint8 (B, T, 3, h, w) -> unit clip vectors (B, D), pooled from unit frame vectors."""
        return self.encode_clips_both_ways(frames, theta, None)[0]

    def encode_clips_both_ways(
        self, frames: torch.Tensor, theta: torch.Tensor | None, reverse: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Clip vectors (B, D), and those of the clips picked by the bool mask ``reverse``
        played backwards (the vision tower runs once; only the head runs again)."""
        pixels = frames.float().div_(255.0)
        if theta is not None:
            pixels = self.jitter(pixels, theta)
        pixels = self.preprocess.normalize(pixels.flatten(0, 1)).view_as(pixels)
        with self.towers():
            per_frame, grid = clip_frame_features(self.model, self.temporal, pixels)
        video = pool_clips(self.temporal, per_frame, grid)
        if self.temporal is None or reverse is None or not bool(reverse.any()):
            return video, None
        back_grid = None if grid is None else grid[reverse].flip(1)
        backwards = self.temporal(per_frame[reverse].flip(1), tokens=back_grid)
        return video, backwards

    def encode_texts(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        with self.towers():
            out = self.model.get_text_features(input_ids=input_ids, attention_mask=attention_mask)
        feats = out if isinstance(out, torch.Tensor) else out.pooler_output
        return F.normalize(feats.float(), dim=-1)

    def class_vectors(self) -> torch.Tensor:
        """One unit vector per class: the mean of its prompt embeddings over templates
        (``class_templates`` of them drawn afresh for each call, or all of them)."""
        assert self.class_prompts is not None
        ids, mask = self.class_prompts["input_ids"], self.class_prompts["attention_mask"]
        n_classes = int(self.class_prompts["n_classes"])
        per = len(ids) // n_classes
        k = self.class_templates if 0 < self.class_templates < per else per
        if k < per:
            drawn = torch.rand(n_classes, per).argsort(dim=1)[:, :k]
            rows = (drawn + torch.arange(n_classes)[:, None] * per).flatten()
            ids, mask = ids[rows], mask[rows]
        vecs = self.encode_texts(ids.to(self.device), mask.to(self.device))
        return F.normalize(vecs.view(n_classes, k, vecs.shape[-1]).mean(1), dim=-1)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        labels = batch["labels"]
        reverse = None
        if self.reverse_of is not None:
            partner = self.reverse_of.to(labels.device)[labels.clamp(min=0)]
            reverse = (labels >= 0) & (partner >= 0)
        video, backwards = self.encode_clips_both_ways(batch["frames"], batch.get("theta"), reverse)
        text = self.encode_texts(batch["input_ids"], batch["attention_mask"])
        scale = self.model.logit_scale.clamp(max=math.log(100.0)).exp()
        logits = scale * video @ text.t()
        loss = multi_positive_nce(
            logits,
            batch["positives"].to(logits.device),
            batch["undecided"].to(logits.device),
        )
        self.log("nce_loss", loss, batch_size=len(video))
        known = labels >= 0  # clips with a class (loose files have none)
        has_known = bool(known.any())
        labelled, targets = video[known], labels[known]
        if backwards is not None and reverse is not None:
            labelled = torch.cat([labelled, backwards])
            targets = torch.cat([targets, partner[reverse]])
        if self.class_prompts is not None and has_known:
            classes = self.class_vectors()
            class_loss = F.cross_entropy(scale * labelled @ classes.t(), targets)
            self.log("class_loss", class_loss, batch_size=len(video))
            loss = loss + self.class_loss_weight * class_loss
        if self.class_head is not None and has_known:
            weights = F.normalize(self.class_head, dim=-1)
            aux = F.cross_entropy(AUX_SCALE * labelled @ weights.t(), targets)
            self.log("aux_loss", aux, batch_size=len(video))
            loss = loss + self.aux_loss_weight * aux
        for name, head in self.attribute_heads.items():
            target = batch[f"attr_{name}"].to(video.device)
            known_attr = target >= 0
            if bool(known_attr.any()):
                weights = F.normalize(head, dim=-1)
                logits_attr = AUX_SCALE * video[known_attr] @ weights.t()
                attr_loss = F.cross_entropy(logits_attr, target[known_attr])
                self.log(f"{name}_loss", attr_loss, batch_size=len(video))
                loss = loss + self.attribute_loss_weight * attr_loss
        self.log("train_loss", loss, prog_bar=True, batch_size=len(video))
        self.log("logit_scale", scale, batch_size=len(video))
        return loss

    def configure_optimizers(self) -> Any:
        # (belongs to the temporal head, decays) -> parameters
        groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
        for name, param in self.named_parameters():
            if not param.requires_grad:
                continue
            is_gain = param.ndim < 2 or "embedding" in name or "logit_scale" in name
            groups.setdefault((name.startswith("temporal."), not is_gain), []).append(param)
        keys = list(groups)
        optimizer = torch.optim.AdamW(
            [
                {
                    "params": groups[key],
                    "lr": self.head_lr if key[0] else self.lr,
                    "weight_decay": self.weight_decay if key[1] else 0.0,
                }
                for key in keys
            ],
            betas=(0.9, 0.98),
            eps=1e-6,
            fused=True,  # one kernel for all parameters instead of a loop over them
        )
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = min(self.warmup_steps, total // 4)
        # The head waits until clip vectors differ: early on they are nearly identical,
        # and any shift the head learns would swamp their differences (collapse).
        head_start = int(total * self.head_start)

        def schedule(step: int) -> float:
            if step < warmup:
                return (step + 1) / max(1, warmup)
            progress = (step - warmup) / max(1, total - warmup)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

        def head_schedule(step: int) -> float:
            return 0.0 if step < head_start else schedule(step)

        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, [head_schedule if is_head else schedule for is_head, _ in keys]
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
