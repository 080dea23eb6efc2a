/* isa.c: the instruction-set tier (isa.h): CPUID for the features, XGETBV for the OS saving
 * the registers they use, KERAC_ISA to cap it. */
#include "isa.h"
#include <stdlib.h>
#include <string.h>
#ifdef KC_X86
#include <cpuid.h>
#endif

static kc_isa_tier tier = (kc_isa_tier)-1, cpu_tier;
static int bf16, amx;

#ifdef KC_X86
static unsigned long long xgetbv0(void) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}
#endif

static void detect(void) {
    kc_isa_tier cpu = KC_ISA_GENERIC;
    int has_bf16 = 0, has_amx = 0;
#ifdef KC_X86
    unsigned a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 27)) /* OSXSAVE */) {
        int fma = (c >> 12) & 1, avx = (c >> 28) & 1;
        unsigned long long xcr0 = xgetbv0();
        unsigned b7 = 0, d7 = 0, a71 = 0;
        if (__get_cpuid_max(0, NULL) >= 7) {
            __cpuid_count(7, 0, a, b7, c, d7);
            __cpuid_count(7, 1, a71, b, c, d);
        }
        int ymm = (xcr0 & 0x6) == 0x6, zmm = (xcr0 & 0xE6) == 0xE6;
        if (avx && fma && ymm && (b7 & (1u << 5))) cpu = KC_ISA_AVX2;
        unsigned avx512 = (1u << 16) | (1u << 17) | (1u << 30) | (1u << 31); /* F DQ BW VL */
        if (cpu == KC_ISA_AVX2 && zmm && (b7 & avx512) == avx512) cpu = KC_ISA_AVX512;
        has_bf16 = cpu == KC_ISA_AVX512 && ((a71 >> 5) & 1);
        has_amx = cpu == KC_ISA_AVX512 && ((d7 >> 22) & 1) && ((d7 >> 24) & 1);
    }
#endif
    const char *env = getenv("KERAC_ISA");
    kc_isa_tier cap = KC_ISA_AVX512;
    if (env && !strcmp(env, "generic")) cap = KC_ISA_GENERIC;
    else if (env && !strcmp(env, "avx2")) cap = KC_ISA_AVX2;
    cpu_tier = cpu;
    if (cpu > cap) cpu = cap;
    bf16 = cpu == KC_ISA_AVX512 && has_bf16;
    amx = cpu == KC_ISA_AVX512 && has_amx;
    __atomic_store_n(&tier, cpu, __ATOMIC_RELEASE);
}

kc_isa_tier kc_isa(void) {
    kc_isa_tier t = __atomic_load_n(&tier, __ATOMIC_ACQUIRE);
    if ((int)t < 0) { /* racing threads compute the same answer */
        detect();
        t = tier;
    }
    return t;
}

void kc_isa_override(kc_isa_tier t) {
    kc_isa();
    __atomic_store_n(&tier, t < cpu_tier ? t : cpu_tier, __ATOMIC_RELEASE);
}

int kc_isa_has_avx512_bf16(void) { return kc_isa() == KC_ISA_AVX512 && bf16; }
int kc_isa_has_amx_bf16(void) { return kc_isa() == KC_ISA_AVX512 && amx; }

const char *kc_isa_name(kc_isa_tier t) {
    return t == KC_ISA_AVX512 ? "avx512" : t == KC_ISA_AVX2 ? "avx2" : "generic";
}
