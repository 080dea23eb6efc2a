#!/usr/bin/env bash
# Sets up the aarch64 cross build (make cross-arm64, make test-arm64; README "ARM64"), on
# Debian 12 as root (or with sudo); idempotent, a second run only checks.
#  1. Debian's cross compiler (gcc-aarch64-linux-gnu, with its arm64 C library under
#     /usr/aarch64-linux-gnu) and qemu-user (qemu-aarch64, which runs the tests);
#  2. the arm64 builds of the libraries kerac links (the same list as install-deps.sh, and what
#     they need), downloaded with apt-get download and unpacked with dpkg -x into a sysroot
#     folder, $ARM64_SYSROOT (default build-arm64/sysroot): never installed, so nothing of the
#     host's amd64 packages changes (libhdf5-dev:arm64 and libhdf5-dev:amd64, for one, do not
#     co-install). The Makefile's cross-arm64 target points pkg-config, -L and -rpath-link
#     there; qemu finds the C library through QEMU_LD_PREFIX=/usr/aarch64-linux-gnu and the
#     sysroot's libraries through LD_LIBRARY_PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
SYSROOT=${ARM64_SYSROOT:-build-arm64/sysroot}
DEBS=${ARM64_DEBS:-build-arm64/debs}
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

# the arm64 -dev packages: install-deps.sh's list
DEV_PKGS="libopenblas-pthread-dev zlib1g-dev libcurl4-openssl-dev libssl-dev libcriterion-dev
  libhdf5-dev libzip-dev libcjson-dev libcairo2-dev libpng-dev libjpeg62-turbo-dev"

# 1. the tools, and arm64 in dpkg's architectures (for apt-get download)
need_update=0
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    $SUDO dpkg --add-architecture arm64
    need_update=1
fi
if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v qemu-aarch64 >/dev/null; then
    need_update=1
fi
[ "$need_update" = 0 ] || $SUDO apt-get update -qq
if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v qemu-aarch64 >/dev/null; then
    $SUDO apt-get install -y -qq --no-install-recommends gcc-aarch64-linux-gnu \
        libc6-dev-arm64-cross qemu-user >/dev/null
fi

# 2. the sysroot, once for this package list
stamp="$SYSROOT/.kerac-sysroot"
want=$(echo $DEV_PKGS)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "cross-arm64: $SYSROOT is ready"
    exit 0
fi
if ! apt-cache show libhdf5-dev:arm64 >/dev/null 2>&1; then $SUDO apt-get update -qq; fi
# every arm64 library package these depend on (apt-cache lists each provider of a virtual
# package: the other libcurl flavours are left out), and the architecture-independent -dev
# packages among them (X11's protocol headers, which cairo's .pc files require); not the C
# library, its headers and the compiler's runtime, which the cross toolchain has
pkgs=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
        --no-replaces --no-enhances $(for p in $DEV_PKGS; do echo "$p:arm64"; done) 2>/dev/null |
    grep -v '^[ <]' | sort -u |
    grep -E '^((lib|zlib)[^:]*:arm64|[^:]*-dev)$' |
    grep -vE '^(libc6|libc6-dev|libc-dev-bin|libgcc-s1|libcrypt-dev|libnsl-dev|libtirpc-dev|linux-libc-dev)(:arm64)?$' |
    grep -vE '^lib(python|perl|glib2.0-dev-bin)' |
    grep -vE '^libcurl(3-gnutls|3-nss|4-gnutls-dev|4-nss-dev):arm64$' |
    grep -vE -- '-bin(:arm64)?$' || true)
rm -rf "$DEBS" # (no older versions beside the new ones)
mkdir -p "$DEBS"
(cd "$DEBS" && apt-get download -o APT::Sandbox::User=root $pkgs >/dev/null)
rm -rf "$SYSROOT"
mkdir -p "$SYSROOT"
n=0
for deb in "$DEBS"/*.deb; do
    dpkg -x "$deb" "$SYSROOT"
    n=$((n + 1))
done
# absolute symbolic links (lib*.so -> /lib/...) point into the sysroot instead
root=$(cd "$SYSROOT" && pwd)
find "$SYSROOT" -type l -lname '/*' | while read -r link; do
    ln -sfn "$root$(readlink "$link")" "$link"
done
# what update-alternatives would have made: hdf5.pc (the serial HDF5), openblas.pc and
# libblas/liblapack/cblas.h for the pthread OpenBLAS
lib="$SYSROOT/usr/lib/aarch64-linux-gnu"
ln -sfn hdf5-serial.pc "$lib/pkgconfig/hdf5.pc"
if [ ! -e "$lib/pkgconfig/openblas.pc" ]; then
    ln -sfn ../openblas-pthread/pkgconfig/openblas.pc "$lib/pkgconfig/openblas.pc" 2>/dev/null ||
        true
fi
for f in libblas.so.3 liblapack.so.3 libopenblas.so.0; do
    [ -e "$lib/openblas-pthread/$f" ] && [ ! -e "$lib/$f" ] && ln -sfn "openblas-pthread/$f" "$lib/$f"
done
echo "$want" >"$stamp"
echo "cross-arm64: $n packages unpacked into $SYSROOT"
