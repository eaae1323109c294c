"""Write a long 720p H.264 video (a ball crossing a gradient, a new colour every 10 s) for
the bounded-memory benchmark: python benchmarks/memory/make_long_video.py OUT [MINUTES]."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import av
import numpy as np

WIDTH, HEIGHT, FPS = 1280, 720, 30


def write(out: Path, minutes: float) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    n = int(minutes * 60 * FPS)
    luma = np.tile(np.linspace(40, 200, WIDTH, dtype=np.uint8), (HEIGHT, 1))
    chroma = np.full((HEIGHT // 2, WIDTH), 128, dtype=np.uint8)
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "28"}
        for i in range(n):
            y, uv = luma.copy(), chroma.copy()
            phase = (i % (10 * FPS)) / (10 * FPS)
            x0 = int(phase * (WIDTH - 160))
            y0 = int(abs(np.sin(phase * 6 * np.pi)) * (HEIGHT - 160))
            y[y0 : y0 + 160, x0 : x0 + 160] = 235
            u = 60 + 40 * ((i // (10 * FPS)) % 4)
            uv[y0 // 2 : y0 // 2 + 80, x0 // 2 : x0 // 2 + 80] = u  # U rows
            picture = np.concatenate([y, uv]).reshape(HEIGHT * 3 // 2, WIDTH)
            frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


if __name__ == "__main__":
    target = Path(sys.argv[1])
    started = time.perf_counter()
    write(target, float(sys.argv[2]) if len(sys.argv) > 2 else 20.0)
    seconds = time.perf_counter() - started
    print(f"{target}: {target.stat().st_size / 1e6:.1f} MB in {seconds:.0f} s")
