"""A minimal re-implementation of the reference design, to load-test side by side.

What the reference system does, and only that: FastAPI served by Uvicorn with one
worker; at start-up it loads a CLIP checkpoint with ``transformers`` and builds a FAISS
exact inner-product index over 13,320 vectors (UCF101's clip count; here seeded random
unit vectors of the model's size, since only the search cost matters); every request
tokenizes its query padded to 77 tokens, runs the eager torch text tower
(``get_text_features``) and searches the index. No batching, no cache, no threads set.

    CLIPSEARCH_MODEL=DIR uvicorn benchmarks.baseline.app:app --workers 1 --port 8766

The answers are not meant to be relevant (the vectors are random); it answers the same
``GET /api/search?q=...&k=...`` the load test sends to clipsearch.
"""

from __future__ import annotations

import os
from typing import Any

import faiss
import numpy as np
import torch
from fastapi import FastAPI, HTTPException, Query
from transformers import CLIPModel, CLIPTokenizer

N_VECTORS = 13_320

model_dir = os.environ.get("CLIPSEARCH_MODEL", "")
if not model_dir:
    raise SystemExit("set CLIPSEARCH_MODEL to a CLIP checkpoint directory")
tokenizer = CLIPTokenizer.from_pretrained(model_dir)
model = CLIPModel.from_pretrained(model_dir).eval()
dim = int(model.config.projection_dim)
rng = np.random.default_rng(0)
vectors = rng.standard_normal((N_VECTORS, dim)).astype(np.float32)
vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
index = faiss.IndexFlatIP(dim)
index.add(vectors)
max_length = int(getattr(model.config.text_config, "max_position_embeddings", 77))

app = FastAPI(title="seed-style baseline")


def _features(output: Any) -> torch.Tensor:
    return output if isinstance(output, torch.Tensor) else output.pooler_output


@app.get("/api/health")
def health() -> dict[str, Any]:
    return {"status": "ok", "model": model_dir, "vectors": index.ntotal}


@app.get("/api/search")
def search(q: str = Query(...), k: int = Query(10, ge=1, le=100)) -> dict[str, Any]:
    if not q.strip():
        raise HTTPException(status_code=400, detail="query is empty")
    batch = tokenizer(
        [q], padding="max_length", truncation=True, max_length=max_length, return_tensors="pt"
    )
    with torch.no_grad():
        feats = _features(model.get_text_features(**batch))
    vec = torch.nn.functional.normalize(feats, dim=-1).numpy().astype(np.float32)
    scores, ids = index.search(vec, k)
    return {
        "query": q,
        "results": [
            {"id": str(int(i)), "score": float(s)} for i, s in zip(ids[0], scores[0], strict=True)
        ],
    }
