/* The kernels for one float type: T is the type, F(name) the suffixed function name (see kernels.c).
 * Included once per type; it undefines its parameters at the end, so the next type can define them. */

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

/* ---- reductions ---------------------------------------------------------------------------------------
 * op: 0 sum, 1 max, 2 min. Sums accumulate in double (float32 sums over a batch stay accurate). */
static inline T F(pick)(int op, T acc, T v) {
    if (v != v) return v;
    return op == 1 ? (v > acc ? v : acc) : (v < acc ? v : acc);
}

/* out[a, b] = reduce over r of x[a, r, b] */
void F(reduce_mid)(int op, const void *vx, void *vo, int64_t na, int64_t nr, int64_t nb) {
    const T *X = (const T *)vx;
    T *O = (T *)vo;
    int64_t nch = (nb + 63) / 64;
    _Pragma("omp parallel for num_threads(NX_THREADS) schedule(static) if (na * nr * nb >= PAR_MIN)")
    for (int64_t t = 0; t < na * nch; t++) {
        int64_t a = t / nch, b0 = (t % nch) * 64, w = nb - b0 < 64 ? nb - b0 : 64;
        const T *x = X + a * nr * nb + b0;
        T *o = O + a * nb + b0;
        if (op == 0) {
            if (nb == 1) {
                double acc = 0;
                _Pragma("omp simd reduction(+ : acc)")
                for (int64_t r = 0; r < nr; r++) acc += x[r];
                o[0] = (T)acc;
            } else {
                double acc[64] = {0};
                for (int64_t r = 0; r < nr; r++)
                    for (int64_t j = 0; j < w; j++) acc[j] += x[r * nb + j];
                for (int64_t j = 0; j < w; j++) o[j] = (T)acc[j];
            }
        } else {
            for (int64_t j = 0; j < w; j++) o[j] = x[j];
            for (int64_t r = 1; r < nr; r++)
                for (int64_t j = 0; j < w; j++) o[j] = F(pick)(op, o[j], x[r * nb + j]);
        }
    }
}

/* out[k] = reduce over r1 and r2 of x[r1, k, r2] (per-channel statistics of (N, C, H, W)) */
void F(reduce_outer)(int op, const void *vx, void *vo, int64_t n1, int64_t nk, int64_t n2) {
    const T *X = (const T *)vx;
    T *O = (T *)vo;
    _Pragma("omp parallel for num_threads(NX_THREADS) schedule(static) if (n1 * nk * n2 >= PAR_MIN)")
    for (int64_t k = 0; k < nk; k++) {
        if (op == 0) {
            double acc = 0;
            for (int64_t r = 0; r < n1; r++) {
                const T *x = X + (r * nk + k) * n2;
                _Pragma("omp simd reduction(+ : acc)")
                for (int64_t j = 0; j < n2; j++) acc += x[j];
            }
            O[k] = (T)acc;
        } else {
            T acc = X[k * n2];
            for (int64_t r = 0; r < n1; r++) {
                const T *x = X + (r * nk + k) * n2;
                for (int64_t j = 0; j < n2; j++) acc = F(pick)(op, acc, x[j]);
            }
            O[k] = acc;
        }
    }
}

/* ---- batch normalisation (training) ----------------------------------------------------------------------
 * x (N, C, R) is groups blocks of nr = N / groups rows; each (group, channel) plane of nr runs of R values is
 * normalised with its own mean and (biased) variance, two passes over the plane (which stays in cache for the
 * third, the output). Parameters: w and b NULL, or ps = 0 (one per channel) or C (one per group and channel). */
#define BN_RUN 1024
void F(batch_norm)(const void *vx, const void *vw, const void *vb, void *vy, void *vmean, void *vvar, int64_t groups,
                   int64_t nr, int64_t c, int64_t r, int64_t ps, double eps) {
    const T *X = (const T *)vx, *W = (const T *)vw, *B = (const T *)vb;
    T *Y = (T *)vy, *M = (T *)vmean, *V = (T *)vvar;
    _Pragma("omp parallel for num_threads(NX_THREADS) schedule(static) if (groups * nr * c * r >= PAR_MIN)")
    for (int64_t q = 0; q < groups * c; q++) {
        int64_t gi = q / c, ch = q % c;
        const T *x = X + (gi * nr * c + ch) * r;
        T *y = Y + (gi * nr * c + ch) * r;
        /* runs of at most BN_RUN values are summed in T (one vector width: twice the lanes of double for float;
         * 1.4x faster), the runs in double, so that a float32 sum over a batch stays accurate */
        double s = 0, ss = 0;
        for (int64_t i = 0; i < nr; i++)
            for (int64_t j0 = 0; j0 < r; j0 += BN_RUN) {
                const T *xr = x + i * c * r;
                T rs = 0;
                _Pragma("omp simd reduction(+ : rs)")
                for (int64_t j = j0; j < (j0 + BN_RUN < r ? j0 + BN_RUN : r); j++) rs += xr[j];
                s += rs;
            }
        T mu = (T)(s / (double)(nr * r));
        for (int64_t i = 0; i < nr; i++)
            for (int64_t j0 = 0; j0 < r; j0 += BN_RUN) {
                const T *xr = x + i * c * r;
                T rs = 0;
                _Pragma("omp simd reduction(+ : rs)")
                for (int64_t j = j0; j < (j0 + BN_RUN < r ? j0 + BN_RUN : r); j++)
                    rs += (xr[j] - mu) * (xr[j] - mu);
                ss += rs;
            }
        double var = ss / (double)(nr * r);
        T scale = (T)(1.0 / sqrt(var + eps)) * (W ? W[gi * ps + ch] : 1), shift = B ? B[gi * ps + ch] : 0;
        for (int64_t i = 0; i < nr; i++)
            for (int64_t j = 0; j < r; j++) y[i * c * r + j] = (x[i * c * r + j] - mu) * scale + shift;
        M[q] = mu;
        V[q] = (T)var;
    }
}

/* its gradient: with xhat = (x - mean) / sqrt(var + eps) and m = nr * r values per plane,
 * gb = sum g, gw = sum g xhat, gx = w / sqrt(var + eps) / m * (m g - gb - xhat gw). gx, gw, gb may be NULL. */
