# wirewatch daemon image.  Build: docker build -t wirewatch .
# Installs the pinned installer (requirements/pip.txt), the runtime set pinned with hashes in
# requirements/runtime.txt, then wirewatch itself as a plain (non-editable) install: the
# migrations ship inside the package.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WIREWATCH_CONFIG=/etc/wirewatch/config.toml

WORKDIR /app
COPY requirements/pip.txt requirements/runtime.txt ./requirements/
RUN pip install --no-cache-dir --require-hashes -r requirements/pip.txt \
    && pip install --no-cache-dir --require-hashes -r requirements/runtime.txt
COPY pyproject.toml setup.py README.md ./
COPY monitor ./monitor
COPY crawler ./crawler
COPY alembic ./alembic
COPY config.toml /etc/wirewatch/config.toml

RUN pip install --no-cache-dir --no-deps . \
    && useradd --system --uid 10001 --home-dir /var/lib/wirewatch --create-home wirewatch

USER 10001
WORKDIR /var/lib/wirewatch
ENTRYPOINT ["wirewatch"]
CMD ["run"]
