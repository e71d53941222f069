// nx_kernels.cu: every kernel of the CUDA and ROCm backends, one source (see nx_compat.h).
// Host code (neurenix_backend_cuda/gpu/ops.py) builds the parameter structs; their layout is mirrored
// there in a cffi cdef, so change both together. Kernels are instantiated per dtype at the bottom.

// ---- geometry of strided operands: 0 is the output, 1..3 the inputs ----
struct nx_geo {
  i64 n, ndim;                        // elements of the output, and its rank
  i64 shape[NX_MAXDIM];
  i64 stride[4][NX_MAXDIM];           // in elements; 0 along broadcast axes; may be negative (reversed slices)
  i64 offset[4];
  double fscal[4];                    // scalar operands (where the operand pointer is null)
  i64 iscal[4];
};

struct nx_red {                       // a reduction: each output reduces nred inputs
  i64 nout, nred, nk, nr, offset;
  i64 kshape[NX_MAXDIM], kstride[NX_MAXDIM];   // kept axes (the output's order)
  i64 rshape[NX_MAXDIM], rstride[NX_MAXDIM];   // reduced axes
};

struct nx_mm { i64 batch, m, n, k, sa, sb; };  // C[b] = A[b] @ B[b]; sa, sb: batch strides (0 broadcasts)

struct nx_win { i64 n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow; };  // unfold / fold

struct nx_conv { i64 n, c, h, w, o, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, groups; };  // conv2d and its gradients

#define NX_LOOP(i, n) for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64)blockDim.x * gridDim.x)

NX_FN void nx_offsets(const nx_geo& g, i64 i, i64* o) {
  for (int k = 0; k < 4; ++k) o[k] = g.offset[k];
  for (int d = (int)g.ndim - 1; d >= 0; --d) {
    i64 c = i % g.shape[d];
    i /= g.shape[d];
    for (int k = 0; k < 4; ++k) o[k] += c * g.stride[k][d];
  }
}

NX_FN float nx_scalar(const nx_geo& g, int k, float) { return (float)g.fscal[k]; }
NX_FN double nx_scalar(const nx_geo& g, int k, double) { return g.fscal[k]; }
NX_FN i64 nx_scalar(const nx_geo& g, int k, i64) { return g.iscal[k]; }
NX_FN u8 nx_scalar(const nx_geo& g, int k, u8) { return g.iscal[k] != 0; }

template <class T> NX_FN T nx_ld(const T* p, const nx_geo& g, int k, i64 off) {
  return p ? p[off] : nx_scalar(g, k, T());
}

// ---- elementwise ----
NX_FN float nx_funary(int op, float x) {
  switch (op) {
    case 4: return expf(x);  case 5: return logf(x);  case 6: return sqrtf(x);
    case 7: return sinf(x);  case 8: return cosf(x);  case 9: return tanhf(x);
    default: return tanhf(x * 0.5f) * 0.5f + 0.5f;  // sigmoid, in the form that cannot overflow
  }
}
NX_FN double nx_funary(int op, double x) {
  switch (op) {
    case 4: return exp(x);  case 5: return log(x);  case 6: return sqrt(x);
    case 7: return sin(x);  case 8: return cos(x);  case 9: return tanh(x);
    default: return tanh(x * 0.5) * 0.5 + 0.5;
  }
}
NX_FN i64 nx_funary(int, i64 x) { return x; }  // never launched: core casts integers to floats first

template <class T> NX_FN T nx_unary(int op, T x) {
  switch (op) {
    case 0: return -x;
    case 1: return x < 0 ? -x : x;
    case 2: return x != x ? x : (T)((x > 0) - (x < 0));   // sign; NaN stays NaN
    case 3: return (x != x || x > 0) ? x : (T)0;          // relu; NaN stays NaN, as np.maximum
    default: return nx_funary(op, x);
  }
}

NX_FN float nx_pow(float a, float b) { return powf(a, b); }
NX_FN double nx_pow(double a, double b) { return pow(a, b); }
NX_FN i64 nx_pow(i64 a, i64 b) { i64 r = 1; for (; b > 0; --b) r *= a; return r; }
NX_FN u8 nx_pow(u8 a, u8 b) { return b ? a : 1; }

template <class T> NX_FN T nx_max(T a, T b) { return (a != a || a > b) ? a : b; }  // NaN wins, as np.maximum
template <class T> NX_FN T nx_min(T a, T b) { return (a != a || a < b) ? a : b; }

