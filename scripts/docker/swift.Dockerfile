# A stand-in for the official `swift:6.3-bookworm` image, for machines that
# reach no image registry: Debian bookworm, the packages the official image
# installs, and the Swift toolchain of the machine that builds it, copied at
# the same path. scripts/image-test builds it with a context that holds:
#   rootfs/     the toolchain and the local mirror of the Swift packages, at
#               their paths on the building machine (copied to /)
#   gitconfig   the machine's `url.<mirror>.insteadOf` entries, so that
#               SwiftPM's clones of https://github.com/… resolve offline
# Left out of the toolchain (by scripts/image-test): lldb, sourcekit-lsp,
# clangd, docc, swift-format and the embedded stdlib, which no build uses,
# and with lldb the Python headers the official image adds for it.
FROM debian:bookworm-slim

# As the official image's Dockerfile (swift-docker, 6.x/bookworm), less libpython3-dev.
# hadolint ignore=DL3008
RUN export DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true \
    && apt-get -q update \
    && apt-get -q install -y --no-install-recommends \
        binutils \
        ca-certificates \
        git \
        gnupg2 \
        libc6-dev \
        libcurl4-openssl-dev \
        libedit2 \
        libgcc-12-dev \
        libsqlite3-0 \
        libstdc++-12-dev \
        libxml2-dev \
        libncurses-dev \
        libz3-dev \
        pkg-config \
        tzdata \
        zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*

ARG SWIFT_ROOT=/opt/swift
COPY gitconfig /etc/gitconfig
COPY rootfs/ /
ENV PATH=${SWIFT_ROOT}/usr/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
LABEL org.opencontainers.image.description="stand-in for swift:6.3-bookworm, made from Debian packages and a local Swift toolchain by scripts/image-test"
RUN swift --version
CMD ["bash"]
