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
 * Rows of X and W are padded with zeros to a multiple of nx_qk(path) bytes, 16 or 32 (W's zero padding makes
 * whatever X holds there add nothing), so no path has a tail but AVX-512's last half vector. A linear of fewer than
 * 4 rows (batch-1 inference) on VNNI or generic takes nx_qrows instead, which reads W once, unpadded. |sum| <= 255 * 128 * k fits int32 for k <= NX_QMAX_K. */
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

/* the best path this CPU runs, whichever is in use */
const char *nx_int8_best_isa(void) { return nx_int8_names[nx_int8_best()]; }

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

/* ---- 4 x 4 tiles of dot products over kp bytes: s[4 * i + j] = X row i . W row j, or s[4 * j + i] with
 * by_col (the order of a conv's NCHW output, whose rows are pixels: stores of 4 floats either way) ---------- */

/* generic: blocks of the rows widened to int16 first, so that the dot products are int16 * int16 summed into
 * int32, which GCC vectorises as pmaddwd (x86) or smlal (arm); from bytes it widens to int32 and multiplies
 * those, 3x slower. Each pass takes 2 rows of X by 4 of W (8 sums), or all 4 where there are 32 vector registers;
 * with 16 (AVX2, SSE) 16 sums spill. */
#define QKB 256 /* bytes of a row widened at a time: 8 rows of them in 4 KB on the stack */
#if defined(__AVX512F__) || defined(__aarch64__)
#define QROWS 4
#else
#define QROWS 2
#endif

static inline void nx_dots16(const int16_t (*xs)[QKB], const int16_t (*ws)[QKB], int64_t n, int32_t *s) {
    int32_t acc[QROWS][4] = {{0}};
    for (int64_t t = 0; t < n; t++)
        for (int i = 0; i < QROWS; i++) {
            int32_t u = xs[i][t];
            for (int j = 0; j < 4; j++) acc[i][j] += u * ws[j][t];
        }
    for (int i = 0; i < QROWS; i++)
        for (int j = 0; j < 4; j++) s[4 * i + j] += acc[i][j];
}

static void nx_tile_generic(const uint8_t *const *xr, const int8_t *const *wr, int64_t kp, int by_col,
                            int32_t *s) {
    int16_t xs[4][QKB], ws[4][QKB];
    memset(s, 0, 16 * sizeof *s);
    for (int64_t k = 0; k < kp; k += QKB) {
        int64_t n = kp - k < QKB ? kp - k : QKB;
        for (int i = 0; i < 4; i++)
            for (int64_t t = 0; t < n; t++) xs[i][t] = (int8_t)xr[i][k + t], ws[i][t] = wr[i][k + t];
        for (int i = 0; i < 4; i += QROWS) nx_dots16(xs + i, ws, n, s + 4 * i);
    }
    for (int i = 0; by_col && i < 4; i++)
        for (int j = i + 1; j < 4; j++) {
            int32_t t = s[4 * i + j];
            s[4 * i + j] = s[4 * j + i], s[4 * j + i] = t;
        }
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

NX_VNNI512 static void nx_tile_vnni512(const uint8_t *const *xr, const int8_t *const *wr, int64_t kp, int by_col,
                            int32_t *s) {
    __m512i acc[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) acc[i][j] = _mm512_setzero_si512();
    for (int64_t k = 0; k < kp; k += 64) {
        __mmask64 m = kp - k >= 64 ? ~(__mmask64)0 : 0xffffffffu; /* kp is a multiple of 32: a last half vector */
        __m512i w[4];
        for (int j = 0; j < 4; j++) w[j] = _mm512_maskz_loadu_epi8(m, wr[j] + k);
        for (int i = 0; i < 4; i++) {
            __m512i x = _mm512_maskz_loadu_epi8(m, xr[i] + k);
            for (int j = 0; j < 4; j++) acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], x, w[j]);
        }
    }
    /* constant indices only: indexed by a variable, acc lives in memory, stored at every step (a portable
     * module, where this is not inlined, ran at half speed) */