template <class T> NX_FN T nx_binary(int op, T a, T b) {
  switch (op) {
    case 0: return a + b;  case 1: return a - b;  case 2: return a * b;  case 3: return a / b;
    case 4: return nx_pow(a, b);  case 5: return nx_max(a, b);  default: return nx_min(a, b);
  }
}
NX_FN u8 nx_binary(int op, u8 a, u8 b) {  // NumPy on bools: + is or, * is and
  switch (op) {
    case 0: case 5: return a | b;  case 2: case 6: return a & b;  case 4: return nx_pow(a, b);
    default: return a != b;
  }
}

template <class T> NX_FN u8 nx_compare(int op, T a, T b) {
  switch (op) {
    case 0: return a == b;  case 1: return a != b;  case 2: return a < b;
    case 3: return a <= b;  case 4: return a > b;   default: return a >= b;
  }
}

template <class T> NX_FN void k_unary(const nx_geo& g, int op, T* out, const T* x) {
  NX_LOOP(i, g.n) { i64 o[4]; nx_offsets(g, i, o); out[o[0]] = nx_unary(op, nx_ld(x, g, 1, o[1])); }
}
template <class T> NX_FN void k_binary(const nx_geo& g, int op, T* out, const T* a, const T* b) {
  NX_LOOP(i, g.n) {
    i64 o[4]; nx_offsets(g, i, o);
    out[o[0]] = nx_binary(op, nx_ld(a, g, 1, o[1]), nx_ld(b, g, 2, o[2]));
  }
}
template <class T> NX_FN void k_compare(const nx_geo& g, int op, u8* out, const T* a, const T* b) {
  NX_LOOP(i, g.n) {
    i64 o[4]; nx_offsets(g, i, o);
    out[o[0]] = nx_compare(op, nx_ld(a, g, 1, o[1]), nx_ld(b, g, 2, o[2]));
  }
}
template <class T> NX_FN void k_where(const nx_geo& g, T* out, const u8* c, const T* a, const T* b) {
  NX_LOOP(i, g.n) {
    i64 o[4]; nx_offsets(g, i, o);
    out[o[0]] = nx_ld(c, g, 1, o[1]) ? nx_ld(a, g, 2, o[2]) : nx_ld(b, g, 3, o[3]);
  }
}
template <class S, class D> NX_FN D nx_convert(S x) { return (D)x; }
template <> NX_FN u8 nx_convert<float, u8>(float x) { return x != 0; }
template <> NX_FN u8 nx_convert<double, u8>(double x) { return x != 0; }
template <> NX_FN u8 nx_convert<i64, u8>(i64 x) { return x != 0; }
// copy, cast, fill (x null: the scalar), expand, permute, slices, and writes into a strided output (pad, cat)
template <class S, class D> NX_FN void k_copy(const nx_geo& g, D* out, const S* x) {
  NX_LOOP(i, g.n) { i64 o[4]; nx_offsets(g, i, o); out[o[0]] = nx_convert<S, D>(nx_ld(x, g, 1, o[1])); }
}

// ---- reductions: one block per output, a tree in shared memory ----
NX_FN i64 nx_red_offset(const nx_red& r, i64 out, i64 j) {
  i64 off = r.offset;
  for (int d = (int)r.nk - 1; d >= 0; --d) { off += (out % r.kshape[d]) * r.kstride[d]; out /= r.kshape[d]; }
  for (int d = (int)r.nr - 1; d >= 0; --d) { off += (j % r.rshape[d]) * r.rstride[d]; j /= r.rshape[d]; }
  return off;
}

template <class T> NX_FN T nx_reduce_op(int op, T a, T b) {
  return op == 0 ? (T)(a + b) : op == 1 ? nx_max(a, b) : nx_min(a, b);
}

template <class T> NX_FN void k_reduce(const nx_red& r, int op, T* out, const T* x) {
  __shared__ T part[NX_BLOCK];
  const T init = op == 0 ? (T)0 : op == 1 ? (T)-nx_inf(T()) : nx_inf(T());
  for (i64 o = blockIdx.x; o < r.nout; o += gridDim.x) {
    T acc = init;
    for (i64 j = threadIdx.x; j < r.nred; j += blockDim.x) acc = nx_reduce_op(op, acc, x[nx_red_offset(r, o, j)]);
    part[threadIdx.x] = acc;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
      if (threadIdx.x < s) part[threadIdx.x] = nx_reduce_op(op, part[threadIdx.x], part[threadIdx.x + s]);
      __syncthreads();
    }
    if (threadIdx.x == 0) out[o] = part[0];
    __syncthreads();  // part[] is reused by the next output
  }
}

