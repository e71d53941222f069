/* int8 inference: quantized linear and conv2d (core's quantized_linear / quantized_conv2d), float32 only, so
 * kernels.c includes this once, outside families.h. Called from quantized.py.
 *
 * x is quantized per tensor, q = clamp(rint(x / x_scale) + zp, -128, 127); the products are dot products of
 * int8 rows, X (m, k) by W (o, k), both with k contiguous, summed exactly in int32; then
 * y = float(sum - compensation) * (x_scale * w_scale[o]) + bias[o]. Which instructions sum them is chosen at
 * run time (the portable wheel's baselines have no dot-product instructions):
 *   avx512vnni  vpdpbusd multiplies unsigned by signed bytes, so X holds u = q + 128 (q ^ 0x80) and the
 *               compensation is (zp + 128) * rowsum(W[o]);
 *   dotprod     aarch64's sdot, signed by signed: X holds q, compensation zp * rowsum(W[o]);
 *   generic     plain C that GCC vectorises (bytes widened to int32 before multiplying: no saturation).
 * Rows of X and W are padded with zeros to a multiple of QK bytes (W's zero padding makes whatever X holds
 * there add nothing), so no path has a tail. |sum| <= 255 * 128 * k fits int32 for k <= NX_QMAX_K. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define NX_X86 1
#endif
#if defined(__aarch64__) && defined(__GNUC__) && defined(__linux__)
#include <arm_neon.h>
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#define NX_ARM 1
#endif

#define QK 64              /* row padding: one 64-byte vector */
#define NX_QMAX_K 65536    /* longest row whose sums fit int32 (quantized.py sends longer ones to NumPy) */
#define QTILE 4            /* a tile: 4 rows of X by 4 rows of W, 16 sums, each loaded vector used 4 times */

enum { NX_GENERIC, NX_AVX512VNNI, NX_DOTPROD };
static const char *const nx_int8_names[] = {"generic", "avx512vnni", "dotprod"};

static int nx_int8_best(void) {
#ifdef NX_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw"))
        return NX_AVX512VNNI;
#endif
#ifdef NX_ARM
    if (getauxval(AT_HWCAP) & HWCAP_ASIMDDP)
        return NX_DOTPROD;
#endif
    return NX_GENERIC;
}

static int nx_int8_path = -1; /* -1 until first used: then the best this CPU runs, or what nx_int8_use chose */

static int nx_int8(void) {
    int p = __atomic_load_n(&nx_int8_path, __ATOMIC_RELAXED);
    if (p < 0) {
        p = nx_int8_best();
        __atomic_store_n(&nx_int8_path, p, __ATOMIC_RELAXED);
    }
    return p;
}

/* the path the int8 kernels take: "avx512vnni", "dotprod" or "generic" */
const char *nx_int8_isa(void) { return nx_int8_names[nx_int8()]; }

/* Take path `isa` ("generic", or the name of a faster one), or the best this CPU runs for "" / "auto".
 * Returns 0, changing nothing, where this CPU cannot run it. */
int nx_int8_use(const char *isa) {
    int best = nx_int8_best();
    for (int p = 0; p < 3; p++)
        if (!strcmp(isa, nx_int8_names[p]) && (p == NX_GENERIC || p == best)) {
            __atomic_store_n(&nx_int8_path, p, __ATOMIC_RELAXED);
            return 1;
        }
    if (*isa && strcmp(isa, "auto"))
        return 0;
    __atomic_store_n(&nx_int8_path, best, __ATOMIC_RELAXED);
    return 1;
}

/* ---- quantization ---------------------------------------------------------------------------------------- */

/* x[i] quantized, as a byte: q, or q ^ flip (flip 0x80: q + 128 as unsigned). Clamped before rounding (the bounds
 * are integers, so it is the same as after), which also saturates infinities; 1.5 * 2^23 added and subtracted
 * rounds half to even, as rint does, in vector registers on every target. */
static inline void nx_quantize_row(const float *x, uint8_t *q, int64_t n, float scale, int zp, int flip) {
    const float lo = (float)(-128 - zp), hi = (float)(127 - zp), magic = 12582912.0f;
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] / scale;
        v = v < lo ? lo : v;
        v = v > hi ? hi : v;
        v = (v + magic) - magic;
        q[i] = (uint8_t)(((int32_t)v + zp) ^ flip);
    }
}