#define NX_SUM4(a, b, c, d, at) _mm_storeu_si128((__m128i *)(s + (at)), nx_sum4_512(a, b, c, d))
    if (by_col) {
        NX_SUM4(acc[0][0], acc[1][0], acc[2][0], acc[3][0], 0);
        NX_SUM4(acc[0][1], acc[1][1], acc[2][1], acc[3][1], 4);
        NX_SUM4(acc[0][2], acc[1][2], acc[2][2], acc[3][2], 8);
        NX_SUM4(acc[0][3], acc[1][3], acc[2][3], acc[3][3], 12);
    } else {
        NX_SUM4(acc[0][0], acc[0][1], acc[0][2], acc[0][3], 0);
        NX_SUM4(acc[1][0], acc[1][1], acc[1][2], acc[1][3], 4);
        NX_SUM4(acc[2][0], acc[2][1], acc[2][2], acc[2][3], 8);
        NX_SUM4(acc[3][0], acc[3][1], acc[3][2], acc[3][3], 12);
    }
#undef NX_SUM4
}
#endif

#ifdef NX_ARM
__attribute__((target("arch=armv8.2-a+dotprod"))) /* what arm_neon.h declares vdotq_s32 for */
static void nx_tile_dotprod(const uint8_t *const *xr, const int8_t *const *wr, int64_t kp, int by_col,
                            int32_t *s) {
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
        for (int j = 0; j < 4; j++) s[by_col ? 4 * j + i : 4 * i + j] = vaddvq_s32(acc[i][j]);
}
#endif

/* d[j] = float(s[j] - comp[j]) * scale[j] + bias[j] for j < n (4 on a full tile: one vector). Not inlined: with
 * -ffp-contract=fast whether the multiply-add is fused (rounded once) depended on where it was inlined, and the
 * tiles and nx_qrows gave results 1 ulp apart; one copy of the code makes a row's output the same at any batch
 * size (one call per tile of 16 sums or 4 outputs: no measurable cost) */
__attribute__((noinline)) static void nx_dequantize4(const int32_t *s, int n, const int32_t *comp, const float *scale, const float *bias,
                                  float *d) {
    float v[4];
    /* n channels only: the last tile of an output count not a multiple of 4 would read past scale and bias */
    for (int j = 0; j < n; j++) v[j] = (float)(s[j] - comp[j]) * scale[j] + (bias ? bias[j] : 0.0f);
    memcpy(d, v, (size_t)n * sizeof *v);
}

/* a by_col tile: channel j0 + j's n pixels (s[4 * j ..]) to d + j * stride */
static inline void nx_dequantize(const int32_t *s, int ni, int nj, int64_t j0, const int32_t *comp,
                                 const float *scale, const float *bias, float *d, int64_t stride) {
    for (int j = 0; j < nj; j++) {
        int32_t cj = comp[j0 + j];
        float sj = scale[j0 + j], bj = bias ? bias[j0 + j] : 0.0f, v[4];
        for (int i = 0; i < 4; i++) v[i] = (float)(s[4 * j + i] - cj) * sj + bj;
        if (ni == 4)
            memcpy(d + j * stride, v, sizeof v);
        else
            memcpy(d + j * stride, v, ni * sizeof *v);
    }
}

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
    int by_col = sm == 1 && so != 1;
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
                case NX_AVX512VNNI: nx_tile_vnni512(xr, wr, kp, by_col, s); break;
#endif
#ifdef NX_ARM
                case NX_DOTPROD: nx_tile_dotprod(xr, wr, kp, by_col, s); break;
#endif
                default: nx_tile_generic(xr, wr, kp, by_col, s);
                }
                int ni = m - i0 < QTILE ? (int)(m - i0) : QTILE, nj = o - j0 < QTILE ? (int)(o - j0) : QTILE;
                if (by_col)
                    nx_dequantize(s, ni, nj, j0, comp, scale, bias, y + i0 + j0 * so, so);
                else
                    for (int i = 0; i < ni; i++)
                        nx_dequantize4(s + 4 * i, nj, comp + j0, scale + j0, bias ? bias + j0 : NULL, y + (i0 + i) * sm + j0);
            }
    }
}

