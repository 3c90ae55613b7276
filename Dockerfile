# One image for the five services and the developer tools; the command picks the service.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY libs libs
COPY services services
COPY consumers consumers
COPY harness harness
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
# /run/biostream-keys is the mount point of compose's `keys` volume: a new named volume takes the
# owner and mode of the image's directory, so the key generator (uid 10001) can write into it.
RUN useradd --uid 10001 --create-home biostream \
    && mkdir -p /run/biostream-keys \
    && chown 10001:10001 /run/biostream-keys \
    && chmod 0700 /run/biostream-keys
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
