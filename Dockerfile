# clipsearch on a CPU: the web app (Gunicorn), the ingest job and every CLI command.
#
#   docker build -t clipsearch .
#   docker run --rm -p 8000:8000 -v $PWD/var/models:/models:ro \
#     -e CLIPSEARCH_MODEL=/models/demo -e CLIPSEARCH_QDRANT_URL=http://qdrant:6333 clipsearch
#
# Two stages: the builder installs the CPU wheel of torch and the project into a venv;
# the runtime image copies only that venv and runs as an unprivileged user.

FROM python:3.11-slim-bookworm AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# the CPU wheel first, so nothing pulls the CUDA build of torch
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
WORKDIR /src
COPY pyproject.toml README.md ./
COPY clipsearch ./clipsearch
COPY ingest ./ingest
COPY webapp ./webapp
COPY training ./training
RUN pip install .

FROM python:3.11-slim-bookworm AS runtime
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin clipsearch
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    CLIPSEARCH_BIND=0.0.0.0:8000 \
    CLIPSEARCH_MEDIA_DIR=/app/var/media \
    CLIPSEARCH_CACHE_DIR=/app/var/cache
WORKDIR /app
RUN mkdir -p /app/var/media /app/var/cache && chown -R clipsearch:clipsearch /app
USER clipsearch
EXPOSE 8000
# `serve` sizes workers for a Qdrant server URL (min(4, CPUs) x 2 threads)
CMD ["gunicorn", "-c", "python:webapp.gunicorn_conf", "webapp:create_app()"]