/* ---- few rows (m < QTILE: batch-1 inference) ---------------------------------------------------------------
 * A tile would sum QTILE copies of the rows, and nx_qweights_init's row sums are a pass over W of their own, so
 * that a single row read W twice and did 4x the products. Here W is read once, as given (no padded copy: the last
 * vector of a row is masked, or its tail summed in C), 4 rows at a time, each loaded W vector taking part in
 * every row's dot product and in its own row's sum. The sums are the same integers, dequantized by the same
 * nx_dequantize4, so results are identical to the tiles'. */
#define QROWS_MAX (QTILE - 1)

/* generic: X's rows widened once to int16 as q - zp (-255 .. 255), so no compensation and no row sums; W widened
 * a block at a time, as the tiles do. s[4 * i + j] = sum (q - zp) * W row j, for i < M */
static inline __attribute__((always_inline)) void nx_rows_generic_m(int M, const int16_t *x, const int8_t *const *wr,
                                                                   int64_t k, int32_t *s) {
    int16_t ws[4][QKB];
    int32_t acc[QROWS_MAX][4] = {{0}};
    for (int64_t kk = 0; kk < k; kk += QKB) {
        int64_t n = k - kk < QKB ? k - kk : QKB;
        for (int j = 0; j < 4; j++)
            for (int64_t t = 0; t < n; t++) ws[j][t] = wr[j][kk + t];
        for (int i = 0; i < M; i++)
            for (int64_t t = 0; t < n; t++) {
                int32_t u = x[i * k + kk + t];
                for (int j = 0; j < 4; j++) acc[i][j] += u * ws[j][t];
            }
    }
    for (int i = 0; i < M; i++)
        for (int j = 0; j < 4; j++) s[4 * i + j] = acc[i][j];
}

#ifdef NX_X86
/* one step of 64 bytes (fewer under mask `mk`, W's bytes past it loaded as 0, so X's there add nothing) */
#define NX_ROWS_STEP(mk, at)                                                                                    \
    do {                                                                                                        \
        __m512i w_[4];                                                                                          \
        for (int j = 0; j < 4; j++) {                                                                           \
            w_[j] = _mm512_maskz_loadu_epi8(mk, wr[j] + (at));                                                  \
            sum[j] = _mm512_dpbusd_epi32(sum[j], ones, w_[j]); /* 1 * each byte of W: its row sum */          \
        }                                                                                                       \
        for (int i = 0; i < M; i++) {                                                                           \
            __m512i x_ = _mm512_maskz_loadu_epi8(mk, xr[i] + (at));                                             \
            for (int j = 0; j < 4; j++) acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], x_, w_[j]);                 \
        }                                                                                                       \
    } while (0)

/* s[4 * i + j] = X row i . W row j for i < M (u = q + 128), rs[j] = rowsum(W row j), over k bytes. Inlined with
 * M constant, so that acc stays in registers (8 to 16 of them) */
NX_VNNI512 static inline __attribute__((always_inline)) void nx_rows_vnni512_m(int M, const uint8_t *const *xr,
                                                                              const int8_t *const *wr, int64_t k,
                                                                              int32_t *s, int32_t *rs) {
    const __m512i ones = _mm512_set1_epi8(1);
    __m512i acc[QROWS_MAX][4], sum[4];
    for (int j = 0; j < 4; j++) {
        sum[j] = _mm512_setzero_si512();
        for (int i = 0; i < M; i++) acc[i][j] = _mm512_setzero_si512();
    }
    int64_t kk = 0;
    for (; kk + 64 <= k; kk += 64) NX_ROWS_STEP(~(__mmask64)0, kk);
    if (kk < k)
        NX_ROWS_STEP(((__mmask64)1 << (k - kk)) - 1, kk);
    _mm_storeu_si128((__m128i *)rs, nx_sum4_512(sum[0], sum[1], sum[2], sum[3]));
    for (int i = 0; i < M; i++)
        _mm_storeu_si128((__m128i *)(s + 4 * i), nx_sum4_512(acc[i][0], acc[i][1], acc[i][2], acc[i][3]));
}
#undef NX_ROWS_STEP

NX_VNNI512 static void nx_rows_vnni512(int m, const uint8_t *const *xr, const int8_t *const *wr, int64_t k,
                                       int32_t *s, int32_t *rs) {
    switch (m) {
    case 1: nx_rows_vnni512_m(1, xr, wr, k, s, rs); break;
    case 2: nx_rows_vnni512_m(2, xr, wr, k, s, rs); break;
    default: nx_rows_vnni512_m(3, xr, wr, k, s, rs);
    }
}
#endif