/* q (n,) = the int8 values of x (n,) */
void nx_quantize_int8(const void *x_, void *q, int64_t n, float scale, int zp) {
    const float *x = x_;
    _Pragma("omp parallel for num_threads(NX_THREADS) schedule(static) if (n >= 4 * PAR_MIN)")
    for (int64_t i = 0; i < n; i += CHUNK)
        nx_quantize_row(x + i, (uint8_t *)q + i, n - i < CHUNK ? n - i : CHUNK, scale, zp, 0);
}

/* ---- 4 x 4 tiles of dot products: s[4 * i + j] = X row i . W row j over kp (a multiple of QK) bytes -------- */

static inline void nx_tile_generic(const uint8_t *const *xr, const int8_t *const *wr, int64_t kp, int32_t *s) {
    int32_t acc[16] = {0};
    const int8_t *x0 = (const int8_t *)xr[0], *x1 = (const int8_t *)xr[1], *x2 = (const int8_t *)xr[2],
                 *x3 = (const int8_t *)xr[3];
    const int8_t *w0 = wr[0], *w1 = wr[1], *w2 = wr[2], *w3 = wr[3];
    /* in blocks of 16 products per pair: int16 products (|q * w| <= 2^14) widened to int32, the pattern of
     * pmaddwd / smlal */
    for (int64_t k = 0; k < kp; k += 16) {
        int32_t b[16] = {0};
        for (int t = 0; t < 16; t++) {
            int16_t a0 = x0[k + t], a1 = x1[k + t], a2 = x2[k + t], a3 = x3[k + t];
            int16_t c0 = w0[k + t], c1 = w1[k + t], c2 = w2[k + t], c3 = w3[k + t];
            b[0] += a0 * c0, b[1] += a0 * c1, b[2] += a0 * c2, b[3] += a0 * c3;
            b[4] += a1 * c0, b[5] += a1 * c1, b[6] += a1 * c2, b[7] += a1 * c3;
            b[8] += a2 * c0, b[9] += a2 * c1, b[10] += a2 * c2, b[11] += a2 * c3;
            b[12] += a3 * c0, b[13] += a3 * c1, b[14] += a3 * c2, b[15] += a3 * c3;
        }
        for (int t = 0; t < 16; t++) acc[t] += b[t];
    }
    memcpy(s, acc, sizeof acc);
}

#ifdef NX_X86
#define NX_VNNI512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

/* the four vectors' sums, one per lane: pairs of lanes added within each 128-bit lane, then the four lanes */
NX_VNNI512 static inline __m128i nx_sum4_512(__m512i a, __m512i b, __m512i c, __m512i d) {
    __m512i ab = _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
    __m512i cd = _mm512_add_epi32(_mm512_unpacklo_epi32(c, d), _mm512_unpackhi_epi32(c, d));
    __m512i u = _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
    __m256i v = _mm256_add_epi32(_mm512_castsi512_si256(u), _mm512_extracti64x4_epi64(u, 1));
    return _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
}

NX_VNNI512 static void nx_tile_vnni512(const uint8_t *const *xr, const int8_t *const *wr, int64_t kp, int32_t *s) {
    __m512i acc[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) acc[i][j] = _mm512_setzero_si512();
    for (int64_t k = 0; k < kp; k += 64) {
        __m512i w[4];
        for (int j = 0; j < 4; j++) w[j] = _mm512_loadu_si512(wr[j] + k);
        for (int i = 0; i < 4; i++) {
            __m512i x = _mm512_loadu_si512(xr[i] + k);
            for (int j = 0; j < 4; j++) acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], x, w[j]);
        }
    }
    for (int i = 0; i < 4; i++)
        _mm_storeu_si128((__m128i *)(s + 4 * i), nx_sum4_512(acc[i][0], acc[i][1], acc[i][2], acc[i][3]));
}
#endif

#ifdef NX_ARM
__attribute__((target("arch=armv8.2-a+dotprod"))) /* what arm_neon.h declares vdotq_s32 for */
static void nx_tile_dotprod(const uint8_t *const *xr, const int8_t *const *wr, int64_t kp, int32_t *s) {
    int32x4_t acc[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) acc[i][j] = vdupq_n_s32(0);
    for (int64_t k = 0; k < kp; k += 16) {
        int8x16_t w[4];
        for (int j = 0; j < 4; j++) w[j] = vld1q_s8(wr[j] + k);
        for (int i = 0; i < 4; i++) {
            int8x16_t x = vld1q_s8((const int8_t *)xr[i] + k);
            for (int j = 0; j < 4; j++) acc[i][j] = vdotq_s32(acc[i][j], x, w[j]);
        }
    }
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) s[4 * i + j] = vaddvq_s32(acc[i][j]);
}
#endif

