/* Winograd F(2x2, 3x3) transforms for 3x3 stride-1 convolutions (Lavin and Gray, 2016): a 2x2 output tile from a
 * 4x4 input tile is A^T [(G w G^T) . (B^T d B)] A, 16 products instead of 36, which become 16 matrix products
 * over channels. winograd_conv runs a whole convolution (below); winograd_input and winograd_grad transform the
 * input and the output gradient for the weight's gradient, whose products NumPy's BLAS runs (conv.py).
 *
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]    A^T = [1 1 1 0; 0 1 -1 -1]
 *
 * Transformed tiles are laid out (tasks, 16, channels, P): element e = 4a + b of a tile, and P the task's
 * tiles ordered (group of CL images, tile row, tile column, image in the group; the last group may have fewer
 * than CL). The matrix product's operand for element e is one contiguous (channels, P) block, and the kernels
 * vectorise across images: a vector holds one tile position of a group's images, loaded and stored in one
 * piece, and a group's tiles are one contiguous run. (Vectorising along an image row does little on Conv-4's
 * 14x14 and 7x7 images, where rows are a few tiles long.) */

#define CL NR /* images per vector */
typedef T F(cvec) __attribute__((vector_size(CL * sizeof(T))));

/* the first `lanes` images' values of v at p. A whole vector is one move; a memcpy of a variable length is a
 * call into libc (it took a fifth of a convolution's time) */
static inline void F(cstore)(T *p, F(cvec) v, int64_t lanes) {
    if (lanes == CL)
        memcpy(p, &v, sizeof v);
    else
        memcpy(p, &v, (size_t)lanes * sizeof(T));
}

/* The work of a transform: (task, channel, group of CL images) jobs, and where a job's images start. */
#define CONV_JOBS(tasks, channels, groups) ((tasks) * (channels) * (groups))
#define CONV_JOB(job, channels, groups, per, t, ch, img0, lanes)                                                     \
    int64_t t = (job) / ((groups) * (channels)), ch = ((job) / (groups)) % (channels),                               \
            img0 = ((job) % (groups)) * CL, lanes = (per) - img0 < CL ? (per) - img0 : CL

/* Input tiles: x (n, c, h, w), zero padded by (ph, pw) at the top/left (and as far as the tiles reach at the
 * bottom/right) -> v (tasks, 16, c, P), P = th * tw * (n / tasks). */
void F(winograd_input)(const void *vx, void *vv, int64_t n, int64_t c, int64_t h, int64_t w, int64_t ph,
                       int64_t pw, int64_t th, int64_t tw, int64_t tasks) {
    const T *X = (const T *)vx;
    T *V = (T *)vv;
    int64_t per = n / tasks, P = per * th * tw, wp = 2 * tw + 2, groups = (per + CL - 1) / CL;
    int64_t x0 = pw < wp ? pw : wp, x1 = w + pw < wp ? w + pw : wp; /* where input columns land in a padded row */
    _Pragma("omp parallel for num_threads(NX_THREADS) schedule(static) if (n * c * h * w >= PAR_MIN / 4)")
    for (int64_t job = 0; job < CONV_JOBS(tasks, c, groups); job++) {
        CONV_JOB(job, c, groups, per, t, ch, img0, lanes);
        const T *x = X + ((t * per + img0) * c + ch) * h * w; /* image l of the group at x + l * c * h * w */
        T *v = V + (t * 16 * c + ch) * P + img0 * th * tw;
        F(cvec) d[4][wp], bd[4][wp], zero = {0}; /* four padded input rows of a row of tiles, and B^T down them */
        for (int64_t i = 0; i < th; i++) {
            for (int64_t a = 0; a < 4; a++) {
                int64_t y = 2 * i + a - ph;
                int inside = y >= 0 && y < h;
                for (int64_t k = 0; k < wp; k++) /* zeros where no input lands (a memset call cost 5%) */
                    if (!inside || lanes < CL || k < x0 || k >= x1) d[a][k] = zero;
                if (!inside)
                    continue;
                for (int64_t l = 0; l < lanes; l++)
                    for (int64_t k = x0; k < x1; k++) d[a][k][l] = x[l * c * h * w + y * w + k - pw];
            }
            for (int64_t k = 0; k < wp; k++) {
                bd[0][k] = d[0][k] - d[2][k];
                bd[1][k] = d[1][k] + d[2][k];
                bd[2][k] = d[2][k] - d[1][k];
                bd[3][k] = d[1][k] - d[3][k];
            }
            for (int64_t j = 0; j < tw; j++) {
                T *o = v + (i * tw + j) * lanes;
                for (int64_t a = 0; a < 4; a++) { /* (B^T d) B along the row: element (a, b) */
                    const F(cvec) *r = &bd[a][2 * j];
                    F(cstore)(o + (4 * a) * c * P, r[0] - r[2], lanes);
                    F(cstore)(o + (4 * a + 1) * c * P, r[1] + r[2], lanes);
                    F(cstore)(o + (4 * a + 2) * c * P, r[2] - r[1], lanes);
                    F(cstore)(o + (4 * a + 3) * c * P, r[1] - r[3], lanes);
                }
            }
        }
    }
}

