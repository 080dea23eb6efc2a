# kerac: Keras in C. `make` builds the libraries and the examples into build/;
# `make test` runs the Criterion suite; `make test-asan` runs it under ASan+UBSan;
# `make test-tsan` the threaded tests under ThreadSanitizer; `make valgrind` the examples under memcheck.
PREFIX ?= /usr/local
CC ?= cc
BUILD ?= build
# No -march: the kernels for AVX-512, AMX, AVX512-BF16 (and AVX2+FMA) are compiled with target
# attributes and picked at run time (src/util/isa.h; KERAC_ISA=avx512|avx2|generic caps the
# tier), so one build runs on every x86-64 at full speed. OPT="-O3 -march=native" still works
# and computes the same numbers: -ffp-contract=off below keeps the compiler from fusing a*b+c
# on its own (the kernels write their FMAs out), whatever the flags and compiler.
OPT ?= -O3
# OpenBLAS is not linked: src/ops/blas.c loads it on first use (libopenblas0 at run time)
PKGS := zlib libcurl libcrypto hdf5 libzip libcjson libpng libjpeg
CFLAGS ?= $(OPT) -g
# (-Wno-missing-field-initializers: clang's -Wextra warns about designated initialisers that
# leave fields to zero, which is how kerac's option structs are meant to be used)
CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers \
          -fPIC -fopenmp-simd -fno-math-errno -ffp-contract=off \
          -Iinclude -Isrc $(shell pkg-config --cflags $(PKGS))
LDLIBS += $(shell pkg-config --libs $(PKGS)) -lm -lpthread -ldl
# MPI (optional: data-parallel kc_fit, src/dist/): found through mpicc's wrapper flags (Open MPI
# from Debian: openmpi-bin, libopenmpi-dev). With it the library gets -DKERAC_MPI and links
# MPI; without it everything builds and kc_distributed_init says how to get it. MPI=0 builds
# without it even where it is installed.
KERAC_VERSION := $(shell git describe --always --dirty 2>/dev/null || echo unknown)
MPI ?= $(if $(shell command -v mpicc 2>/dev/null),1,0)
ifeq ($(MPI),1)
MPI_CFLAGS := $(shell mpicc --showme:compile 2>/dev/null)
MPI_LIBS := $(shell mpicc --showme:link 2>/dev/null)
CFLAGS += -DKERAC_MPI
LDLIBS += $(MPI_LIBS)
endif
TEST_LIBS := $(shell pkg-config --libs criterion)

