# syntax=docker/dockerfile:1
#
# beryl-core-api image, in four stages:
#   chef     Rust toolchain + the C toolchain and OpenSSL headers librdkafka needs + cargo-chef and
#            cargo-auditable
#   planner  reduces the workspace to a dependency recipe (changes only when Cargo.toml/lock do)
#   builder  builds the dependencies from the recipe (a cached layer), then the service
#   runtime  FROM scratch: the binary, the shared libraries it loads, CA certificates, the default
#            configuration and an unprivileged user; no shell, no package manager
#
#   docker build -t beryl-core-api .
#   docker run --rm -p 8000:8000 --read-only --tmpfs /tmp -e ENVIRONMENT=development beryl-core-api
#
# The image runs in production mode unless ENVIRONMENT says otherwise: it then refuses to start
# without its database, Redis, Kafka and JWT key (the development key is public), audits fail
# closed and fault injection is refused. A local try names its environment, as above.
#
# Base images are arguments so that an offline build can use locally made images of the same
# Debian release (scripts/image-build.sh).
ARG RUST_IMAGE=docker.io/library/rust:1.95-bookworm

FROM ${RUST_IMAGE} AS chef
ARG CARGO_CHEF_VERSION=0.1.73
ARG CARGO_AUDITABLE_VERSION=0.7.7
# rdkafka builds a bundled librdkafka: make, a C/C++ compiler, perl, python3, pkg-config, zlib, and
# OpenSSL for TLS and SASL/SCRAM to the brokers (the runtime stage takes libssl3 along with the
# other shared libraries the binary links).
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates g++ gcc libssl-dev make perl pkg-config python3 zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
# cargo-auditable embeds the crate list in the binary, so that image scanners (Trivy) see the
# Rust dependencies and their versions.
RUN cargo install cargo-chef --locked --version "${CARGO_CHEF_VERSION}" \
    && cargo install cargo-auditable --locked --version "${CARGO_AUDITABLE_VERSION}"
WORKDIR /build
# The `dist` profile (Cargo.toml: whole-program LTO, one code unit), its symbols stripped here.
ENV CARGO_PROFILE_DIST_STRIP=symbols \
    CARGO_TERM_COLOR=never

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /build/recipe.json recipe.json
RUN cargo chef cook --profile dist --locked --recipe-path recipe.json
COPY . .
RUN cargo auditable build --profile dist --locked --bin beryl-core-api

# The runtime file tree: the binary, every shared library it links (as resolved here, the same
# Debian release it was built on), the CA bundle, the default configuration and the user. The
# Debian packages those files come from are recorded in /var/lib/dpkg/status.d/ (the layout
# distroless images use), so that image scanners still see glibc and the others.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# $packages is a word list on purpose.
# hadolint ignore=SC2086
RUN set -eu; \
    root=/rootfs; \
    bin=target/dist/beryl-core-api; \
    install -D -m 0755 "$bin" "$root/usr/local/bin/beryl-core-api"; \
    if ldd "$bin" | grep -q 'not found'; then ldd "$bin"; exit 1; fi; \
    mkdir -p "$root/var/lib/dpkg/status.d"; \
    packages=ca-certificates; \
    for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do \
        mkdir -p "$root$(dirname "$lib")"; \
        cp -L "$lib" "$root$lib"; \
        owner=$(dpkg -S "$lib" 2>/dev/null || dpkg -S "$(realpath "$lib")"); \
        packages="$packages ${owner%%:*}"; \
    done; \
    for pkg in $(printf '%s\n' $packages | sort -u); do \
        dpkg-query -s "$pkg" | grep -v '^Conffiles:\|^ /' > "$root/var/lib/dpkg/status.d/$pkg"; \
    done; \
    install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"; \
    mkdir -p "$root/app/config" "$root/tmp" /rootfs-logs/var/log/beryl/audit; \
    cp -R config/. "$root/app/config/"; \
    printf 'root:x:0:0:root:/root:/sbin/nologin\nberyl:x:10001:10001:beryl-core-api:/app:/sbin/nologin\n' > "$root/etc/passwd"; \
    printf 'root:x:0:\nberyl:x:10001:\n' > "$root/etc/group"; \
    printf 'hosts: files dns\n' > "$root/etc/nsswitch.conf"; \
    chmod 1777 "$root/tmp"; \
    "$root/usr/local/bin/beryl-core-api" --version

FROM scratch AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="beryl-core-api" \
      org.opencontainers.image.description="Actor-based reactive backend for the Beryl ecosystem: fintech, mobility, ESG and social domains over REST and GraphQL." \
      org.opencontainers.image.source="https://github.com/generalhaypi/beryl_ecosysteme" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="Beryl" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
COPY --from=builder /rootfs/ /
# The audit directory is the only place the user owns (the volume mounted there in Kubernetes).
COPY --from=builder --chown=10001:10001 /rootfs-logs/ /
WORKDIR /app
ENV CONFIG_DIR=/app/config \
    ENVIRONMENT=production \
    HOST=0.0.0.0 \
    PORT=8000 \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 10001:10001
EXPOSE 8000
STOPSIGNAL SIGTERM
# No HEALTHCHECK: Kubernetes probes /health/startup, /health/live and /health/ready, and the image
# has no shell or HTTP client to run one with.
ENTRYPOINT ["/usr/local/bin/beryl-core-api"]
CMD ["serve"]
