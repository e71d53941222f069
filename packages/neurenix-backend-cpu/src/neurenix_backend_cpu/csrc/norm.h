/* Normalisation: batch normalisation (training) and its gradient.
 * For one float type (T, F(name) and the type's constants, as kernels.c defines them); no include
 * guard: families.h includes it once per type. Called from norm.py. */

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
