FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY server ./server
COPY resources ./resources
COPY profiles ./profiles
COPY auth ./auth
COPY seed ./seed
RUN pip install --no-cache-dir . && useradd --system --home /data consilium && mkdir -p /data && chown consilium /data
USER consilium
EXPOSE 8080
# Seeds conformance resources (idempotent) then serves; keys are generated into /data/keys.
CMD ["sh", "-c", "consilium seed --conformance-only --data-dir /data && exec consilium serve --host 0.0.0.0 --port 8080 --data-dir /data"]
