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


def test_every_kernel_has_its_parameters_read_from_its_declaration():
    """kernel_params reads the macros' declarations; each expanded kernel (the preprocessor's view) agrees."""
    import re
    import subprocess

    from neurenix_gpu.source import kernel_params, kernel_source

    text = subprocess.run(["c++", "-E", "-P", "-x", "c++", "-"], input=kernel_source(), capture_output=True,
                          text=True, check=True).stdout
    kernels = re.findall(r'extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\(([^)]*)\)', text)
    assert len(kernels) > 50
    for name, params in kernels:
        decls = [p.split() for p in params.split(",")]
        sig = kernel_params(name)
        assert sig is not None and len(sig) == len(decls), name
        for p, decl in zip(sig, decls):
            assert p.pointer == ("*" in "".join(decl)) and p.written == (p.pointer and decl[0] != "const"), name
