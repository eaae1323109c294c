"""Validation by retrieval on groups carved from the training list, after each epoch.

The loss says little about search quality (it falls while direction pairs stay
confused), so the checkpoint kept is the one with the best validation score, held in
memory and restored before saving. The validation clips are whole groups of the
split's training list, never training clips and never test clips: a group shares its
scene and object, so a random clip would be a near-copy of training ones, and the test
list is kept for ``clipsearch eval``. The score is the mean of the class-query mAP, the
direction pairs' mAP and, where the data have ``synth_meta.jsonl``, the free-form mAP.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch

from clipsearch.evaluation.retrieval import evaluate_vectors
from clipsearch.model import ClipEncoder
from training.data import FrameCache, encode_cached

log = logging.getLogger(__name__)


SCORE_PARTS = ("mAP", "pairs_mAP", "freeform_mAP")


def validation_score(metrics: Mapping[str, Any]) -> float:
    """The mean of the figures in :data:`SCORE_PARTS` that the report has."""
    parts = [float(metrics[k]) for k in SCORE_PARTS if metrics.get(k) is not None]
    return sum(parts) / len(parts) if parts else 0.0


class RetrievalValidation(L.Callback):
    """Logs ``val_score`` (and its parts) every ``every`` epochs from epoch ``start`` (and
    after the last epoch) and keeps the best weights."""

    def __init__(
        self,
        encoder: ClipEncoder,
        cache: FrameCache,
        classes: Sequence[str],
        *,
        meta: Sequence[Mapping[str, Any] | None] | None = None,
        every: int = 1,
        start: int = 0,
    ):
        self.encoder = encoder
        self.cache = cache
        self.classes = list(classes)
        self.labels = [c.label for c in cache.clips]
        self.meta = meta
        self.every = max(1, every)
        self.start = max(0, start)
        self.best_score = -1.0
        self.best_epoch = -1
        self.best_state: dict[str, dict[str, torch.Tensor]] | None = None
        self.history: list[dict[str, float]] = []
        self.seconds = 0.0

    def _modules(self) -> dict[str, torch.nn.Module]:
        mods: dict[str, torch.nn.Module] = {"model": self.encoder.model}
        if self.encoder.temporal is not None:
            mods["temporal"] = self.encoder.temporal
        return mods

    def evaluate(self) -> dict[str, Any]:
        mods = self._modules()
        was_training = {k: m.training for k, m in mods.items()}
        for m in mods.values():
            m.eval()
        try:
            vectors = encode_cached(self.encoder, self.cache)
            report = evaluate_vectors(
                self.encoder, self.classes, vectors, self.labels, meta=self.meta
            )
            return report.metrics
        finally:
            for k, m in mods.items():
                m.train(was_training[k])

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch
        last = epoch + 1 >= (trainer.max_epochs or 0) or trainer.should_stop
        if ((epoch + 1) % self.every or epoch < self.start) and not last:
            return
        t0 = time.perf_counter()
        metrics = self.evaluate()
        self.seconds += time.perf_counter() - t0
        value = round(validation_score(metrics), 6)
        entry: dict[str, float] = {"epoch": epoch, "step": trainer.global_step, "val_score": value}
        for key in SCORE_PARTS:
            if metrics.get(key) is not None:
                entry[f"val_{key}"] = round(float(metrics[key]), 6)
        for key, figure in entry.items():
            if key.startswith("val_"):
                pl_module.log(key, figure, on_epoch=True, batch_size=1)
        self.history.append(entry)
        if value > self.best_score:
            self.best_score, self.best_epoch = value, epoch
            self.best_state = {
                k: {n: t.detach().clone() for n, t in m.state_dict().items()}
                for k, m in self._modules().items()
            }

    def restore_best(self) -> None:
        """Load the best epoch's weights back into the encoder's modules."""
        if self.best_state is None:
            return
        for k, m in self._modules().items():
            m.load_state_dict(self.best_state[k])
        log.info("kept epoch %d (validation score %.4f)", self.best_epoch, self.best_score)
