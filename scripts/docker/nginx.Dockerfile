# A stand-in for the official `nginx:1.27-bookworm` image, made from Debian's
# nginx package (1.22 in bookworm) by scripts/image-test on machines that reach
# no image registry. As in the official image: the server runs in the
# foreground, reads /etc/nginx/conf.d/*.conf (where the compose file mounts its
# configuration), logs to stdout and stderr, stops gracefully on SIGQUIT, and
# curl is there.
FROM debian:bookworm-slim

# hadolint ignore=DL3008
RUN export DEBIAN_FRONTEND=noninteractive \
    && apt-get -q update \
    && apt-get -q install -y --no-install-recommends nginx curl ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && rm -f /etc/nginx/sites-enabled/default \
    && ln -sf /dev/stdout /var/log/nginx/access.log \
    && ln -sf /dev/stderr /var/log/nginx/error.log

LABEL org.opencontainers.image.description="stand-in for nginx:1.27-bookworm, made from Debian packages by scripts/image-test"
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
