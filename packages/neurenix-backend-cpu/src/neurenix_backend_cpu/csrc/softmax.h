/* Softmax and losses: the vectorised exp, softmax and log_softmax over rows, cross entropy, and
 * their gradients.
 * For one float type (T, F(name) and the type's constants, as kernels.c defines them); no include
 * guard: families.h includes it once per type. Called from softmax.py. */

/* ---- softmax family ------------------------------------------------------------------------------------
 * exp of EW lanes at once (GCC vectorises no libm exp): x = k ln2 + r with |r| <= ln2 / 2, exp(r) by its
 * Taylor series (degree EXP_DEGREE: below an ulp on that range), 2^k built in the exponent bits (as 2^(k-1) * 2,
 * so the largest finite results do not overflow the exponent). Below EXP_LO the result is 0 (float loses
 * results under 2e-38, double under 1e-307), above EXP_HI it is inf; NaN stays NaN. */
/* exp works on 64-byte vectors (AVX-512 registers, or two AVX2 ones): more lanes per instruction issued */
#define EW WIDE
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
