/* Windows and pools: unfold and fold (im2col, col2im), max pooling and its gradient.
 * For one float type (T, F(name) and the type's constants, as kernels.c defines them); no include
 * guard: families.h includes it once per type. Called from windows.py. */

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

/* The output rows y in [lo, hi) of a kernel row whose output row 0 reads input row iy0 (stride 1): the rows
 * with an input row; the others read padding. */
static inline void F(rows_inside)(int64_t oh, int64_t iy0, int64_t h, int64_t *lo, int64_t *hi) {
    *lo = iy0 < 0 ? (-iy0 < oh ? -iy0 : oh) : 0;
    *hi = h - iy0 < oh ? h - iy0 : oh;
    if (*hi < *lo) *hi = *lo;
}

/* unfold's row for one kernel element at stride 1 with ow == w (windows as wide as the image, as a 3x3 conv
 * at padding 1 has): output element y * w + xo reads input element (y + iy0) * w + xo + off, so the rows with
 * an input row are one contiguous copy; columns outside [lo, hi) then read the neighbouring row, and are
 * zeroed after. Bitwise the same as the row-by-row loop, with one memcpy instead of one per output row. */
static void F(unfold_flat)(const T *restrict x, T *restrict o, int64_t h, int64_t w, int64_t oh, int64_t iy0,
                           int64_t off, int64_t lo, int64_t hi) {
    int64_t ylo, yhi;
    F(rows_inside)(oh, iy0, h, &ylo, &yhi);
    if (hi <= lo || yhi <= ylo) {
        memset(o, 0, (size_t)(oh * w) * sizeof(T));
        return;
    }
    memset(o, 0, (size_t)(ylo * w + lo) * sizeof(T));
    int64_t q0 = ylo * w + lo, q1 = (yhi - 1) * w + hi; /* the copied span of o */
    memcpy(o + q0, x + (ylo + iy0) * w + off + lo, (size_t)(q1 - q0) * sizeof(T));
    for (int64_t y = ylo; y < yhi; y++) {
        for (int64_t xo = 0; xo < lo; xo++) o[y * w + xo] = 0;
        for (int64_t xo = hi; xo < w; xo++) o[y * w + xo] = 0;
    }
    memset(o + q1, 0, (size_t)(oh * w - q1) * sizeof(T));
}

#define FOLD_SAVED 64 /* wrapped elements fold_flat saves on its stack, at most */

/* fold's sum of one kernel element's column into its image plane o, at stride 1 with ow == w (the adjoint of
 * unfold_flat): one flat add over the rows with an input row. The adds that land on a wrapped column (one
 * outside [lo, hi), which belongs to no window) are undone by restoring the values saved before, so every
 * element gets the same adds in the same order as in the row-by-row loop. Returns 0, doing nothing, where
 * more than FOLD_SAVED elements would need saving. */
static int F(fold_flat)(const T *restrict col, T *o, int64_t h, int64_t w, int64_t oh, int64_t iy0,
                        int64_t off, int64_t lo, int64_t hi) {
    int64_t ylo, yhi;
    F(rows_inside)(oh, iy0, h, &ylo, &yhi);
    if (hi <= lo || yhi <= ylo) return 1;
    int64_t wrapped = w - (hi - lo);
    if (wrapped * (yhi - ylo) > FOLD_SAVED) return 0;
    T saved[FOLD_SAVED];
    int64_t q0 = ylo * w + lo, q1 = (yhi - 1) * w + hi, shift = iy0 * w + off, ns = 0;
    /* the wrapped elements strictly inside the span: the columns outside [lo, hi) of rows ylo..yhi-1, but for
     * row ylo's first lo and row yhi-1's last w - hi, which the span leaves out */
#define FOLD_WRAPPED(action)                                                                                 \
    for (int64_t y = ylo; y < yhi; y++)                                                                      \
        for (int64_t xo = 0; xo < wrapped; xo++) {                                                           \
            int64_t q = y * w + (xo < lo ? xo : hi + xo - lo);                                               \
            if (q > q0 && q < q1) action;                                                                    \
        }
    FOLD_WRAPPED(saved[ns++] = o[q + shift])
    T *t = o + shift;
    for (int64_t q = q0; q < q1; q++) t[q] += col[q];
    ns = 0;
    FOLD_WRAPPED(o[q + shift] = saved[ns++])
#undef FOLD_WRAPPED
    return 1;
}
#undef FOLD_SAVED

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
        if (sh == 1 && sw == 1 && ow == w) { /* "same" windows (a 3x3 conv at padding 1): one flat copy */
            F(unfold_flat)(x, o, h, w, oh, i * dh - ph, off, lo, hi);
            continue;
        }
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
                if (sh == 1 && sw == 1 && ow == w && F(fold_flat)(col, o, h, w, oh, i * dh - ph, off, lo, hi))
                    continue;
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
    T vm[POOL_BLOCK];
    IT va[POOL_BLOCK]; /* indices in integer lanes of T's width: compares and selects keep one width, and the
                        * widening to int64 is a vector sign extension (AVX2 has no float -> int64 convert) */
    int64_t ew = 2 * ow, rows = ew <= POOL_BLOCK ? POOL_BLOCK / ew : 1; /* ew: the columns windows cover */
    if (ew > POOL_BLOCK || ow < 2) { /* rows too wide for the block, or a single window a row */
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
            T *restrict m = vm + r * ew;
            IT *restrict a = va + r * ew;
            for (int64_t j = 0; j < ew; j++) { /* pool_wins(r1[j], 2, r0[j], 0): the later index never wins a tie */
                IT t = (r1[j] > r0[j]) | ((r1[j] != r1[j]) & (r0[j] == r0[j]));
                m[j] = t ? r1[j] : r0[j], a[j] = t * 2;
            }
        }
        T *restrict ob = o + y0 * ow;
        int64_t *restrict ib = idx + y0 * ow;
        for (int64_t k = 0; k < nr * ow; k++) { /* pool_wins(rv, ar, l, al), with bitwise operators */
            T l = vm[2 * k], rv = vm[2 * k + 1];
            IT al = va[2 * k], ar = va[2 * k + 1] + 1;
            IT t = (rv > l) | ((rv != rv) & (l == l)) | (((rv == l) | ((rv != rv) & (l != l))) & (ar < al));
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