static void nx_rows_generic(int m, const int16_t *x, const int8_t *const *wr, int64_t k, int32_t *s) {
    switch (m) {
    case 1: nx_rows_generic_m(1, x, wr, k, s); break;
    case 2: nx_rows_generic_m(2, x, wr, k, s); break;
    default: nx_rows_generic_m(3, x, wr, k, s);
    }
}

/* y (m, o) for m < QTILE from W (o, k) as given: xq the quantized rows (VNNI: u, padded to kp; generic: q - zp as
 * int16, k long). Threads take blocks of 4 output channels. */
static void nx_qrows(int path, const void *xq, int m, int64_t kp, const int8_t *w, const float *w_scale,
                     const float *bias, float *y, int64_t k, int64_t o, float x_scale, int zp, int parallel) {
    _Pragma("omp parallel for num_threads(NX_THREADS) schedule(static) if (parallel)")
    for (int64_t j0 = 0; j0 < o; j0 += 4) {
        int nj = o - j0 < 4 ? (int)(o - j0) : 4;
        const int8_t *wr[4];
        int32_t s[4 * QROWS_MAX], rs[4] = {0}, comp[4];
        float scale[4], b[4];
        for (int j = 0; j < 4; j++) wr[j] = w + (j0 + (j < nj ? j : nj - 1)) * k; /* past o: the last row again */
#ifdef NX_X86
        if (path == NX_AVX512VNNI) {
            const uint8_t *xr[QROWS_MAX];
            for (int i = 0; i < QROWS_MAX; i++) xr[i] = (const uint8_t *)xq + (i < m ? i : m - 1) * kp;
            nx_rows_vnni512(m, xr, wr, k, s, rs);
        } else
#endif
            nx_rows_generic(m, xq, wr, k, s);
        int offset = path == NX_AVX512VNNI ? 128 : 0, z = path == NX_AVX512VNNI ? zp : 0; /* generic: zp is in X */
        for (int j = 0; j < 4; j++) {
            int jj = j0 + (j < nj ? j : nj - 1);
            comp[j] = (z + offset) * rs[j];
            scale[j] = x_scale * w_scale[jj]; /* (as nx_qweights_init rounds it) */
            b[j] = bias ? bias[jj] : 0.0f;
        }
        for (int i = 0; i < m; i++) nx_dequantize4(s + 4 * i, nj, comp, scale, bias ? b : NULL, y + i * o + j0);
    }
}

/* What both kernels prepare once per call: W's rows padded to kp with zeros (W itself where they need neither
 * padding nor reordering), comp[j] = (zp + offset) * rowsum(W[j]) and scale[j] = x_scale * w_scale[j] (float32,
 * as core's composition rounds it). A conv's rows (c, kh * kw) are stored channel-last, (kh * kw, c), the order of
 * its columns; a linear's have c = 1. NULL when out of memory; one block, freed at once. */
struct nx_qweights {
    int8_t *w;
    int32_t *comp;
    float *scale;
};

static void *nx_qweights_init(struct nx_qweights *q, int path, const int8_t *w, const float *w_scale, int64_t o,
                              int64_t c, int64_t k, int64_t kp, float x_scale, int zp) {
    int64_t taps = k / c;
    int as_given = kp == k && (c == 1 || taps == 1); /* W's rows already are what the products read */
    char *block = malloc((as_given ? 0 : (size_t)o * kp) + (size_t)o * (sizeof(int32_t) + sizeof(float)) + 64);
    if (!block)
        return NULL;
    q->comp = (int32_t *)block;
    q->scale = (float *)(block + o * sizeof(int32_t));
    q->w = as_given ? (int8_t *)w : (int8_t *)(block + o * (sizeof(int32_t) + sizeof(float)));
    int offset = path == NX_AVX512VNNI ? 128 : 0;
    for (int64_t j = 0; j < o; j++) {
        const int8_t *src = w + j * k;
        int8_t *dst = q->w + j * kp;
        int32_t sum = 0;
        for (int64_t p = 0; p < k; p++) sum += src[p];
        if (!as_given) {
            if (c == 1 || taps == 1)
                memcpy(dst, src, k);
            else
                for (int64_t ch = 0; ch < c; ch++)
                    for (int64_t t = 0; t < taps; t++) dst[t * c + ch] = src[ch * taps + t];
            memset(dst + k, 0, kp - k);
        }
        q->comp[j] = (zp + offset) * sum;
        q->scale[j] = x_scale * w_scale[j];
    }
    return block;
}

