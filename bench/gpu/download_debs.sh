#!/usr/bin/env bash
# Downloads the Debian 12 packages of OpenMPI 4.1.4 and parallel HDF5 1.10.8 (runtime, -dev and
# their library dependencies) and of harsanyi's small build dependencies (fmt, CLI11, nlohmann-json,
# toml++, GoogleTest, zlib headers) and the Fashion-MNIST data package into a git-ignored folder, to be carried to the GPU test machine,
# which has neither and reaches no package archive. There, bench/gpu/setup_prefix.sh unpacks them
# into a private prefix (never into /).
#
# usage: bench/gpu/download_debs.sh [DIR]        (default: .gpu-debs/ at the repository root)
# Run on Debian 12 (bookworm, amd64) with the Debian archive reachable; ~47 MiB, 49 files
# (Fashion-MNIST's data package is 30 MiB of them).
# Writes DIR/SHA256SUMS, which setup_prefix.sh checks before unpacking.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:-$ROOT/.gpu-debs}

die() { echo "download_debs.sh: error: $*" >&2; exit 1; }
[[ $(dpkg --print-architecture 2>/dev/null) == amd64 ]] || die "needs Debian amd64 (dpkg)"
grep -q '^VERSION_CODENAME=bookworm' /etc/os-release || die "needs Debian 12 (bookworm)"

PKGS=(
  # OpenMPI 4.1.4 + parallel HDF5 1.10.8 (C, HL; headers, wrappers, pkg-config)
  openmpi-bin openmpi-common libopenmpi3 libopenmpi-dev
  libhdf5-openmpi-103-1 libhdf5-openmpi-hl-100 libhdf5-openmpi-dev
  # MPI runtime stack (always used from the prefix)
  libpmix2 libhwloc15 libevent-core-2.1-7 libevent-pthreads-2.1-7 libmunge2
  libucx0 libfabric1 libpsm2-2 libpsm-infinipath1
  # generic libraries: used only where the target lacks the soname (see setup_prefix.sh)
  libibverbs1 librdmacm1 ibverbs-providers libnl-3-200 libnl-route-3-200 libnuma1 libatomic1
  libsz2 libaec0
  libcurl4 libssl3 libnghttp2-14 libpsl5 librtmp1 libssh2-1 libbrotli1 libunistring2
  libgssapi-krb5-2 libkrb5-3 libk5crypto3 libkrb5support0 libkeyutils1
  libldap-2.5-0 libsasl2-2 libsasl2-modules-db
  # harsanyi's other build dependencies, in case the target lacks them (headers, CMake configs;
  # fmt as a shared library; GoogleTest as static libraries; libz.so is pointed at the target's)
  libfmt-dev libfmt9 libcli11-dev nlohmann-json3-dev libtomlplusplus-dev libgtest-dev zlib1g-dev
  # Fashion-MNIST (30 MiB, data only): the default study and the tests that train on it
  dataset-fashion-mnist
)

mkdir -p "$OUT"
cd "$OUT"
rm -f ./*.deb SHA256SUMS
apt-get update -qq
# apt-get download runs as the _apt user where it can; a folder it cannot write is fine (it falls
# back to root with a notice), so the notice is silenced.
apt-get download "${PKGS[@]}" 2> >(grep -v 'unsandboxed as root' >&2)
count=$(ls ./*.deb | wc -l)
[[ $count -eq ${#PKGS[@]} ]] || die "expected ${#PKGS[@]} .deb files, got $count"
sha256sum ./*.deb > SHA256SUMS
echo "download_debs.sh: $count packages, $(du -sh . | cut -f1) in $OUT"
