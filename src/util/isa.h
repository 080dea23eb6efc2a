/* isa.h: which instruction sets the library's kernels use, chosen once at run time (CPUID and
 * the OS's saved register state), never by the build's -m flags: one build runs on every
 * x86-64 and computes the same numbers whatever the compiler and flags. KERAC_ISA=avx512,
 * avx2 or generic caps the tier (tests force the lower ones); it never goes above what the
 * CPU has. Kernels for a tier are compiled with target attributes, between KC_TARGET_BEGIN_x
 * and KC_TARGET_END (GCC's target pragma, clang's attribute pragma), and called only after
 * kc_isa() says so. Elsewhere (aarch64: make cross-arm64) KC_X86 is undefined, the x86 kernels
 * and their intrinsics are left out (#ifdef KC_X86 around them), the target macros are empty,
 * the tier is generic and the products go to OpenBLAS. */
#ifndef KERAC_ISA_H
#define KERAC_ISA_H

/* the x86-only code (intrinsics, CPUID, AMX's permission): #ifdef KC_X86 */
#if defined(__x86_64__) || defined(__i386__)
#define KC_X86 1
#endif

typedef enum {
    KC_ISA_GENERIC = 0, /* x86-64 baseline (SSE2), or not x86 */
    KC_ISA_AVX2 = 1,    /* AVX2 + FMA */
    KC_ISA_AVX512 = 2   /* AVX-512 F, VL, BW, DQ (+ FMA) */
} kc_isa_tier;

/* the tier in use: the CPU's, capped by KERAC_ISA (read once) */
kc_isa_tier kc_isa(void);
/* for tests, between products: the tier becomes min(t, the CPU's) */
void kc_isa_override(kc_isa_tier t);
/* the CPU has AVX512-BF16 (and the tier is avx512) */
int kc_isa_has_avx512_bf16(void);
/* the CPU has AMX-TILE and AMX-BF16 (and the tier is avx512); the OS's grant is gemm.c's */
int kc_isa_has_amx_bf16(void);
const char *kc_isa_name(kc_isa_tier t);

#define KC_TARGET_AVX512_FEATURES "avx512f,avx512vl,avx512bw,avx512dq,fma"
#define KC_TARGET_BF16_FEATURES KC_TARGET_AVX512_FEATURES ",avx512bf16,amx-tile,amx-bf16"
#define KC_TARGET_AVX2_FEATURES "avx2,fma"

#define KC_PRAGMA(x) _Pragma(#x)
#if !defined(KC_X86) /* no x86 targets to switch to: the code between compiles for the build's */
#define KC_TARGET_BEGIN(features)
#define KC_TARGET_END
#elif defined(__clang__)
#define KC_TARGET_BEGIN(features) \
    KC_PRAGMA(clang attribute push(__attribute__((target(features))), apply_to = function))
#define KC_TARGET_END KC_PRAGMA(clang attribute pop)
#else
#define KC_TARGET_BEGIN(features) KC_PRAGMA(GCC push_options) KC_PRAGMA(GCC target(features))
#define KC_TARGET_END KC_PRAGMA(GCC pop_options)
#endif
/* one function (its definition) for a tier */
#ifdef KC_X86
#define KC_TARGET(features) __attribute__((target(features)))
#else
#define KC_TARGET(features)
#endif

/* An elementwise loop compiled three times, for AVX-512, AVX2 and the x86-64 baseline, and
 * picked by the loader from the CPU (GCC's and clang's target_clones): the default build's
 * vectorised loops as wide as -march=native's. Per element the same operations in the same
 * order (no FMA contraction: -ffp-contract=off), so the same bits at every width, except in
 * loops that reduce over lanes (omp simd reduction), which stay as they were in each clone. */
/* not under ThreadSanitizer: the loader runs the clones' resolvers (ifuncs) before TSan's runtime
 * is up, and the process dies at start (SIGSEGV) */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define KC_NO_CLONES 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define KC_NO_CLONES 1
#endif
/* nor with clang: clang 14's backend stops with "Cannot select" on some avx512f clones at -O3
 * (seq_simple.c's masked means), so a clang build runs these loops at the baseline's width */
#if defined(__clang__)
#define KC_NO_CLONES 1
#endif
#if defined(__x86_64__) && !defined(KC_NO_CLONES) && __GNUC__ >= 6
#define KC_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define KC_CLONES
#endif
/* (clang 14 names a static function's resolver NAME.resolver in every file, so two cloned
 * static functions of the same name in two files do not link: their names differ) */
/* the same for a function other files call: clang 14 emits no resolver for an external
 * target_clones function that its own file does not call (the link fails), so there it is
 * compiled once, for the baseline */
#if defined(__clang__)
#define KC_CLONES_EXTERN
#else
#define KC_CLONES_EXTERN KC_CLONES
#endif

#endif
