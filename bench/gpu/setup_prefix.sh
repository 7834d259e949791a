#!/usr/bin/env bash
# Unpacks the Debian 12 OpenMPI 4.1.4 + parallel HDF5 1.10.8 packages (and fmt, CLI11,
# nlohmann-json, toml++, GoogleTest, zlib headers) downloaded by bench/gpu/download_debs.sh into a private prefix (never into /) and writes PREFIX/env.sh, which
# points PATH, LD_LIBRARY_PATH, OPAL_PREFIX, HDF5_ROOT etc. at it. Needs no network and no root.
#
# usage: bench/gpu/setup_prefix.sh DEB_DIR PREFIX      then: source PREFIX/env.sh
#
# After `source PREFIX/env.sh`, `cmake` finds MPI (mpicc on PATH) and parallel HDF5 (HDF5_ROOT)
# with no -D flags. The prefix is rebuilt from scratch on every call (a folder that is not empty
# and was not made by this script is refused). This OpenMPI is not CUDA-aware: pass host buffers.
#
# What it handles (from the verified recipe in shared/recipes/gpu-machine): the MPI wrappers need
# OPAL_PREFIX and LD_LIBRARY_PATH; /etc/openmpi is not relocated (OPAL_SYSCONFDIR); the PMIx
# plugins need PMIX_MCA_mca_base_component_path; without ssh, mpirun needs OMPI_MCA_plm=isolated;
# Debian's libraries carry a RUNPATH into /usr, so rpath alone is not enough; h5pcc hard-codes
# /usr and links statically (patched); generic libraries (curl, ssl, krb5, ...) are used from the
# prefix only where the system lacks their soname, so newer system libraries are never shadowed.
set -euo pipefail
die() { echo "setup_prefix.sh: error: $*" >&2; exit 1; }
[[ $# -eq 2 ]] || die "usage: setup_prefix.sh DEB_DIR PREFIX"
[[ -d $1 ]] || die "no folder $1 (run bench/gpu/download_debs.sh on a Debian 12 machine first)"
DEBS=$(cd "$1" && pwd)
ls "$DEBS"/*.deb >/dev/null 2>&1 || die "no .deb files in $DEBS"
if [[ -f $DEBS/SHA256SUMS ]]; then
  (cd "$DEBS" && sha256sum --quiet -c SHA256SUMS) || die "checksums of $DEBS/*.deb do not match"
fi
[[ $2 != / && $2 != /usr && $2 != /usr/ ]] || die "refusing to unpack into $2"
if [[ -e $2 ]]; then
  [[ -d $2 ]] || die "$2 exists and is not a folder"
  if [[ -n $(ls -A "$2") && ! -f $2/.harsanyi-prefix ]]; then
    die "$2 is not empty and was not made by this script; give an empty or new folder"
  fi
  rm -rf "$2"
fi
mkdir -p "$2"
P=$(cd "$2" && pwd)
touch "$P/.harsanyi-prefix"

# Generic libraries: used only when the target system does not already provide the soname.
PREFER_SYSTEM=" libcurl4 libssl3 libgssapi-krb5-2 libkrb5-3 libk5crypto3 libkrb5support0 \
libkeyutils1 libldap-2.5-0 libsasl2-2 libsasl2-modules-db libbrotli1 libnghttp2-14 libpsl5 \
librtmp1 libssh2-1 libunistring2 libatomic1 libnuma1 libaec0 libsz2 libnl-3-200 \
libnl-route-3-200 libibverbs1 librdmacm1 ibverbs-providers "
extract() {  # dpkg-deb if present, else ar + tar (binutils)
  if command -v dpkg-deb >/dev/null; then
    dpkg-deb -x "$1" "$2"
  else
    command -v ar >/dev/null || die "neither dpkg-deb nor ar (binutils) is available"
    local t
    t=$(mktemp -d)
    (cd "$t" && ar x "$1" && tar -xf data.tar.* -C "$2")
    rm -rf "$t"
  fi
}
mkdir -p "$P/fallback"
for d in "$DEBS"/*.deb; do
  pkg=$(basename "$d")
  pkg=${pkg%%_*}
  if [[ $PREFER_SYSTEM == *" $pkg "* ]]; then extract "$d" "$P/fallback"; else extract "$d" "$P"; fi
done
L=$P/usr/lib/x86_64-linux-gnu
FL=$P/fallback/usr/lib/x86_64-linux-gnu
B=$P/usr/bin
[[ -x $B/mpicc.openmpi && -d $L/hdf5/openmpi ]] || die "the packages did not give mpicc.openmpi and hdf5/openmpi"
shopt -s nullglob
mkdir -p "$FL"
for f in "$P"/fallback/lib/x86_64-linux-gnu/*; do mv "$f" "$FL"/; done  # libnl-3, libkeyutils: /lib
rm -rf "$P/fallback/lib"
# Drop fallback libraries whose soname the system already has (ld.so.cache).
LDCONFIG=$(command -v ldconfig || echo /sbin/ldconfig)
sys_sonames=$("$LDCONFIG" -p | awk 'NR>1 && /x86-64/ {print $1}' | sort -u)
for f in "$FL"/lib*.so.*; do
  [[ -e $f || -L $f ]] || continue
  n=$(basename "$f")
  if grep -qxF "$n" <<<"$sys_sonames"; then
    if [[ -L $f ]]; then rm -f "$FL/$(readlink "$f")"; fi
    rm -f "$f"
    echo "setup_prefix.sh: using the system's $n"
  fi
done
# Static archives are not needed (~15 MB), except GoogleTest's (the tests link them).
find "$P" -name '*.a' ! -name 'libgtest*' ! -name 'libgmock*' -delete
# zlib1g-dev's libz.so points at /lib/x86_64-linux-gnu/libz.so.1.2.13: use the target's libz.so.1.
if [[ -L $L/libz.so && ! -e $L/libz.so ]]; then
  sysz=$("$LDCONFIG" -p | awk '$1 == "libz.so.1" && /x86-64/ {print $NF; exit}')
  [[ -n $sysz ]] || die "the system has no libz.so.1"
  ln -sf "$sysz" "$L/libz.so"
fi
# The alternatives that Debian's postinst scripts would have made.
for w in mpicc mpicxx mpic++ mpiCC mpirun mpiexec h5pcc; do ln -sf "$w.openmpi" "$B/$w"; done
ln -sf ../libpsm1/libpsm_infinipath.so.1.16 "$L/libpsm_infinipath.so.1"  # libfabric, mca_mtl_psm
ln -sf hdf5-openmpi.pc "$L/pkgconfig/hdf5.pc"
ln -sf hdf5-openmpi.pc "$L/pkgconfig/hdf5-mpi.pc"
# h5pcc: hard-coded prefix=/usr, bare mpicc.openmpi, static by default, -lcurl/-lcrypto/-lsz
# would need the -dev symlinks.
sed -i -e "s|^prefix=\"/usr\"|prefix=\"$P/usr\"|" \
  -e "s|^CCBASE=\"mpicc.openmpi\"|CCBASE=\"$B/mpicc.openmpi\"|" \
  -e "s|^CLINKERBASE=\"mpicc.openmpi\"|CLINKERBASE=\"$B/mpicc.openmpi\"|" \
  -e 's|^STATIC_AVAILABLE="yes"|STATIC_AVAILABLE="no"|' \
  -e 's|^H5BLD_LIBS=.*|H5BLD_LIBS=""|' "$B/h5pcc.openmpi"
# pkg-config files
sed -i "s|^prefix=/usr\$|prefix=$P/usr|" "$L"/openmpi/lib/pkgconfig/*.pc
sed -i "s|/usr/|$P/usr/|g" "$L"/pkgconfig/hdf5-openmpi.pc

cat >"$P/env.sh" <<ENV
# Generated by bench/gpu/setup_prefix.sh: OpenMPI 4.1.4 + parallel HDF5 1.10.8 in $P. source me.
export MPI_PREFIX=$P
export OPAL_PREFIX=$P/usr                  # relocates bindir/libdir/pkgdatadir (wrapper data, help files, MCA plugins)
export OPAL_SYSCONFDIR=$P/etc/openmpi      # Debian's openmpi-mca-params.conf (pml=^ucx, btl=^openib,ofi,uct, ...)
export PMIX_MCA_mca_base_component_path=$L/pmix2/lib/pmix
export PATH=$B:\$PATH
export LD_LIBRARY_PATH=$L:$FL\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}
export PKG_CONFIG_PATH=$L/openmpi/lib/pkgconfig:$L/pkgconfig\${PKG_CONFIG_PATH:+:\$PKG_CONFIG_PATH}
export HDF5_ROOT=$L/hdf5/openmpi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# no ssh/rsh on the box: mpirun would abort ("plm_rsh_agent: ssh : rsh ... could not be found"); launch locally
command -v ssh >/dev/null 2>&1 || command -v rsh >/dev/null 2>&1 || export OMPI_MCA_plm=isolated
# containers often forbid process_vm_readv (CMA); shared-memory copy-in/out always works
export OMPI_MCA_btl_vader_single_copy_mechanism=\${OMPI_MCA_btl_vader_single_copy_mechanism:-none}
ENV

# Smoke checks through the env file, in a subshell so this shell stays clean.
(
  # shellcheck disable=SC1091
  source "$P/env.sh"
  [[ $(command -v mpicc) == "$B/mpicc" ]] || die "mpicc on PATH is $(command -v mpicc), not the prefix's"
  mpicc --version | head -n 1
  mpirun --version | head -n 1
  h5pcc -showconfig | grep -E 'HDF5 Version|Parallel HDF5' | sed 's/^ *//'
  h5pcc -showconfig | grep -q 'Parallel HDF5: yes' || die "h5pcc: not a parallel HDF5"
) || die "the prefix does not work (see above)"
echo "setup_prefix.sh: prefix ready: source $P/env.sh"
