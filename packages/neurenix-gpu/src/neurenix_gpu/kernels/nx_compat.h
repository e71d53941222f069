// nx_compat.h: what lets one kernel source build for CUDA (NVRTC), HIP (hiprtc) and the host CPU
// (the emulator defines NX_HOST and the CUDA built-ins before including this source).
// The kernels use only what the three share: __global__/__device__, blockIdx/threadIdx/blockDim/gridDim,
// static-size __shared__ arrays, __syncthreads and atomicAdd. No warp shuffles: block reductions go through
// shared memory, so a warp of 32 (NVIDIA, RDNA) or 64 (CDNA) lanes changes nothing.
#pragma once
typedef long long i64;
typedef unsigned long long u64;
typedef unsigned char u8;  // bool buffers: one byte, 0 or 1 (as NumPy stores them)

#define NX_MAXDIM 8
#define NX_BLOCK 256  // threads of the 1-D kernels and of a block reduction (host code launches exactly this)
#define NX_TILE 16    // matmul tile: NX_TILE x NX_TILE threads

#if defined(NX_HOST)
#define NX_FN inline
#else
#define NX_FN __device__ __forceinline__
#endif

NX_FN float nx_inf(float) { return __int_as_float(0x7f800000); }
NX_FN double nx_inf(double) { return __longlong_as_double(0x7ff0000000000000LL); }
NX_FN i64 nx_inf(i64) { return 0x7fffffffffffffffLL; }
NX_FN u8 nx_inf(u8) { return 1; }

NX_FN void nx_atomic_add(float* p, float v) { atomicAdd(p, v); }
NX_FN void nx_atomic_add(double* p, double v) { atomicAdd(p, v); }
NX_FN void nx_atomic_add(i64* p, i64 v) { atomicAdd((u64*)p, (u64)v); }  // two's complement: same bits
NX_FN void nx_atomic_add(u8* p, u8 v) { if (v) *p = 1; }                   // bool += is "or": racing writers agree
