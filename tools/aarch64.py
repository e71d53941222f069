"""Cross-compile the C backend's aarch64 baseline on this x86-64 machine and run its tests on aarch64, under QEMU's
user-mode emulation. ``tox -e aarch64`` runs it.

    python tools/aarch64.py [--build DIR] [--cpu MODEL] [PYTEST ARGS...]

Needs (README set-up, as root on Debian 12): ``gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user``, and arm64
among dpkg's architectures (``dpkg --add-architecture arm64 && apt-get update``) so that apt can download arm64
packages. No arm64 package is installed: they are unpacked into DIR.

1. A sysroot (``DIR/sysroot``, made afresh): Debian's arm64 Python 3.11 and the libraries it, NumPy's wheel and the
   kernels load, downloaded by ``apt-get download`` (kept in ``DIR/debs``) and unpacked by ``dpkg -x``.
2. Its site-packages: the aarch64 wheels of NumPy, cffi, pytest, pluggy and setuptools (for cffi's compiler
   driver), at the versions this Python has (cffi's must be: the cffi that loads a module must suit the one that
   generated its C), kept in ``DIR/wheels``; and neurenix-core and neurenix-backend-cpu built as wheels without
   the kernels' build hook (``HATCH_BUILD_NO_HOOKS``), all unpacked.
3. The kernels: the C source of ``_kernels`` that cffi emits (``_build.ffibuilder``, for ``_build.PORTABLE``'s
   aarch64 target, armv8-a), cross-compiled with ``_build.flags`` into the site-packages.
4. ``DIR/sysroot/usr/bin/python``: a script that runs the arm64 interpreter under ``qemu-aarch64`` on an ARMv8.0 CPU
   (``--cpu``, default cortex-a57: no extension beyond the baseline), with itself as ``argv[0]``, so that
   ``sys.executable`` is the script and the tests' subprocesses run on aarch64 too.
5. The checks: that interpreter is aarch64 and loads the kernels just built, for armv8-a, with OpenMP; then pytest
   on ``packages/neurenix-backend-cpu/tests`` (PYTEST ARGS, where given, replace that path: name the tests too)
   with ``NEURENIX_REQUIRE_BACKENDS=cpu-c``, so that kernels failing to load fail the run rather than skip it. The
   tests that compile fused C at run time use the cross-compiler too (Debian's arm64 Python names
   ``aarch64-linux-gnu-gcc`` as its CC), for armv8-a.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys
import time
import zipfile
from importlib import metadata

ROOT = pathlib.Path(__file__).resolve().parent.parent
CPU = ROOT / "packages" / "neurenix-backend-cpu"
CC = "aarch64-linux-gnu-gcc"
#: Debian 12's Python, and the glibc the wheels may require (Debian 12 has 2.36)
PYTHON, GLIBC = "3.11", 36
#: the arm64 packages of the sysroot: the interpreter and its standard library (and headers, to compile against),
#: the C and C++ runtimes, OpenMP's, and the libraries the standard library's modules load
DEBS = [f"python{PYTHON}-minimal", f"libpython{PYTHON}-minimal", f"libpython{PYTHON}-stdlib", f"libpython{PYTHON}-dev",
        "libc6", "libgcc-s1", "libgomp1", "libstdc++6", "libexpat1", "zlib1g", "libssl3", "libffi8", "libbz2-1.0",
        "liblzma5"]
#: the aarch64 wheels (from the package index); cffi must match this Python's (see the module docstring)
WHEELS = ["numpy", "cffi", "pytest", "pluggy", "setuptools"]
#: our distributions, built without the kernels, which step 3 cross-compiles
OURS = ["neurenix-core", "neurenix-backend-cpu"]


def run(*cmd, **kw) -> str:
    """Run a command, echoing it; its stdout (it must succeed)."""
    print("+", " ".join(map(str, cmd)), flush=True)
    out = subprocess.run(list(map(str, cmd)), check=True, text=True, stdout=subprocess.PIPE, **kw).stdout
    print(out, end="", flush=True)
    return out


def require_tools() -> None:
    """The cross-compiler, QEMU and apt's arm64 lists are there; else say what to install."""
    missing = [f"{exe} (Debian package {pkg})" for exe, pkg in ((CC, "gcc-aarch64-linux-gnu"),
                                                                 ("qemu-aarch64", "qemu-user"),
                                                                 ("apt-get", "apt"), ("dpkg", "dpkg"))
               if shutil.which(exe) is None]
    if missing:
        raise SystemExit(f"aarch64: not found: {', '.join(missing)}. Install them (README set-up): apt-get install "
                         "gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user")
    if os.environ.get("NEURENIX_CPU_SANITIZE"):  # (_build.flags would add the flag)
        raise SystemExit("aarch64: NEURENIX_CPU_SANITIZE is set, but the arm64 sysroot has no sanitizer runtime; "
                         "unset it")
    foreign = subprocess.run(["dpkg", "--print-foreign-architectures"], capture_output=True, text=True).stdout
    if "arm64" not in foreign.split():
        raise SystemExit("aarch64: dpkg has no arm64 architecture, so apt cannot download arm64 packages; run (as "
                         "root) `dpkg --add-architecture arm64 && apt-get update` (README set-up)")