// is (va, ia) a better arg-extremum than (vb, ib)? NaN counts as the extremum (as NumPy); ties: first index
template <class T> NX_FN bool nx_arg_better(int op, T va, i64 ia, T vb, i64 ib) {
  if (ib < 0) return ia >= 0;
  if (ia < 0) return false;
  bool na = va != va, nb = vb != vb;
  if (na || nb) return na && (!nb || ia < ib);
  if (va == vb) return ia < ib;
  return op == 0 ? va > vb : va < vb;
}

template <class T> NX_FN void k_argreduce(const nx_red& r, int op, i64* out, const T* x) {
  __shared__ T pv[NX_BLOCK];
  __shared__ i64 pi[NX_BLOCK];
  for (i64 o = blockIdx.x; o < r.nout; o += gridDim.x) {
    T bv = T(); i64 bi = -1;
    for (i64 j = threadIdx.x; j < r.nred; j += blockDim.x) {
      T v = x[nx_red_offset(r, o, j)];
      if (nx_arg_better(op, v, j, bv, bi)) { bv = v; bi = j; }
    }
    pv[threadIdx.x] = bv; pi[threadIdx.x] = bi;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
      if (threadIdx.x < s && nx_arg_better(op, pv[threadIdx.x + s], pi[threadIdx.x + s], pv[threadIdx.x], pi[threadIdx.x])) {
        pv[threadIdx.x] = pv[threadIdx.x + s]; pi[threadIdx.x] = pi[threadIdx.x + s];
      }
      __syncthreads();
    }
    if (threadIdx.x == 0) out[o] = pi[0];
    __syncthreads();
  }
}

// ---- batched matmul: NX_TILE x NX_TILE tiles through shared memory; grid (n tiles, m tiles, batches) ----
template <class T> NX_FN void k_matmul(const nx_mm& p, T* c, const T* a, const T* b) {
  __shared__ T ta[NX_TILE][NX_TILE];
  __shared__ T tb[NX_TILE][NX_TILE];
  const i64 row = (i64)blockIdx.y * NX_TILE + threadIdx.y, col = (i64)blockIdx.x * NX_TILE + threadIdx.x;
  for (i64 z = blockIdx.z; z < p.batch; z += gridDim.z) {
    const T* A = a + z * p.sa;
    const T* B = b + z * p.sb;
    T acc = 0;
    for (i64 k0 = 0; k0 < p.k; k0 += NX_TILE) {
      i64 ka = k0 + threadIdx.x, kb = k0 + threadIdx.y;
      ta[threadIdx.y][threadIdx.x] = (row < p.m && ka < p.k) ? A[row * p.k + ka] : (T)0;
      tb[threadIdx.y][threadIdx.x] = (kb < p.k && col < p.n) ? B[kb * p.n + col] : (T)0;
      __syncthreads();
      for (int t = 0; t < NX_TILE; ++t) acc += ta[threadIdx.y][t] * tb[t][threadIdx.x];
      __syncthreads();
    }
    if (row < p.m && col < p.n) c[z * p.m * p.n + row * p.n + col] = acc;
  }
}

// ---- unfold (im2col) and its adjoint fold: one thread per output element, no atomics ----
template <class T> NX_FN void k_unfold(const nx_win& w, T* out, const T* x) {
  const i64 L = w.oh * w.ow, n = w.n * w.c * w.kh * w.kw * L;
  NX_LOOP(i, n) {
    i64 l = i % L, r = i / L;
    i64 kj = r % w.kw, ki = (r / w.kw) % w.kh, nc = r / (w.kw * w.kh);
    i64 y = (l / w.ow) * w.sh - w.ph + ki * w.dh, xx = (l % w.ow) * w.sw - w.pw + kj * w.dw;
    out[i] = (y >= 0 && y < w.h && xx >= 0 && xx < w.w) ? x[(nc * w.h + y) * w.w + xx] : (T)0;
  }
}
template <class T> NX_FN void k_fold(const nx_win& w, T* out, const T* cols) {
  const i64 L = w.oh * w.ow, n = w.n * w.c * w.h * w.w;
  NX_LOOP(i, n) {
    i64 q = i % w.w, r = (i / w.w) % w.h, nc = i / (w.w * w.h);
    T acc = 0;
    for (i64 ki = 0; ki < w.kh; ++ki) {
      i64 ty = r + w.ph - ki * w.dh;
      if (ty < 0 || ty % w.sh || ty / w.sh >= w.oh) continue;
      for (i64 kj = 0; kj < w.kw; ++kj) {
        i64 tx = q + w.pw - kj * w.dw;
        if (tx < 0 || tx % w.sw || tx / w.sw >= w.ow) continue;
        acc += cols[((nc * w.kh + ki) * w.kw + kj) * L + (ty / w.sh) * w.ow + tx / w.sw];
      }
    }
    out[i] = acc;
  }
}