/* ---- the product, dequantized as it is stored -------------------------------------------------------------
 * y[i * sm + j * so] = float(X_i . W_j - comp[j]) * scale[j] + bias[j] for i < m, j < o: x (m, kp) and w (o, kp)
 * padded rows; sm, so the output's strides (linear: o, 1; a conv image's NCHW block: 1, L). Rows past m or o in
 * an edge tile repeat the last one (their sums are dropped), so every tile is full. */
static void nx_qgemm(int path, const uint8_t *x, int64_t m, const int8_t *w, int64_t o, int64_t kp,
                     const int32_t *comp, const float *scale, const float *bias, float *y, int64_t sm, int64_t so,
                     int parallel) {
    /* W in blocks that stay in L2 while a thread's rows stream past them */
    int64_t ob = (128 * 1024 / kp) & ~(int64_t)3;
    ob = ob < QTILE ? QTILE : ob;
    int64_t tiles = (m + QTILE - 1) / QTILE;
    _Pragma("omp parallel for num_threads(NX_THREADS) schedule(static) if (parallel && tiles > 1)")
    for (int64_t t = 0; t < tiles; t++) {
        int64_t i0 = t * QTILE;
        const uint8_t *xr[QTILE];
        for (int i = 0; i < QTILE; i++) xr[i] = x + (i0 + i < m ? i0 + i : m - 1) * kp;
        for (int64_t o0 = 0; o0 < o; o0 += ob)
            for (int64_t j0 = o0; j0 < o0 + ob && j0 < o; j0 += QTILE) {
                const int8_t *wr[QTILE];
                for (int j = 0; j < QTILE; j++) wr[j] = w + (j0 + j < o ? j0 + j : o - 1) * kp;
                int32_t s[QTILE * QTILE];
                switch (path) {
#ifdef NX_X86
                case NX_AVX512VNNI: nx_tile_vnni512(xr, wr, kp, s); break;
#endif
#ifdef NX_ARM
                case NX_DOTPROD: nx_tile_dotprod(xr, wr, kp, s); break;
#endif
                default: nx_tile_generic(xr, wr, kp, s);
                }
                for (int i = 0; i < QTILE && i0 + i < m; i++)
                    for (int j = 0; j < QTILE && j0 + j < o; j++) {
                        int64_t c = j0 + j;
                        float v = (float)(s[4 * i + j] - comp[c]) * scale[c];
                        y[(i0 + i) * sm + c * so] = bias ? v + bias[c] : v;
                    }
            }
    }
}

/* What both kernels prepare once per call: W's rows padded to kp with zeros, comp[j] = (zp + offset) *
 * rowsum(W[j]) and scale[j] = x_scale * w_scale[j] (float32, as core's composition rounds it). NULL when out of
 * memory; one block, freed at once. */
struct nx_qweights {
    int8_t *w;
    int32_t *comp;
    float *scale;
};

static void *nx_qweights_init(struct nx_qweights *q, int path, const int8_t *w, const float *w_scale, int64_t o,
                              int64_t k, int64_t kp, float x_scale, int zp) {
    char *block = malloc((size_t)o * kp + (size_t)o * (sizeof(int32_t) + sizeof(float)) + 64);
    if (!block)
        return NULL;
    q->comp = (int32_t *)block;
    q->scale = (float *)(block + o * sizeof(int32_t));
    q->w = (int8_t *)(block + o * (sizeof(int32_t) + sizeof(float)));
    int offset = path == NX_AVX512VNNI ? 128 : 0;
    for (int64_t j = 0; j < o; j++) {
        int32_t sum = 0;
        for (int64_t p = 0; p < k; p++) sum += w[j * k + p];
        q->comp[j] = (zp + offset) * sum;
        q->scale[j] = x_scale * w_scale[j];
        memcpy(q->w + j * kp, w + j * k, k);
        memset(q->w + j * kp + k, 0, kp - k);
    }
    return block;
}

static inline int nx_flip(int path) { return path == NX_AVX512VNNI ? 0x80 : 0; }

