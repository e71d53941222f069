/* Every kernel family for one float type: T is the type, F(name) the suffixed function name, and the type's
 * constants (see kernels.c). Included once per type; it undefines the type's parameters at the end, so the
 * next type can define them. One header per family, each called from the Python module of the same name. */

/* WIDE: T lanes of the widest vector register the build targets. Generic vectors wider than the target's
 * registers are emulated through memory: 64-byte ones on an AVX2 machine ran the matmul tiles at 2.5 GFLOPS
 * instead of 46 (a Zen 3 server, measured), so the tiles take their width from the target. */
#if defined(__AVX512F__)
#define WIDE (2 * NR)
#else
#define WIDE NR
#endif

#include "elementwise.h" /* binary arithmetic with broadcasting, relu */
#include "reductions.h"  /* sum, max, min */
#include "norm.h"        /* batch normalisation */
#include "softmax.h"     /* exp, softmax, log_softmax, cross entropy */
#include "windows.h"     /* unfold, fold, max pooling */
#include "conv.h"        /* Winograd F(2x2, 3x3) transforms */
#include "linalg.h"      /* batched matmul, fused linear layer */
#include "optim.h"       /* Adam, SGD */

#undef T
#undef UT
#undef IT
#undef EXP_LO
#undef EXP_HI
#undef EXP_MAGIC
#undef LN2_HI
#undef LN2_LO
#undef EXP_DEGREE
#undef EXP_BIAS
#undef EXP_MANT
#undef F
#undef SQRT
#undef NR
#undef WIDE
