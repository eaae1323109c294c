# clipsearch on a CPU: two images from one file.
#
#   docker build --target serve -t clipsearch-serve .   # the web app: the serve extra, no torch
#   docker build --target ingest -t clipsearch .        # the ingest job and every other command
#
# The web app serves a model's ONNX export (`clipsearch export MODEL` writes MODEL/onnx; `make
# model` does it for the demo model):
#
#   docker run --rm -p 8000:8000 -v $PWD/var/models:/models:ro \
#     -e CLIPSEARCH_MODEL=/models/demo -e CLIPSEARCH_QDRANT_URL=http://qdrant:6333 clipsearch-serve
#
# Build arguments: BASE, the image both start from (default the official Python image;
# `make container-test` builds on a Debian bookworm of its own, made with debootstrap);
# TORCH_PIP_ARGS, where pip finds torch's CPU wheel; PIP_CERT, a CA bundle for pip (with
# podman, mount it and the pip configuration with `podman build -v ...:ro`, as
# deploy/podman/container-test.sh does: they never enter an image).
# Each image's build stage installs into /opt/venv; its runtime stage copies only that venv
# and runs as an unprivileged user.

ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS runtime
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin clipsearch \
    && mkdir -p /app/var/store /app/var/media /app/var/cache \
    && chown -R clipsearch:clipsearch /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CLIPSEARCH_BIND=0.0.0.0:8000 \
    CLIPSEARCH_MEDIA_DIR=/app/var/media \
    CLIPSEARCH_CACHE_DIR=/app/var/cache
WORKDIR /app

FROM runtime AS source
COPY pyproject.toml README.md /src/
COPY clipsearch /src/clipsearch
COPY ingest /src/ingest
COPY webapp /src/webapp
COPY training /src/training

FROM source AS serve-build
ARG PIP_CERT
RUN python3 -m venv /opt/venv && pip install '/src[serve]'

FROM source AS ingest-build
ARG PIP_CERT
ARG TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
# the CPU wheel first, so nothing pulls the CUDA build of torch
RUN python3 -m venv /opt/venv \
    && pip install ${TORCH_PIP_ARGS} torch==2.13.0 \
    && pip install '/src[serve,ingest,train,bench]'

# The web app: `serve` sizes workers for a Qdrant server URL (min(4, CPUs) x 2 threads).
FROM runtime AS serve
COPY --from=serve-build /opt/venv /opt/venv
USER clipsearch
EXPOSE 8000
CMD ["gunicorn", "-c", "python:webapp.gunicorn_conf", "webapp:create_app()"]

# The ingest job (and watch, train, eval, export ...): the last stage, so a plain build
# makes it.
FROM runtime AS ingest
COPY --from=ingest-build /opt/venv /opt/venv
USER clipsearch
CMD ["clipsearch", "--help"]