void F(batch_norm_backward)(const void *vg, const void *vx, const void *vmean, const void *vvar, const void *vw,
                            void *vgx, void *vgw, void *vgb, int64_t groups, int64_t nr, int64_t c, int64_t r,
                            int64_t ps, double eps) {
    const T *G = (const T *)vg, *X = (const T *)vx, *M = (const T *)vmean, *V = (const T *)vvar, *W = (const T *)vw;
    T *GX = (T *)vgx, *GW = (T *)vgw, *GB = (T *)vgb;
    _Pragma("omp parallel for num_threads(NX_THREADS) schedule(static) if (groups * nr * c * r >= PAR_MIN)")
    for (int64_t q = 0; q < groups * c; q++) {
        int64_t gi = q / c, ch = q % c, off = (gi * nr * c + ch) * r;
        const T *g = G + off, *x = X + off;
        T mu = M[q], inv = (T)(1.0 / sqrt((double)V[q] + eps));
        double sb = 0, sw = 0;
        for (int64_t i = 0; i < nr; i++) /* runs in T, their sums in double, as in the forward */
            for (int64_t j0 = 0; j0 < r; j0 += BN_RUN) {
                const T *gr = g + i * c * r, *xr = x + i * c * r;
                T rb = 0, rw = 0;
                _Pragma("omp simd reduction(+ : rb, rw)")
                for (int64_t j = j0; j < (j0 + BN_RUN < r ? j0 + BN_RUN : r); j++) {
                    rb += gr[j];
                    rw += gr[j] * ((xr[j] - mu) * inv);
                }
                sb += rb;
                sw += rw;
            }
        if (GB) GB[q] = (T)sb;
        if (GW) GW[q] = (T)sw;
        if (GX) {
            T m = (T)(nr * r), k = inv * (W ? W[gi * ps + ch] : 1) / m, b = (T)sb, w = (T)sw;
            T *gx = GX + off;
            for (int64_t i = 0; i < nr; i++)
                for (int64_t j = 0; j < r; j++)
                    gx[i * c * r + j] = k * (m * g[i * c * r + j] - b - (x[i * c * r + j] - mu) * inv * w);
        }
    }
}

#undef BN_RUN

/* ---- softmax family ------------------------------------------------------------------------------------
 * exp of EW lanes at once (GCC vectorises no libm exp): x = k ln2 + r with |r| <= ln2 / 2, exp(r) by its
 * Taylor series (degree EXP_DEGREE: below an ulp on that range), 2^k built in the exponent bits (as 2^(k-1) * 2,
 * so the largest finite results do not overflow the exponent). Below EXP_LO the result is 0 (float loses
 * results under 2e-38, double under 1e-307), above EXP_HI it is inf; NaN stays NaN. */
typedef T F(vec) __attribute__((vector_size(NR * sizeof(T))));
/* exp works on 64-byte vectors (AVX-512 registers, or two AVX2 ones): more lanes per instruction issued */
#define EW (2 * NR)
typedef T F(evec) __attribute__((vector_size(EW * sizeof(T))));
typedef IT F(eivec) __attribute__((vector_size(EW * sizeof(T))));

static inline F(evec) F(vexp)(F(evec) x) {
    const F(evec) zero = {0};
    const F(eivec) small = x < EXP_LO, big = x > EXP_HI, nan = x != x;
    F(evec) xc = (F(evec))((small & (F(eivec))(zero + EXP_LO)) | (~small & (F(eivec))x));
    xc = (F(evec))((big & (F(eivec))(zero + EXP_HI)) | (~big & (F(eivec))xc));
    xc = (F(evec))(~nan & (F(eivec))xc); /* NaN lanes compute exp(0); their result is replaced below */
    F(evec) k = (xc * (T)1.4426950408889634 + EXP_MAGIC) - EXP_MAGIC; /* round to nearest */
    F(evec) r = xc - k * (T)LN2_HI - k * (T)LN2_LO, p = zero + 1;
    for (int i = EXP_DEGREE; i >= 1; i--) p = p * (r * (T)(1.0 / i)) + 1; /* Horner: one FMA per term on the chain */
    F(eivec) e = (__builtin_convertvector(k, F(eivec)) + (EXP_BIAS - 1)) << EXP_MANT;
    F(evec) y = p * (F(evec))e * 2;
    const F(evec) inf = zero + (T)INFINITY;
    y = (F(evec))((big & (F(eivec))inf) | (~big & ~small & (F(eivec))y));
    return (F(evec))((nan & (F(eivec))x) | (~nan & (F(eivec))y));
}

/* o[0:n] = exp(x[0:n]) (o may be x); the tail through a padded vector, so every element gets the same formula */
static void F(exp_to)(const T *x, T *o, int64_t n) {
    int64_t i = 0;
    for (; i + 2 * EW <= n; i += 2 * EW) { /* two independent chains per iteration */
        F(evec) u, v;
        memcpy(&u, x + i, sizeof u);
        memcpy(&v, x + i + EW, sizeof v);
        u = F(vexp)(u), v = F(vexp)(v);
        memcpy(o + i, &u, sizeof u);
        memcpy(o + i + EW, &v, sizeof v);
    }
    for (; i + EW <= n; i += EW) {
        F(evec) v;
        memcpy(&v, x + i, sizeof v);
        v = F(vexp)(v);
        memcpy(o + i, &v, sizeof v);
    }
    if (i < n) {
        F(evec) v = {0};
        memcpy(&v, x + i, (size_t)(n - i) * sizeof(T));
        v = F(vexp)(v);
        memcpy(o + i, &v, (size_t)(n - i) * sizeof(T));
    }
}

void F(exp)(const void *vx, void *vo, int64_t n) {
    const T *X = (const T *)vx;
    T *O = (T *)vo;
    int64_t chunks = (n + CHUNK - 1) / CHUNK;
    _Pragma("omp parallel for num_threads(NX_THREADS) schedule(static) if (n >= PAR_MIN)")
    for (int64_t t = 0; t < chunks; t++) {
        int64_t lo = t * CHUNK;
        F(exp_to)(X + lo, O + lo, n - lo < CHUNK ? n - lo : CHUNK);
    }
}