/* ---- the whole convolution, block by block -------------------------------------------------------------
 * y = x * w + bias in one pass over blocks of tiles (as NNPACK and oneDNN do): a job takes one row of tiles of
 * CL images (or a chunk of it), transforms its input tiles for every channel, multiplies them by the 16 filter
 * matrices and transforms the products back into y, all in buffers that stay in the core's cache. The
 * transformed tiles and the products (each 4x the input's size) never go to memory, and the jobs (task, group
 * of images, tile row, chunk) keep both threads busy on a single image batch.
 *
 * The products run on WR x WP register tiles: WR output channels by two tiles' CL images, over the channels.
 * Operands are packed for them: the filters u (tasks, 16, o, c) as blocks of WR rows, (c, WR) each, and a job's
 * input tiles as panels of two tiles, (c, WP) each, so a step over channels is 2 vector loads and WR
 * broadcasts for 2 WR independent FMAs. */
#define WR 6
#define WP (2 * CL)

/* acc[r][h] = sum over k of a[k][r] * b[k][h CL .. (h + 1) CL) */
static inline void F(wtile)(const T *a, const T *b, int64_t k, F(cvec) acc[WR][2]) {
    F(cvec) c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0}, c30 = {0}, c31 = {0}, c40 = {0},
            c41 = {0}, c50 = {0}, c51 = {0};
    for (int64_t p = 0; p < k; p++, a += WR, b += WP) {
        F(cvec) b0, b1;
        memcpy(&b0, b, sizeof b0);
        memcpy(&b1, b + CL, sizeof b1);
        c00 += a[0] * b0, c01 += a[0] * b1, c10 += a[1] * b0, c11 += a[1] * b1, c20 += a[2] * b0, c21 += a[2] * b1;
        c30 += a[3] * b0, c31 += a[3] * b1, c40 += a[4] * b0, c41 += a[4] * b1, c50 += a[5] * b0, c51 += a[5] * b1;
    }
    acc[0][0] = c00, acc[0][1] = c01, acc[1][0] = c10, acc[1][1] = c11, acc[2][0] = c20, acc[2][1] = c21;
    acc[3][0] = c30, acc[3][1] = c31, acc[4][0] = c40, acc[4][1] = c41, acc[5][0] = c50, acc[5][1] = c51;
}

/* One channel's input tiles for a job: rows 2i - ph .. 2i - ph + 3 of the images at x (image l at x + l * stride,
 * the lanes past `lanes` 0), nj tiles from tile column j0 -> out[16 jj + e] = element e of tile jj (B^T d B). */