static inline int nx_flip(int path) { return path == NX_AVX512VNNI ? 0x80 : 0; }

/* rows padded to a multiple of this: a 16-byte vector (sdot, generic), half a 64-byte one (a 3x3 kernel over 3
 * channels, 27 bytes, takes 32 rather than 64) */
static inline int64_t nx_padded(int path, int64_t k) {
    int64_t qk = path == NX_AVX512VNNI ? 32 : 16;
    return (k + qk - 1) / qk * qk;
}

/* y (m, o) = quantized_linear of x (m, k) with w (o, k); returns nonzero when out of memory */
int nx_qlinear(const void *x_, const void *w, const void *w_scale, const void *bias, void *y, int64_t m, int64_t k,
               int64_t o, float x_scale, int zp) {
    const float *x = x_;
    int path = nx_int8(), flip = nx_flip(path);
    int64_t kp = nx_padded(path, k);
    int parallel = m * k * o >= PAR_MIN_MACS;
    if (m < QTILE && path != NX_DOTPROD) { /* (m >= 1: quantized.py sends no empty output) */
        void *xq = malloc((size_t)m * kp * sizeof(int16_t) + 1);
        if (!xq)
            return 1;
        for (int64_t i = 0; i < m; i++)
            if (path == NX_AVX512VNNI) {
                nx_quantize_row(x + i * k, (uint8_t *)xq + i * kp, k, x_scale, zp, flip);
                memset((uint8_t *)xq + i * kp + k, 0, kp - k);
            } else { /* q, then q - zp widened, in place from the end */
                int16_t *r = (int16_t *)xq + i * k;
                nx_quantize_row(x + i * k, (uint8_t *)r, k, x_scale, zp, 0);
                for (int64_t t = k - 1; t >= 0; t--) r[t] = (int16_t)((int8_t)((uint8_t *)r)[t] - zp);
            }
        nx_qrows(path, xq, (int)m, kp, w, w_scale, bias, y, k, o, x_scale, zp, parallel);
        free(xq);
        return 0;
    }
    struct nx_qweights q;
    void *block = nx_qweights_init(&q, path, w, w_scale, o, 1, k, kp, x_scale, zp);
    uint8_t *xq = malloc((size_t)m * kp + 1);
    if (!block || !xq) {
        free(block);
        free(xq);
        return 1;
    }
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

/* Rows p0 .. p0 + np - 1 of one image's columns: row p = (oy, ox) holds the window's bytes as (kh, kw, c), c
 * contiguous, from the image quantized channel-last (h, w_, c); the padding is the zero point's byte. */
static void nx_qcolumns(const uint8_t *img, uint8_t *cols, int64_t p0, int64_t np, int64_t c, int64_t h, int64_t w_,
                        int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh,
                        int64_t dw, int64_t ow, int64_t kp, uint8_t pad) {
    int64_t k = kh * kw * c;
    for (int64_t p = p0; p < p0 + np; p++) {
            int64_t oy = p / ow, ox = p % ow;
            uint8_t *row = cols + (p - p0) * kp;
            int64_t x0 = ox * sw - pw, x1 = x0 + (kw - 1) * dw;
            for (int64_t i = 0; i < kh; i++, row += kw * c) {
                int64_t iy = oy * sh - ph + i * dh;
                if (iy < 0 || iy >= h)
                    memset(row, pad, kw * c);
                else if (dw == 1 && x0 >= 0 && x1 < w_) /* the window's row in one piece */
                    memcpy(row, img + (iy * w_ + x0) * c, kw * c);
                else
                    for (int64_t j = 0, ix = x0; j < kw; j++, ix += dw)
                        if (ix >= 0 && ix < w_)
                            memcpy(row + j * c, img + (iy * w_ + ix) * c, c);
                        else
                            memset(row + j * c, pad, c);
            }
            memset(row, 0, kp - k);
    }
}

#ifdef NX_X86
/* ---- conv2d on AVX-512 VNNI, pixels in lanes -------------------------------------------------------------
 * The dot-product tiles sum each 64-byte vector across its lanes at the end, which short rows (a first layer's
 * 27 bytes: one step) pay for on every tile. Here a vector holds 16 pixels' sums for one output channel
 * instead: the columns of 64 pixels are packed as 4 blocks of (kp / 4, 16 pixels, 4 bytes), W's 4 bytes at a
 * time are broadcast, and a tile of 64 pixels by 4 channels (16 accumulators) needs no horizontal sums; each
 * vector dequantizes to 16 consecutive floats of the NCHW output. */
#define QPIX 64
/* rows up to this long take the pixel lanes; longer ones the tiles, whose horizontal sums then cost less than
 * packing the columns (75 images, 3x3 on 42x42, one thread: 8, 16, 32 channels in 0.76, 0.80, 0.77 of the tiles'
 * time; 64 channels in 1.21) */
#define QPIX_MAX_K 384

/* rows (QPIX, kp) -> packed (QPIX / 16 blocks, kp / 4, 16, 4) */
static void nx_pack_pixels(const uint8_t *rows, uint8_t *packed, int64_t kp) {
    int64_t groups = kp / 4;
    for (int b = 0; b < QPIX / 16; b++)
        for (int64_t g = 0; g < groups; g++)
            for (int p = 0; p < 16; p++)
                memcpy(packed + ((b * groups + g) * 16 + p) * 4, rows + (b * 16 + p) * kp + 4 * g, 4);
}

/* y[j * l + p0 + p] for the packed pixels p0 .. p0 + 63 (those below l) and every channel j */
NX_VNNI512 static void nx_qconv_pixels_vnni512(const uint8_t *packed, int64_t kp, const int8_t *w, int64_t o,
                                               const int32_t *comp, const float *scale, const float *bias,
                                               float *y, int64_t l, int64_t p0) {
    int64_t groups = kp / 4;
    __mmask16 mask[4];
    for (int b = 0; b < 4; b++) {
        int64_t left = l - p0 - 16 * b;
        mask[b] = left >= 16 ? 0xffff : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
    }
    for (int64_t j0 = 0; j0 < o; j0 += 4) {
        const int8_t *wr[4];
        for (int j = 0; j < 4; j++) wr[j] = w + (j0 + j < o ? j0 + j : o - 1) * kp;
        __m512i acc[4][4];
        for (int b = 0; b < 4; b++)
            for (int j = 0; j < 4; j++) acc[b][j] = _mm512_setzero_si512();
        for (int64_t g = 0; g < groups; g++) {
            __m512i x[4];
            for (int b = 0; b < 4; b++) x[b] = _mm512_loadu_si512(packed + (b * groups + g) * 64);
            for (int j = 0; j < 4; j++) {
                int32_t w4;
                memcpy(&w4, wr[j] + 4 * g, 4);
                __m512i wb = _mm512_set1_epi32(w4);
                for (int b = 0; b < 4; b++) acc[b][j] = _mm512_dpbusd_epi32(acc[b][j], x[b], wb);
            }
        }
        for (int j = 0; j < 4 && j0 + j < o; j++) {
            __m512i cj = _mm512_set1_epi32(comp[j0 + j]);
            __m512 sj = _mm512_set1_ps(scale[j0 + j]), bj = _mm512_set1_ps(bias ? bias[j0 + j] : 0.0f);
            for (int b = 0; b < 4; b++) {
                __m512 v = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[b][j], cj));
                _mm512_mask_storeu_ps(y + (j0 + j) * l + p0 + 16 * b, mask[b], _mm512_fmadd_ps(v, sj, bj));
            }
        }
    }
}
#endif

