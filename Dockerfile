# memc-load in a container (optional; see docker-compose.yml).  Builds on
# Debian 12 with the same packages as scripts/test, runs the daemon in the
# foreground.  The config comes from a volume (/etc/memc-load, the compose
# file mounts ./etc), the spool and the state directory are volumes too;
# docker/entrypoint.sh makes the spool writable for the user the daemon runs
# as without taking it from its owner.
FROM debian:12 AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
        cmake make gcc gzip pkg-config protobuf-c-compiler zlib1g-dev libisal-dev \
        libmemcached-dev libprotobuf-c-dev libsystemd-dev && rm -rf /var/lib/apt/lists/*
COPY . /src
RUN cmake -S /src -B /build -DCMAKE_BUILD_TYPE=Release -DMEMC_TESTS=OFF \
        -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_INSTALL_SYSCONFDIR=/etc \
    && cmake --build /build -j"$(nproc)" --target memc-load \
    && DESTDIR=/stage cmake --install /build

FROM debian:12
RUN apt-get update && apt-get install -y --no-install-recommends \
        libisal2 libmemcached11 libprotobuf-c1 libsystemd0 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin memc-load \
    && install -d -o memc-load -g memc-load -m 2775 /var/spool/memc-load \
    && install -d -o memc-load -g memc-load -m 750 /var/lib/memc-load \
    && install -d /etc/memc-load
COPY --from=build /stage/usr/bin/memc-load /usr/bin/memc-load
COPY docker/entrypoint.sh /usr/local/bin/memc-load-entrypoint
# the state directory (server identities for the re-warm) outlives a container
VOLUME ["/var/spool/memc-load", "/etc/memc-load", "/var/lib/memc-load"]
# root only until the entrypoint has fixed the spool's owner; then setpriv
ENTRYPOINT ["/usr/local/bin/memc-load-entrypoint"]