static void F(wjob_input)(const T *x, int64_t stride, int64_t lanes, int64_t h, int64_t w, int64_t ph, int64_t pw,
                          int64_t i, int64_t j0, int64_t nj, F(cvec) *out) {
    int64_t wp = 2 * nj + 2, col0 = 2 * j0 - pw; /* padded row k is input column col0 + k */
    int64_t k0 = col0 < 0 ? -col0 : 0, k1 = w - col0 < wp ? w - col0 : wp;
    F(cvec) d[4][wp], bd[4][wp], zero = {0};
    for (int64_t a = 0; a < 4; a++) {
        int64_t y = 2 * i + a - ph;
        int inside = y >= 0 && y < h;
        for (int64_t k = 0; k < wp; k++)
            if (!inside || lanes < CL || k < k0 || k >= k1) d[a][k] = zero;
        if (!inside)
            continue;
        for (int64_t l = 0; l < lanes; l++)
            for (int64_t k = k0; k < k1; k++) d[a][k][l] = x[l * stride + y * w + col0 + k];
    }
    for (int64_t k = 0; k < wp; k++) {
        bd[0][k] = d[0][k] - d[2][k];
        bd[1][k] = d[1][k] + d[2][k];
        bd[2][k] = d[2][k] - d[1][k];
        bd[3][k] = d[1][k] - d[3][k];
    }
    for (int64_t jj = 0; jj < nj; jj++)
        for (int64_t a = 0; a < 4; a++) { /* (B^T d) B along the row: elements (a, 0..3) */
            const F(cvec) *r = &bd[a][2 * jj];
            F(cvec) *e = out + 16 * jj + 4 * a;
            e[0] = r[0] - r[2], e[1] = r[1] + r[2], e[2] = r[2] - r[1], e[3] = r[1] - r[3];
        }
}

/* The jobs of a Winograd kernel over (tasks, groups of CL images, tile rows, chunks of a row) and each job's
 * tiles: chunks of jt tiles, jt such that `per_tile` bytes of buffers per tile come near 512 KB, even (whole
 * panels of two tiles), the chunks of a row even in size. */
#define WJOBS(per_tile, tw, chunks, jt)                                                                              \
    int64_t most_ = (int64_t)(512 * 1024 / (per_tile)) / 2 * 2;                                                     \
    most_ = most_ < 2 ? 2 : most_;                                                                                   \
    int64_t chunks = ((tw) + most_ - 1) / most_, jt = ((tw) + chunks - 1) / chunks
#define WJOB(job, chunks, th, groups, per, t, img0, lanes, i, j0, nj)                                               \
    int64_t ck_ = (job) % (chunks), i = (job) / (chunks) % (th), g_ = (job) / ((chunks) * (th)) % (groups),          \
            t = (job) / ((chunks) * (th) * (groups)), img0 = g_ * CL, lanes = (per) - img0 < CL ? (per) - img0 : CL;  \
    int64_t j0 = ck_ * jt, nj = tw - j0 < jt ? tw - j0 : jt

/* y (n, o, oh, ow) = x (n, c, h, w) convolved with the transformed filters u (tasks, 16, o, c), zero padded by
 * (ph, pw), plus bias (NULL, (o,), or (tasks, o) with bias_per_task). Returns 0, or 1 where the buffers could
 * not be had (nothing is written then). */
