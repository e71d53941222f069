"""The cffi declarations of the CUDA driver API, NVRTC and cuBLAS, and the enum values this package uses,
compiled against NVIDIA's headers (no GPU needed): cuda.h from a CUDA toolkit or the nvidia-cuda-runtime
wheel, nvrtc.h from the nvidia-cuda-nvrtc wheel, cublas_api.h from the nvidia-cublas wheel. Where a header
is absent the check skips saying which, unless NEURENIX_REQUIRE_BACKENDS names cuda."""

import glob
import os
from pathlib import Path

import pytest
from neurenix_backend_cuda.cuda import CUBLAS_CDEF, CUDA_CDEF, NVRTC_CDEF
from neurenix_gpu.testing.abi import check_installed


def include_dirs() -> list[Path]:
    """NVIDIA's wheels' include folders (nvidia/cu13/include...), then the CUDA toolkits', newest first."""
    dirs = []
    try:
        import nvidia  # namespace package of NVIDIA's wheels
        dirs += [Path(d) for root in nvidia.__path__ for d in sorted(glob.glob(os.path.join(root, "*", "include")))]
    except ImportError:
        pass
    toolkits = [os.environ.get("CUDA_HOME", ""), *sorted(glob.glob("/usr/local/cuda*"), reverse=True)]
    return dirs + [Path(t) / "include" for t in toolkits if t and (Path(t) / "include").is_dir()]


# each cdef with the headers it is checked against (cublas_api.h declares the stream as cuda.h's CUstream_st*)
CHECKS = {"driver": (CUDA_CDEF, ["cuda.h"]), "nvrtc": (NVRTC_CDEF, ["nvrtc.h"]),
          "cublas": (CUDA_CDEF + CUBLAS_CDEF, ["cuda.h", "cublas_api.h"])}
WHERE = ": cuda.h comes with a CUDA toolkit or the nvidia-cuda-runtime wheel, nvrtc.h with nvidia-cuda-nvrtc, " \
        "cublas_api.h with nvidia-cublas (tox -e gpu installs them)"


@pytest.mark.parametrize("library", CHECKS)
def test_declarations_match_the_headers(library):
    cdef, headers = CHECKS[library]
    check_installed("cuda", cdef, headers, include_dirs(), where=WHERE)
