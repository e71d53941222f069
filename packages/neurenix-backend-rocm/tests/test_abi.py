"""The cffi declarations of HIP, hiprtc and rocBLAS, and the enum values this package uses, compiled against
AMD's headers (no GPU needed): hip/hip_runtime_api.h and hip/hiprtc.h from Debian's libamdhip64-dev or a
ROCm install, rocblas/rocblas.h from ROCm's rocblas-dev (Debian 12 has no rocBLAS). Where a header is
absent the check skips saying which, unless NEURENIX_REQUIRE_BACKENDS names rocm."""

import os
from pathlib import Path

import pytest
from neurenix_backend_rocm.hip import HIP_CDEF, HIPRTC_CDEF, ROCBLAS_CDEF
from neurenix_gpu.testing.abi import check_installed

INCLUDE_DIRS = [Path(p) / "include" for p in (os.environ.get("ROCM_PATH", "/opt/rocm"), "/usr")]
DEFINES = ["__HIP_PLATFORM_AMD__"]  # HIP's headers serve AMD and NVIDIA; this says which

# each cdef with the headers it is checked against (rocBLAS uses HIP's stream type)
CHECKS = {"hip": (HIP_CDEF, ["hip/hip_runtime_api.h"]), "hiprtc": (HIPRTC_CDEF, ["hip/hiprtc.h"]),
          "rocblas": (HIP_CDEF + ROCBLAS_CDEF, ["hip/hip_runtime_api.h", "rocblas/rocblas.h"])}
WHERE = ": HIP's headers come with libamdhip64-dev (apt-get install libamdhip64-dev) or ROCm, rocBLAS's with " \
        "ROCm's rocblas-dev (not packaged in Debian 12)"


@pytest.mark.parametrize("library", CHECKS)
def test_declarations_match_the_headers(library):
    cdef, headers = CHECKS[library]
    check_installed("rocm", cdef, headers, INCLUDE_DIRS, DEFINES, WHERE)
