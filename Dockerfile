# ZenML Autopilot: the daemon image (also used for `autopilot bootstrap` and the demo producer).
#
#   docker build -t zenml-autopilot:latest .      (or: docker compose build)
#
# Dependencies come from requirements.lock (exact pins, regenerate with scripts/lock-requirements.sh);
# the project itself is installed on top with --no-deps so nothing is resolved at build time.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1

# Non-root runtime user. The uid is fixed so volume ownership is predictable across rebuilds.
ARG APP_UID=10001
RUN groupadd --system --gid "${APP_UID}" autopilot \
    && useradd --system --uid "${APP_UID}" --gid autopilot \
        --create-home --home-dir /home/autopilot --shell /usr/sbin/nologin autopilot

WORKDIR /app

# Dependencies first: this layer is rebuilt only when the lock file changes.
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock

# The project. Installed in editable mode so the only copy of `service`/`pipelines` is /app,
# the ZenML source root created by `zenml init` below: the daemon's spawned workers, the
# producer and ZenML's source resolution all agree on it (a plain `pip install .` would put a
# second copy in site-packages, and ZenML would then treat site-packages as the source root).
# --no-build-isolation builds with the pinned setuptools from the lock (no download).
COPY pyproject.toml README.md ./
COPY service ./service
COPY pipelines ./pipelines
RUN pip install --no-cache-dir --no-deps --no-build-isolation -e . \
    && python -m compileall -q service pipelines \
    && autopilot --help > /dev/null

# `zenml init` marks /app as the repository / source root. It runs against a throw-away config
# so that no local SQLite store is baked into the image, and the stack/project ids it records
# (those of that throw-away store) are dropped: at run time ZenML then uses the server's active
# stack/project and rewrites .zen/config.yaml, so .zen must belong to the runtime user.
RUN ZENML_CONFIG_PATH=/tmp/zenml-build ZENML_ANALYTICS_OPT_IN=false \
        ZENML_LOGGING_VERBOSITY=WARN zenml init \
    && rm -rf /tmp/zenml-build .zen/config.yaml \
    && chown -R autopilot:autopilot .zen

# Directories the runtime user writes. A fresh named volume mounted on one of them copies the
# directory's owner and mode from the image, so the compose volumes come up writable by uid
# 10001 without any chown at run time:
#   /var/lib/autopilot          ledger + per-run logs (AUTOPILOT_STATE_DIR)
#   /run/autopilot-secrets      the API key written by `autopilot bootstrap` (mode 0700 dir)
#   /var/lib/zenml-local-stores ZenML's local artifact store (ZENML_LOCAL_STORES_PATH), shared
#                               by daemon and producer when the stack's artifact store is local
RUN mkdir -p /var/lib/autopilot /run/autopilot-secrets /var/lib/zenml-local-stores \
    && chown autopilot:autopilot \
        /var/lib/autopilot /run/autopilot-secrets /var/lib/zenml-local-stores \
    && chmod 0700 /run/autopilot-secrets

# The daemon's defaults for this image; its env file (daemon.env in Compose) may override them.
# DISABLE_CREDENTIALS_DISK_CACHING (ZenML's name, no ZENML_ prefix): no process of the image,
# a `zenml` command run in a container included, writes the credentials it was given (API key,
# admin password) in clear to ~/.config/zenml/credentials.yaml.
ENV AUTOPILOT_LOG_FORMAT=json \
    AUTOPILOT_HTTP_HOST=0.0.0.0 \
    AUTOPILOT_STATE_DIR=/var/lib/autopilot \
    ZENML_LOCAL_STORES_PATH=/var/lib/zenml-local-stores \
    ZENML_ANALYTICS_OPT_IN=false \
    ZENML_LOGGING_VERBOSITY=WARN \
    ZENML_ENABLE_RICH_TRACEBACK=false \
    DISABLE_CREDENTIALS_DISK_CACHING=true

USER autopilot
# No VOLUME instruction: it gave every container that mounts nothing there (bootstrap, the
# producer) an anonymous volume, which `docker compose down` then left behind for good. Mount a
# volume on /var/lib/autopilot to keep the ledger (docker-compose.yml does: autopilot-state).
EXPOSE 8765

# /healthz is liveness: 200 while the loop ticks, also while it waits out a store outage (the
# store is /readyz's), so an unhealthy mark means a stuck daemon; urlopen raises on 503.
# (No curl in the slim image.) Needs AUTOPILOT_HTTP_PORT != 0.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('AUTOPILOT_HTTP_PORT', '8765'), timeout=4)"]

CMD ["autopilot", "run"]
