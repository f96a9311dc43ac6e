# The authenticity service: HTTP API + shipped model, no torch. SQLite in /data by default;
# set AUTHENTICATOR_DATABASE_URL=postgresql+psycopg://user@host/db for PostgreSQL.
#   docker build -t authenticator . && docker run -p 8000:8000 -v authdata:/data authenticator
#   docker exec <container> authenticator keys create --role admin --name ops
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY authenticator ./authenticator
COPY api ./api
COPY training ./training
# Base install only (no extras): onnxruntime serves the model, torch is never installed.
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install . \
 && /opt/venv/bin/python -c "import importlib.util as u, sys; assert u.find_spec('torch') is None, 'torch in image'"

FROM python:3.11-slim
# MALLOC_ARENA_MAX: glibc gives every thread that allocates its own malloc arena; the vision
# pool's threads would otherwise keep ~15-30 MB of them resident (docs/vision-bench.md).
ENV PATH=/opt/venv/bin:$PATH \
    MALLOC_ARENA_MAX=2 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    AUTHENTICATOR_DATA_DIR=/data \
    AUTHENTICATOR_WEIGHTS_DIR=/app/weights
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin app \
 && mkdir -p /data /app \
 && chown app:app /data
COPY --from=build /opt/venv /opt/venv
COPY weights /app/weights
WORKDIR /app
USER app
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]
CMD ["authenticator", "serve", "--host", "0.0.0.0", "--port", "8000"]
