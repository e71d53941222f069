/* Winograd F(2x2, 3x3) transforms for 3x3 stride-1 convolutions (Lavin and Gray, 2016): a 2x2 output tile from a
 * 4x4 input tile is A^T [(G w G^T) . (B^T d B)] A, 16 products instead of 36. The products become 16 matrix
 * products over channels, which NumPy's BLAS runs (conv.py); these kernels move data into and out of that
 * form.
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

/* the first `lanes` images' values at p as a vector (the rest 0), and back. A whole vector is one move; a
 * memcpy of a variable length is a call into libc (it took a fifth of a convolution's time) */
static inline F(cvec) F(cload)(const T *p, int64_t lanes) {
    F(cvec) v = {0};
    if (lanes == CL)
        memcpy(&v, p, sizeof v);
    else
        memcpy(&v, p, (size_t)lanes * sizeof(T));
    return v;
}

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

/* Output tiles: m (tasks, 16, o, P), the products -> y (n, o, oh, ow) = A^T m A cropped to (oh, ow), plus bias
 * (None, (o,), or (tasks, o) with bias_per_task). */
void F(winograd_output)(const void *vm, const void *vb, void *vy, int64_t n, int64_t o, int64_t oh, int64_t ow,
                        int64_t th, int64_t tw, int64_t tasks, int64_t bias_per_task) {
    const T *M = (const T *)vm, *B = (const T *)vb;
    T *Y = (T *)vy;
    int64_t per = n / tasks, P = per * th * tw, groups = (per + CL - 1) / CL;
    _Pragma("omp parallel for num_threads(NX_THREADS) schedule(static) if (n * o * oh * ow >= PAR_MIN / 4)")
    for (int64_t job = 0; job < CONV_JOBS(tasks, o, groups); job++) {
        CONV_JOB(job, o, groups, per, t, oc, img0, lanes);
        const T *m = M + (t * 16 * o + oc) * P + img0 * th * tw;
        T bias = B ? B[(bias_per_task ? t * o : 0) + oc] : 0;
        T *y = Y + ((t * per + img0) * o + oc) * oh * ow; /* image l's plane at y + l * o * oh * ow */
        for (int64_t i = 0; i < th; i++)
            for (int64_t j = 0; j < tw; j++) {
                F(cvec) e[16], t0[4], t1[4], out[2][2];
                for (int64_t k = 0; k < 16; k++) e[k] = F(cload)(m + k * o * P + (i * tw + j) * lanes, lanes);
                for (int64_t b = 0; b < 4; b++) { /* A^T down the columns */
                    t0[b] = e[b] + e[4 + b] + e[8 + b];
                    t1[b] = e[4 + b] - e[8 + b] - e[12 + b];
                }
                out[0][0] = t0[0] + t0[1] + t0[2] + bias;
                out[0][1] = t0[1] - t0[2] - t0[3] + bias;
                out[1][0] = t1[0] + t1[1] + t1[2] + bias;
                out[1][1] = t1[1] - t1[2] - t1[3] + bias;
                for (int64_t a = 0; a < 2 && 2 * i + a < oh; a++)
                    for (int64_t b = 0; b < 2 && 2 * j + b < ow; b++)
                        for (int64_t l = 0; l < lanes; l++)
                            y[l * o * oh * ow + (2 * i + a) * ow + 2 * j + b] = out[a][b][l];
            }
    }
}

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