int F(winograd_conv)(const void *vx, const void *vu, const void *vbias, void *vy, int64_t n, int64_t c, int64_t h,
                     int64_t w, int64_t o, int64_t ph, int64_t pw, int64_t oh, int64_t ow, int64_t tasks,
                     int64_t bias_per_task) {
    const T *X = (const T *)vx, *U = (const T *)vu, *B = (const T *)vbias;
    T *Y = (T *)vy;
    int64_t per = n / tasks, groups = (per + CL - 1) / CL, th = (oh + 1) / 2, tw = (ow + 1) / 2;
    WJOBS(16 * CL * sizeof(T) * (c + o), tw, chunks, jt);
    int64_t np = (jt + 1) / 2;
    int64_t ob = (o + WR - 1) / WR, jobs = tasks * groups * th * chunks;
    T *ua = malloc((size_t)(tasks * 16 * ob * WR * c) * sizeof(T)); /* u as blocks of WR rows, (c, WR) each */
    if (!ua)
        return 1;
    for (int64_t q = 0; q < tasks * 16; q++)
        for (int64_t r0 = 0; r0 < ob * WR; r0 += WR)
            for (int64_t k = 0; k < c; k++)
                for (int64_t r = 0; r < WR; r++)
                    ua[(q * ob * WR + r0) * c + k * WR + r] = r0 + r < o ? U[(q * o + r0 + r) * c + k] : 0;
    int failed = 0;
    _Pragma("omp parallel num_threads(NX_THREADS) if (n * c * h * w * o >= PAR_MIN_MACS)")
    {
        T *vb = malloc((size_t)(16 * np * c * WP + o * jt * 16 * CL) * sizeof(T)), *mb = vb ? vb + 16 * np * c * WP : 0;
        F(cvec) tiles[16 * jt], zero = {0};
        if (!vb) __atomic_store_n(&failed, 1, __ATOMIC_RELAXED);
        _Pragma("omp barrier")
        _Pragma("omp for schedule(static)")
        for (int64_t job = 0; job < jobs; job++) {
            if (__atomic_load_n(&failed, __ATOMIC_RELAXED)) continue;
            WJOB(job, chunks, th, groups, per, t, img0, lanes, i, j0, nj);
            int64_t npj = (nj + 1) / 2;
            const T *x = X + (t * per + img0) * c * h * w;
            for (int64_t ch = 0; ch < c; ch++) { /* element e of tile jj to panel jj / 2, half jj % 2 */
                F(wjob_input)(x + ch * h * w, c * h * w, lanes, h, w, ph, pw, i, j0, nj, tiles);
                for (int64_t jj = 0; jj < 2 * npj; jj++)
                    for (int64_t e = 0; e < 16; e++)
                        memcpy(vb + ((e * npj + jj / 2) * c + ch) * WP + (jj % 2) * CL, jj < nj ? &tiles[16 * jj + e] :
                               &zero, sizeof zero);
            }
            /* products: element e of output channel oc's tile jj, a vector of images, at mb + ((oc jt + jj) 16 + e) CL
             * (malloc's buffers need not be aligned for whole vectors: moves are memcpy) */
            F(cvec) acc[WR][2];
            for (int64_t e = 0; e < 16; e++)
                for (int64_t p = 0; p < npj; p++)
                    for (int64_t b0 = 0; b0 < ob; b0++) {
                        F(wtile)(ua + ((t * 16 + e) * ob + b0) * WR * c, vb + (e * npj + p) * c * WP, c, acc);
                        for (int64_t r = 0; r < WR && b0 * WR + r < o; r++)
                            for (int64_t hh = 0; hh < 2 && 2 * p + hh < nj; hh++)
                                memcpy(mb + (((b0 * WR + r) * jt + 2 * p + hh) * 16 + e) * CL, &acc[r][hh],
                                       sizeof acc[r][hh]);
                    }
            for (int64_t oc = 0; oc < o; oc++) { /* A^T m A, cropped to (oh, ow), plus bias */
                T bias = B ? B[(bias_per_task ? t * o : 0) + oc] : 0;
                T *y = Y + ((t * per + img0) * o + oc) * oh * ow; /* image l's plane at y + l * o * oh * ow */
                for (int64_t jj = 0; jj < nj; jj++) {
                    F(cvec) e[16], t0[4], t1[4], out[2][2];
                    memcpy(e, mb + (oc * jt + jj) * 16 * CL, sizeof e);
                    for (int64_t b = 0; b < 4; b++) { /* A^T down the columns */
                        t0[b] = e[b] + e[4 + b] + e[8 + b];
                        t1[b] = e[4 + b] - e[8 + b] - e[12 + b];
                    }
                    out[0][0] = t0[0] + t0[1] + t0[2] + bias;
                    out[0][1] = t0[1] - t0[2] - t0[3] + bias;
                    out[1][0] = t1[0] + t1[1] + t1[2] + bias;
                    out[1][1] = t1[1] - t1[2] - t1[3] + bias;
                    int64_t col = 2 * (j0 + jj);
                    for (int64_t a = 0; a < 2 && 2 * i + a < oh; a++)
                        for (int64_t b = 0; b < 2 && col + b < ow; b++)
                            for (int64_t l = 0; l < lanes; l++)
                                y[l * o * oh * ow + (2 * i + a) * ow + col + b] = out[a][b][l];
                }
            }
        }
        free(vb);
    }
    free(ua);
    return failed;
}
/* The weight's gradient in Winograd's domain, block by block as winograd_conv: du (tasks, 16, o, c) = the sum over
 * tiles of (A g A^T)_e (B^T x B)_e^T; conv.py takes dw = G^T du G. A job transforms its tiles of g and of x into
 * panels, k = its tiles times CL images long, (k, WR) rows of g and (k, WP) columns of x, and multiplies them on
 * the register tiles into a sum for its task, which its thread adds into du (under a lock) when it moves on to
 * another task: a few times a call. Returns 0, or 1 where the buffers could not be had (du is then undefined). */
