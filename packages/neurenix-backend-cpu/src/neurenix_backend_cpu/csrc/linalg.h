/* Matmul and linear: small batched products and the fused linear layer.
 * For one float type (T, F(name) and the type's constants, as kernels.c defines them); no include
 * guard: families.h includes it once per type. Called from linalg.py. */

/* ---- small batched matmul -------------------------------------------------------------------------------
 * For each of nbatch products: C (m, n) = A (m, k) @ B (k, n). A matrix is read from its batch offset
 * (stride 0 broadcasts it); ta / tb say the operand is stored transposed ((k, m) / (n, k) row-major), as
 * the transposed views in linear layers and their gradients are. Meant for the task-batched shapes of
 * meta-learning, where a BLAS call per small matrix costs more than the arithmetic. A transposed B is
 * first copied row-major (it is small), so the tiles always stream rows of B. */
typedef T F(vec) __attribute__((vector_size(NR * sizeof(T))));     /* 32 bytes: one AVX2 register */
typedef T F(wide) __attribute__((vector_size(WIDE * sizeof(T))));  /* the target's widest register */

/* unaligned loads and stores */
#define LOADV(type, p) ({ type v_; memcpy(&v_, (p), sizeof v_); v_; })
#define STOREV(p, v) do { __typeof__(v) v_ = (v); memcpy((p), &v_, sizeof v_); } while (0)

/* 4 rows x 2 WIDE columns of C in 8 wide registers: per step of k, 2 loads of B feed 8 independent FMAs,
 * enough to keep both FMA units busy. Row i of A is at a + i * ai, its element p at [p * ap]. */
