"""Hatch build hook: compile the C kernels with cffi, making the wheel a platform wheel.

A regular wheel gets the compiled libraries from a temporary directory (the source tree is left as it
is); an editable install gets them next to the sources in ``src/neurenix_backend_cpu/``, where the
editable path finds them. A wheel for other machines: ``NEURENIX_CPU_PORTABLE=1`` (see ``_build.py``).
"""

from __future__ import annotations

import importlib.util
import pathlib
import shutil
import tempfile

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

PACKAGE = pathlib.Path(__file__).resolve().parent / "src" / "neurenix_backend_cpu"


def _builder():
    spec = importlib.util.spec_from_file_location("_neurenix_cpu_build", PACKAGE / "_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class CffiBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        if self.target_name != "wheel":
            return
        self._tmp = pathlib.Path(tempfile.mkdtemp(prefix="neurenix-cpu-"))
        editable = version == "editable"
        libs = _builder().build(PACKAGE if editable else self._tmp, self._tmp / "build")
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        if not editable:
            for lib in libs:
                build_data["force_include"][str(lib)] = f"neurenix_backend_cpu/{lib.name}"

    def finalize(self, version: str, build_data: dict, artifact_path: str) -> None:
        if getattr(self, "_tmp", None) is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
