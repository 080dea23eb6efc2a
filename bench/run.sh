#!/usr/bin/env bash
# make bench: kerac's benchmark, each case a JSON line (see docs/PERFORMANCE.md).
#   1. build/bench: kerac's own AVX-512 matrix products on 1 and 2 threads, idle, and on 2
#      threads while a second process keeps both cores busy; the same network in
#      mixed_bfloat16 (AMX) on 2 threads; then the convnet on 1 and 2;
#   2. the same network with the products through OpenBLAS instead (KERAC_GEMM_BLAS=1), its
#      pthread build and, when installed (libopenblas0-openmp), its OpenMP build, idle and
#      loaded: the candidates the engine was chosen from. OPENBLAS_CORETYPE names the kernel,
#      since OpenBLAS 0.3.21 does not recognise this CPU and would fall back to SSE3 kernels.
#   3. build/bench_load: loading data (.npy, IDX, MNIST's .gz, a folder of 60,000 PNGs on 1
#      thread and on all cores) beside plain read()s of the same files, then
#      bench/compare_numpy_load.py: the same files through NumPy (and PIL), alternating, when a
#      python with numpy is found ($PYTHON, /work/venvs/k3/bin/python, python3).
# BENCH_ARGS (e.g. "--epochs 5") is passed to every run of build/bench.
set -euo pipefail
cd "$(dirname "$0")/.."
bench=build/bench
args=${BENCH_ARGS:-}

echo "# kerac's kernels"
$bench $args
echo "# the same network in Keras's mixed_bfloat16 (bf16 products, float32 weights and sums)"
$bench $args --bf16 --no-peak --threads 2 || echo "# mixed_bfloat16: not available on this CPU"
echo "# the same network built with the Functional API, side by side with the Sequential one:"
echo "# in one process, the same batches, alternating blocks of 47 steps (medians, ratio, same bits)"
$bench --compare-functional 40 --threads 2
echo "# and as whole fits, alternating processes (each line's sec_per_epoch a median of its epochs)"
for round in 1 2 3; do
    $bench $args --no-peak --threads 2 --model mlp
    $bench $args --no-peak --threads 2 --model mlp_functional
done
echo "# keras.io's simple MNIST convnet (Adam, batch 128, 54,000 images)"
for threads in 1 2; do
    $bench $args --model convnet --no-peak --threads "$threads"
done

echo "# a Conv1D text classifier's training step (Conv1D(128, 5) on (400, 50), GlobalMaxPooling1D,"
echo "# Dense(1)); Keras 3 / JAX's: KERAS_BACKEND=jax python3 bench/conv1d_keras.py"
for threads in 1 2; do
    build/conv1d_steps --threads "$threads"
done

blas_coretype=${OPENBLAS_CORETYPE:-$(grep -q avx512_bf16 /proc/cpuinfo && echo Cooperlake || echo Haswell)}
multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
for flavour in pthread openmp; do
    dir=/usr/lib/$multiarch/openblas-$flavour
    if [ ! -e "$dir/libopenblas.so.0" ]; then
        echo "# OpenBLAS $flavour: not installed, skipped"
        continue
    fi
    echo "# OpenBLAS $flavour ($blas_coretype kernels)"
    for threads in 1 2; do
        KERAC_GEMM_BLAS=1 OPENBLAS_CORETYPE=$blas_coretype LD_LIBRARY_PATH=$dir \
            $bench $args --no-peak --threads "$threads"
    done
    # under load OpenBLAS can crawl (its threads wait for each other at every product):
    # give up after 10 minutes and say so
    KERAC_GEMM_BLAS=1 OPENBLAS_CORETYPE=$blas_coretype LD_LIBRARY_PATH=$dir \
        timeout 600 $bench $args --no-peak --loaded ||
        echo "{\"case\": \"train_mlp_784_512_512_10\", \"gemm\": \"openblas-$flavour\", \"threads\": 2, \"load\": \"busy_second_process\", \"gave_up_after_s\": 600}"
done

echo "# loading data: kerac's loaders beside a plain read() of the same file (page cache warm),"
echo "# and a folder of MNIST's 60,000 training images as PNGs on 1 thread and on all cores"
build/bench_load --rounds 5
python=
for candidate in "${PYTHON:-}" /work/venvs/k3/bin/python python3; do
    if [ -n "$candidate" ] && "$candidate" -c 'import numpy' 2>/dev/null; then
        python=$candidate
        break
    fi
done
if [ -n "$python" ]; then
    echo "# the same files through NumPy (np.load, np.fromfile, gzip + np.frombuffer) and PIL,"
    echo "# alternating with build/bench_load in one run ($python)"
    "$python" bench/compare_numpy_load.py --rounds 5
else
    echo "# NumPy comparison skipped: no python with numpy (\$PYTHON, /work/venvs/k3/bin/python, python3)"
fi
