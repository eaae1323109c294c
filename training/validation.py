"""Validation by retrieval: text -> clip mAP on the split's test clips after each epoch.

The loss says little about search quality (it falls while direction pairs stay
confused), so the checkpoint kept is the one with the best mAP, held in memory
and restored before saving.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch

from clipsearch.evaluate import evaluate_vectors
from clipsearch.model import ClipEncoder
from training.data import FrameCache, encode_cached

log = logging.getLogger(__name__)


class RetrievalValidation(L.Callback):
    """Logs ``val_mAP`` every ``every`` epochs and remembers the best weights."""

    def __init__(
        self,
        encoder: ClipEncoder,
        cache: FrameCache,
        classes: Sequence[str],
        *,
        every: int = 1,
    ):
        self.encoder = encoder
        self.cache = cache
        self.classes = list(classes)
        self.labels = [c.label for c in cache.clips]
        self.every = max(1, every)
        self.best_map = -1.0
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
            return evaluate_vectors(self.encoder, self.classes, vectors, self.labels).metrics
        finally:
            for k, m in mods.items():
                m.train(was_training[k])

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch
        last = epoch + 1 >= (trainer.max_epochs or 0) or trainer.should_stop
        if (epoch + 1) % self.every and not last:
            return
        t0 = time.perf_counter()
        metrics = self.evaluate()
        self.seconds += time.perf_counter() - t0
        value = round(float(metrics["mAP"]), 6)
        pl_module.log("val_mAP", value, on_epoch=True, batch_size=1)
        self.history.append({"epoch": epoch, "step": trainer.global_step, "val_mAP": value})
        if value > self.best_map:
            self.best_map, self.best_epoch = value, epoch
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
        log.info("kept epoch %d (val mAP %.4f)", self.best_epoch, self.best_map)
