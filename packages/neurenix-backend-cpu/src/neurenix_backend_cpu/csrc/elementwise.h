/* Elementwise kernels: broadcasting binary arithmetic, relu and its gradient.
 * For one float type (T, F(name) and the type's constants, as kernels.c defines them); no include
 * guard: families.h includes it once per type. Called from elementwise.py. */

/* ---- elementwise binary ----------------------------------------------------------------------------
 * out has shape (d0, d1, d2), contiguous; a and b are read with element strides (a0, a1, a2) and
 * (b0, b1, b2), 0 along broadcast axes. The Python side collapses any broadcast of the patterns training
 * uses (same shape, bias row, column, per-channel (1, C, 1, 1), scalar tensor) into these three axes.
 * The innermost stride is 0 or 1, so each inner loop is one of four simple, vectorisable forms. */
#define BINARY(name, EXPR)                                                                                  \
    void F(name)(const void *va, const void *vb, void *vo, int64_t d0, int64_t d1, int64_t d2, int64_t a0, \
                 int64_t a1, int64_t a2, int64_t b0, int64_t b1, int64_t b2) {                              \
        const T *A = (const T *)va, *B = (const T *)vb;                                                     \
        T *O = (T *)vo;                                                                                      \
        int64_t rows = d0 * d1, nch = (d2 + CHUNK - 1) / CHUNK, tiles = rows * nch;                        \
        _Pragma("omp parallel for num_threads(NX_THREADS) schedule(static) if (rows * d2 >= PAR_MIN)")                              \
        for (int64_t t = 0; t < tiles; t++) {                                                                \
            int64_t r = t / nch, k0 = (t % nch) * CHUNK, k1 = k0 + CHUNK < d2 ? k0 + CHUNK : d2;           \
            const T *pa = A + (r / d1) * a0 + (r % d1) * a1, *pb = B + (r / d1) * b0 + (r % d1) * b1;      \
            T *po = O + r * d2;                                                                             \
            if (a2 && b2) {                                                                                 \
                for (int64_t k = k0; k < k1; k++) { T x = pa[k], y = pb[k]; po[k] = (EXPR); }               \
            } else if (a2) {                                                                                \
                T y = pb[0];                                                                                \
                for (int64_t k = k0; k < k1; k++) { T x = pa[k]; po[k] = (EXPR); }                          \
            } else if (b2) {                                                                                \
                T x = pa[0];                                                                                \
                for (int64_t k = k0; k < k1; k++) { T y = pb[k]; po[k] = (EXPR); }                          \
            } else {                                                                                        \
                T x = pa[0], y = pb[0], v = (EXPR);                                                         \
                for (int64_t k = k0; k < k1; k++) po[k] = v;                                                \
            }                                                                                               \
        }                                                                                                   \
    }                                                                                                       \
    /* a tensor and a Python number: out = x op s (s_first = 0) or s op x */                              \
    void F(name##_scalar)(const void *va, double s, void *vo, int64_t n, int s_first) {                    \
        const T *A = (const T *)va;                                                                         \
        T *O = (T *)vo, c = (T)s;                                                                           \
        if (s_first) {                                                                                      \
            _Pragma("omp parallel for num_threads(NX_THREADS) schedule(static) if (n >= PAR_MIN)")                                  \
            for (int64_t k = 0; k < n; k++) { T x = c, y = A[k]; O[k] = (EXPR); }                           \
        } else {                                                                                            \
            _Pragma("omp parallel for num_threads(NX_THREADS) schedule(static) if (n >= PAR_MIN)")                                  \
            for (int64_t k = 0; k < n; k++) { T x = A[k], y = c; O[k] = (EXPR); }                           \
        }                                                                                                   \
    }

/* maximum/minimum propagate NaN from either side, as NumPy's do */
BINARY(add, x + y)
BINARY(sub, x - y)
BINARY(mul, x * y)
BINARY(div, x / y)
BINARY(maximum, (x >= y || x != x) ? x : y)
BINARY(minimum, (x <= y || x != x) ? x : y)

/* ---- fused activations ------------------------------------------------------------------------------ */
void F(relu)(const void *vx, void *vo, int64_t n) {
    const T *X = (const T *)vx;
    T *O = (T *)vo;
    _Pragma("omp parallel for num_threads(NX_THREADS) schedule(static) if (n >= PAR_MIN)")
    for (int64_t k = 0; k < n; k++) O[k] = X[k] > 0 ? X[k] : (X[k] != X[k] ? X[k] : (T)0);
}

/* g where x > 0, else 0 (a NaN gradient where x <= 0 gives 0, as PyTorch's): one pass instead of a
 * comparison and a select */
void F(relu_backward)(const void *vg, const void *vx, void *vo, int64_t n) {
    const T *G = (const T *)vg, *X = (const T *)vx;
    T *O = (T *)vo;
    _Pragma("omp parallel for num_threads(NX_THREADS) schedule(static) if (n >= PAR_MIN)")
    for (int64_t k = 0; k < n; k++) O[k] = X[k] > 0 ? G[k] : (T)0; /* a select: vectorised, branch-free */
}

/* out = cond ? a : b over n elements: cond bools (one byte each); a and b arrays of n, or (scalars & 1: a,
 * scalars & 2: b) the numbers sa, sb. NumPy's where took 177 ms on 45M floats (a ResNet-12 activation's
 * LeakyReLU), seven times its multiply; a select here runs at the multiply's speed, on every thread. */
void F(where)(const void *vc, const void *va, const void *vb, void *vo, int64_t n, int scalars, double sa,
              double sb) {
    const uint8_t *C = (const uint8_t *)vc;
    const T *A = (const T *)va, *B = (const T *)vb;
    T *O = (T *)vo, ca = (T)sa, cb = (T)sb;
    _Pragma("omp parallel for num_threads(NX_THREADS) schedule(static) if (n >= PAR_MIN)")
    for (int64_t k0 = 0; k0 < n; k0 += CHUNK) {
        int64_t k1 = k0 + CHUNK < n ? k0 + CHUNK : n;
        if (scalars == 0)
            for (int64_t k = k0; k < k1; k++) O[k] = C[k] ? A[k] : B[k];
        else if (scalars == 1)
            for (int64_t k = k0; k < k1; k++) O[k] = C[k] ? ca : B[k];
        else if (scalars == 2)
            for (int64_t k = k0; k < k1; k++) O[k] = C[k] ? A[k] : cb;
        else
            for (int64_t k = k0; k < k1; k++) O[k] = C[k] ? ca : cb;
    }
}

#undef BINARY