/* Row kernels work on blocks of RB rows: shift each row by its max (NaN propagates), then one exp pass over the
 * whole block (vectorised across rows, which matters when rows are short: 5 classes), then per-row sums. */
#ifndef RB
#define RB 64
#endif

/* o = exp(x - m) for rows [0, rows) of a block; m[r] its max and s[r] the sum of its exponentials */
static void F(exp_rows)(const T *x, T *o, int64_t rows, int64_t c, T *m, double *s) {
    for (int64_t r = 0; r < rows; r++) {
        const T *xr = x + r * c;
        T mr = -INFINITY; /* a NaN in the row is skipped here, but makes its sum, so the whole row, NaN */
        _Pragma("omp simd reduction(max : mr)")
        for (int64_t j = 0; j < c; j++) mr = xr[j] > mr ? xr[j] : mr;
        for (int64_t j = 0; j < c; j++) o[r * c + j] = xr[j] - mr;
        m[r] = mr;
    }
    F(exp_to)(o, o, rows * c);
    for (int64_t r = 0; r < rows; r++) {
        double sr = 0;
        _Pragma("omp simd reduction(+ : sr)")
        for (int64_t j = 0; j < c; j++) sr += o[r * c + j];
        s[r] = sr;
    }
}

/* softmax (mode 0) or log_softmax (mode 1) of each row of x (rows, c) */
void F(softmax_rows)(int mode, const void *vx, void *vo, int64_t rows, int64_t c) {
    const T *X = (const T *)vx;
    T *O = (T *)vo;
    _Pragma("omp parallel for num_threads(NX_THREADS) schedule(static) if (rows * c >= PAR_MIN)")
    for (int64_t r0 = 0; r0 < rows; r0 += RB) {
        int64_t nr = rows - r0 < RB ? rows - r0 : RB;
        T m[RB];
        double s[RB];
        const T *x = X + r0 * c;
        T *o = O + r0 * c;
        F(exp_rows)(x, o, nr, c, m, s);
        for (int64_t r = 0; r < nr; r++) {
            if (mode) {
                T shift = m[r] + (T)log(s[r]);
                for (int64_t j = 0; j < c; j++) o[r * c + j] = x[r * c + j] - shift;
            } else {
                T inv = (T)(1.0 / s[r]);
                for (int64_t j = 0; j < c; j++) o[r * c + j] *= inv;
            }
        }
    }
}

/* the gradients of the rows' softmax y (mode 0: y (g - <g, y>)) or log_softmax y (mode 1: g - exp(y) sum(g)) */
void F(softmax_rows_backward)(int mode, const void *vg, const void *vy, void *vo, int64_t rows, int64_t c) {
    const T *G = (const T *)vg, *Y = (const T *)vy;
    T *O = (T *)vo;
    _Pragma("omp parallel for num_threads(NX_THREADS) schedule(static) if (rows * c >= PAR_MIN)")
    for (int64_t r0 = 0; r0 < rows; r0 += RB) {
        int64_t nr = rows - r0 < RB ? rows - r0 : RB;
        const T *g = G + r0 * c, *y = Y + r0 * c;
        T *o = O + r0 * c;
        if (mode) {
            F(exp_to)(y, o, nr * c);
        }
        for (int64_t r = 0; r < nr; r++) {
            double sr = 0;
            if (mode) {
                _Pragma("omp simd reduction(+ : sr)")
                for (int64_t j = 0; j < c; j++) sr += g[r * c + j];
                for (int64_t j = 0; j < c; j++) o[r * c + j] = g[r * c + j] - o[r * c + j] * (T)sr;
            } else {
                _Pragma("omp simd reduction(+ : sr)")
                for (int64_t j = 0; j < c; j++) sr += (double)g[r * c + j] * y[r * c + j];
                for (int64_t j = 0; j < c; j++) o[r * c + j] = y[r * c + j] * (g[r * c + j] - (T)sr);
            }
        }
    }
}

/* per row of logits x (n, c) and target distribution p (n, c): loss = -sum_j p_j log_softmax(x)_j, and the
 * softmax, kept for the gradient */
void F(cross_entropy)(const void *vx, const void *vp, void *vloss, void *vsm, int64_t n, int64_t c) {
    const T *X = (const T *)vx, *P = (const T *)vp;
    T *L = (T *)vloss, *SM = (T *)vsm;
    _Pragma("omp parallel for num_threads(NX_THREADS) schedule(static) if (n * c >= PAR_MIN)")
    for (int64_t r0 = 0; r0 < n; r0 += RB) {
        int64_t nr = n - r0 < RB ? n - r0 : RB;
        T m[RB];
        double s[RB];
        const T *x = X + r0 * c, *p = P + r0 * c;
        T *sm = SM + r0 * c;
        F(exp_rows)(x, sm, nr, c, m, s);
        for (int64_t r = 0; r < nr; r++) {
            T shift = m[r] + (T)log(s[r]), inv = (T)(1.0 / s[r]);
            double loss = 0;
            _Pragma("omp simd reduction(+ : loss)")
            for (int64_t j = 0; j < c; j++) loss += (double)p[r * c + j] * (shift - x[r * c + j]);
            L[r0 + r] = (T)loss;
            for (int64_t j = 0; j < c; j++) sm[r * c + j] *= inv;
        }
    }
}

/* its gradient: g_r (softmax * sum_j p_j - p) per row */
void F(cross_entropy_backward)(const void *vg, const void *vsm, const void *vp, void *vo, int64_t n, int64_t c) {
    const T *G = (const T *)vg, *SM = (const T *)vsm, *P = (const T *)vp;
    T *O = (T *)vo;
    _Pragma("omp parallel for num_threads(NX_THREADS) schedule(static) if (n * c >= PAR_MIN)")
    for (int64_t r = 0; r < n; r++) {
        const T *sm = SM + r * c, *p = P + r * c;
        T ps = 0, g = G[r];
        _Pragma("omp simd reduction(+ : ps)")
        for (int64_t j = 0; j < c; j++) ps += p[j];
        for (int64_t j = 0; j < c; j++) O[r * c + j] = g * (sm[j] * ps - p[j]);
    }
}

