"""The ABI check: a cdef held to a header, on a small header written here, so that each kind of mismatch
is seen to fail (the vendors' own checks are in their packages' test_abi.py)."""

import pytest
from neurenix_gpu.testing.abi import AbiError, check, check_source, find_header, statements

HEADER = """
typedef enum vendorStatus_enum { VENDOR_OK = 0, VENDOR_OUT_OF_MEMORY = 2 } vendorStatus;
typedef struct vendorStream_st* vendorStream;
typedef unsigned long long vendorPtr;
vendorStatus vendorAlloc(vendorPtr* out, size_t size);
vendorStatus vendorCopy(vendorPtr dst, const void* src, size_t size, vendorStream stream);
const char* vendorErrorName(vendorStatus status);
"""
CDEF = """
typedef enum { VENDOR_OK = 0, VENDOR_OUT_OF_MEMORY = 2 } vendorStatus;  // the values we use
typedef struct vendorStream_st* vendorStream; typedef unsigned long long vendorPtr;
vendorStatus vendorAlloc(vendorPtr*, size_t);
vendorStatus vendorCopy(vendorPtr, const void*, size_t, vendorStream);
const char* vendorErrorName(vendorStatus);
"""


@pytest.fixture
def include(tmp_path):
    (tmp_path / "vendor.h").write_text("#include <stddef.h>\n" + HEADER)
    return [tmp_path]


def test_statements_split_outside_braces():
    assert statements(CDEF)[:2] == ["typedef enum { VENDOR_OK = 0, VENDOR_OUT_OF_MEMORY = 2 } vendorStatus",
                                    "typedef struct vendorStream_st* vendorStream"]
    assert len(statements(CDEF)) == 6


def test_matching_declarations_pass(include):
    check(CDEF, ["vendor.h"], include)
    assert find_header("vendor.h", [include[0].parent, *include]) == include[0]


@pytest.mark.parametrize("wrong, message", [
    ("vendorStatus vendorAlloc(int*, size_t)", "incompatible pointer type"),                  # pointer type
    ("vendorStatus vendorCopy(vendorPtr, void*, size_t, vendorStream)", "incompatible pointer"),  # const lost
    ("int vendorAlloc(vendorPtr*, size_t)", "incompatible pointer type"),                     # an enum as int
    ("vendorStatus vendorFree(vendorPtr)", "vendorFree"),                                     # not in the header
    ("typedef long vendorPtr", "typedef vendorPtr"),                                          # a typedef
    ("typedef enum { VENDOR_OK = 0, VENDOR_OUT_OF_MEMORY = 3 } vendorStatus", "VENDOR_OUT_OF_MEMORY is not 3"),
])
def test_each_kind_of_mismatch_fails(include, wrong, message):
    name = wrong.split("(")[0].split()[-1] if "(" in wrong else wrong.split()[-1]
    cdef = [s for s in statements(CDEF) if s.split("(")[0].split()[-1] != name] + [wrong]
    with pytest.raises(AbiError, match=message):
        check(";\n".join(cdef) + ";", ["vendor.h"], include)


def test_a_statement_it_cannot_read_is_refused():
    with pytest.raises(ValueError, match="not a declaration"):
        check_source("int x[4];", [])
