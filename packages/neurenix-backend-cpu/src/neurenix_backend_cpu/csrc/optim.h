/* Optimizer steps: Adam and SGD over all parameters in one call.
 * For one float type (T, F(name) and the type's constants, as kernels.c defines them); no include
 * guard: families.h includes it once per type. Called from optim.py. */

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
