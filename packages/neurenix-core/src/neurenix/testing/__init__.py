"""Testing tools: gradient checks, the shared op cases, and the backend conformance suite.

``neurenix.testing.conformance`` is a pytest module every backend's tests import (it needs pytest).
"""

from .gradcheck import GradcheckError, gradcheck, gradgradcheck

__all__ = ["GradcheckError", "gradcheck", "gradgradcheck"]