#undef EW

/* ---- windows ---------------------------------------------------------------------------------------------
 * The output columns xo in [lo, hi) of a kernel column at input offset off (input column xo * sw + off) lie
 * inside the input's w columns; the rest read padding. */
static inline void F(inside_span)(int64_t ow, int64_t sw, int64_t off, int64_t w, int64_t *lo, int64_t *hi) {
    int64_t a = 0, b = ow;
    while (a < ow && a * sw + off < 0) a++;
    while (b > a && (b - 1) * sw + off >= w) b--;
    *lo = a;
    *hi = b;
}

/* im2col: x (n, c, h, w) -> columns, zero padding: kernel row k = (ci * kh + i) * kw + j of image b holds its
 * oh*ow blocks at cols + b * sb + k * sk. sb = c*kh*kw*oh*ow, sk = oh*ow: unfold's (n, c*kh*kw, oh*ow);
 * sb = oh*ow, sk = n*oh*ow: unfold_batch's (c*kh*kw, n*oh*ow). One output row per (b, ci, i, j). */
void F(unfold)(const void *vx, void *vo, int64_t sb, int64_t sk, int64_t n, int64_t c, int64_t h, int64_t w,
               int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw,
               int64_t oh, int64_t ow) {
    const T *X = (const T *)vx;
    T *O = (T *)vo;
    int64_t rows = n * c * kh * kw, krows = c * kh * kw, images_inner = sb < sk;
    _Pragma("omp parallel for num_threads(NX_THREADS) schedule(static) if (rows * oh * ow >= PAR_MIN)")
    for (int64_t row = 0; row < rows; row++) {
        /* consecutive rows go to consecutive output addresses, whichever the layout: writes stream */
        int64_t b = images_inner ? row % n : row / krows, k = images_inner ? row / n : row % krows;
        int64_t j = k % kw, i = (k / kw) % kh, off = j * dw - pw, lo, hi;
        const T *x = X + (b * c + k / (kh * kw)) * h * w;
        T *o = O + b * sb + k * sk;
        F(inside_span)(ow, sw, off, w, &lo, &hi);
        for (int64_t y = 0; y < oh; y++, o += ow) {
            int64_t iy = y * sh - ph + i * dh;
            if (iy < 0 || iy >= h) {
                memset(o, 0, (size_t)ow * sizeof(T));
                continue;
            }
            const T *xr = x + iy * w + off; /* xr[xo * sw] is input column xo * sw + off */
            for (int64_t xo = 0; xo < lo; xo++) o[xo] = 0;
            if (sw == 1) memcpy(o + lo, xr + lo, (size_t)(hi - lo) * sizeof(T));
            else for (int64_t xo = lo; xo < hi; xo++) o[xo] = xr[xo * sw];
            for (int64_t xo = hi; xo < ow; xo++) o[xo] = 0;
        }
    }
}

/* col2im, the adjoint of unfold (same layout strides sb, sk): overlapping windows add up. Planes are
 * independent: no races. */
void F(fold)(const void *vc, void *vo, int64_t sb, int64_t sk, int64_t n, int64_t c, int64_t h, int64_t w,
             int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw,
             int64_t oh, int64_t ow) {
    const T *C = (const T *)vc;
    T *O = (T *)vo;
    _Pragma("omp parallel for num_threads(NX_THREADS) schedule(static) if (n * c * kh * kw * oh * ow >= PAR_MIN)")
    for (int64_t plane = 0; plane < n * c; plane++) {
        /* with images side by side, image b varies fastest: the kh*kw column rows are then read in sequence */
        int64_t b = sb < sk ? plane % n : plane / c, ci = sb < sk ? plane / n : plane % c;
        T *o = O + (b * c + ci) * h * w;
        for (int64_t k = 0; k < h * w; k++) o[k] = 0;
        for (int64_t i = 0; i < kh; i++)
            for (int64_t j = 0; j < kw; j++) {
                const T *col = C + b * sb + ((ci * kh + i) * kw + j) * sk;
                int64_t off = j * dw - pw, lo, hi;
                F(inside_span)(ow, sw, off, w, &lo, &hi);
                for (int64_t y = 0; y < oh; y++) {
                    int64_t iy = y * sh - ph + i * dh;
                    if (iy < 0 || iy >= h) continue;
                    T *restrict orow = o + iy * w + off; /* orow[xo * sw] is image column xo * sw + off */
                    const T *restrict cr = col + y * ow;
                    if (sw == 1) for (int64_t xo = lo; xo < hi; xo++) orow[xo] += cr[xo];
                    else for (int64_t xo = lo; xo < hi; xo++) orow[xo * sw] += cr[xo];
                }
            }
    }
}

/* max over windows (padding counts as -inf), with the index in the window (i * kw + j) of the first
 * maximum; NaN wins, as in NumPy's max and argmax */
/* take ? a : b without a branch (GCC turns the ternary into a jump, which mispredicts on real data) */
static inline T F(select)(int take, T a, T b) {
    UT ua, ub, m = (UT)0 - (UT)take;
    memcpy(&ua, &a, sizeof a);
    memcpy(&ub, &b, sizeof b);
    ua = (ua & m) | (ub & ~m);
    memcpy(&a, &ua, sizeof a);
    return a;
}

/* one step of the running maximum: v replaces best if larger, or if NaN where best is not (NaN wins) */
#define POOL_TAKE(v, a)                                                                                      \
    do {                                                                                                     \
        T v_ = (v);                                                                                          \
        int take_ = (v_ > best) | ((v_ != v_) & (best == best));                                             \
        best = F(select)(take_, v_, best);                                                                   \
        arg += take_ * ((a) - arg);                                                                          \
    } while (0)

/* 2x2 windows at stride 2, the pooling of most CNNs, over rows short enough (14 outputs) that a loop per
 * output row stays scalar: first the larger of each vertical pair of a block of row pairs, then of each
 * horizontal pair of those, both flat loops GCC vectorises (3-4x faster). Indices ride in T lanes, so that
 * comparisons and selects keep one width. A later candidate wins if larger, if NaN where the best is not,
 * or if equal with a smaller index (the first maximum in i * 2 + j order). */
