# syntax=docker/dockerfile:1
# The pvc-restore controller image. Build: docker build -t ghcr.io/benfiola/pvc-restore:0.1.0 .

ARG PYTHON_VERSION=3.12

# -- build: make wheels for the project and all its dependencies ---------------------------------------------------
FROM python:${PYTHON_VERSION}-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY kubectl_pvc_restore ./kubectl_pvc_restore
COPY controller ./controller
COPY charts/pvc-restore/crds ./charts/pvc-restore/crds
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# -- runtime: only the installed wheels, as a non-root user ---------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim
# The package version to install, without a "v" (the release workflow passes its tag v0.1.0 as 0.1.0 and tags the
# image :0.1.0, the chart's appVersion, which is the image the chart pulls by default).
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="pvc-restore" \
      org.opencontainers.image.description="Controller that restores Kubernetes PVCs from volsync backups" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.source="https://github.com/benfiola/pvc-restore"
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links /wheels "pvc-restore==${VERSION}" \
    && useradd --uid 65532 --user-group --no-create-home --shell /usr/sbin/nologin pvc-restore
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["pvc-restore-controller"]
