"""The kernel source and its disk cache."""

import re

from neurenix_gpu.source import MAXDIM, compile_cached, ffi, kernel_source, source_hash


class CountingCompiler:
    version = "count1.0"

    def __init__(self):
        self.calls = []

    def compile(self, source, arch):
        self.calls.append(arch)
        return f"image for {arch}".encode()


def test_the_source_is_the_header_then_the_kernels():
    src = kernel_source()
    assert src.index("#define NX_MAXDIM") < src.index("extern \"C\" __global__")
    assert f"#define NX_MAXDIM {MAXDIM}" in src
    assert re.search(r"struct nx_geo \{", src)


def test_the_parameter_structs_have_no_padding():
    """All fields 8 bytes, so the host's cffi layout and the device compiler's agree."""
    for struct, fields in (("nx_geo", 2 + 8 + 32 + 4 + 4 + 4), ("nx_red", 5 + 32), ("nx_mm", 6), ("nx_win", 14)):
        assert ffi.sizeof(struct) == 8 * fields, struct


def test_compiled_once_per_source_arch_and_compiler(tmp_path):
    c = CountingCompiler()
    assert compile_cached(c, "src", "a1", tmp_path) == b"image for a1"
    assert compile_cached(c, "src", "a1", tmp_path) == b"image for a1"
    compile_cached(c, "src", "a2", tmp_path)
    compile_cached(c, "other src", "a1", tmp_path)
    assert c.calls == ["a1", "a2", "a1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{source_hash('src')}-a1-count1.0.bin", f"{source_hash('src')}-a2-count1.0.bin",
         f"{source_hash('other src')}-a1-count1.0.bin"])


def test_the_cache_folder_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("NEURENIX_KERNEL_CACHE", str(tmp_path / "k"))
    compile_cached(CountingCompiler(), "src", "a1")
    assert len(list((tmp_path / "k").iterdir())) == 1
