// host.h: the CUDA built-ins on the host CPU, so nx_kernels.cu runs unchanged for the emulated devices.
// A block runs as one fiber (ucontext) per thread on one OS thread: __syncthreads switches back to the
// scheduler, which resumes every fiber of the block in turn, so all reach the barrier before any passes it.
// __shared__ becomes static: one copy, seen by all the fibers of the (one running) block.
#define NX_HOST 1
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <utility>

struct nx_dim3 { unsigned x, y, z; };
static nx_dim3 threadIdx, blockIdx, blockDim, gridDim;
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static

static float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
static double __longlong_as_double(long long i) { double d; memcpy(&d, &i, 8); return d; }
template <class T> static T atomicAdd(T* p, T v) { T old = *p; *p = old + v; return old; }  // fibers never interleave mid-call

static ucontext_t nx_sched, *nx_ctx;
static char* nx_stacks;
static int *nx_done, nx_cur, nx_capacity;
static void (*nx_entry_fn)(void**);
static void** nx_entry_args;
enum { NX_STACK = 64 * 1024 };

static void __syncthreads() { swapcontext(&nx_ctx[nx_cur], &nx_sched); }
static void nx_thread_main() { nx_entry_fn(nx_entry_args); nx_done[nx_cur] = 1; }  // returns to uc_link

extern "C" int nx_launch(void (*fn)(void**), void** args, unsigned gx, unsigned gy, unsigned gz,
                         unsigned bx, unsigned by, unsigned bz) {
  int n = (int)(bx * by * bz);
  if (n > nx_capacity) {
    free(nx_ctx); free(nx_stacks); free(nx_done);
    nx_ctx = (ucontext_t*)malloc(sizeof(ucontext_t) * n);
    nx_stacks = (char*)malloc((size_t)NX_STACK * n);
    nx_done = (int*)malloc(sizeof(int) * n);
    if (!nx_ctx || !nx_stacks || !nx_done) { nx_capacity = 0; return 1; }
    nx_capacity = n;
  }
  nx_entry_fn = fn; nx_entry_args = args;
  gridDim = {gx, gy, gz}; blockDim = {bx, by, bz};
  for (unsigned z = 0; z < gz; ++z) for (unsigned y = 0; y < gy; ++y) for (unsigned x = 0; x < gx; ++x) {
    blockIdx = {x, y, z};
    for (int t = 0; t < n; ++t) {
      getcontext(&nx_ctx[t]);
      nx_ctx[t].uc_stack.ss_sp = nx_stacks + (size_t)NX_STACK * t;
      nx_ctx[t].uc_stack.ss_size = NX_STACK;
      nx_ctx[t].uc_link = &nx_sched;
      makecontext(&nx_ctx[t], nx_thread_main, 0);
      nx_done[t] = 0;
    }
    for (int live = n; live > 0;) {  // one round: every live thread runs to its next barrier (or its end)
      live = 0;
      for (int t = 0; t < n; ++t) {
        if (nx_done[t]) continue;
        nx_cur = t;
        threadIdx = {(unsigned)(t % bx), (unsigned)(t / bx % by), (unsigned)(t / (bx * by))};
        swapcontext(&nx_sched, &nx_ctx[t]);
        live += !nx_done[t];
      }
    }
  }
  return 0;
}

// nx_call(kernel, args): call a kernel with cuLaunchKernel-style arguments (an array of pointers to values)
template <class... A, size_t... I> static void nx_call_(void (*f)(A...), void** p, std::index_sequence<I...>) {
  f(*(typename std::remove_reference<A>::type*)p[I]...);
}
template <class... A> static void nx_call(void (*f)(A...), void** p) { nx_call_(f, p, std::index_sequence_for<A...>{}); }
#define NX_TRAMPOLINE(name) extern "C" void nx_tramp_##name(void** p) { nx_call(name, p); }