#define POOL_BLOCK 2048 /* values of a vertical pass: its two buffers stay in L1 */
static inline int F(pool_wins)(T v, T av, T best, T abest) {
    return v > best || (v != v && best == best) || ((v == best || (v != v && best != best)) && av < abest);
}

static void F(max_pool_2x2)(const T *restrict x, T *restrict o, int64_t *restrict idx, int64_t w, int64_t oh,
                            int64_t ow) {
    T vm[POOL_BLOCK], va[POOL_BLOCK];
    int64_t ew = 2 * ow, rows = ew <= POOL_BLOCK ? POOL_BLOCK / ew : 1; /* ew: the columns windows cover */
    if (ew > POOL_BLOCK || ow < 4) { /* rows too wide for the block, or so short that the scalar loop wins */
        for (int64_t y = 0; y < oh; y++)
            for (int64_t xo = 0; xo < ow; xo++) {
                const T *p = x + 2 * y * w + 2 * xo;
                T best = p[0], arg = 0;
                if (F(pool_wins)(p[1], 1, best, arg)) best = p[1], arg = 1;
                if (F(pool_wins)(p[w], 2, best, arg)) best = p[w], arg = 2;
                if (F(pool_wins)(p[w + 1], 3, best, arg)) best = p[w + 1], arg = 3;
                o[y * ow + xo] = best;
                idx[y * ow + xo] = (int64_t)arg;
            }
        return;
    }
    for (int64_t y0 = 0; y0 < oh; y0 += rows) {
        int64_t nr = oh - y0 < rows ? oh - y0 : rows;
        for (int64_t r = 0; r < nr; r++) {
            const T *restrict r0 = x + 2 * (y0 + r) * w, *restrict r1 = r0 + w;
            T *restrict m = vm + r * ew, *restrict a = va + r * ew;
            for (int64_t j = 0; j < ew; j++) {
                int t = F(pool_wins)(r1[j], 2, r0[j], 0);
                m[j] = t ? r1[j] : r0[j], a[j] = t ? 2 : 0;
            }
        }
        T *restrict ob = o + y0 * ow;
        int64_t *restrict ib = idx + y0 * ow;
        for (int64_t k = 0; k < nr * ow; k++) {
            T l = vm[2 * k], rv = vm[2 * k + 1], al = va[2 * k], ar = va[2 * k + 1] + 1;
            int t = F(pool_wins)(rv, ar, l, al);
            ob[k] = t ? rv : l, ib[k] = (int64_t)(t ? ar : al);
        }
    }
}
#undef POOL_BLOCK

/* a plane whose windows all lie inside it (no padding): no bounds checks */
static void F(max_pool_inside)(const T *restrict x, T *restrict o, int64_t *restrict idx, int64_t w, int64_t kh,
                               int64_t kw, int64_t sh, int64_t sw, int64_t dh, int64_t dw, int64_t oh, int64_t ow) {
    if (kh == 2 && kw == 2 && sh == 2 && sw == 2 && dh == 1 && dw == 1) {
        F(max_pool_2x2)(x, o, idx, w, oh, ow);
        return;
    }
    for (int64_t y = 0; y < oh; y++)
        for (int64_t xo = 0; xo < ow; xo++) {
            const T *p = x + y * sh * w + xo * sw;
            T best = p[0];
            int64_t arg = 0;
            for (int64_t i = 0; i < kh; i++)
                for (int64_t j = 0; j < kw; j++) POOL_TAKE(p[i * dh * w + j * dw], i * kw + j);
            o[y * ow + xo] = best;
            idx[y * ow + xo] = arg;
        }
}

void F(max_pool2d)(const void *vx, void *vo, void *vidx, int64_t n, int64_t c, int64_t h, int64_t w,
                   int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw,
                   int64_t oh, int64_t ow) {
    const T *X = (const T *)vx;
    T *O = (T *)vo;
    int64_t *idx = (int64_t *)vidx;
    _Pragma("omp parallel for num_threads(NX_THREADS) schedule(static) if (n * c * oh * ow * kh * kw >= PAR_MIN)")
    for (int64_t plane = 0; plane < n * c; plane++) {
        const T *x = X + plane * h * w;
        if (ph == 0 && pw == 0) {
            F(max_pool_inside)(x, O + plane * oh * ow, idx + plane * oh * ow, w, kh, kw, sh, sw, dh, dw, oh, ow);
            continue;
        }
        for (int64_t y = 0; y < oh; y++)
            for (int64_t xo = 0; xo < ow; xo++) {
                T best = -INFINITY;
                int64_t arg = 0;
                for (int64_t i = 0; i < kh; i++) {
                    int64_t iy = y * sh - ph + i * dh;
                    if (iy < 0 || iy >= h) continue;
                    for (int64_t j = 0; j < kw; j++) {
                        int64_t ix = xo * sw - pw + j * dw;
                        if (ix < 0 || ix >= w) continue;
                        POOL_TAKE(x[iy * w + ix], i * kw + j);
                    }
                }
                O[(plane * oh + y) * ow + xo] = best;
                idx[(plane * oh + y) * ow + xo] = arg;
            }
    }
}
#undef POOL_TAKE

/* the gradient of max_pool2d: g goes to the input position each window's index names */
void F(max_pool2d_backward)(const void *vg, const void *vidx, void *vo, int64_t n, int64_t c, int64_t h,
                            int64_t w, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                            int64_t dh, int64_t dw, int64_t oh, int64_t ow) {
    const T *G = (const T *)vg;
    const int64_t *idx = (const int64_t *)vidx;
    T *O = (T *)vo;
    _Pragma("omp parallel for num_threads(NX_THREADS) schedule(static) if (n * c * h * w >= PAR_MIN)")
    for (int64_t plane = 0; plane < n * c; plane++) {
        T *o = O + plane * h * w;
        memset(o, 0, (size_t)(h * w) * sizeof(T));
        for (int64_t y = 0; y < oh; y++)
            for (int64_t xo = 0; xo < ow; xo++) {
                int64_t k = (plane * oh + y) * ow + xo, a = idx[k];
                int64_t iy = y * sh - ph + (a / kw) * dh, ix = xo * sw - pw + (a % kw) * dw;
                if (a >= 0 && a < kh * kw && iy >= 0 && iy < h && ix >= 0 && ix < w) o[iy * w + ix] += G[k];
            }
    }
}

