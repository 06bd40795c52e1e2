# One image for every Numbra service: the API, the migration job, the workers, the scheduler.
# The arguments choose the service: `docker run IMAGE migrate`, `docker run IMAGE worker`,
# `docker run IMAGE token create --org ROOT --role admin --name ops`; without any, it serves the API.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed numeric uid, so orchestrators can verify runAsNonRoot.
RUN groupadd --system --gid 10001 numbra \
    && useradd --system --uid 10001 --gid numbra --home-dir /app --shell /usr/sbin/nologin numbra

# A regular, non-editable install into site-packages; the sources are not needed afterwards.
# What the build sees is trimmed by .dockerignore (no tests, virtualenvs, caches or databases).
WORKDIR /src
COPY . .
RUN pip install . && rm -rf /src

# The working directory belongs to the service user: settings read ./.env from here,
# and the SQLite default (when NUMBRA_DATABASE_URL is not set) is created here.
WORKDIR /app
RUN chown numbra:numbra /app
USER 10001:10001

EXPOSE 8000
ENTRYPOINT ["numbra"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