static inline void F(tile_4x4)(const T *a, int64_t ai, int64_t ap, const T *b, int64_t n, int64_t k, T *c) {
    F(wide) x0 = {0}, x1 = {0}, y0 = {0}, y1 = {0}, z0 = {0}, z1 = {0}, w0 = {0}, w1 = {0};
    for (int64_t p = 0; p < k; p++, b += n) {
        F(wide) b0 = LOADV(F(wide), b), b1 = LOADV(F(wide), b + WIDE);
        T u = a[p * ap], v = a[ai + p * ap], s = a[2 * ai + p * ap], t = a[3 * ai + p * ap];
        x0 += u * b0, x1 += u * b1, y0 += v * b0, y1 += v * b1;
        z0 += s * b0, z1 += s * b1, w0 += t * b0, w1 += t * b1;
    }
    STOREV(c, x0); STOREV(c + WIDE, x1); STOREV(c + n, y0); STOREV(c + n + WIDE, y1);
    STOREV(c + 2 * n, z0); STOREV(c + 2 * n + WIDE, z1); STOREV(c + 3 * n, w0); STOREV(c + 3 * n + WIDE, w1);
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

/* 1 row x 2 WIDE columns, and 1 row x NR columns: what the 4-row tiles leave */
static inline void F(tile_1x4)(const T *a, int64_t ap, const T *b, int64_t n, int64_t k, T *c) {
    F(wide) x0 = {0}, x1 = {0};
    for (int64_t p = 0; p < k; p++, b += n) {
        T u = a[p * ap];
        x0 += u * LOADV(F(wide), b), x1 += u * LOADV(F(wide), b + WIDE);
    }
    STOREV(c, x0); STOREV(c + WIDE, x1);
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
        for (j = 0; j + 2 * WIDE <= n; j += 2 * WIDE) F(tile_4x4)(a + i * ai, ai, ap, b + j, n, k, c + i * n + j);
        for (; j + NR <= n; j += NR) F(tile_4x1)(a + i * ai, ai, ap, b + j, n, k, c + i * n + j);
    }
    for (; i < m; i++) {
        for (j = 0; j + 2 * WIDE <= n; j += 2 * WIDE) F(tile_1x4)(a + i * ai, ap, b + j, n, k, c + i * n + j);
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

/* ---- products along k: C (m, n) = A (m, k) @ B^T, B stored (n, k) ------------------------------------------
 * For few columns n and long rows k (a conv's weight gradient over per-image columns: grad (64, 784) times
 * columns (9, 784) transposed), where the register tiles above would stream a transposed copy of B a vector
 * of columns at a time: both operands are read along k as stored, 4 rows of A times 3 rows of B in 12
 * NR-wide partial sums, each summed across its lanes at the end. */
static void F(matmul_nt)(const T *a, const T *b, T *c, int64_t m, int64_t n, int64_t k) {
    int64_t kv = k - k % NR;
    for (int64_t i0 = 0; i0 < m; i0 += 4)
        for (int64_t j0 = 0; j0 < n; j0 += 3) {
            int64_t mi = m - i0 < 4 ? m - i0 : 4, nj = n - j0 < 3 ? n - j0 : 3;
            const T *ar[4], *br[3];
            for (int r = 0; r < 4; r++) ar[r] = a + (i0 + (r < mi ? r : 0)) * k; /* rows past the end repeat */
            for (int r = 0; r < 3; r++) br[r] = b + (j0 + (r < nj ? r : 0)) * k;
            F(vec) acc[4][3];
            memset(acc, 0, sizeof acc);
            for (int64_t p = 0; p < kv; p += NR) {
                F(vec) u0 = LOADV(F(vec), ar[0] + p), u1 = LOADV(F(vec), ar[1] + p), u2 = LOADV(F(vec), ar[2] + p),
                       u3 = LOADV(F(vec), ar[3] + p);
                for (int r = 0; r < 3; r++) {
                    F(vec) v = LOADV(F(vec), br[r] + p);
                    acc[0][r] += u0 * v, acc[1][r] += u1 * v, acc[2][r] += u2 * v, acc[3][r] += u3 * v;
                }
            }
            for (int64_t i = 0; i < mi; i++)
                for (int64_t j = 0; j < nj; j++) {
                    T s = 0;
                    for (int l = 0; l < NR; l++) s += acc[i][j][l];
                    for (int64_t p = kv; p < k; p++) s += ar[i][p] * br[j][p];
                    c[(i0 + i) * n + j0 + j] = s;
                }
        }
}

void F(bmm_nt)(const void *va, const void *vb, void *vc, int64_t nbatch, int64_t m, int64_t n, int64_t k,
               int64_t sa, int64_t sb) {
    const T *A = (const T *)va, *B = (const T *)vb;
    T *C = (T *)vc;
    _Pragma("omp parallel for num_threads(NX_THREADS) schedule(static) if (nbatch * m * n * k >= PAR_MIN_MACS)")
    for (int64_t bi = 0; bi < nbatch; bi++) F(matmul_nt)(A + bi * sa, B + bi * sb, C + bi * m * n, m, n, k);
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
 * t * sx, t * sw, t * sb (b may be NULL). Rows of x go WIDE at a time: their block is copied transposed
 * (ni, WIDE), so one wide register holds a column of x for WIDE rows and each weight is one broadcast
 * FMA: w is read row by row as stored, and no copy of the (larger) transposed weight is needed. */
static void F(linear_rows)(const T *x, const T *w, const T *b, T *o, int64_t rows, int64_t ni, int64_t no,
                           T *xt) {
    enum { R = WIDE };
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
    int64_t blocks = (n + WIDE - 1) / WIDE;
    _Pragma("omp parallel num_threads(NX_THREADS) if (nbatch * n * ni * no >= PAR_MIN_MACS)")
    {
        T *xt = malloc((size_t)(ni * WIDE) * sizeof(T));
        _Pragma("omp for schedule(static)")
        for (int64_t q = 0; q < nbatch * blocks; q++) {
            int64_t t = q / blocks, i = (q % blocks) * WIDE, rows = n - i < WIDE ? n - i : WIDE;
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
