#!/usr/bin/env bash
# One command on the GPU test machine (bench/gpu/README.md): unpack the carried OpenMPI/HDF5 .debs
# into a private prefix, configure harsanyi against it and against the machine's CUDA LibTorch
# (Release, sm_90), build with ninja, run the CUDA tests (they must run, not skip), the GPU
# benchmarks, the default study on the GPU and on the CPU, then the whole ctest suite, and leave
# everything in one report folder. Needs no network. The GPU steps come before the long CPU
# suite, so a run cut short by a time limit has measured the GPU first.
#
# usage (from anywhere):  bench/gpu/run_all.sh [REPORT_DIR]
#   REPORT_DIR: $1, else $OUT, else gpu-report/ (relative to the repository root)
# environment (all optional):
#   HARSANYI_GPU_DEBS     the .deb folder               [.gpu-debs]
#   HARSANYI_GPU_BUILD    the build folder              [build-gpu-run]  (prefix in BUILD/prefix)
#   HARSANYI_GPU_ARCHS    HARSANYI_CUDA_ARCHS           [90]
#   HARSANYI_GPU_JOBS     ninja / ctest parallelism     [nproc]
#   HARSANYI_GPU_QUICK=1  a short benchmark sweep (smoke run)
#   HARSANYI_GPU_CTEST_EXCLUDE  regex of tests to leave out (ctest -E), e.g. for a test that
#                         needs what this machine lacks; recorded in the report   [none]
#   HARSANYI_GPU_KEEP_GOING=1  a failed test or benchmark step is recorded (FAILED) and the
#                         next step runs; the script still exits 1 at the end     [0]
#   HARSANYI_GPU_STUDY=0  leave out the default study timings (GPU vs CPU)         [1]
#   HARSANYI_GPU_PARTS    comma list of the parts to run after the build, for runs split over
#                         several calls on one machine (the build folder is reused):
#                         cudatests, bench, study, studyperf, ctest   [all of them]
#   PYTHON                the Python with PyTorch       [python3]
set -Eeuo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
REPORT=${1:-${OUT:-gpu-report}}
mkdir -p "$REPORT"
REPORT=$(cd "$REPORT" && pwd)
DEBS=${HARSANYI_GPU_DEBS:-$ROOT/.gpu-debs}
BUILD=${HARSANYI_GPU_BUILD:-$ROOT/build-gpu-run}
ARCHS=${HARSANYI_GPU_ARCHS:-90}
JOBS=${HARSANYI_GPU_JOBS:-$(nproc)}
PY=${PYTHON:-python3}
QUICK=${HARSANYI_GPU_QUICK:-0}
EXCLUDE=${HARSANYI_GPU_CTEST_EXCLUDE:-}
KEEP_GOING=${HARSANYI_GPU_KEEP_GOING:-0}
STUDY=${HARSANYI_GPU_STUDY:-1}
PARTS=${HARSANYI_GPU_PARTS:-cudatests,bench,study,studyperf,ctest}
for p in ${PARTS//,/ }; do
  case $p in cudatests | bench | study | studyperf | ctest) ;;
  *) echo "run_all.sh: error: unknown part '$p' in HARSANYI_GPU_PARTS" >&2; exit 2 ;;
  esac
done
part() { [[ ,$PARTS, == *,$1,* ]]; }

