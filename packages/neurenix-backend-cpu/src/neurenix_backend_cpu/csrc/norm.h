/* Normalisation: batch normalisation (training) and its gradient.
 * For one float type (T, F(name) and the type's constants, as kernels.c defines them); no include
 * guard: families.h includes it once per type. Called from norm.py. */

/* ---- batch normalisation (training) ----------------------------------------------------------------------
 * x (N, C, R) is groups blocks of nr = N / groups rows; each (group, channel) plane of nr runs of R values is
 * normalised with its own mean and (biased) variance, two passes over the plane (which stays in cache for the
 * third, the output). Parameters: w and b NULL, or ps = 0 (one per channel) or C (one per group and channel). */
#define BN_RUN 1024
/* The mean (into *mu) and biased variance of a (group, channel) plane: nr runs of r values, c * r apart. Runs of
 * at most BN_RUN values are summed in T (one vector width: twice the lanes of double for float; 1.4x faster),
 * the runs in double, so that a float32 sum over a batch stays accurate. */
static inline double F(bn_stats)(const T *x, int64_t nr, int64_t c, int64_t r, T *mu_out) {
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
            for (int64_t j = j0; j < (j0 + BN_RUN < r ? j0 + BN_RUN : r); j++) rs += (xr[j] - mu) * (xr[j] - mu);
            ss += rs;
        }
    *mu_out = mu;
    return ss / (double)(nr * r);
}