/* ---- small batched matmul -------------------------------------------------------------------------------
 * For each of nbatch products: C (m, n) = A (m, k) @ B (k, n). A matrix is read from its batch offset
 * (stride 0 broadcasts it); ta / tb say the operand is stored transposed ((k, m) / (n, k) row-major), as
 * the transposed views in linear layers and their gradients are. Meant for the task-batched shapes of
 * meta-learning, where a BLAS call per small matrix costs more than the arithmetic. A transposed B is
 * first copied row-major (it is small), so the tiles always stream rows of B. */
typedef T F(wide) __attribute__((vector_size(2 * NR * sizeof(T))));  /* 64 bytes: one AVX-512 register */

/* unaligned loads and stores */
#define LOADV(type, p) ({ type v_; memcpy(&v_, (p), sizeof v_); v_; })
#define STOREV(p, v) do { __typeof__(v) v_ = (v); memcpy((p), &v_, sizeof v_); } while (0)

/* 4 rows x 4 NR columns of C in 8 wide registers: per step of k, 2 loads of B feed 8 independent FMAs, enough
 * to keep both FMA units busy. Row i of A is at a + i * ai, its element p at [p * ap]. */
static inline void F(tile_4x4)(const T *a, int64_t ai, int64_t ap, const T *b, int64_t n, int64_t k, T *c) {
    F(wide) x0 = {0}, x1 = {0}, y0 = {0}, y1 = {0}, z0 = {0}, z1 = {0}, w0 = {0}, w1 = {0};
    for (int64_t p = 0; p < k; p++, b += n) {
        F(wide) b0 = LOADV(F(wide), b), b1 = LOADV(F(wide), b + 2 * NR);
        T u = a[p * ap], v = a[ai + p * ap], s = a[2 * ai + p * ap], t = a[3 * ai + p * ap];
        x0 += u * b0, x1 += u * b1, y0 += v * b0, y1 += v * b1;
        z0 += s * b0, z1 += s * b1, w0 += t * b0, w1 += t * b1;
    }
    STOREV(c, x0); STOREV(c + 2 * NR, x1); STOREV(c + n, y0); STOREV(c + n + 2 * NR, y1);
    STOREV(c + 2 * n, z0); STOREV(c + 2 * n + 2 * NR, z1); STOREV(c + 3 * n, w0); STOREV(c + 3 * n + 2 * NR, w1);
}

/* 4 rows x NR columns */
static inline void F(tile_4x1)(const T *a, int64_t ai, int64_t ap, const T *b, int64_t n, int64_t k, T *c) {
    F(vec) x = {0}, y = {0}, z = {0}, w = {0};
    for (int64_t p = 0; p < k; p++, b += n) {
        F(vec) bv = LOADV(F(vec), b);
        x += a[p * ap] * bv, y += a[ai + p * ap] * bv, z += a[2 * ai + p * ap] * bv, w += a[3 * ai + p * ap] * bv;
    }
    STOREV(c, x); STOREV(c + n, y); STOREV(c + 2 * n, z); STOREV(c + 3 * n, w);
}

/* 1 row x 4 NR columns, and 1 row x NR columns: what the 4-row tiles leave */
static inline void F(tile_1x4)(const T *a, int64_t ap, const T *b, int64_t n, int64_t k, T *c) {
    F(wide) x0 = {0}, x1 = {0};
    for (int64_t p = 0; p < k; p++, b += n) {
        T u = a[p * ap];
        x0 += u * LOADV(F(wide), b), x1 += u * LOADV(F(wide), b + 2 * NR);
    }
    STOREV(c, x0); STOREV(c + 2 * NR, x1);
}

static inline void F(tile_1x1)(const T *a, int64_t ap, const T *b, int64_t n, int64_t k, T *c) {
    F(vec) x = {0};
    for (int64_t p = 0; p < k; p++, b += n) x += a[p * ap] * LOADV(F(vec), b);
    STOREV(c, x);
}

/* a dot product in NR-wide partial sums (a float reduction GCC does not vectorise by itself) */
static inline T F(dot)(const T *a, const T *b, int64_t k) {
    F(vec) acc = {0};
    int64_t p = 0;
    for (; p + NR <= k; p += NR) {
        F(vec) u, v;
        memcpy(&u, a + p, sizeof u);
        memcpy(&v, b + p, sizeof v);
        acc += u * v;
    }
    T s = 0;
    for (int i = 0; i < NR; i++) s += acc[i];
    for (; p < k; p++) s += a[p] * b[p];
    return s;
}

/* one product C (m, n) = A (m, k) @ B (k, n), B row-major, A element (i, p) at a[i * ai + p * ap] */
static void F(matmul_small)(const T *a, int64_t ai, int64_t ap, const T *b, T *c, int64_t m, int64_t n,
                            int64_t k) {
    int64_t i = 0, j;
    for (; i + 4 <= m; i += 4) {
        for (j = 0; j + 4 * NR <= n; j += 4 * NR) F(tile_4x4)(a + i * ai, ai, ap, b + j, n, k, c + i * n + j);
        for (; j + NR <= n; j += NR) F(tile_4x1)(a + i * ai, ai, ap, b + j, n, k, c + i * n + j);
    }
    for (; i < m; i++) {
        for (j = 0; j + 4 * NR <= n; j += 4 * NR) F(tile_1x4)(a + i * ai, ap, b + j, n, k, c + i * n + j);
        for (; j + NR <= n; j += NR) F(tile_1x1)(a + i * ai, ap, b + j, n, k, c + i * n + j);
    }
    j = n - n % NR; /* fewer columns than a vector: dot products */
    if (n == 1 && ap == 1) { /* matrix times vector, both contiguous along k */
        for (i = 0; i < m; i++) c[i] = F(dot)(a + i * ai, b, k);
        return;
    }
    for (i = 0; i < m && j < n; i++)
        for (int64_t jj = j; jj < n; jj++) {
            T x = 0;
            for (int64_t p = 0; p < k; p++) x += a[i * ai + p * ap] * b[p * n + jj];
            c[i * n + jj] = x;
        }
}
#undef LOADV
#undef STOREV

