/* Neurenix CPU kernels. Every kernel exists for float (suffix _f32) and double (_f64): this file
 * includes template.h twice. Buffers are C-contiguous; the Python side guarantees it, and sizes.
 * Loops run on OpenMP threads only where the work pays for starting them (PAR_MIN elements). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define PAR_MIN 65536 /* below this many elements one thread is faster than waking the others */
#define CHUNK 4096    /* elements per parallel tile of an elementwise loop */

void nx_set_num_threads(int n) {
#ifdef _OPENMP
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}

int nx_get_num_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
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
#define F(name) name##_f32
#define EXP expf
#define SQRT sqrtf
#define NR 8 /* columns of a bmm register tile: one 32-byte vector */
#include "template.h"
#undef T
#undef UT
#undef F
#undef EXP
#undef SQRT
#undef NR

#define T double
#define UT uint64_t
#define F(name) name##_f64
#define EXP exp
#define SQRT sqrt
#define NR 4
#include "template.h"
#undef T
#undef UT
#undef F
#undef EXP
#undef SQRT
#undef NR
