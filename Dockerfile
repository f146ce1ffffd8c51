# One image for every service; the command picks the process (python -m services.<name>), and
# on Kubernetes its init container waits for the topics (python -m singlewindow.kafka.admin
# wait-for-topics). Build: docker build -t singlewindow:0.1.0 .
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1
RUN pip install --no-cache-dir uv==0.13.9 \
    && groupadd --gid 10001 app \
    && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin app
WORKDIR /app

# The dependencies first, in a layer of their own: rebuilt only when the lock changes, not on
# every change of the source.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

COPY README.md agencies.toml ./
COPY schemas ./schemas
COPY docs/asyncapi.json ./docs/asyncapi.json
COPY singlewindow ./singlewindow
COPY services ./services
# The project itself, and its bytecode compiled now: the root filesystem is read-only when it
# runs (the dependencies' is compiled by UV_COMPILE_BYTECODE).
RUN uv sync --frozen --no-dev \
    && .venv/bin/python -m compileall -q singlewindow services

ENV PATH=/app/.venv/bin:$PATH \
    INTAKE_HOST=0.0.0.0 \
    BANK_HOST=0.0.0.0 \
    INSPECTION_HOST=0.0.0.0 \
    GATE_HOST=0.0.0.0
USER 10001:10001
EXPOSE 8000
CMD ["python", "-m", "services.intake"]