void F(bmm)(const void *va, const void *vb, void *vc, int64_t nbatch, int64_t m, int64_t n, int64_t k,
            int64_t sa, int64_t sb, int ta, int tb) {
    const T *A = (const T *)va, *B = (const T *)vb;
    T *C = (T *)vc, *Bt = NULL;
    if (tb) { /* B is copied row-major first (it is small) */
        int64_t nb = sb ? nbatch : 1;
        Bt = malloc((size_t)(nb * k * n) * sizeof(T));
        if (!Bt) return;
        for (int64_t bi = 0; bi < nb; bi++)
            for (int64_t j = 0; j < n; j++)
                for (int64_t p = 0; p < k; p++) Bt[bi * k * n + p * n + j] = B[bi * sb + j * k + p];
        B = Bt;
        sb = sb ? k * n : 0;
    }
    int64_t ai = ta ? 1 : k, ap = ta ? m : 1;
    _Pragma("omp parallel for num_threads(NX_THREADS) schedule(static) if (nbatch * m * n * k >= PAR_MIN_MACS)")
    for (int64_t bi = 0; bi < nbatch; bi++) F(matmul_small)(A + bi * sa, ai, ap, B + bi * sb, C + bi * m * n, m, n, k);
    free(Bt);
}

/* ---- fused linear layer ----------------------------------------------------------------------------------
 * Per task t of nbatch: out (n, no) = x (n, ni) @ w (no, ni)^T + b (no), the matrices at batch offsets
 * t * sx, t * sw, t * sb (b may be NULL). Rows of x go 2 NR at a time: their block is copied transposed
 * (ni, 2 NR), so one wide register holds a column of x for 2 NR rows and each weight is one broadcast
 * FMA: w is read row by row as stored, and no copy of the (larger) transposed weight is needed. */
static void F(linear_rows)(const T *x, const T *w, const T *b, T *o, int64_t rows, int64_t ni, int64_t no,
                           T *xt) {
    enum { R = 2 * NR };
    if (no < 4) { /* a few outputs (a regression head): dot products along the rows as stored */
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < no; j++) o[r * no + j] = F(dot)(x + r * ni, w + j * ni, ni) + (b ? b[j] : 0);
        return;
    }
    for (int64_t p = 0; p < ni; p++)
        for (int64_t r = 0; r < R; r++) xt[p * R + r] = r < rows ? x[r * ni + p] : 0;
    int64_t j = 0;
    for (; j + 4 <= no; j += 4) {
        const T *w0 = w + j * ni, *w1 = w0 + ni, *w2 = w1 + ni, *w3 = w2 + ni;
        F(wide) a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        for (int64_t p = 0; p < ni; p++) {
            F(wide) v;
            memcpy(&v, xt + p * R, sizeof v);
            a0 += w0[p] * v, a1 += w1[p] * v, a2 += w2[p] * v, a3 += w3[p] * v;
        }
        T c0 = b ? b[j] : 0, c1 = b ? b[j + 1] : 0, c2 = b ? b[j + 2] : 0, c3 = b ? b[j + 3] : 0;
        for (int64_t r = 0; r < rows; r++) {
            T *orow = o + r * no + j;
            orow[0] = a0[r] + c0, orow[1] = a1[r] + c1, orow[2] = a2[r] + c2, orow[3] = a3[r] + c3;
        }
    }
    for (; j < no; j++) {
        const T *w0 = w + j * ni;
        F(wide) a0 = {0};
        for (int64_t p = 0; p < ni; p++) {
            F(wide) v;
            memcpy(&v, xt + p * R, sizeof v);
            a0 += w0[p] * v;
        }
        for (int64_t r = 0; r < rows; r++) o[r * no + j] = a0[r] + (b ? b[j] : 0);
    }
}

void F(linear)(const void *vx, const void *vw, const void *vb, void *vo, int64_t nbatch, int64_t n, int64_t ni,
               int64_t no, int64_t sx, int64_t sw, int64_t sb) {
    const T *X = (const T *)vx, *W = (const T *)vw, *B = (const T *)vb;
    T *O = (T *)vo;
    int64_t blocks = (n + 2 * NR - 1) / (2 * NR);
    _Pragma("omp parallel num_threads(NX_THREADS) if (nbatch * n * ni * no >= PAR_MIN_MACS)")
    {
        T *xt = malloc((size_t)(ni * 2 * NR) * sizeof(T));
        _Pragma("omp for schedule(static)")
        for (int64_t q = 0; q < nbatch * blocks; q++) {
            int64_t t = q / blocks, i = (q % blocks) * 2 * NR, rows = n - i < 2 * NR ? n - i : 2 * NR;
            if (xt) F(linear_rows)(X + t * sx + i * ni, W + t * sw, B ? B + t * sb : NULL, O + t * n * no + i * no,
                                   rows, ni, no, xt);
        }
        free(xt);
    }
}

/* sum over the n rows of g (n, no) times column p of x (n, ni) (or 1 when x is NULL), NR outputs at a time:
 * gw (no, ni) = g^T @ x for few inputs (ni < NR, as in the first layer of a regression net), and gb. Reading
 * g along its rows as stored beats dot products of length n down its columns. Column j's result goes to
 * out[j * os]. */
static void F(column_sums)(const T *g, const T *x, int64_t p, int64_t ni, T *out, int64_t os, int64_t n,
                           int64_t no) {
    int64_t j = 0;
    for (; j + NR <= no; j += NR) {
        F(vec) acc = {0};
        for (int64_t r = 0; r < n; r++) {
            F(vec) v;
            memcpy(&v, g + r * no + j, sizeof v);
            acc += v * (x ? x[r * ni + p] : (T)1);
        }
        for (int i = 0; i < NR; i++) out[(j + i) * os] = acc[i];
    }
    for (; j < no; j++) {
        T acc = 0;
        for (int64_t r = 0; r < n; r++) acc += g[r * no + j] * (x ? x[r * ni + p] : (T)1);
        out[j * os] = acc;
    }
}