#undef WR
#undef WP

/* Gradient tiles for the weight's gradient: g (n, o, oh, ow) -> gm (tasks, 16, o, P) = A g A^T per 2x2 tile
 * (zero beyond (oh, ow)): the weight gradient is then G^T [sum over tiles of gm . v] G. */
void F(winograd_grad)(const void *vg, void *vgm, int64_t n, int64_t o, int64_t oh, int64_t ow, int64_t th,
                      int64_t tw, int64_t tasks) {
    const T *G = (const T *)vg;
    T *GM = (T *)vgm;
    int64_t per = n / tasks, P = per * th * tw, groups = (per + CL - 1) / CL;
    _Pragma("omp parallel for num_threads(NX_THREADS) schedule(static) if (n * o * oh * ow >= PAR_MIN / 4)")
    for (int64_t job = 0; job < CONV_JOBS(tasks, o, groups); job++) {
        CONV_JOB(job, o, groups, per, t, oc, img0, lanes);
        const T *g = G + ((t * per + img0) * o + oc) * oh * ow;
        T *gm = GM + (t * 16 * o + oc) * P + img0 * th * tw;
        for (int64_t i = 0; i < th; i++)
            for (int64_t j = 0; j < tw; j++) {
                F(cvec) q[2][2] = {{{0}}}, z[4][2];
                for (int64_t a = 0; a < 2 && 2 * i + a < oh; a++)
                    for (int64_t b = 0; b < 2 && 2 * j + b < ow; b++)
                        for (int64_t l = 0; l < lanes; l++)
                            q[a][b][l] = g[l * o * oh * ow + (2 * i + a) * ow + 2 * j + b];
                for (int64_t b = 0; b < 2; b++) { /* A g */
                    z[0][b] = q[0][b];
                    z[1][b] = q[0][b] + q[1][b];
                    z[2][b] = q[0][b] - q[1][b];
                    z[3][b] = -q[1][b];
                }
                T *dst = gm + (i * tw + j) * lanes;
                for (int64_t a = 0; a < 4; a++) { /* (A g) A^T */
                    F(cstore)(dst + (4 * a) * o * P, z[a][0], lanes);
                    F(cstore)(dst + (4 * a + 1) * o * P, z[a][0] + z[a][1], lanes);
                    F(cstore)(dst + (4 * a + 2) * o * P, z[a][0] - z[a][1], lanes);
                    F(cstore)(dst + (4 * a + 3) * o * P, -z[a][1], lanes);
                }
            }
    }
}

#undef CL
#undef CONV_JOBS
#undef CONV_JOB
