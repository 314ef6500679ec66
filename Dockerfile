# wirewatch daemon image.  Build: docker build -t wirewatch .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WIREWATCH_ALEMBIC_DIR=/app/alembic \
    WIREWATCH_CONFIG=/etc/wirewatch/config.toml

WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY monitor ./monitor
COPY crawler ./crawler
COPY alembic ./alembic
COPY config.toml /etc/wirewatch/config.toml

RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --home-dir /var/lib/wirewatch --create-home wirewatch

USER 10001
WORKDIR /var/lib/wirewatch
ENTRYPOINT ["wirewatch"]
CMD ["run"]