exec > >(tee -a "$REPORT/run_all.log") 2>&1
STEP="start"
step() {
  STEP=$1
  echo
  echo "=== [$(date -u +%H:%M:%S)] $STEP"
}
die() {
  echo "run_all.sh: error: $*" >&2
  exit 1
}
SOFT_FAILURES=()
fail_step() {  # a test or benchmark failure: fatal unless HARSANYI_GPU_KEEP_GOING=1
  [[ $KEEP_GOING == 1 ]] || die "$*"
  echo "run_all.sh: error (going on): $*" >&2
  SOFT_FAILURES+=("$STEP: $*")
  printf '%s\n' "${SOFT_FAILURES[@]}" >"$REPORT/FAILED"
}
on_exit() {
  local rc=$?
  if [[ $rc -eq 0 && ${#SOFT_FAILURES[@]} -gt 0 ]]; then
    rc=1
    echo "run_all.sh: ${#SOFT_FAILURES[@]} step(s) failed; report in $REPORT:" >&2
    printf '  %s\n' "${SOFT_FAILURES[@]}" >&2
    exit 1
  fi
  if [[ $rc -eq 0 ]]; then
    echo "run_all.sh: all steps passed; report in $REPORT"
  else
    echo "run_all.sh: FAILED (exit $rc) at step: $STEP; report so far in $REPORT" >&2
    echo "FAILED at step: $STEP (exit $rc)" >>"$REPORT/FAILED"
  fi
}
trap on_exit EXIT
rm -f "$REPORT/FAILED"
echo "run_all.sh: repository $ROOT, report $REPORT, build $BUILD, archs $ARCHS, jobs $JOBS"

# ---------------------------------------------------------------------------------------------
step "machine: nvidia-smi, versions, git"
command -v nvidia-smi >/dev/null || die "nvidia-smi not found: this is not a GPU machine"
nvidia-smi | tee "$REPORT/nvidia-smi.txt"
nvidia-smi -q >"$REPORT/nvidia-smi-q.txt"
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,clocks.max.mem,power.limit,driver_version \
  --format=csv >"$REPORT/gpu.csv"
NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
[[ -x $NVCC ]] || die "nvcc not found (PATH or /usr/local/cuda/bin)"
command -v cmake >/dev/null || die "cmake not found"
command -v ninja >/dev/null || die "ninja not found"
command -v "$PY" >/dev/null || die "$PY not found (set PYTHON to the Python that has PyTorch)"
TORCH_INFO=$("$PY" - <<'PY'
import torch
print("torch_version", torch.__version__)
print("torch_cuda", torch.version.cuda)
print("torch_cuda_available", torch.cuda.is_available())
print("torch_cxx11_abi", torch.compiled_with_cxx11_abi())
print("torch_cmake_prefix_path", torch.utils.cmake_prefix_path)
PY
) || die "$PY cannot import torch"
torch_field() { awk -v k="$1" '$1 == k {print $2}' <<<"$TORCH_INFO"; }
TORCH_PREFIX=$(torch_field torch_cmake_prefix_path)
GIT_SHA=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
{
  echo "date_utc $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host $(hostname)"
  echo "git_sha $GIT_SHA"
  echo "git_status $(git -C "$ROOT" status --porcelain 2>/dev/null | wc -l) changed/untracked paths"
  echo "kernel $(uname -srm)"
  echo "os $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
  echo "glibc $(ldd --version 2>/dev/null | head -n 1)"
  echo "cpu $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(nproc) logical CPUs"
  echo "memory $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
  echo "nvcc $("$NVCC" --version | tail -n 2 | tr '\n' ' ')"
  echo "cmake $(cmake --version | head -n 1)"
  echo "ninja $(ninja --version)"
  echo "cxx $(${CXX:-c++} --version | head -n 1)"
  echo "python $("$PY" --version 2>&1) ($(command -v "$PY"))"
  echo "$TORCH_INFO"
} | tee "$REPORT/versions.txt"
[[ $(torch_field torch_cxx11_abi) == True ]] ||
  die "this LibTorch uses the old C++ ABI (torch.compiled_with_cxx11_abi() is False); src/torch.cmake refuses it"
[[ $(torch_field torch_cuda) != None ]] || die "this PyTorch has no CUDA (torch.version.cuda is None)"
[[ -d $TORCH_PREFIX ]] || die "torch.utils.cmake_prefix_path ($TORCH_PREFIX) is not a folder"

# ---------------------------------------------------------------------------------------------
step "private prefix: OpenMPI + parallel HDF5 (+ small build dependencies) from $DEBS"
[[ -d $DEBS ]] || die "no $DEBS: run bench/gpu/download_debs.sh on a Debian 12 machine and carry the folder"
PREFIX=$BUILD/prefix
mkdir -p "$BUILD"
"$ROOT/bench/gpu/setup_prefix.sh" "$DEBS" "$PREFIX"
# shellcheck disable=SC1091
source "$PREFIX/env.sh"
L=$PREFIX/usr/lib/x86_64-linux-gnu
# Fashion-MNIST: the default study and the dataset tests read /usr/share/datasets; a machine
# without it gets the carried data package's copy (unpacked into the prefix) linked there.
FMNIST=/usr/share/datasets/fashion-mnist
if [[ ! -e $FMNIST/train-images-idx3-ubyte.gz && -d $PREFIX$FMNIST ]]; then
  if mkdir -p /usr/share/datasets 2>/dev/null && ln -sfn "$PREFIX$FMNIST" "$FMNIST"; then
    echo "Fashion-MNIST: linked $FMNIST -> $PREFIX$FMNIST"
  else
    echo "note: cannot link $FMNIST (not root?): the tests that need Fashion-MNIST skip"
  fi
fi
# The CLI tests read HDF5 files with a Python that has h5py and numpy: Debian's /usr/bin/python3
# where it has them, else $PY if it does.
if ! /usr/bin/python3 -c 'import h5py, numpy' 2>/dev/null && "$PY" -c 'import h5py, numpy' 2>/dev/null; then
  HARSANYI_TEST_PYTHON=$(command -v "$PY")
  export HARSANYI_TEST_PYTHON
  echo "CLI tests read HDF5 with $HARSANYI_TEST_PYTHON (/usr/bin/python3 has no h5py/numpy)"
fi

step "MPI + parallel HDF5 smoke test (2 ranks)"
SMOKE=$BUILD/mpi_smoke
mkdir -p "$SMOKE"
cat >"$SMOKE/smoke.c" <<'C'
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank, size, one = 1, sum = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Allreduce(&one, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL);
  hid_t f = H5Fcreate(argv[1], H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  hsize_t n = (hsize_t)size, off = (hsize_t)rank, cnt = 1;
  hid_t fs = H5Screate_simple(1, &n, NULL), ms = H5Screate_simple(1, &cnt, NULL);
  hid_t d = H5Dcreate(f, "rank", H5T_NATIVE_INT, fs, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Sselect_hyperslab(fs, H5S_SELECT_SET, &off, NULL, &cnt, NULL);
  hid_t x = H5Pcreate(H5P_DATASET_XFER);
  H5Pset_dxpl_mpio(x, H5FD_MPIO_COLLECTIVE);
  herr_t w = H5Dwrite(d, H5T_NATIVE_INT, ms, fs, x, &rank);
  H5Dclose(d); H5Sclose(fs); H5Sclose(ms); H5Pclose(x); H5Pclose(fapl); H5Fclose(f);
  if (rank == 0) printf("mpi_smoke: %d ranks, allreduce %d, collective HDF5 write %s\n", size, sum,
                        w < 0 ? "FAILED" : "ok");
  MPI_Finalize();
  return (sum == size && w >= 0) ? 0 : 1;
}
C
(cd "$SMOKE" && h5pcc -o smoke smoke.c)  # h5pcc leaves smoke.o in the working folder
mpirun -np 2 "$SMOKE/smoke" "$SMOKE/smoke.h5" | tee "$REPORT/mpi_smoke.txt"

# ---------------------------------------------------------------------------------------------
step "configure (Release, CUDA archs $ARCHS, LibTorch from $TORCH_PREFIX)"
cmake -S "$ROOT" -B "$BUILD" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release \
  -DHARSANYI_ENABLE_CUDA=ON \
  -DHARSANYI_CUDA_ARCHS="$ARCHS" \
  -DCMAKE_CUDA_COMPILER="$NVCC" \
  -DCMAKE_PREFIX_PATH="$TORCH_PREFIX;$PREFIX/usr" \
  -Dfmt_DIR="$L/cmake/fmt" -DGTest_DIR="$L/cmake/GTest" \
  -DMPI_C_COMPILER="$PREFIX/usr/bin/mpicc.openmpi" \
  -DMPI_CXX_COMPILER="$PREFIX/usr/bin/mpicxx.openmpi" \
  -DMPIEXEC_EXECUTABLE="$PREFIX/usr/bin/mpirun.openmpi" \
  -DHDF5_PREFER_PARALLEL=ON 2>&1 | tee "$REPORT/cmake_configure.log"
grep -q "CUDA kernels enabled" "$REPORT/cmake_configure.log" || die "CMake did not enable the CUDA kernels"
cp "$BUILD/CMakeCache.txt" "$REPORT/CMakeCache.txt"

step "build (ninja -j $JOBS)"
ninja -C "$BUILD" -j "$JOBS" 2>&1 | tee "$REPORT/build.log"

step "devices: the build must see the GPU"
HARSANYI=$(find "$BUILD" -maxdepth 2 -name harsanyi -type f -perm -u+x | head -n 1)
[[ -n $HARSANYI ]] || die "the harsanyi binary was not built"
"$HARSANYI" devices 2>&1 | tee "$REPORT/devices.txt"
grep -Eq '^GPUs usable: [1-9]' "$REPORT/devices.txt" || die "harsanyi devices reports no usable GPU"

# ---------------------------------------------------------------------------------------------
if part cudatests; then
step "CUDA tests: none may skip"
# NAME or NAME:FILTER (test_network: only its GPU test; its other tests are the CPU's)
for tspec in test_cuda_backend test_cuda_optimal test_cuda_order 'test_network:MaskedValuesGpu.*'; do
  tname=${tspec%%:*}
  tfilter='*'
  [[ $tspec == *:* ]] && tfilter=${tspec#*:}
  TCB=$(find "$BUILD/tests" -maxdepth 2 -name "$tname" -type f -perm -u+x | head -n 1)
  [[ -n $TCB ]] || die "$tname was not built"
  set +e
  "$TCB" --gtest_filter="$tfilter" --gtest_output="json:$REPORT/$tname.json" 2>&1 |
    tee "$REPORT/$tname.log"
  tcb_rc=${PIPESTATUS[0]}
  set -e
  [[ $tcb_rc -eq 0 ]] || fail_step "$tname failed (exit $tcb_rc): see $tname.log"
  if grep -q '\[  SKIPPED \]' "$REPORT/$tname.log"; then
    fail_step "CUDA tests were skipped on the GPU machine (see $tname.log)"
  fi
done
fi


# ---------------------------------------------------------------------------------------------
B=$BUILD/bench
if part bench; then
step "GPU benchmarks"
TAG=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1 | tr -cs 'A-Za-z0-9' '-' | sed 's/-$//')
DAY=$(date -u +%F)
bench() {  # bench NAME ARGS... : table to NAME.txt, JSON to NAME.json; fails on a nonzero exit
  local name=$1
  shift
  echo "--- $name: $*"
  local rc
  set +e
  "$@" -j "$REPORT/$name.json" 2>&1 | tee "$REPORT/$name.txt"
  rc=${PIPESTATUS[0]}
  set -e
  [[ $rc -eq 0 ]] || fail_step "$name exited with $rc (see $name.txt)"
}
if [[ $QUICK == 1 ]]; then
  bench "gpu_moebius_${TAG}_${DAY}" "$B/gpu_moebius_perf" -b 10 -e 25 -i 5 -n 5
  bench "gpu_moebius_batched_${TAG}_${DAY}" "$B/gpu_moebius_perf" -b 10 -e 10 -s 64 -n 5
  bench "gpu_order_${TAG}_${DAY}" "$B/gpu_order_perf" -b 10 -e 22 -i 4 -n 3
  bench "gpu_sgd_${TAG}_${DAY}" "$B/gpu_sgd_perf" -b 10 -e 10 -s 64 --iters 2000 -n 1
  bench "gpu_optimal_${TAG}_${DAY}" "$B/gpu_optimal_perf" -b 8 -e 10 -i 2 -s 64 -n 1 -w 0 \
    -t "$(nproc)"
  bench "gpu_masked_forward_${TAG}_${DAY}" "$B/masked_forward_perf" -b 9 -e 12 -i 3 -n 5 -t 1 \
    --device cuda
else
  # single arrays up to n = 28 (f32: 1 GiB); the transform against the copy and the floor
  bench "gpu_moebius_${TAG}_${DAY}" "$B/gpu_moebius_perf" -b 10 -e 28 -n 21 -w 3
  # batches at small n: 1024 samples, GEMM baseline up to n = 13
  bench "gpu_moebius_batched_${TAG}_${DAY}" "$B/gpu_moebius_perf" -b 6 -e 16 -s 1024 -n 21 -w 3
  # the per-order metrics (threshold, per-order sums and counts) against the bytes floor and the
  # CPU, bitwise: single samples up to n = 28, and a study's batch of 40 samples
  bench "gpu_order_${TAG}_${DAY}" "$B/gpu_order_perf" -b 10 -e 28 -i 2 -n 11 -w 2
  bench "gpu_order_s40_${TAG}_${DAY}" "$B/gpu_order_perf" -b 8 -e 16 -i 4 -s 40 -n 11 -w 2
  # the papers' protocol: n = 10, 20000 iterations, 1024 samples (target <= 10 s)
  bench "gpu_sgd_${TAG}_${DAY}" "$B/gpu_sgd_perf" -b 10 -e 10 -s 1024 --iters 20000 -n 3 -w 1
  # a study's batch: 40 samples (20 train + 20 test) per epoch, n = 8..12
  bench "gpu_sgd_s40_${TAG}_${DAY}" "$B/gpu_sgd_perf" -b 8 -e 12 -s 40 --iters 20000 -n 3 -w 1 \
    --cpu-n 2
  # masked forward on the GPU against plain batched inference (target: overhead <= 11 %, i.e.
  # >= 90 % of the plain throughput), at the default chunk and at a large one
  bench "gpu_masked_forward_${TAG}_${DAY}" "$B/masked_forward_perf" -b 9 -e 16 -n 11 -w 2 -t 1 \
    --device cuda
  bench "gpu_masked_forward_b8192_${TAG}_${DAY}" "$B/masked_forward_perf" -b 13 -e 16 -n 11 \
    -w 2 -t 1 --device cuda --batch 8192
  # small n with 16 samples packed into each forward (what a study does): chunks of 8192 rows
  bench "gpu_masked_forward_packed_${TAG}_${DAY}" "$B/masked_forward_perf" -b 9 -e 12 -n 11 \
    -w 2 -t 1 -s 16 --device cuda --batch 8192
  # the optimal solver against the CPU (all cores) on the same samples: a study's batch of 40 at
  # n = 8..10 (the first H100 run took over 3 minutes for one row of 1024 samples at n = 8), then
  # 128 samples at n = 12 and 14; each capped at 200 s so that the steps after it still run
  bench "gpu_optimal_s40_${TAG}_${DAY}" timeout -k 5 200 "$B/gpu_optimal_perf" -b 8 -e 10 \
    -s 40 -n 1 -w 0 -t "$(nproc)" --cpu-n 40
  bench "gpu_optimal_${TAG}_${DAY}" timeout -k 5 200 "$B/gpu_optimal_perf" -b 12 -e 14 -i 2 \
    -s 128 -n 1 -w 0 -t "$(nproc)" --cpu-n 16
  # CPU reference tables of the same machine, for the README's comparison
  bench "cpu_moebius_${TAG}_${DAY}" "$B/moebius_perf" -b 20 -e 26 -i 2 -t "$(nproc)" -n 5
fi
nvidia-smi --query-gpu=temperature.gpu,clocks.sm,clocks.mem,power.draw --format=csv \
  >"$REPORT/gpu_after.csv"
fi

# ---------------------------------------------------------------------------------------------
if [[ $STUDY == 1 ]] && part study; then
  step "the default study end to end: GPU vs CPU"
  # The embedded default (Fashion-MNIST, LeNet, 31 epochs, 20 + 20 samples, v stored): on the GPU
  # (training and analysis), then on the CPU (all cores) from scratch, for the two wall times.
  # Training on the GPU does not give the CPU's weights bitwise, so the GPU study's checkpoints
  # are also analysed on the CPU (--resume on copied checkpoints): compare_studies.py sets the
  # two analyses of the same models side by side (v(S), losses, mean orders).
  study_run() {  # study_run NAME DEVICE [ARGS...]
    local name=$1 dev=$2 t0 t1 rc
    shift 2
    t0=$(date +%s.%N)
    set +e
    "$HARSANYI" run --no-report --set runtime.device="$dev" --set 'interactions.store=["values"]' \
      --set output.path="$BUILD/study_$name.h5" "$@" >"$REPORT/study_$name.log" 2>&1
    rc=$?
    set -e
    t1=$(date +%s.%N)
    if [[ $rc -ne 0 ]]; then
      tail -n 20 "$REPORT/study_$name.log"
      fail_step "the default study ($name, $dev) exited with $rc (see study_$name.log)"
      return 0
    fi
    echo "$name $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')" >>"$REPORT/study_times.txt"
    tail -n 2 "$REPORT/study_$name.log"
  }
  rm -rf "$REPORT/study_times.txt" "$BUILD"/study_*.h5 "$BUILD"/study_*.h5.part "$BUILD"/study_*.h5.ckpt
  study_run cuda cuda --force
  # the same without overlapping one epoch's solver with the next epoch's forward passes
  study_run cuda_no_overlap cuda --force --overlap off
  study_run cpu cpu --force
  if [[ -d $BUILD/study_cuda.h5.ckpt ]]; then
    cp -r "$BUILD/study_cuda.h5.ckpt" "$BUILD/study_cpu_same.h5.ckpt"
    study_run cpu_same cpu --resume
    # the same models analysed with the optimal solver, on the GPU (forced: auto keeps it on
    # the CPU at n = 9) and on the CPU, epochs 0..1 (the first H100 run analysed 1 sample/s)
    for dev in cuda cpu; do
      cp -r "$BUILD/study_cuda.h5.ckpt" "$BUILD/study_optimal_$dev.h5.ckpt"
      study_run "optimal_$dev" "$dev" --resume --until-epoch 1 \
        --set 'interactions.solver="optimal"' --set runtime.solver_device="$dev"
    done
  fi
  cat "$REPORT/study_times.txt"
  for name in cuda cpu cpu_same; do
    "$HARSANYI" report "$BUILD/study_$name.h5" >"$REPORT/study_${name}_report.txt" 2>&1 || true
  done
  if [[ -e $BUILD/study_cuda.h5 && -e $BUILD/study_cuda_no_overlap.h5 ]]; then
    # --overlap changes when the solver runs, not what it computes: the files must be equal
    set +e
    (T=$BUILD; source "$ROOT/tests/cli/common.sh"
     compare_h5 "$BUILD/study_cuda.h5" "$BUILD/study_cuda_no_overlap.h5") 2>&1 |
      tee "$REPORT/study_overlap_equal.txt"
    ov_rc=${PIPESTATUS[0]}
    set -e
    [[ $ov_rc -eq 0 ]] ||
      fail_step "the GPU study with and without --overlap differ (study_overlap_equal.txt)"
  fi
  if [[ -e $BUILD/study_cpu_same.h5 ]]; then
    "${HARSANYI_TEST_PYTHON:-/usr/bin/python3}" "$ROOT/bench/gpu/compare_studies.py" \
      "$BUILD/study_cuda.h5" "$BUILD/study_cpu_same.h5" 2>&1 | tee "$REPORT/study_gpu_vs_cpu.txt" ||
      fail_step "the GPU and CPU analyses of the same models differ (study_gpu_vs_cpu.txt)"
  fi
fi

# ---------------------------------------------------------------------------------------------
if part studyperf; then
step "study_perf on its own (a crash here is diagnosed with the debugger)"
# On the first H100 run study_perf died with a call to address 0 about a second in (any device,
# with or without mpirun) while `harsanyi run` on the same study was fine. Run it once here; if
# it fails, record what the debugger sees (the return address above the null call names the
# caller) and which OpenMP and CUDA runtimes each binary loads.
SP=(--config "$ROOT/bench/configs/scaling_tiny.toml" -b 4 -e 4 -s 4 -n 1 -w 0 -t 1)
set +e
"$B/study_perf" "${SP[@]}" >"$REPORT/study_perf_alone.txt" 2>&1
sp_rc=$?
set -e
echo "study_perf alone: exit $sp_rc" | tee -a "$REPORT/study_perf_alone.txt"
if [[ $sp_rc -ne 0 ]]; then
  {
    echo "== ldd study_perf"; ldd "$B/study_perf"
    echo "== ldd harsanyi"; ldd "$HARSANYI"
  } >"$REPORT/study_perf_ldd.txt" 2>&1 || true
  DBG=$(command -v gdb || command -v cuda-gdb || true)
  if [[ -n $DBG ]]; then
    timeout 300 "$DBG" -batch -ex run -ex bt -ex 'info registers rip rsp' -ex 'x/8a $sp' \
      -ex 'info symbol *(void**)$sp' -ex 'info sharedlibrary' -ex 'thread apply all bt 8' \
      --args "$B/study_perf" "${SP[@]}" >"$REPORT/study_perf_gdb.txt" 2>&1 || true
  fi
  fail_step "study_perf exited with $sp_rc on its own (see study_perf_alone.txt, study_perf_gdb.txt)"
fi
fi

# ---------------------------------------------------------------------------------------------
skipped=0
if part ctest; then
step "tests: the whole ctest suite"
# Tests that use /usr/bin/python3 with h5py, or Fashion-MNIST in /usr/share/datasets, depend on
# the machine; say up front what is missing.
"${HARSANYI_TEST_PYTHON:-/usr/bin/python3}" -c 'import h5py, numpy' 2>/dev/null ||
  echo "note: no Python with h5py/numpy: the CLI tests that read HDF5 files with it fail"
[[ -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]] ||
  echo "note: no Fashion-MNIST in /usr/share/datasets: the tests that need it skip"
ctest_args=(--test-dir "$BUILD" --output-on-failure -j "$JOBS" --timeout 1200)
if [[ -n $EXCLUDE ]]; then
  ctest_args+=(-E "$EXCLUDE")
  echo "ctest: excluding tests matching '$EXCLUDE'" | tee "$REPORT/ctest_excluded.txt"
fi
set +e
ctest "${ctest_args[@]}" \
  --output-junit "$REPORT/ctest.junit.xml" 2>&1 | tee "$REPORT/ctest.log"
ctest_rc=${PIPESTATUS[0]}
set -e
skipped=$({ grep -E '\(Skipped\)$' "$REPORT/ctest.log" || true; } | tee "$REPORT/ctest_skipped.txt" | wc -l)
echo "ctest: exit $ctest_rc, $skipped skipped (list in ctest_skipped.txt)"
[[ $ctest_rc -eq 0 ]] || fail_step "ctest failed (exit $ctest_rc): see ctest.log"
if grep -q 'Cuda' "$REPORT/ctest_skipped.txt"; then
  fail_step "ctest skipped CUDA tests (see ctest_skipped.txt)"
fi
fi



step "summary"
{
  echo "harsanyi GPU report: git $GIT_SHA, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(hostname)"
  echo "GPU: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -n 1)"
  echo "LibTorch: $(torch_field torch_version) (CUDA $(torch_field torch_cuda), cxx11 ABI $(torch_field torch_cxx11_abi))"
  if [[ -e $REPORT/ctest.log ]]; then
    echo "ctest: $(grep -E 'tests passed|tests failed' "$REPORT/ctest.log" | tail -n 1), $skipped skipped"
  else
    echo "ctest: not run (HARSANYI_GPU_PARTS=$PARTS)"
  fi
  for tname in test_cuda_backend test_cuda_optimal test_cuda_order test_network; do
    [[ -e $REPORT/$tname.log ]] || continue
    echo "$tname: $(grep -E '^\[  (PASSED|FAILED)  \]' "$REPORT/$tname.log" | tail -n 2 | tr '\n' ' ')"
  done
  [[ -e $REPORT/study_times.txt ]] && echo "default study wall time (s): $(tr '\n' ' ' <"$REPORT/study_times.txt")"
  for f in "$REPORT"/gpu_*.txt "$REPORT"/cpu_*.txt; do
    [[ -e $f ]] || continue
    echo "$(basename "$f"): $(grep '^# result' "$f" | tail -n 1)"
  done
} | tee "$REPORT/SUMMARY.txt"
