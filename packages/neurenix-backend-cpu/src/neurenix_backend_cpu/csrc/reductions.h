/* Reductions: sum, max and min over collapsed axes.
 * For one float type (T, F(name) and the type's constants, as kernels.c defines them); no include
 * guard: families.h includes it once per type. Called from reductions.py. */

/* ---- reductions ---------------------------------------------------------------------------------------
 * op: 0 sum, 1 max, 2 min. Sums accumulate in double (float32 sums over a batch stay accurate). */
static inline T F(pick)(int op, T acc, T v) {
    if (v != v) return v;
    return op == 1 ? (v > acc ? v : acc) : (v < acc ? v : acc);
}

/* max (op 1) or min (op 2) of one long row (PAR_MIN elements or more) split over the threads in vector lanes, a
 * NaN anywhere winning: a whole tensor's max, which the column tiles below ran on one thread, one element at a
 * time (36 MB: 33 ms, against NumPy's 1 ms; now 0.7). reductions.py gives shorter rows to NumPy. */
static T F(row_extreme)(int op, const T *x, int64_t n) {
    T best = x[0];
    int nan = 0;
    if (op == 1) {
        _Pragma("omp parallel for simd num_threads(NX_THREADS) reduction(max : best) reduction(| : nan)")
        for (int64_t i = 0; i < n; i++) {
            best = x[i] > best ? x[i] : best;
            nan |= x[i] != x[i];
        }
    } else {
        _Pragma("omp parallel for simd num_threads(NX_THREADS) reduction(min : best) reduction(| : nan)")
        for (int64_t i = 0; i < n; i++) {
            best = x[i] < best ? x[i] : best;
            nan |= x[i] != x[i];
        }
    }
    return nan ? (T)NAN : best;
}

/* out[a, b] = reduce over r of x[a, r, b] */
void F(reduce_mid)(int op, const void *vx, void *vo, int64_t na, int64_t nr, int64_t nb) {
    const T *X = (const T *)vx;
    T *O = (T *)vo;
    if (op != 0 && nb == 1 && nr >= PAR_MIN && na < 64) {
        for (int64_t a = 0; a < na; a++)
            O[a] = F(row_extreme)(op, X + a * nr, nr);
        return;
    }
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