SRC := $(sort $(wildcard src/*.c src/*/*.c))
OBJ := $(SRC:%.c=$(BUILD)/obj/%.o)
TESTS := $(sort $(wildcard tests/test_*.c))
TEST_BINS := $(TESTS:tests/%.c=$(BUILD)/tests/%)
EXAMPLES := $(sort $(wildcard examples/*.c))
EXAMPLE_BINS := $(EXAMPLES:examples/%.c=$(BUILD)/%)
# the kerac program (cli/): its subcommands share the examples' network builders
CLI_SRC := $(sort $(wildcard cli/*.c))
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)

all: $(BUILD)/libkerac.a $(BUILD)/libkerac.so $(EXAMPLE_BINS) $(BUILD)/kerac $(BUILD)/kerac.pc

$(BUILD)/obj/%.o: %.c Makefile include/kerac.h src/internal.h $(wildcard src/*.h src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/src/dist/%.o: src/dist/%.c Makefile include/kerac.h src/internal.h $(wildcard src/*.h src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(MPI_CFLAGS) -DKERAC_VERSION='"$(KERAC_VERSION)"' -c $< -o $@

$(BUILD)/libkerac.a: $(OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libkerac.so: $(OBJ)
	$(CC) -shared -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(BUILD)/%: examples/%.c $(wildcard examples/*.h) $(BUILD)/libkerac.a
	$(CC) $(CFLAGS) $< -o $@ $(BUILD)/libkerac.a $(LDFLAGS) $(LDLIBS)

$(BUILD)/obj/cli/%.o: cli/%.c cli/common.h Makefile include/kerac.h $(wildcard examples/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Iexamples -c $< -o $@

$(BUILD)/kerac: $(CLI_OBJ) $(BUILD)/libkerac.a
	$(CC) $(CFLAGS) $(CLI_OBJ) -o $@ $(BUILD)/libkerac.a $(LDFLAGS) $(LDLIBS) $(PLOT_LIBS)

$(BUILD)/bench: bench/bench.c $(BUILD)/libkerac.a
	$(CC) $(CFLAGS) $< -o $@ $(BUILD)/libkerac.a $(LDFLAGS) $(LDLIBS)

# the recurrent layers' benchmark (bench/compare_pytorch_rnn.py runs it)
$(BUILD)/bench_rnn: bench/rnn.c $(BUILD)/libkerac.a
	$(CC) $(CFLAGS) $< -o $@ $(BUILD)/libkerac.a $(LDFLAGS) $(LDLIBS)

# the loaders' benchmark: .npy, IDX and a PNG folder against plain read() (bench/run.sh,
# bench/compare_numpy_load.py)
$(BUILD)/bench_load: bench/load.c $(BUILD)/libkerac.a
	$(CC) $(CFLAGS) $< -o $@ $(BUILD)/libkerac.a $(LDFLAGS) $(LDLIBS)

# the plain step timing that links against any kerac build (docs/PERFORMANCE.md)

$(BUILD)/train_steps: bench/train_steps.c $(BUILD)/libkerac.a
	$(CC) $(CFLAGS) $< -o $@ $(BUILD)/libkerac.a $(LDFLAGS) $(LDLIBS)

# the Conv1D text classifier's training step (docs/PERFORMANCE.md, "Conv1D")
$(BUILD)/conv1d_steps: bench/conv1d_steps.c $(BUILD)/libkerac.a
	$(CC) $(CFLAGS) $< -o $@ $(BUILD)/libkerac.a $(LDFLAGS) $(LDLIBS)

# the benchmark: one JSON line per case (see docs/PERFORMANCE.md); needs MNIST via $$KERAC_DATA
bench: $(BUILD)/bench $(BUILD)/conv1d_steps $(BUILD)/bench_load
	BENCH_ARGS="$(BENCH_ARGS)" bash bench/run.sh

$(BUILD)/tests/%: tests/%.c tests/testutil.h tests/tsan_shim.h tests/fixture.h tests/seq_fixture.h $(wildcard examples/*.h) $(BUILD)/libkerac.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(BUILD)/libkerac.a $(LDFLAGS) $(LDLIBS) $(TEST_LIBS)

# the kerac program's pictures (cli/plot.c) draw with cairo; libkerac itself does not link it
PLOT_PKGS := cairo fontconfig
PLOT_CFLAGS = $(shell pkg-config --cflags $(PLOT_PKGS))
PLOT_LIBS = $(shell pkg-config --libs $(PLOT_PKGS))
$(BUILD)/obj/cli/plot.o: cli/plot.c cli/plot.h Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PLOT_CFLAGS) -c $< -o $@

# test_plot reads the PNGs back with libpng
$(BUILD)/tests/test_plot: tests/test_plot.c tests/testutil.h cli/plot.h $(BUILD)/obj/cli/plot.o $(BUILD)/libkerac.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Icli $< $(BUILD)/obj/cli/plot.o -o $@ $(BUILD)/libkerac.a $(LDFLAGS) $(LDLIBS) \
	  $(PLOT_LIBS) $(shell pkg-config --libs libpng) $(TEST_LIBS)

# the fuzzers' seeds and findings through the harnesses' own entry points (fuzz/)
$(BUILD)/tests/test_fuzz_regressions: tests/test_fuzz_regressions.c $(wildcard fuzz/*.c fuzz/*.h) $(BUILD)/libkerac.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(BUILD)/libkerac.a $(LDFLAGS) $(LDLIBS) $(TEST_LIBS)

# test_cli runs the kerac program (and mnist_mlp, whose numbers kerac train mlp2 repeats)
$(BUILD)/tests/test_cli: tests/test_cli.c tests/testutil.h $(BUILD)/kerac $(BUILD)/mnist_mlp $(BUILD)/libkerac.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DKERAC_BIN='"$(BUILD)/kerac"' -DMNIST_MLP_BIN='"$(BUILD)/mnist_mlp"' $< -o $@ \
	  $(BUILD)/libkerac.a $(LDFLAGS) $(LDLIBS) $(TEST_LIBS)

# test_alloc counts every allocation kerac makes (it wraps the allocator's entry points; in
# the rule itself, since test-asan sets LDFLAGS on the command line)
WRAP_ALLOC := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=posix_memalign
$(BUILD)/tests/test_alloc: tests/test_alloc.c tests/testutil.h $(BUILD)/libkerac.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(BUILD)/libkerac.a $(LDFLAGS) $(WRAP_ALLOC) $(LDLIBS) $(TEST_LIBS)

# test_faults fails the Nth allocation (the same wraps), and runs the examples under rlimits
$(BUILD)/tests/test_faults: tests/test_faults.c tests/testutil.h $(BUILD)/libkerac.a $(BUILD)/kerac $(BUILD)/mnist_mlp
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DKERAC_BIN='"$(BUILD)/kerac"' -DMNIST_MLP_BIN='"$(BUILD)/mnist_mlp"' $< -o $@ \
	  $(BUILD)/libkerac.a $(LDFLAGS) $(WRAP_ALLOC) $(LDLIBS) $(TEST_LIBS)

# helpers the fixture scripts run (tests/gen_keras_files.py), not part of the test run
$(BUILD)/tools/%: tests/tools/%.c $(wildcard examples/*.h) $(BUILD)/libkerac.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(BUILD)/libkerac.a $(LDFLAGS) $(LDLIBS)

# distributed training under mpirun (tests/test_mpi.sh; needs MPI in the build and MNIST)
test-mpi: $(BUILD)/tools/dist_fit
	@test "$(MPI)" = 1 || { echo "test-mpi: this build has no MPI (apt-get install openmpi-bin libopenmpi-dev)"; exit 1; }
	bash tests/test_mpi.sh $(BUILD)

# Each test binary runs on its own; tests/run.sh ends with one line counting every test.
test: $(TEST_BINS)
	@bash tests/run.sh $(TEST_BINS)

test-asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  LDFLAGS="-fsanitize=address,undefined" test

# The threaded tests under ThreadSanitizer. Criterion cannot run under TSan (its sandbox's
# arena), so these sources compile against tests/tsan_shim.h (-DKERAC_TSAN_SHIM): each test in
# a fresh process, Criterion's closing line. Every binary runs with 2 and 4 threads, each with
# kerac's products and with OpenBLAS's; any TSan report fails its test. tests/tsan.supp lists
# the third-party code TSan cannot see into.
TSAN_TESTS := test_threads test_engine test_conv test_rnn test_conv1d
# the tests that run threads, not the slow checks against plain loops (gemm/every_layout_* take
# 45 s each under TSan, gemm/block_done_* 17 s; fused_step/* hands blocks over in training):
# KERAC_TSAN_TESTS, read by tests/tsan_shim.h
TSAN_SELECTED := threads/* pool/* determinism/* fused_step/* gemm/sparse_a_gives_the_dense_bits \
  conv_engine/* conv_grad/conv_same_stride2_then_conv \
  conv_grad/batchnorm_after_conv_training_and_inference rnn_grad/* rnn_state/* conv1d_grad/* \
  conv1d_dropout/*
TSAN_OPTIONS_RUN := suppressions=$(CURDIR)/tests/tsan.supp halt_on_error=0 exitcode=66 second_deadlock_stack=1
test-tsan:
	$(MAKE) BUILD=build-tsan OPT="-O1 -g -fsanitize=thread -fno-omit-frame-pointer -DKERAC_TSAN_SHIM" \
	  LDFLAGS="-fsanitize=thread" TEST_LIBS= tsan-run

tsan-run: $(TSAN_TESTS:%=$(BUILD)/tests/%)
	@TSAN_OPTIONS="$(TSAN_OPTIONS_RUN)" KERAC_TSAN_TESTS="$(TSAN_SELECTED)" RUN_THREADS="2 4" RUN_MODES="kerac blas" \
	  bash tests/run.sh $^

# The examples and the kerac program under valgrind memcheck (scripts/valgrind.sh), from a
# generic build: valgrind does not emulate AVX-512, so kerac takes OpenBLAS's products there.
valgrind:
	$(MAKE) BUILD=build-vg OPT="-O1" build-vg/mnist_mlp build-vg/kerac
	bash scripts/valgrind.sh build-vg

# the pkg-config file for a prefix: $(call write_pc,PREFIX,FILE)
write_pc = printf 'prefix=%s\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include\n\nName: kerac\nDescription: Keras in C\nVersion: 0.1.0\nRequires.private: %s\nLibs: -L$${libdir} -lkerac\nLibs.private: -lm -lpthread -ldl %s\nCflags: -I$${includedir}\n' '$(1)' '$(PKGS)' '$(MPI_LIBS)' > $(2)

$(BUILD)/kerac.pc: Makefile
	@mkdir -p $(BUILD)
	@$(call write_pc,$(PREFIX),$@)

install: all
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin
	install -m 644 include/kerac.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(BUILD)/libkerac.a $(BUILD)/libkerac.so $(DESTDIR)$(PREFIX)/lib/
	$(call write_pc,$(PREFIX),$(DESTDIR)$(PREFIX)/lib/pkgconfig/kerac.pc)
	install -m 755 $(BUILD)/kerac $(EXAMPLE_BINS) $(DESTDIR)$(PREFIX)/bin/

clean:
	rm -rf build build-asan build-tsan build-vg build-fuzz build-clang build-arm64

# ---- aarch64 (README "ARM64"): Debian's cross compiler, the arm64 libraries from the sysroot
# that scripts/cross-arm64.sh unpacks into build-arm64/sysroot (it installs the compiler and
# qemu-user too, once), the tests under qemu-aarch64. There KC_X86 is off (src/util/isa.h):
# no x86 kernels, the generic tier, OpenBLAS's products. ----
ARM64_BUILD := build-arm64
ARM64_CC ?= aarch64-linux-gnu-gcc
ARM64_SYSROOT ?= $(CURDIR)/$(ARM64_BUILD)/sysroot
ARM64_LIBDIRS := $(ARM64_SYSROOT)/usr/lib/aarch64-linux-gnu $(ARM64_SYSROOT)/lib/aarch64-linux-gnu \
  $(ARM64_SYSROOT)/usr/lib/aarch64-linux-gnu/openblas-pthread \
  $(ARM64_SYSROOT)/usr/lib/aarch64-linux-gnu/hdf5/serial
ARM64_ENV := PKG_CONFIG_SYSROOT_DIR=$(ARM64_SYSROOT) \
  PKG_CONFIG_LIBDIR=$(ARM64_SYSROOT)/usr/lib/aarch64-linux-gnu/pkgconfig:$(ARM64_SYSROOT)/usr/share/pkgconfig
# the sysroot's headers before /usr/include, which Debian's cross gcc searches last (the host's)
ARM64_MAKE := $(ARM64_ENV) $(MAKE) BUILD=$(ARM64_BUILD) MPI=0 \
  CC="$(ARM64_CC) -I$(ARM64_SYSROOT)/usr/include/aarch64-linux-gnu -I$(ARM64_SYSROOT)/usr/include" \
  LDFLAGS="$(foreach d,$(ARM64_LIBDIRS),-L$(d) -Wl,-rpath-link,$(d))"
# what runs the binaries: qemu, the cross C library's loader, the sysroot's libraries
ARM64_EMPTY :=
ARM64_PATH := $(subst $(ARM64_EMPTY) $(ARM64_EMPTY),:,$(strip $(ARM64_LIBDIRS)))
ARM64_RUN := timeout 900 env QEMU_LD_PREFIX=/usr/aarch64-linux-gnu QEMU_SET_ENV=LD_LIBRARY_PATH=$(ARM64_PATH) qemu-aarch64
# The fast subset under qemu (README "ARM64" has its time): the engine, layers, gradients,
# optimizers, saving/loading Keras fixtures, the data loaders, threads (with the default thread
# count: qemu's threads run). Not test_cli/test_faults (they start other kerac programs, which
# qemu-user without binfmt_misc cannot exec) nor test_plot (its suites' .fini, which the shim
# does not run).
ARM64_TESTS ?= test_threads test_engine test_layers2 test_conv test_rnn test_grad test_optimizers \
  test_losses test_metrics test_saving test_keras_ref test_keras_seq test_h5lite test_data \
  test_datasets test_preprocessing test_functional
# left out there: the slowest checks of the products against plain loops (30 to 100 s each
# under qemu; gemm/every_layout_one_thread stays)
ARM64_EXCLUDE ?= gemm/block_done_hands_over_every_element_once gemm/epilogues \
  gemm/sparse_a_gives_the_dense_bits gemm/every_layout_two_threads gemm/three_threads_uneven_splits

# Debian 12's aarch64 gcc 12.2 stops with an internal compiler error (vect_transform_reduction)
# on the tests' fmax reductions of floats into a double (expect_close and the like): the
# tests' loops are not vectorised there (the library's are)
$(ARM64_BUILD)/tests/% $(ARM64_BUILD)/qemu-tests/%: private CFLAGS += -fno-tree-loop-vectorize

# The tests for qemu: Criterion's sandbox stops and re-executes the binary, which qemu-user
# cannot ("Could not spawn test instance"), so these compile against tests/tsan_shim.h (each
# test in a forked process, as the ThreadSanitizer build); build-arm64/tests/ has the Criterion
# builds, for an aarch64 machine
$(BUILD)/qemu-tests/%: tests/%.c tests/testutil.h tests/tsan_shim.h tests/fixture.h tests/seq_fixture.h $(wildcard examples/*.h) $(BUILD)/libkerac.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DKERAC_TSAN_SHIM $< -o $@ $(BUILD)/libkerac.a $(LDFLAGS) $(LDLIBS)

cross-arm64:
	bash scripts/cross-arm64.sh
	+$(ARM64_MAKE) all $(TEST_BINS:$(BUILD)/%=$(ARM64_BUILD)/%)

# RUN_WRAP: tests/run.sh starts each binary through qemu; RUN_MODES=kerac: the OpenBLAS pass
# is the same run there (build/: where the tests write their files). With $$KERAC_DATA, then one
# epoch of MNIST's softmax regression (mnist_mlp --hidden 0: 20 s under qemu, a hidden layer
# would take 50 times longer), which must reach a test accuracy of 0.88.
test-arm64:
	bash scripts/cross-arm64.sh
	+$(ARM64_MAKE) $(ARM64_TESTS:%=$(ARM64_BUILD)/qemu-tests/%) $(ARM64_BUILD)/mnist_mlp
	@mkdir -p build
	KERAC_SHIM_EXCLUDE="$(ARM64_EXCLUDE)" RUN_WRAP="$(ARM64_RUN)" RUN_MODES=kerac \
	  bash tests/run.sh $(ARM64_TESTS:%=$(ARM64_BUILD)/qemu-tests/%)
	@if [ -n "$$KERAC_DATA" ]; then \
	  echo "== $(ARM64_BUILD)/mnist_mlp --hidden 0 --epochs 1 (qemu)"; \
	  $(ARM64_RUN) $(ARM64_BUILD)/mnist_mlp --hidden 0 --epochs 1 --verbose 2 | tee $(ARM64_BUILD)/mnist.log && \
	  awk '/^Test accuracy:/ { ok = $$3 >= 0.88 } END { exit !ok }' $(ARM64_BUILD)/mnist.log || \
	  { echo "!! mnist_mlp under qemu failed or stayed below 0.88"; exit 1; }; \
	fi

.PHONY: cross-arm64 test-arm64

.PHONY: all test test-mpi test-asan test-tsan tsan-run valgrind bench install clean
.SECONDARY:

# ---- fuzzing (fuzz/README.md): libFuzzer harnesses built with clang into build-fuzz/ ----------
# Every object is clang-built with ASan+UBSan and libFuzzer's coverage, except src/ops/gemm.c
# (GCC-only CPU feature strings), which gcc builds plainly: the parsers are what is fuzzed.
# FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION turns off kc_load's forked HDF5 probe, so that a
# crash reaches the fuzzer instead of being turned into an error by the parent process.
FUZZ_BUILD ?= build-fuzz
FUZZ_CI_RUNS ?= 3000 # make fuzz-ci: inputs per harness, from seed 1 (the same run everywhere)
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
              -fno-sanitize-recover=undefined -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -w -fPIC -Iinclude -Isrc $(shell pkg-config --cflags $(PKGS)) \
              $(FUZZ_FLAGS)
FUZZERS := $(sort $(patsubst fuzz/%.c,%,$(wildcard fuzz/fuzz_*.c)))
FUZZ_BINS := $(FUZZERS:%=$(FUZZ_BUILD)/%)
FUZZ_OBJ := $(filter-out $(FUZZ_BUILD)/obj/src/ops/gemm.o,$(SRC:%.c=$(FUZZ_BUILD)/obj/%.o))

$(FUZZ_BUILD)/obj/src/ops/gemm.o: src/ops/gemm.c Makefile include/kerac.h src/internal.h $(wildcard src/*.h src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(FUZZ_BUILD)/obj/%.o: %.c Makefile include/kerac.h src/internal.h $(wildcard src/*.h src/*/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_BUILD)/libkerac.a: $(FUZZ_OBJ) $(FUZZ_BUILD)/obj/src/ops/gemm.o
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_common.h $(FUZZ_BUILD)/libkerac.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< -o $@ $(FUZZ_BUILD)/libkerac.a $(LDLIBS)

fuzz-build: $(FUZZ_BINS)

# each harness for FUZZ_SECONDS on its committed corpus (new inputs go to build-fuzz/corpus)
fuzz: fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_BUILD=$(FUZZ_BUILD) bash fuzz/run.sh $(FUZZERS)

# CI: FUZZ_CI_RUNS inputs each from seed 1 on the committed corpus, so that a regression shows
# and a run here repeats what CI will run
fuzz-ci: fuzz-build
	FUZZ_RUNS=$(FUZZ_CI_RUNS) FUZZ_BUILD=$(FUZZ_BUILD) bash fuzz/run.sh $(FUZZERS)

.PHONY: fuzz fuzz-build fuzz-ci

# the seed writer (fuzz/make_seeds.sh runs it; the corpora it writes are committed)
$(FUZZ_BUILD)/make_seeds: fuzz/make_seeds.c fuzz/fuzz_common.h $(FUZZ_BUILD)/libkerac.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) $< -o $@ $(FUZZ_BUILD)/libkerac.a $(LDLIBS)

fuzz-seeds: $(FUZZ_BUILD)/make_seeds
	FUZZ_BUILD=$(FUZZ_BUILD) bash fuzz/make_seeds.sh

.PHONY: fuzz-seeds
