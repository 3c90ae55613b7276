# One image for the five services and the developer tools; the command picks the service.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY libs libs
COPY services services
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --uid 10001 --create-home biostream
COPY --from=build /install /usr/local
COPY schemas /opt/biostream/schemas
COPY policies /opt/biostream/policies
ENV BIOSTREAM_SCHEMA_DIR=/opt/biostream/schemas/avro \
    BIOSTREAM_POLICY_DIR=/opt/biostream/policies \
    BIOSTREAM_METRICS_HOST=0.0.0.0 \
    BIOSTREAM_METRICS_PORT=9100 \
    PYTHONUNBUFFERED=1
USER 10001
EXPOSE 9100
CMD ["ingest", "run"]
