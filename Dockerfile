# syntax=docker/dockerfile:1
# The syncd image: a virtualenv built from the pinned constraints in a build stage, copied into a
# slim runtime that runs as a non-root user on a read-only root file system. Only the state
# (/var/lib/syncd, a volume) and /tmp (a tmpfs) need to be writable.
#
#   docker build -t syncd:0.1.0 .                          # every cloud (EXTRAS=all)
#   docker build --build-arg EXTRAS=aws -t syncd:0.1.0-aws .  # one cloud: aws, gcp, azure or oci
#   docker run --read-only --tmpfs /tmp -v syncd-state:/var/lib/syncd \
#     -v "$PWD/syncd.yaml:/etc/syncd/syncd.yaml:ro" -e CLOUDFLARE_API_TOKEN syncd:0.1.0
#
# No Docker engine runs where this is developed: tests/e2e/test_image_install.py replays the build
# stage into a fresh virtualenv and tests/unit/test_deploy.py lints this file (docs/container.md).

# The base is pinned by digest (a tag moves when Docker rebuilds it); the tag is
# python:3.11.17-slim-bookworm, the current 3.11 patch release. Refresh both together:
# docker buildx imagetools inspect python:3.11-slim-bookworm.
FROM python:3.11.17-slim-bookworm@sha256:0a310eeecf4e1f5a0743f9a6520c90c88d089c903ca5fd283f501e3a805f5f89 AS build

# Which clouds' SDKs the image carries: all, or a comma-separated list of aws, gcp, azure, oci
# (docs/container.md gives each variant's size).
ARG EXTRAS=all

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1

WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY syncd/ syncd/

RUN python -m venv /opt/syncd
# Wheels only: the slim runtime has no compiler, so a dependency without a wheel must fail here.
# pip compiles one file at a time; compileall uses every core (the root file system is read-only
# at run time, so the bytecode has to be in the image).
RUN --mount=type=cache,target=/root/.cache/pip \
    /opt/syncd/bin/pip install --no-compile --only-binary=:all: -c constraints.txt ".[${EXTRAS}]"
# The image installs nothing at run time: pip and setuptools leave the virtualenv.
RUN /opt/syncd/bin/pip uninstall --yes --quiet pip setuptools \
 && /opt/syncd/bin/python -m compileall -q -j 0 /opt/syncd/lib


FROM python:3.11.17-slim-bookworm@sha256:0a310eeecf4e1f5a0743f9a6520c90c88d089c903ca5fd283f501e3a805f5f89

# The source revision the image is built from (e.g. --build-arg REVISION=$(git rev-parse HEAD)):
# syncd_build_info{revision=...}.
ARG REVISION=unknown
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="syncd" \
      org.opencontainers.image.description="Keeps Cloudflare origin cloud region mappings in step with AWS, Azure, GCP and OCI." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11.17-slim-bookworm"

# pip and setuptools of the base image go (nothing is installed at run time), and a user with a
# fixed numeric uid comes, so Kubernetes can check runAsNonRoot without a passwd lookup.
RUN python -m pip uninstall --yes --quiet pip setuptools wheel \
 && groupadd --system --gid 10001 syncd \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/syncd --no-create-home \
      --shell /usr/sbin/nologin syncd \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/syncd

COPY --from=build /opt/syncd /opt/syncd

# PYTHONMALLOC=malloc: objects in glibc's heap, which `syncd run` trims after every run, so the
# service idles near its start-up size between runs (docs/benchmarks.md: 73 MB, not 142 MB).
ENV PATH=/opt/syncd/bin:$PATH \
    PYTHONMALLOC=malloc \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SYNCD_CONFIG=/etc/syncd/syncd.yaml \
    SYNCD_REVISION=${REVISION}

WORKDIR /var/lib/syncd
USER 10001:10001
VOLUME ["/var/lib/syncd"]
EXPOSE 9464

ENTRYPOINT ["syncd"]
CMD ["run"]