/* y (m, o) = quantized_linear of x (m, k) with w (o, k); returns nonzero when out of memory */
int nx_qlinear(const void *x_, const void *w, const void *w_scale, const void *bias, void *y, int64_t m, int64_t k,
               int64_t o, float x_scale, int zp) {
    const float *x = x_;
    int path = nx_int8(), flip = nx_flip(path);
    int64_t kp = (k + QK - 1) / QK * QK;
    struct nx_qweights q;
    void *block = nx_qweights_init(&q, path, w, w_scale, o, k, kp, x_scale, zp);
    uint8_t *xq = malloc((size_t)m * kp + 1);
    if (!block || !xq) {
        free(block);
        free(xq);
        return 1;
    }
    int parallel = m * k * o >= PAR_MIN_MACS;
    _Pragma("omp parallel for num_threads(NX_THREADS) schedule(static) if (parallel && m * k >= PAR_MIN)")
    for (int64_t i = 0; i < m; i++) {
        nx_quantize_row(x + i * k, xq + i * kp, k, x_scale, zp, flip);
        memset(xq + i * kp + k, 0, kp - k);
    }
    nx_qgemm(path, xq, m, q.w, o, kp, q.comp, q.scale, bias, y, o, 1, parallel);
    free(xq);
    free(block);
    return 0;
}

/* y (n, o, oh, ow) = quantized_conv2d of x (n, c, h, w_) with w (o, c, kh, kw), groups 1: each image's
 * quantized columns (rows = output pixels, k = c * kh * kw contiguous, padding = the zero point) times W.
 * Images go to threads; a single image's rows do. Returns nonzero when out of memory. */
int nx_qconv2d(const void *x_, const void *w, const void *w_scale, const void *bias, void *y_, int64_t n,
               int64_t c, int64_t h, int64_t w_, int64_t o, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
               int64_t ph, int64_t pw, int64_t dh, int64_t dw, int64_t oh, int64_t ow, float x_scale, int zp) {
    const float *x = x_;
    float *y = y_;
    int path = nx_int8(), flip = nx_flip(path);
    int64_t k = c * kh * kw, kp = (k + QK - 1) / QK * QK, l = oh * ow, hw = h * w_;
    struct nx_qweights q;
    void *block = nx_qweights_init(&q, path, w, w_scale, o, k, kp, x_scale, zp);
    uint8_t *xq = malloc((size_t)n * c * hw + 1);
    if (!block || !xq) {
        free(block);
        free(xq);
        return 1;
    }
    int64_t total = n * c * hw;
    _Pragma("omp parallel for num_threads(NX_THREADS) schedule(static) if (total >= 4 * PAR_MIN)")
    for (int64_t i = 0; i < total; i += CHUNK)
        nx_quantize_row(x + i, xq + i, total - i < CHUNK ? total - i : CHUNK, x_scale, zp, flip);
    const uint8_t pad = (uint8_t)(zp ^ flip);
    int by_image = n > 1, failed = 0;
    _Pragma("omp parallel num_threads(NX_THREADS) if (by_image && n * l * k * o >= PAR_MIN_MACS)")
    {
        uint8_t *cols = malloc((size_t)l * kp + 1);
        if (!cols)
            __atomic_store_n(&failed, 1, __ATOMIC_RELAXED);
        _Pragma("omp for schedule(static)")
        for (int64_t b = 0; b < n; b++) {
            if (!cols)
                continue;
            const uint8_t *img = xq + b * c * hw;
            for (int64_t oy = 0; oy < oh; oy++)
                for (int64_t ox = 0; ox < ow; ox++) {
                    uint8_t *row = cols + (oy * ow + ox) * kp;
                    for (int64_t ch = 0; ch < c; ch++)
                        for (int64_t i = 0; i < kh; i++) {
                            int64_t iy = oy * sh - ph + i * dh;
                            const uint8_t *src = img + ch * hw + iy * w_;
                            for (int64_t j = 0; j < kw; j++) {
                                int64_t ix = ox * sw - pw + j * dw;
                                *row++ = iy >= 0 && iy < h && ix >= 0 && ix < w_ ? src[ix] : pad;
                            }
                        }
                    memset(row, 0, kp - k);
                }
            nx_qgemm(path, cols, l, q.w, o, kp, q.comp, q.scale, bias, y + b * o * l, 1, l,
                     !by_image && l * k * o >= PAR_MIN_MACS);
        }
        free(cols);
    }
    free(xq);
    free(block);
    return failed;
}
