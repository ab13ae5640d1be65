# scripts/lib.sh — shared by scripts/test, scripts/demo and bench/run.
# Installs the Debian packages the project needs, only if some are missing.

MEMC_PACKAGES="cmake make gcc pkg-config gzip procps util-linux
  zlib1g-dev libisal-dev libmemcached-dev libprotobuf-c-dev protobuf-c-compiler
  libsystemd-dev libcmocka-dev memcached python3 python3-protobuf python3-pylibmc
  systemd clang clang-format valgrind lintian mandoc python3-yaml
  prometheus libssl-dev openssl
  python3-memcache python3-pymemcache libcache-memcached-fast-perl libmemcached-tools
  nutcracker"

memc_deps() {
    local missing=() p
    for p in $MEMC_PACKAGES; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing: ${missing[*]}" >&2
    local sudo=
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# memc_build DIR [cmake args...]: configure (once) and build.
memc_build() {
    local dir=$1
    shift
    cmake -S . -B "$dir" -DMEMC_WERROR=ON "$@" >/dev/null
    cmake --build "$dir" -j "$(nproc)" >/dev/null
}
