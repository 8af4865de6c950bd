# OWP Pool: one process (GitHub App + scheduler + dashboard), SQLite on the /data volume.
#   docker build -t owp-pool .    then see docker-compose.yml and docs/operations.md

# --- stage 1: the dashboard front end (TypeScript -> owp_bot/web/static), typed from the committed API spec
FROM node:20-slim AS frontends
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY owp_bot/protocol/openapi.json /src/owp_bot/protocol/openapi.json
COPY web/ ./
RUN npm run build

# --- stage 2: the Python runtime
FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    OWP_HOST=0.0.0.0 \
    OWP_PORT=8787 \
    OWP_DB_PATH=/data/pool.db
RUN groupadd --system --gid 10001 owp \
    && useradd --system --uid 10001 --gid owp --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin owp \
    && mkdir -p /data \
    && chown owp:owp /data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY owp_bot/ owp_bot/
COPY --from=frontends /src/owp_bot/web/static/ owp_bot/web/static/
RUN pip install --no-cache-dir . && rm -rf /app/owp_bot
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8787
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('OWP_PORT', '8787'), timeout=4)"]
ENTRYPOINT ["owp"]
CMD ["serve"]
