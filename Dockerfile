# One image for every service; the command picks the process (python -m services.<name>).
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 UV_PYTHON_DOWNLOADS=never
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
COPY singlewindow ./singlewindow
COPY services ./services
COPY schemas ./schemas
COPY agencies.toml ./
COPY docs/asyncapi.json ./docs/asyncapi.json
RUN uv sync --frozen --no-dev && useradd --uid 10001 app
USER app
ENV PATH=/app/.venv/bin:$PATH
CMD ["python", "-m", "services.intake"]