void F(batch_norm)(const void *vx, const void *vw, const void *vb, void *vy, void *vmean, void *vvar, int64_t groups,
                   int64_t nr, int64_t c, int64_t r, int64_t ps, double eps) {
    const T *X = (const T *)vx, *W = (const T *)vw, *B = (const T *)vb;
    T *Y = (T *)vy, *M = (T *)vmean, *V = (T *)vvar;
    _Pragma("omp parallel for num_threads(NX_THREADS) schedule(static) if (groups * nr * c * r >= PAR_MIN)")
    for (int64_t q = 0; q < groups * c; q++) {
        int64_t gi = q / c, ch = q % c;
        const T *x = X + (gi * nr * c + ch) * r;
        T *y = Y + (gi * nr * c + ch) * r;
        T mu;
        double var = F(bn_stats)(x, nr, c, r, &mu);
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

/* ---- batch normalisation, ReLU and a 2x2 max-pool of stride 2 (Conv-4's block) in one pass ---------------
 * x (N, C, h, w) -> y (N, C, h / 2, w / 2): each window's maximum of relu(z), z = x normalised as batch_norm
 * does (a last odd row or column is in no window). After the statistics' two passes one pass writes only the
 * pooled plane, where the three kernels write the normalised and the rectified activations in full and read
 * them back. The window's value is relu of the first maximum of its z (NaN wins, as max_pool2d), which is the
 * maximum of the rectified values; the gradient recomputes z, so nothing but x is kept for it. The scale is
 * taken from the variance as stored (in T), in the forward as in the backward: both see the same z.
 *
 * Windows are found a block of row pairs at a time (of all the plane's images: Conv-4's rows are 3-14 windows
 * long, too short for vectors one row pair at a time) in loops GCC vectorises, as max_pool_2x2 does: the
 * larger z of each vertical pair (vt: whether the lower one won), then of each horizontal pair of those, by
 * pool_wins's rules: a later candidate wins if larger, if NaN where the best is not, or if tied with a smaller
 * index; vertically the later one (index 2) never has the smaller index, horizontally the right one (1 or 3)
 * has it when it is 1 and the left one 2. Rows are at most BNP_BLOCK values (the Python side checks). */
#define BNP_BLOCK 1024

typedef struct {
    T vm[BNP_BLOCK], vx[BNP_BLOCK], g[BNP_BLOCK / 2], gv[BNP_BLOCK / 2], bx[BNP_BLOCK / 2];
    IT vt[BNP_BLOCK], pos[BNP_BLOCK / 2], column[BNP_BLOCK / 2]; /* column: a window's first, in its row */
    int64_t base[BNP_BLOCK / 2], out[BNP_BLOCK / 2]; /* per row pair: its first value in the plane, in the output */
} F(bnp_block);

static inline IT F(bnp_right_wins)(T l, T rv, IT tl, IT tr) {
    return (rv > l) | ((rv != rv) & (l == l)) | (((rv == l) | ((rv != rv) & (l != l))) & (tl & (1 - tr)));
}

/* The vertical winners of row pairs p0 .. p0 + nb - 1 of a plane x (rows of image i at x + i * cr; oh pairs an
 * image) into blk: z (vm), which row won (vt), and with want_x that row's x (vx). */
static void F(bnp_vertical)(F(bnp_block) *blk, const T *x, int64_t p0, int64_t nb, int64_t oh, int64_t ow,
                            int64_t w, int64_t cr, T mu, T scale, T shift, int want_x) {
    int64_t ew = 2 * ow;
    for (int64_t b = 0; b < nb; b++) {
        int64_t i = (p0 + b) / oh, oy = (p0 + b) % oh;
        const T *r0 = x + i * cr + 2 * oy * w, *r1 = r0 + w;
        T *vm = blk->vm + b * ew, *vx = blk->vx + b * ew;
        IT *vt = blk->vt + b * ew;
        blk->base[b] = i * cr + 2 * oy * w;
        blk->out[b] = (i * oh + oy) * ow;
        for (int64_t j = 0; j < ew; j++) {
            T z0 = (r0[j] - mu) * scale + shift, z1 = (r1[j] - mu) * scale + shift;
            IT t = (z1 > z0) | ((z1 != z1) & (z0 == z0));
            vm[j] = t ? z1 : z0, vt[j] = t;
        }
        if (want_x)
            for (int64_t j = 0; j < ew; j++) vx[j] = vt[j] ? r1[j] : r0[j];
    }
}

/* rows: row pairs a block holds (at least one) */
#define BNP_ROWS(ow) (BNP_BLOCK / (2 * (ow)) > 0 ? BNP_BLOCK / (2 * (ow)) : 1)

void F(batch_norm_relu_pool)(const void *vx, const void *vw, const void *vb, void *vy, void *vmean, void *vvar,
                             int64_t groups, int64_t nr, int64_t c, int64_t h, int64_t w, int64_t ps, double eps) {
    const T *X = (const T *)vx, *W = (const T *)vw, *B = (const T *)vb;
    T *Y = (T *)vy, *M = (T *)vmean, *V = (T *)vvar;
    int64_t r = h * w, oh = h / 2, ow = w / 2, rows = BNP_ROWS(ow);
    _Pragma("omp parallel for num_threads(NX_THREADS) schedule(static) if (groups * nr * c * r >= PAR_MIN)")
    for (int64_t q = 0; q < groups * c; q++) {
        int64_t gi = q / c, ch = q % c;
        const T *x = X + (gi * nr * c + ch) * r;
        T *y = Y + (gi * nr * c + ch) * oh * ow; /* image i's pooled plane at y + i * c * oh * ow */
        T mu, var = (T)F(bn_stats)(x, nr, c, r, &mu);
        T scale = (T)(1.0 / sqrt((double)var + eps)) * (W ? W[gi * ps + ch] : 1), shift = B ? B[gi * ps + ch] : 0;
        F(bnp_block) blk;
        for (int64_t p0 = 0; p0 < nr * oh; p0 += rows) {
            int64_t nb = nr * oh - p0 < rows ? nr * oh - p0 : rows;
            F(bnp_vertical)(&blk, x, p0, nb, oh, ow, w, c * r, mu, scale, shift, 0);
            for (int64_t k = 0; k < nb * ow; k++) {
                T l = blk.vm[2 * k], rv = blk.vm[2 * k + 1];
                T best = F(bnp_right_wins)(l, rv, blk.vt[2 * k], blk.vt[2 * k + 1]) ? rv : l;
                blk.gv[k] = best > 0 ? best : (best != best ? best : 0); /* (gv: the pooled values here) */
            }
            for (int64_t b = 0; b < nb; b++) {
                int64_t i = blk.out[b] / (oh * ow), o = blk.out[b] % (oh * ow);
                memcpy(y + i * c * oh * ow + o, blk.gv + b * ow, (size_t)ow * sizeof(T));
            }
        }
        M[q] = mu;
        V[q] = var;
    }
}

/* The winners of a block's windows for the gradient (after bnp_vertical with want_x): where g goes (gv: g,
 * or 0 where the winner's z is not positive), the winner's x (bx) and its place in its row pair (pos: row * w
 * + column). g is the plane's output gradient (image i's at g + i * c * oh * ow). Every operand is read before
 * the selects, so that GCC vectorises them rather than branching. */
static void F(bnp_winners)(F(bnp_block) *blk, const T *g, int64_t nb, int64_t oh, int64_t ow, int64_t w, int64_t c) {
    for (int64_t b = 0; b < nb; b++) {
        int64_t i = blk->out[b] / (oh * ow), o = blk->out[b] % (oh * ow);
        memcpy(blk->g + b * ow, g + i * c * oh * ow + o, (size_t)ow * sizeof(T));
    }
    const T *restrict vm = blk->vm, *restrict vx = blk->vx, *restrict gs = blk->g;
    const IT *restrict vt = blk->vt, *restrict column = blk->column;
    T *restrict gv = blk->gv, *restrict bx = blk->bx;
    IT *restrict pos = blk->pos;
    for (int64_t k = 0; k < nb * ow; k++) {
        T l = vm[2 * k], rv = vm[2 * k + 1], gk = gs[k], xl = vx[2 * k], xr = vx[2 * k + 1];
        IT tl = vt[2 * k], tr = vt[2 * k + 1], th = F(bnp_right_wins)(l, rv, tl, tr);
        T best = th ? rv : l;
        gv[k] = best > 0 ? gk : 0;
        bx[k] = th ? xr : xl;
        pos[k] = (th ? tr : tl) * (IT)w + column[k] + th;
    }
}

/* its gradient: g (N, C, h / 2, w / 2) reaches the first maximum of each window where that z is positive (gy,
 * zero elsewhere), then batch_norm_backward's formulas with gy: a first pass finds the winners and sums gy and
 * gy * xhat over them (keeping, per thread, each window's gy, winner's x and position: 12 or 20 bytes a window),
 * a second writes gx, every position with gy = 0 and then each winner's with its own. gx, gw, gb may be NULL.
 * Returns 0, or 1 where the per-thread memory could not be had (nothing is written then). */
int F(batch_norm_relu_pool_backward)(const void *vg, const void *vx, const void *vmean, const void *vvar,
                                     const void *vw, const void *vb, void *vgx, void *vgw, void *vgb, int64_t groups,
                                     int64_t nr, int64_t c, int64_t h, int64_t w, int64_t ps, double eps) {
    const T *G = (const T *)vg, *X = (const T *)vx, *M = (const T *)vmean, *V = (const T *)vvar, *W = (const T *)vw,
            *B = (const T *)vb;
    T *GX = (T *)vgx, *GW = (T *)vgw, *GB = (T *)vgb;
    int64_t r = h * w, oh = h / 2, ow = w / 2, rows = BNP_ROWS(ow), nw = nr * oh * ow;
    int failed = 0;
    _Pragma("omp parallel num_threads(NX_THREADS) if (groups * nr * c * r >= PAR_MIN)")
    {
        /* a plane's windows: gy, the winner's x, its position in the plane */
        T *wg = malloc((size_t)nw * (2 * sizeof(T) + sizeof(int64_t))), *wx = wg ? wg + nw : NULL;
        int64_t *wpos = wg ? (int64_t *)(wx + nw) : NULL;
        if (!wg) __atomic_store_n(&failed, 1, __ATOMIC_RELAXED);
        _Pragma("omp barrier")
        _Pragma("omp for schedule(static)")
        for (int64_t q = 0; q < groups * c; q++) {
            if (__atomic_load_n(&failed, __ATOMIC_RELAXED)) continue;
            int64_t gi = q / c, ch = q % c, off = (gi * nr * c + ch) * r;
            const T *x = X + off, *g = G + (gi * nr * c + ch) * oh * ow;
            T mu = M[q], inv = (T)(1.0 / sqrt((double)V[q] + eps)), wt = W ? W[gi * ps + ch] : 1;
            T scale = inv * wt, shift = B ? B[gi * ps + ch] : 0;
            F(bnp_block) blk;
            for (int64_t k = 0; k < rows * ow; k++) blk.column[k] = (IT)(2 * (k % ow));
            double sb = 0, sw = 0;
            for (int64_t p0 = 0; p0 < nr * oh; p0 += rows) {
                int64_t nb = nr * oh - p0 < rows ? nr * oh - p0 : rows, at = p0 * ow;
                F(bnp_vertical)(&blk, x, p0, nb, oh, ow, w, c * r, mu, scale, shift, 1);
                F(bnp_winners)(&blk, g, nb, oh, ow, w, c);
                T rb = 0, rw = 0;
                _Pragma("omp simd reduction(+ : rb, rw)")
                for (int64_t k = 0; k < nb * ow; k++) {
                    rb += blk.gv[k];
                    rw += blk.gv[k] * ((blk.bx[k] - mu) * inv);
                }
                sb += rb;
                sw += rw;
                memcpy(wg + at, blk.gv, (size_t)(nb * ow) * sizeof(T));
                memcpy(wx + at, blk.bx, (size_t)(nb * ow) * sizeof(T));
                for (int64_t b = 0; b < nb; b++)
                    for (int64_t kk = b * ow; kk < (b + 1) * ow; kk++) wpos[at + kk] = blk.base[b] + blk.pos[kk];
            }
            if (GB) GB[q] = (T)sb;
            if (GW) GW[q] = (T)sw;
            if (!GX) continue;
            T m = (T)(nr * r), k = inv * wt / m, b = (T)sb, sv = (T)sw, *gx = GX + off;
            for (int64_t i = 0; i < nr; i++) /* every position as if gy = 0, then the winners */
                for (int64_t j = 0; j < r; j++) gx[i * c * r + j] = k * (m * 0 - b - (x[i * c * r + j] - mu) * inv * sv);
            for (int64_t t = 0; t < nw; t++) gx[wpos[t]] = k * (m * wg[t] - b - (wx[t] - mu) * inv * sv);
        }
        free(wg);
    }
    return failed;
}
#undef BNP_ROWS
#undef BNP_BLOCK

#undef BN_RUN
