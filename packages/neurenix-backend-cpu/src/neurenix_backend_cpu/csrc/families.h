/* Every kernel family for one float type: T is the type, F(name) the suffixed function name, and the type's
 * constants (see kernels.c). Included once per type; it undefines the type's parameters at the end, so the
 * next type can define them. One header per family, each called from the Python module of the same name. */

#include "elementwise.h" /* binary arithmetic with broadcasting, relu */
#include "reductions.h"  /* sum, max, min */
#include "norm.h"        /* batch normalisation */
#include "softmax.h"     /* exp, softmax, log_softmax, cross entropy */
#include "windows.h"     /* unfold, fold, max pooling */
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