/* Its gradient, per task: gx (n, ni) = g @ w, gw (no, ni) = g^T @ x, gb (no) = g summed over rows; an output
 * that is NULL is not computed. Operands as in linear, outputs contiguous per task. */
void F(linear_backward)(const void *vg, const void *vx, const void *vw, void *vgx, void *vgw, void *vgb,
                        int64_t nbatch, int64_t n, int64_t ni, int64_t no, int64_t sx, int64_t sw) {
    const T *G = (const T *)vg, *X = (const T *)vx, *W = (const T *)vw;
    T *GX = (T *)vgx, *GW = (T *)vgw, *GB = (T *)vgb;
    _Pragma("omp parallel for num_threads(NX_THREADS) schedule(static) if (nbatch * n * ni * no >= PAR_MIN_MACS / 2)")
    for (int64_t t = 0; t < nbatch; t++) {
        const T *g = G + t * n * no;
        if (GX) F(matmul_small)(g, no, 1, W + t * sw, GX + t * n * ni, n, ni, no);
        if (GW && ni < NR)
            for (int64_t p = 0; p < ni; p++) F(column_sums)(g, X + t * sx, p, ni, GW + t * no * ni + p, ni, n, no);
        else if (GW) F(matmul_small)(g, 1, no, X + t * sx, GW + t * no * ni, no, ni, n);
        if (GB) F(column_sums)(g, NULL, 0, 0, GB + t * no, 1, n, no);
    }
}

/* ---- fused optimizer steps over all parameters ---------------------------------------------------------
 * Inputs are never modified: new values go to the output arrays (op, om, ov / obuf). */
/* one parameter's elements [lo, hi): separate from the loop over parameters, with restrict pointers and
 * the options as constants, so that GCC vectorises it */
static void F(adam_span)(const T *restrict P, const T *restrict G, const T *restrict M, const T *restrict V,
                         T *restrict OP, T *restrict OM, T *restrict OV, int64_t lo, int64_t hi, const T *restrict c) {
    const T sign = c[0], decay = c[1], l2 = c[2], b1 = c[3], c1 = c[4], b2 = c[5], c2 = c[6], inv_sqrt_b2 = c[7],
            e = c[8], step = c[9];
    for (int64_t k = lo; k < hi; k++) {
        T pk = P[k] * decay, gk = G[k] * sign + P[k] * l2;
        T mk = M[k] * b1 + gk * c1, vk = V[k] * b2 + gk * gk * c2;
        OP[k] = pk - mk / (SQRT(vk) * inv_sqrt_b2 + e) * step;
        OM[k] = mk;
        OV[k] = vk;
    }
}

void F(adam)(int np_, void **p, void **g, void **m, void **v, void **op, void **om, void **ov, const void *vsizes,
             double lr, double beta1, double beta2, double eps, double wd, int decoupled, int maximize, double bias1,
             double bias2) {
    const int64_t *sizes = (const int64_t *)vsizes;
    const T c[10] = {maximize ? -1 : 1, (wd != 0 && decoupled) ? (T)(1.0 - lr * wd) : 1,
                     (wd != 0 && !decoupled) ? (T)wd : 0, (T)beta1, (T)(1.0 - beta1), (T)beta2, (T)(1.0 - beta2),
                     (T)(1.0 / sqrt(bias2)), (T)eps, (T)(lr / bias1)};
    for (int q = 0; q < np_; q++) {
        int64_t size = sizes[q], chunks = (size + CHUNK - 1) / CHUNK;
        _Pragma("omp parallel for num_threads(NX_THREADS) schedule(static) if (size >= PAR_MIN)")
        for (int64_t t = 0; t < chunks; t++)
            F(adam_span)(p[q], g[q], m[q], v[q], op[q], om[q], ov[q], t * CHUNK,
                         (t + 1) * CHUNK < size ? (t + 1) * CHUNK : size, c);
    }
}

/* one parameter's elements [lo, hi) of SGD (vectorised, as adam_span); B is NULL on the first step */
static void F(sgd_span)(const T *restrict P, const T *restrict G, const T *restrict B, T *restrict OP,
                        T *restrict OB, int64_t lo, int64_t hi, const T *restrict c) {
    const T sign = c[0], l2 = c[1], mom = c[2], damp = c[3], rate = c[4], ahead = c[5], keep = c[6];
    if (mom == 0) {
        for (int64_t k = lo; k < hi; k++) OP[k] = P[k] - (G[k] * sign + P[k] * l2) * rate;
    } else if (B == NULL) { /* the buffer starts as the gradient */
        for (int64_t k = lo; k < hi; k++) {
            T gk = G[k] * sign + P[k] * l2;
            OB[k] = gk;
            OP[k] = P[k] - (gk * keep + gk * ahead + gk * (1 - keep)) * rate;
        }
    } else {
        for (int64_t k = lo; k < hi; k++) {
            T gk = G[k] * sign + P[k] * l2, bk = B[k] * mom + gk * damp;
            OB[k] = bk;
            OP[k] = P[k] - (gk * keep + bk * ahead + bk * (1 - keep)) * rate; /* Nesterov: g + mom b; else b */
        }
    }
}

void F(sgd)(int np_, void **p, void **g, void **b, void **op, void **ob, const void *vsizes, double lr,
            double momentum, double dampening, int nesterov, double wd, int maximize) {
    const int64_t *sizes = (const int64_t *)vsizes;
    const T c[7] = {maximize ? -1 : 1, (T)wd, (T)momentum, (T)(1.0 - dampening), (T)lr,
                    nesterov ? (T)momentum : 0, nesterov ? 1 : 0};
    for (int q = 0; q < np_; q++) {
        int64_t size = sizes[q], chunks = (size + CHUNK - 1) / CHUNK;
        _Pragma("omp parallel for num_threads(NX_THREADS) schedule(static) if (size >= PAR_MIN)")
        for (int64_t t = 0; t < chunks; t++)
            F(sgd_span)(p[q], g[q], b[q], op[q], ob[q], t * CHUNK, (t + 1) * CHUNK < size ? (t + 1) * CHUNK : size, c);
    }
}

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
