"""Build every distribution as a release would upload it, check it, install the built files (not the source
tree) into a fresh virtual environment and smoke-test them there. ``tox -e release`` runs it.

    python tools/release.py [--dist DIR]

1. An sdist and a wheel of each package (``python -m build``: hatchling); the C backend's wheel portable
   (``NEURENIX_CPU_PORTABLE=1``: an x86-64-v2 baseline, and AVX2 and AVX-512 modules picked at run time), then
   repaired by ``auditwheel`` into a manylinux wheel (libgomp inside; the tag follows the glibc it was built
   against: manylinux_2_34 on Debian 12, older from a manylinux build image), which the package index takes.
2. ``twine check`` on all of them.
3. A fresh venv outside the repository: our packages from the built wheels only (``--no-index``), their
   third-party dependencies from the package index, then ``pip check``.
4. In it, from a directory outside the repository: every module imports from the venv with the version of
   its distribution, ``neurenix --version``, ``neurenix devices`` (the C kernels loaded, for which target),
   a short MAML run saved to a checkpoint, and ``neurenix evaluate`` on it.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
#: distribution -> the module it installs (what the smoke test imports)
PACKAGES = {"neurenix-core": "neurenix", "neurenix-backend-cpu": "neurenix_backend_cpu", "neurenix-gpu": "neurenix_gpu",
            "neurenix-backend-cuda": "neurenix_backend_cuda", "neurenix-backend-rocm": "neurenix_backend_rocm",
            "neurenix-backend-webgpu": "neurenix_backend_webgpu", "neurenix-meta": "neurenix.meta"}


def run(*cmd, **kw) -> str:
    """Run a command, echoing it; its stdout (it must succeed)."""
    print("+", " ".join(map(str, cmd)), flush=True)
    out = subprocess.run(list(map(str, cmd)), check=True, text=True, stdout=subprocess.PIPE, **kw).stdout
    print(out, end="", flush=True)
    return out


def build(dist: pathlib.Path) -> list[pathlib.Path]:
    env = {**os.environ, "NEURENIX_CPU_PORTABLE": "1"}
    for name in PACKAGES:
        run(sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", dist, ROOT / "packages" / name, env=env)
    for wheel in dist.glob("*-linux_*.whl"):  # a platform wheel: the index takes manylinux ones only
        run(sys.executable, "-m", "auditwheel", "repair", "--wheel-dir", dist, wheel)
        wheel.unlink()
    files = sorted(dist.glob("*.whl")) + sorted(dist.glob("*.tar.gz"))
    for name in PACKAGES:
        stem = name.replace("-", "_")
        found = [f.name for f in files if f.name.startswith(stem + "-")]
        if len(found) != 2:
            raise SystemExit(f"release: expected an sdist and a wheel of {name}, found {found}")
    return files


def install(dist: pathlib.Path, venv: pathlib.Path) -> pathlib.Path:
    """A fresh venv with the built wheels; its python."""
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    run(python, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    wheels = sorted(dist.glob("*.whl"))
    run(python, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", *wheels)
    # their third-party requirements (not extras), from the index: ours are installed already
    requires = run(python, "-c", "from importlib import metadata\n"
                   f"names = {list(PACKAGES)}\n"
                   "reqs = {r.split(';')[0].strip() for n in names for r in metadata.requires(n) or []\n"
                   "        if 'extra ==' not in r and not r.startswith('neurenix')}\n"
                   "print('\\n'.join(sorted(reqs)))").split("\n")
    run(python, "-m", "pip", "install", "--quiet", *[r for r in requires if r])
    run(python, "-m", "pip", "check")
    return python


def smoke(python: pathlib.Path, work: pathlib.Path) -> None:
    venv = python.parent.parent
    code = ("import importlib, pathlib\nfrom importlib import metadata\n"
            f"for dist, module in {PACKAGES!r}.items():\n"
            "    m = importlib.import_module(module)\n"
            f"    assert pathlib.Path(m.__file__).is_relative_to({str(venv)!r}), m.__file__\n"
            "    assert m.__version__ == metadata.version(dist), (dist, m.__version__)\n"
            "    print(dist, m.__version__, 'from', m.__file__)\n"
            "from neurenix_backend_cpu import native\n"
            "assert native.IMPORT_ERROR is None, native.IMPORT_ERROR\n"
            "print('C kernels for', native.TARGET)")
    run(python, "-c", code, cwd=work)
    neurenix = venv / "bin" / "neurenix"
    run(neurenix, "--version", cwd=work)
    devices = run(neurenix, "devices", cwd=work)
    if "cpu-c" not in devices or ("C kernels for x86-64-v" not in devices and "C kernels for armv8" not in devices):
        raise SystemExit("release: the installed C backend is not usable, or was not built portable")
    checkpoint = work / "run.safetensors"
    trained = run(neurenix, "train", "sine", "--iterations", "5", "--test-tasks", "4", "--validation-tasks", "2",
                  "--quiet", "--save", checkpoint, cwd=work)
    scored = run(neurenix, "evaluate", checkpoint, "--tasks", "4", cwd=work)
    if trained.splitlines()[-4].split(":", 1)[1].strip() != scored.splitlines()[1].split(":", 1)[1].strip():
        raise SystemExit("release: neurenix evaluate does not reproduce the trained run's score")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dist", default=str(ROOT / "dist"), help="where the sdists and wheels go (emptied first)")
    args = ap.parse_args()
    dist = pathlib.Path(args.dist).resolve()
    shutil.rmtree(dist, ignore_errors=True)
    files = build(dist)
    run(sys.executable, "-m", "twine", "check", "--strict", *files)
    with tempfile.TemporaryDirectory(prefix="neurenix-release-") as tmp:
        python = install(dist, pathlib.Path(tmp) / "venv")
        work = pathlib.Path(tmp) / "work"
        work.mkdir()
        smoke(python, work)
    print(f"release: {len(files)} files in {dist} built, checked, installed and smoke-tested")


if __name__ == "__main__":
    main()