// ---- convolution as implicit GEMM: the tiled product of k_matmul, its operands' tiles read straight from the
// image, the filters and the output gradient (never an im2col matrix in memory). Per group g (grid z), with
// og = o/groups, cg = c/groups, kk = kh*kw, L = oh*ow:
//   MODE 0, forward:        out (og, n*L)    = W_g (og, cg*kk)       @ cols_g (cg*kk, n*L)   [+ bias]
//   MODE 1, input grad:     dx (cg, n*h*w)   = W_g^T (cg, og*kk)     @ dy's windows (og*kk, n*h*w)  (fold)
//   MODE 2, weight grad:    dw (og, cg*kk)   = dy_g (og, n*L)        @ cols_g^T (n*L, cg*kk)
// where cols_g[(ci, ki, kj), (img, l)] is unfold's element (zero in the padding). Every sum is one thread's:
// no atomics, so results do not depend on the schedule.
template <class T> NX_FN T nx_im2col(const nx_conv& p, const T* x, i64 g, i64 r, i64 q) {
  const i64 L = p.oh * p.ow, kk = p.kh * p.kw, cg = p.c / p.groups;
  const i64 ci = r / kk, ki = (r % kk) / p.kw, kj = r % p.kw, img = q / L, l = q % L;
  const i64 y = (l / p.ow) * p.sh - p.ph + ki * p.dh, xx = (l % p.ow) * p.sw - p.pw + kj * p.dw;
  return (y >= 0 && y < p.h && xx >= 0 && xx < p.w) ? x[((img * p.c + g * cg + ci) * p.h + y) * p.w + xx] : (T)0;
}

// the gradient reaching input pixel q = (img, y, x) through filter tap r = (oc, ki, kj) of group g: dy at the
// window that tap puts on the pixel, zero where no window (of the stride) does
template <class T> NX_FN T nx_col2im(const nx_conv& p, const T* dy, i64 g, i64 r, i64 q) {
  const i64 kk = p.kh * p.kw, og = p.o / p.groups, hw = p.h * p.w;
  const i64 oc = r / kk, ki = (r % kk) / p.kw, kj = r % p.kw, img = q / hw;
  const i64 ty = (q % hw) / p.w + p.ph - ki * p.dh, tx = q % p.w + p.pw - kj * p.dw;
  if (ty < 0 || tx < 0 || ty % p.sh || tx % p.sw || ty / p.sh >= p.oh || tx / p.sw >= p.ow) return (T)0;
  return dy[((img * p.o + g * og + oc) * p.oh + ty / p.sh) * p.ow + tx / p.sw];
}

template <class T, int MODE> NX_FN void k_conv(const nx_conv& p, T* out, const T* a, const T* b, const T* bias) {
  __shared__ T ta[NX_TILE][NX_TILE];
  __shared__ T tb[NX_TILE][NX_TILE];
  const i64 L = p.oh * p.ow, kk = p.kh * p.kw, og = p.o / p.groups, cg = p.c / p.groups, hw = p.h * p.w;
  const i64 m = MODE == 1 ? cg : og;
  const i64 ncol = MODE == 0 ? p.n * L : MODE == 1 ? p.n * hw : cg * kk;
  const i64 kdim = MODE == 0 ? cg * kk : MODE == 1 ? og * kk : p.n * L;
  const i64 row = (i64)blockIdx.y * NX_TILE + threadIdx.y, col = (i64)blockIdx.x * NX_TILE + threadIdx.x;
  for (i64 g = blockIdx.z; g < p.groups; g += gridDim.z) {
    T acc = 0;
    for (i64 k0 = 0; k0 < kdim; k0 += NX_TILE) {
      const i64 ka = k0 + threadIdx.x, kb = k0 + threadIdx.y;
      T va = 0, vb = 0;
      if (row < m && ka < kdim) {
        if (MODE == 0) va = a[(g * og + row) * cg * kk + ka];                               // W[o, (ci, ki, kj)]
        else if (MODE == 1) va = a[((g * og + ka / kk) * cg + row) * kk + ka % kk];         // W[oc, ci, ki, kj]
        else va = a[((ka / L) * p.o + g * og + row) * L + ka % L];                          // dy[img, o, l]
      }
      if (kb < kdim && col < ncol) {
        if (MODE == 0) vb = nx_im2col(p, b, g, kb, col);
        else if (MODE == 1) vb = nx_col2im(p, b, g, kb, col);
        else vb = nx_im2col(p, b, g, col, kb);
      }
      ta[threadIdx.y][threadIdx.x] = va;
      tb[threadIdx.y][threadIdx.x] = vb;
      __syncthreads();
      for (int t = 0; t < NX_TILE; ++t) acc += ta[threadIdx.y][t] * tb[t][threadIdx.x];
      __syncthreads();
    }
    if (row < m && col < ncol) {
      if (MODE == 0) out[((col / L) * p.o + g * og + row) * L + col % L] = bias ? acc + bias[g * og + row] : acc;
      else if (MODE == 1) out[((col / hw) * p.c + g * cg + row) * hw + col % hw] = acc;
      else out[(g * og + row) * cg * kk + col] = acc;
    }
  }
}