/* y (n, o, oh, ow) = quantized_conv2d of x (n, c, h, w_) with w (o, c, kh, kw), groups 1. The images are quantized
 * and made channel-last first (so each window's row of kw pixels is one run of kw * c bytes); then each image's
 * columns (rows = output pixels, k = kh * kw * c) times W: on VNNI with short rows by blocks of QPIX pixels
 * (threads take blocks of any image), else by images (threads take images; a single image's rows go to them). Returns nonzero when
 * out of memory. */
int nx_qconv2d(const void *x_, const void *w, const void *w_scale, const void *bias, void *y_, int64_t n,
               int64_t c, int64_t h, int64_t w_, int64_t o, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
               int64_t ph, int64_t pw, int64_t dh, int64_t dw, int64_t oh, int64_t ow, float x_scale, int zp) {
    const float *x = x_;
    float *y = y_;
    int path = nx_int8(), flip = nx_flip(path);
    int64_t k = c * kh * kw, kp = nx_padded(path, k), l = oh * ow, hw = h * w_;
    struct nx_qweights q;
    void *block = nx_qweights_init(&q, path, w, w_scale, o, c, k, kp, x_scale, zp);
    uint8_t *xq = malloc((size_t)n * hw * c + 1);
    int failed = !block || !xq, parallel = n * l * k * o >= PAR_MIN_MACS;
    const uint8_t pad = (uint8_t)(zp ^ flip);
    _Pragma("omp parallel num_threads(NX_THREADS) if (parallel && !failed)")
    {
        /* per thread: an image quantized as it is laid out (c, hw), copied channel-last into xq */
        uint8_t *planar = failed ? NULL : malloc((size_t)c * hw + 1);
        if (!planar)
            __atomic_store_n(&failed, 1, __ATOMIC_RELAXED);
        _Pragma("omp for schedule(static)")
        for (int64_t b = 0; b < n; b++) {
            if (!planar)
                continue;
            uint8_t *img = xq + b * hw * c;
            nx_quantize_row(x + b * c * hw, planar, c * hw, x_scale, zp, flip);
            for (int64_t p = 0; p < hw; p++)
                for (int64_t ch = 0; ch < c; ch++) img[p * c + ch] = planar[ch * hw + p];
        }
        free(planar);
    }
#ifdef NX_X86
    if (path == NX_AVX512VNNI && kp <= QPIX_MAX_K && !failed) {
        int64_t blocks = (l + QPIX - 1) / QPIX;
        _Pragma("omp parallel num_threads(NX_THREADS) if (parallel && n * blocks > 1)")
        {
            uint8_t *cols = malloc((size_t)2 * QPIX * kp); /* QPIX rows, and their packed copy */
            if (!cols)
                __atomic_store_n(&failed, 1, __ATOMIC_RELAXED);
            _Pragma("omp for schedule(static)")
            for (int64_t t = 0; t < n * blocks; t++) {
                if (!cols)
                    continue;
                int64_t b = t / blocks, p0 = t % blocks * QPIX, np = l - p0 < QPIX ? l - p0 : QPIX;
                nx_qcolumns(xq + b * hw * c, cols, p0, np, c, h, w_, kh, kw, sh, sw, ph, pw, dh, dw, ow, kp, pad);
                memset(cols + np * kp, 0, (QPIX - np) * kp); /* pixels past the end: summed, never stored */
                nx_pack_pixels(cols, cols + QPIX * kp, kp);
                nx_qconv_pixels_vnni512(cols + QPIX * kp, kp, q.w, o, q.comp, q.scale, bias, y + b * o * l, l, p0);
            }
            free(cols);
        }
        free(xq);
        free(block);
        return failed;
    }
#endif
    int by_image = n > 1;
    _Pragma("omp parallel num_threads(NX_THREADS) if (by_image && parallel && !failed)")
    {
        uint8_t *cols = failed ? NULL : malloc((size_t)l * kp + 1);
        if (!cols)
            __atomic_store_n(&failed, 1, __ATOMIC_RELAXED);
        _Pragma("omp for schedule(static)")
        for (int64_t b = 0; b < n; b++) {
            if (!cols)
                continue;
            nx_qcolumns(xq + b * hw * c, cols, 0, l, c, h, w_, kh, kw, sh, sw, ph, pw, dh, dw, ow, kp, pad);
            nx_qgemm(path, cols, l, q.w, o, kp, q.comp, q.scale, bias, y + b * o * l, 1, l, !by_image && parallel);
        }
        free(cols);
    }
    free(xq);
    free(block);
    return failed;
}
