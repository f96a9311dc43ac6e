FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 AUTHENTICATOR_DATA_DIR=/data
RUN useradd --create-home --uid 10001 app && mkdir /data && chown app /data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY authenticator ./authenticator
COPY api ./api
COPY training ./training
COPY weights ./weights
RUN pip install --no-cache-dir .
USER app
EXPOSE 8000
CMD ["authenticator", "--help"]
