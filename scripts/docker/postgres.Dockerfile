# A stand-in for the official `postgres:15-bookworm` image, made from Debian's
# own PostgreSQL packages by scripts/image-test on machines that reach no image
# registry. What the compose files rely on behaves as in the official image:
# POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB on first start, the data in
# /var/lib/postgresql/data (PGDATA), port 5432 for every address with
# scram-sha-256, pg_isready on the PATH, the server run as `postgres` (uid 999).
FROM debian:bookworm-slim

ARG PG_MAJOR=15
# hadolint ignore=DL3008
RUN groupadd --system --gid 999 postgres \
    && useradd --system --uid 999 --gid postgres --home-dir /var/lib/postgresql --shell /bin/bash postgres \
    && mkdir -p /var/lib/postgresql \
    && chown postgres:postgres /var/lib/postgresql \
    && export DEBIAN_FRONTEND=noninteractive \
    && apt-get -q update \
    && apt-get -q install -y --no-install-recommends postgresql-common \
    && sed -ri 's/#(create_main_cluster) .*$/\1 = false/' /etc/postgresql-common/createcluster.conf \
    && apt-get -q install -y --no-install-recommends "postgresql-${PG_MAJOR}" \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/run/postgresql \
    && chown postgres:postgres /var/run/postgresql \
    && chmod 2777 /var/run/postgresql

ENV PG_MAJOR=${PG_MAJOR} \
    PATH=/usr/lib/postgresql/${PG_MAJOR}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME ["/var/lib/postgresql/data"]
LABEL org.opencontainers.image.description="stand-in for postgres:15-bookworm, made from Debian packages by scripts/image-test"
EXPOSE 5432
# As the official image: SIGINT is PostgreSQL's fast shutdown.
STOPSIGNAL SIGINT
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