// ---- advanced indexing through element offsets computed by the host ----
template <class T> NX_FN void k_gather(i64 n, T* out, const T* x, const i64* off) {
  NX_LOOP(i, n) out[i] = x[off[i]];
}
template <class T> NX_FN void k_scatter(i64 n, int accumulate, T* out, const T* v, const i64* off) {
  NX_LOOP(i, n) {
    if (accumulate) nx_atomic_add(out + off[i], v[i]);
    else out[off[i]] = v[i];
  }
}

// ---- instantiation: extern "C" names are what the host looks up (kind_dtype, copy_src_dst) ----
#define NX_KERNELS_ALL(t, T)                                                                                  \
  extern "C" __global__ void binary_##t(nx_geo g, int op, T* out, const T* a, const T* b) { k_binary(g, op, out, a, b); } \
  extern "C" __global__ void compare_##t(nx_geo g, int op, u8* out, const T* a, const T* b) { k_compare(g, op, out, a, b); } \
  extern "C" __global__ void where_##t(nx_geo g, T* out, const u8* c, const T* a, const T* b) { k_where(g, out, c, a, b); } \
  extern "C" __global__ void reduce_##t(nx_red r, int op, T* out, const T* x) { k_reduce(r, op, out, x); }            \
  extern "C" __global__ void argreduce_##t(nx_red r, int op, i64* out, const T* x) { k_argreduce(r, op, out, x); }    \
  extern "C" __global__ void gather_##t(i64 n, T* out, const T* x, const i64* off) { k_gather(n, out, x, off); }       \
  extern "C" __global__ void scatter_##t(i64 n, int acc, T* out, const T* v, const i64* off) { k_scatter(n, acc, out, v, off); }
#define NX_KERNELS_NUMERIC(t, T)                                                                              \
  extern "C" __global__ void unary_##t(nx_geo g, int op, T* out, const T* x) { k_unary(g, op, out, x); }               \
  extern "C" __global__ void matmul_##t(nx_mm p, T* c, const T* a, const T* b) { k_matmul(p, c, a, b); }               \
  extern "C" __global__ void unfold_##t(nx_win w, T* out, const T* x) { k_unfold(w, out, x); }                         \
  extern "C" __global__ void fold_##t(nx_win w, T* out, const T* c) { k_fold(w, out, c); }
#define NX_KERNELS_FLOAT(t, T)                                                                                \
  extern "C" __global__ void conv2d_##t(nx_conv p, T* out, const T* x, const T* w, const T* bias) { k_conv<T, 0>(p, out, w, x, bias); } \
  extern "C" __global__ void conv2d_dx_##t(nx_conv p, T* dx, const T* dy, const T* w) { k_conv<T, 1>(p, dx, w, dy, (const T*)0); } \
  extern "C" __global__ void conv2d_dw_##t(nx_conv p, T* dw, const T* dy, const T* x) { k_conv<T, 2>(p, dw, dy, x, (const T*)0); }
#define NX_COPY(s, S, d, D) \
  extern "C" __global__ void copy_##s##_##d(nx_geo g, D* out, const S* x) { k_copy<S, D>(g, out, x); }
#define NX_COPY_FROM(s, S) NX_COPY(s, S, f32, float) NX_COPY(s, S, f64, double) NX_COPY(s, S, i64, i64) NX_COPY(s, S, b8, u8)

NX_KERNELS_ALL(f32, float)
NX_KERNELS_ALL(f64, double)
NX_KERNELS_ALL(i64, i64)
NX_KERNELS_ALL(b8, u8)
NX_KERNELS_NUMERIC(f32, float)
NX_KERNELS_NUMERIC(f64, double)
NX_KERNELS_NUMERIC(i64, i64)
NX_KERNELS_FLOAT(f32, float)
NX_KERNELS_FLOAT(f64, double)
NX_COPY_FROM(f32, float)
NX_COPY_FROM(f64, double)
NX_COPY_FROM(i64, i64)
NX_COPY_FROM(b8, u8)
