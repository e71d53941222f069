"""The conformance suite's device fixture: a backend that cannot run here skips every test with its reason
(as docs/third-party-backend.md promises), unless NEURENIX_REQUIRE_BACKENDS names it: then they fail."""

import os
import subprocess
import sys
import textwrap

import pytest

SUITE = textwrap.dedent('''
    import os

    import pytest

    import neurenix as nx
    from neurenix.backend import REQUIRED, Backend, hookimpl, reference
    from neurenix.testing.conformance import *  # noqa: F403


    class Unusable(Backend):
        device_type, name = "unusable", "unusable-backend"

        def unavailable_reason(self):
            return "no adapter found on this machine"

        def kernels(self):
            return {name: getattr(reference(), name) for name in REQUIRED}


    class Plugin:
        @hookimpl
        def neurenix_backends(self):
            return [Unusable()]


    nx.backend.register(Plugin(), "unusable-plugin")
    # required only now: at load time no installed backend provides it, which neurenix itself refuses
    os.environ["NEURENIX_REQUIRE_BACKENDS"] = os.environ.get("REQUIRE_AFTER_LOAD", "")


    @pytest.fixture(scope="module")
    def neurenix_device():
        return "unusable"
''')


@pytest.mark.parametrize("required", ["", "unusable", "unusable-backend"])
def test_an_unusable_backend_skips_with_its_reason_unless_required(tmp_path, required):
    (tmp_path / "test_suite.py").write_text(SUITE)
    env = {k: v for k, v in os.environ.items() if k != "NEURENIX_REQUIRE_BACKENDS"}
    env["REQUIRE_AFTER_LOAD"] = required
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-x", "-p", "no:cacheprovider", "test_suite.py"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    if required:
        assert out.returncode == 1 and "NEURENIX_REQUIRE_BACKENDS names 'unusable'" in out.stdout, out.stdout[-2000:]
    else:
        assert out.returncode == 0 and " passed" not in out.stdout, out.stdout[-2000:]
        assert "no adapter found on this machine" in out.stdout and "skipped" in out.stdout
