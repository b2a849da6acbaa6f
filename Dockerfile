# Build: the official Swift 6 image plus the SQLite headers GRDB compiles against.
# Debian packages are not pinned to exact versions: a point release or a
# security update replaces them on the mirror, and a pin would then fail the
# build, or (ca-certificates) keep an outdated trust store. Bookworm's updates
# are fixes only (hence hadolint's DL3008 is ignored on both installs).
FROM swift:6.3-bookworm AS build
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libsqlite3-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /build
# Package.swift declares the test target too, and SwiftPM checks every
# target's folder even to build one product: Tests/ comes along, unbuilt.
COPY Package.swift ./
COPY Sources ./Sources
COPY Tests ./Tests
# The cache mount keeps SwiftPM's checkouts and objects in the builder's cache
# between builds on the same machine (never in the image), so that a rebuild
# compiles only what changed.
RUN --mount=type=cache,target=/build/.build,sharing=locked \
    swift build -c release --static-swift-stdlib --product payment-status \
    && mkdir -p /staging/app \
    && cp "$(swift build -c release --show-bin-path)/payment-status" /staging/app/ \
    && strip /staging/app/payment-status \
    && cp -R "$(swift build -c release --show-bin-path)/payment-status_PaymentStatus.resources" /staging/app/
COPY migrations /staging/app/migrations

# Run: slim Debian plus the one library the binary links that slim lacks
# (libsqlite3; libstdc++, libgcc and zlib are already there).
FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libsqlite3-0 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin payment \
    && mkdir -p /data \
    && chown payment:payment /data
WORKDIR /app
COPY --from=build /staging/app /app
ENV HOST=0.0.0.0 \
    PORT=8080 \
    PAYMENT_DB=/data/payments.sqlite \
    PAYMENT_MIGRATIONS_DIR=/app/migrations
VOLUME ["/data"]
# The `payment` user created above, by number so that hosts need not know the name.
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=15s --retries=3 CMD ["/app/payment-status", "healthcheck"]
ENTRYPOINT ["/app/payment-status"]
CMD ["serve"]

# HTTPS with HTTP/2 on the service itself (README, "HTTPS and HTTP/2"): mount
# the certificate and key read-only, readable by uid 10001, and point serve at
# them; the healthcheck then asks https://127.0.0.1:8080/readyz, and
# `docker kill --signal HUP <container>` reloads renewed files.
#   docker run -v "$PWD/tls:/run/tls:ro" \
#       -e PAYMENT_TLS_CERTIFICATE=/run/tls/fullchain.pem -e PAYMENT_TLS_KEY=/run/tls/privkey.pem payment-status
