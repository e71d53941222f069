/* Neurenix CPU kernels. Every kernel exists for float (suffix _f32) and double (_f64): this file includes
 * families.h (one header per kernel family) once per type. Buffers are C-contiguous; the Python side
 * guarantees it, and sizes.
 * Loops run on OpenMP threads only where the work pays for starting them (PAR_MIN elements). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <pthread.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#define PAR_MIN 65536 /* below this many elements one thread is faster than waking the others */
#define CHUNK 4096    /* elements per parallel tile of an elementwise loop */
/* products go parallel from this many multiply-adds (about 50 us on one core): threads sleep between kernels
 * (OMP_WAIT_POLICY=PASSIVE), and waking one costs more than a smaller product takes */
#define PAR_MIN_MACS (1 << 21)

/* The thread count neurenix.set_num_threads() chose, for every parallel region whichever thread starts it:
 * omp_set_num_threads() alone sets it for the calling thread only, and a kernel called from another Python
 * thread would run on the OpenMP default (every core) instead. 0 until set: the OpenMP default. */
static int nx_threads;

#ifdef _OPENMP
static inline int nx_team(void) {
    int n = __atomic_load_n(&nx_threads, __ATOMIC_RELAXED);
    return n > 0 ? n : omp_get_max_threads();
}
#define NX_THREADS nx_team()
#endif

void nx_set_num_threads(int n) {
    __atomic_store_n(&nx_threads, n, __ATOMIC_RELAXED);
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
}

#ifndef NX_TARGET
#define NX_TARGET "unknown"
#endif
/* the -march these kernels were built for: "native" for a build on this machine (pip from the sdist), or a
 * portable wheel's x86-64-v2 / x86-64-v3 / x86-64-v4, or armv8-a on aarch64 (see _build.py) */
const char *nx_target(void) { return NX_TARGET; }

/* Whether this CPU runs code built for `target`: the portable wheel's AVX2 (x86-64-v3) and AVX-512 (x86-64-v4)
 * modules, which native.py asks the baseline module about before loading them. CPUs with AVX2, FMA and BMI2
 * (Haswell, Zen and later) have the rest of x86-64-v3 too. Elsewhere (aarch64: one baseline module) 0: there is
 * no faster module to load. */
int nx_cpu_runs(const char *target) {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    int v3 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2");
    if (!strcmp(target, "x86-64-v3"))
        return v3;
    if (!strcmp(target, "x86-64-v4"))
        return v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512vl");
#endif
    return 0;
}

/* the team size a kernel called from this thread runs on */
int nx_get_num_threads(void) {
#ifdef _OPENMP
    return nx_team();
#else
    return 1;
#endif
}

/* glibc maps each block above a (dynamic, at most 32 MB) threshold afresh and trims the heap's free top, so a
 * training step that frees and reallocates its 20 MB activations pays a page fault per 4 KB page on every
 * write to them (Conv-4: 187 -> 140 ms a step once freed blocks stay in the heap). Blocks up to `bytes` come
 * from the heap, and up to `bytes` of free heap is kept. Returns 0 where it cannot be set (not glibc). */
int nx_keep_freed_memory(int64_t bytes) {
#ifdef __GLIBC__
    return mallopt(M_MMAP_THRESHOLD, (int)bytes) && mallopt(M_TRIM_THRESHOLD, (int)bytes);
#else
    (void)bytes;
    return 0;
#endif
}

/* NumPy's OpenBLAS runs its parallel jobs through this (openblas_set_threads_callback_function, OpenBLAS
 * 0.3.27+) rather than its own threads, so that BLAS and our kernels share one sleeping pool: OpenBLAS's workers
 * spin for about 2^28 cycles after each product, on the cores our next kernel's threads need (a Conv-4 step on
 * two threads was 1.35x faster than on one with them, 1.66x with the workers asleep). The jobs of one call
 * wait on each other's packed panels, so all of them must run at once: on a team of exactly numjobs threads,
 * else (called inside a parallel region, or given a smaller team) on one pthread each. */
typedef void (*nx_blas_job)(int, void *, int);
struct nx_job {
    nx_blas_job run;
    int index, arg;
    void *data;
};

static void *nx_run_job(void *p) {
    struct nx_job *j = p;
    j->run(j->index, j->data, j->arg);
    return NULL;
}

void nx_blas_threads(int sync, nx_blas_job run, int numjobs, size_t size, void *jobs, int arg) {
    (void)sync; /* every call returns once its jobs are done, which is what both kinds of call need */
    int team = 0; /* the team that ran the jobs; 0: none did */
#ifdef _OPENMP
    if (numjobs > 1 && !omp_in_parallel()) {
        _Pragma("omp parallel num_threads(numjobs)")
        {
            _Pragma("omp single")
            team = omp_get_num_threads(); /* (the barrier after single: every thread reads it set) */
            if (team == numjobs)
                run(omp_get_thread_num(), (char *)jobs + (size_t)omp_get_thread_num() * size, arg);
        }
    }
#endif
    if (team == numjobs)
        return;
    struct nx_job job[numjobs];
    pthread_t thread[numjobs];
    int started[numjobs];
    for (int i = 0; i < numjobs; i++) {
        job[i] = (struct nx_job){run, i, arg, (char *)jobs + (size_t)i * size};
        started[i] = i > 0 && pthread_create(&thread[i], NULL, nx_run_job, &job[i]) == 0;
    }
    for (int i = 0; i < numjobs; i++)
        if (!started[i]) /* this thread's job, and any no thread could be started for (then they run in turn) */
            nx_run_job(&job[i]);
    for (int i = 1; i < numjobs; i++)
        if (started[i])
            pthread_join(thread[i], NULL);
}

int nx_has_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

#define T float
#define UT uint32_t /* an unsigned integer of T's size, for bitwise selects */
#define IT int32_t  /* a signed one, for exponent bits */
#define EXP_LO -86.6f /* exp's range: 2^(k-1) must be a normal number */
#define EXP_HI 88.72f
#define EXP_MAGIC 12582912.0f /* 1.5 * 2^23: adding and subtracting it rounds to an integer */
#define LN2_HI 0.693359375  /* ln 2 in two parts, the first exact in few bits */
#define LN2_LO -2.12194440e-4
#define EXP_DEGREE 7
#define EXP_BIAS 127
#define EXP_MANT 23
#define F(name) name##_f32
#define SQRT sqrtf
#define NR 8 /* columns of a bmm register tile: one 32-byte vector */
#include "families.h"

#define T double
#define UT uint64_t
#define IT int64_t
#define EXP_LO -707.0
#define EXP_HI 709.78
#define EXP_MAGIC 6755399441055744.0 /* 1.5 * 2^52 */
#define LN2_HI 6.93147180369123816490e-01
#define LN2_LO 1.90821492927058770002e-10
#define EXP_DEGREE 13
#define EXP_BIAS 1023
#define EXP_MANT 52
#define F(name) name##_f64
#define SQRT sqrt
#define NR 4
#include "families.h"

#include "quantized.h" /* int8 linear and conv2d: float32 only, so once, outside the families */
