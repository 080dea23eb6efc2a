/* platform.h: the few calls kerac makes that are particular to Linux or to a CPU, behind
 * wrappers with portable fallbacks (docs/ARCHITECTURE.md, "Portability"). The x86 kernels
 * themselves are isa.h's (KC_X86). Header-only: each wrapper is one call where it exists. */
#ifndef KERAC_PLATFORM_H
#define KERAC_PLATFORM_H

#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <time.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

/* one round of a spin-wait: x86's pause, aarch64's yield hint, elsewhere nothing */
static inline void kc_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
    __asm__ volatile("yield" ::: "memory");
#endif
}

/* Sleeps while *addr == expected, or returns at once (callers look at *addr again and wait
 * once more: spurious returns are fine). Linux: a private futex; elsewhere a 50 us nap. */
static inline void kc_futex_wait(_Atomic uint32_t *addr, uint32_t expected) {
#if defined(__linux__) && defined(SYS_futex)
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
#else
    if (atomic_load(addr) == expected) {
        struct timespec nap = {0, 50000};
        nanosleep(&nap, NULL);
    }
#endif
}

/* Wakes every thread in kc_futex_wait on addr (without futexes they wake on their own) */
static inline void kc_futex_wake_all(_Atomic uint32_t *addr) {
#if defined(__linux__) && defined(SYS_futex)
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
#else
    (void)addr;
#endif
}

/* Asks for transparent huge pages over the whole pages of [p, p + bytes): a hint, ignored
 * where the system has none */
static inline void kc_advise_huge_pages(void *p, size_t bytes) {
#if defined(MADV_HUGEPAGE)
    uintptr_t lo = ((uintptr_t)p + 4095) & ~(uintptr_t)4095;
    uintptr_t hi = ((uintptr_t)p + bytes) & ~(uintptr_t)4095;
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
#else
    (void)p;
    (void)bytes;
#endif
}

#endif