def sysroot(build: pathlib.Path) -> pathlib.Path:
    """Step 1: the arm64 packages, downloaded once, unpacked into a fresh sysroot."""
    debs, root = build / "debs", build / "sysroot"
    debs.mkdir(parents=True, exist_ok=True)
    fetch = [f"{name}:arm64" for name in DEBS if not list(debs.glob(f"{name}_*_arm64.deb"))]
    if fetch:
        run("apt-get", "download", *fetch, cwd=debs)
    shutil.rmtree(root, ignore_errors=True)
    for name in DEBS:
        (deb,) = debs.glob(f"{name}_*_arm64.deb")
        run("dpkg", "-x", deb, root)
    return root


def host_version(name: str) -> str | None:
    """The version of ``name`` this Python has, or None."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def site_packages(build: pathlib.Path, root: pathlib.Path) -> pathlib.Path:
    """Step 2: third-party aarch64 wheels (downloaded once) and ours (built now), unpacked into the sysroot's
    site-packages."""
    if host_version("cffi") is None:
        raise SystemExit("aarch64: cffi is not installed in this Python, which must emit the kernels' C source")
    wheels, ours = build / "wheels", build / "ours"
    pins = [f"{name}=={host_version(name)}" if host_version(name) else name for name in WHEELS]
    platforms = ["manylinux2014_aarch64", *(f"manylinux_2_{v}_aarch64" for v in range(17, GLIBC + 1))]
    run(sys.executable, "-m", "pip", "download", "--quiet", "--dest", wheels, "--only-binary=:all:",
        "--python-version", PYTHON, "--implementation", "cp", *(a for p in platforms for a in ("--platform", p)),
        *pins)
    shutil.rmtree(ours, ignore_errors=True)
    # without the build hook: a pure-Python wheel of the backend, whose kernels step 3 cross-compiles
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", ours,
        *(ROOT / "packages" / name for name in OURS), env={**os.environ, "HATCH_BUILD_NO_HOOKS": "true"})
    site = root / "usr" / "lib" / "python3" / "dist-packages"  # Debian's, on the interpreter's path by itself
    for wheel in sorted(wheels.glob("*.whl")) + sorted(ours.glob("*.whl")):
        with zipfile.ZipFile(wheel) as z:
            z.extractall(site)
    for lib in site.glob("*/*.so*"):  # (zipfile drops the permission bits)
        lib.chmod(0o755)
    if list((site / "neurenix_backend_cpu").glob("_kernels*")):
        raise SystemExit("aarch64: the neurenix-backend-cpu wheel has compiled kernels in it (for this machine): "
                         "HATCH_BUILD_NO_HOOKS did not keep the build hook from running")
    return site


def builder():
    """The backend's _build module (the cffi builder of its kernels), loaded from the source tree."""
    spec = importlib.util.spec_from_file_location("_neurenix_cpu_build", CPU / "src" / "neurenix_backend_cpu" /
                                                  "_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def kernels(build: pathlib.Path, root: pathlib.Path, site: pathlib.Path) -> str:
    """Step 3: cross-compile the portable wheel's aarch64 module(s) into the site-packages; the baseline's -march."""
    b = builder()
    targets = b.PORTABLE["aarch64"]
    work = build / "kernels"
    work.mkdir(parents=True, exist_ok=True)
    includes = [f"-I{b.CSRC}", f"-I{root}/usr/include/python{PYTHON}", f"-I{root}/usr/include"]
    for suffix, march in targets:
        source = work / f"_kernels{suffix}.c"
        b.ffibuilder(suffix, march).emit_c_code(str(source))
        cflags, ldflags = b.flags(march)
        lib = site / "neurenix_backend_cpu" / f"_kernels{suffix}.cpython-{PYTHON.replace('.', '')}-aarch64-linux-gnu.so"
        run(CC, "-shared", "-fPIC", *cflags, *includes, source, b.CSRC / "kernels.c", "-o", lib, *ldflags)
    return targets[0][1]


def interpreter(root: pathlib.Path, cpu: str) -> pathlib.Path:
    """Step 4: the script that runs the arm64 Python under QEMU (see the module docstring)."""
    python = root / "usr" / "bin" / "python"
    python.write_text(f'#!/bin/sh\nexec qemu-aarch64 -cpu {cpu} -L "{root}" -0 "{python}" '
                      f'"{root}/usr/bin/python{PYTHON}" "$@"\n')
    python.chmod(0o755)
    return python


def check(python: pathlib.Path, root: pathlib.Path, site: pathlib.Path, march: str, build: pathlib.Path,
          pytest_args: list[str]) -> None:
    """Step 5: the interpreter is aarch64 and loads our kernels; then the tests."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "NEURENIX_REQUIRE_BACKENDS": "cpu-c",
           # fused C compiled at run time: for the baseline (not -march=native, which names the host's CPU), against
           # the sysroot's Python headers, cached in the build directory
           "NEURENIX_CPU_MARCH": march, "CFLAGS": f"-I{root}/usr/include/python{PYTHON} -I{root}/usr/include",
           "NEURENIX_CACHE_DIR": str(build / "cache")}
    env.pop("PYTHONPATH", None)  # (the host's packages must not shadow the site-packages)
    shutil.rmtree(build / "cache", ignore_errors=True)
    code = ("import platform, sys\nfrom neurenix_backend_cpu import native\n"
            "assert platform.machine() == 'aarch64', platform.machine()\n"
            "assert native.IMPORT_ERROR is None, native.IMPORT_ERROR\n"
            f"assert native.__file__.startswith({str(site)!r}), native.__file__\n"
            f"assert native.TARGET == {march!r} and native.lib.nx_has_openmp(), (native.TARGET, 'OpenMP?')\n"
            "print(sys.executable, platform.machine(), sys.version.split()[0], 'C kernels for', native.TARGET)")
    run(python, "-c", code, env=env, cwd=ROOT)
    start = time.monotonic()
    tests = pytest_args or [str(CPU / "tests")]
    print("+", python, "-m pytest -p no:cacheprovider", *tests, flush=True)
    rc = subprocess.run([str(python), "-m", "pytest", "-p", "no:cacheprovider", *tests], env=env, cwd=ROOT).returncode
    print(f"aarch64: pytest took {time.monotonic() - start:.0f} s under qemu-aarch64", flush=True)
    if rc:
        raise SystemExit(f"aarch64: the tests failed on aarch64 (pytest exit status {rc})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    ap.add_argument("--build", default=str(ROOT / "build" / "aarch64"),
                    help="work directory; downloads are kept in it between runs (default: build/aarch64)")
    ap.add_argument("--cpu", default="cortex-a57", help="QEMU's CPU model (default cortex-a57: ARMv8.0-A)")
    args, pytest_args = ap.parse_known_args()
    build = pathlib.Path(args.build).resolve()
    start = time.monotonic()
    require_tools()
    root = sysroot(build)
    site = site_packages(build, root)
    march = kernels(build, root, site)
    python = interpreter(root, args.cpu)
    check(python, root, site, march, build, pytest_args)
    print(f"aarch64: built for {march} and tested on qemu-aarch64 -cpu {args.cpu} in {time.monotonic() - start:.0f} s")


if __name__ == "__main__":
    main()
