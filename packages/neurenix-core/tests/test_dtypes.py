import numpy as np
import pytest

import neurenix as nx
from neurenix import dtypes

ORDER = ["bool", "int64", "float32", "float64"]


def _tensor(dtype):
    return nx.tensor(np.ones(3, dtype=dtype))


@pytest.mark.parametrize("a", ORDER)
@pytest.mark.parametrize("b", ORDER)
def test_tensor_tensor_promotion_takes_the_wider_kind(a, b):
    assert (_tensor(a) + _tensor(b)).dtype.name == ORDER[max(ORDER.index(a), ORDER.index(b))]


@pytest.mark.parametrize("dtype, scalar, expected", [
    ("float32", 2, "float32"), ("float32", 2.5, "float32"), ("float64", 2.5, "float64"),
    ("int64", 2, "int64"), ("int64", 2.5, "float32"), ("bool", True, "bool"), ("bool", 2, "int64"),
    ("bool", 2.5, "float32"), ("float32", np.float64(2.5), "float32"), ("int64", np.int32(3), "int64"),
])
def test_python_scalars_are_weak(dtype, scalar, expected):
    assert (_tensor(dtype) * scalar).dtype.name == expected
    assert (scalar * _tensor(dtype)).dtype.name == expected


@pytest.mark.parametrize("dtype", ["int64", "bool"])
def test_true_division_and_float_ops_of_integers_give_the_default_float(dtype):
    t = _tensor(dtype)
    assert (t / t).dtype is nx.float32
    assert t.exp().dtype is nx.float32
    assert t.float().mean().dtype is nx.float32


@pytest.mark.parametrize("spec, expected", [
    (nx.float64, nx.float64), ("float32", nx.float32), (np.float64, nx.float64), (np.dtype("int64"), nx.int64),
    (float, nx.float32), (int, nx.int64), (bool, nx.bool), ("bool", nx.bool),
])
def test_as_dtype(spec, expected):
    assert dtypes.as_dtype(spec) is expected


@pytest.mark.parametrize("bad", ["complex64", np.complex128, "float16x", object])
def test_as_dtype_rejects_unsupported_types_and_names_the_supported_ones(bad):
    with pytest.raises(TypeError, match="float32.*float64.*int64.*bool"):
        dtypes.as_dtype(bad)


def test_dtype_repr_and_aliases():
    assert repr(nx.float32) == "neurenix.float32"
    assert nx.float is nx.float32 and nx.double is nx.float64 and nx.long is nx.int64
    assert nx.float32.is_floating_point and not nx.int64.is_floating_point and nx.float64.itemsize == 8


@pytest.mark.parametrize("a, b, expected", [(1.0, 0.0, "float32"), (1, 2, "int64"), (1, 2.5, "float32"),
                                            (True, False, "bool")])
def test_where_of_two_numbers_follows_the_tensor_rules(a, b, expected):
    assert nx.where(nx.tensor([True, False]), a, b).dtype.name == expected


@pytest.mark.parametrize("make", [nx.tensor, nx.Tensor, nx.from_numpy], ids=["tensor", "Tensor", "from_numpy"])
@pytest.mark.parametrize("np_type", [np.float32, np.float64, np.int64])
def test_buffers_carry_numpys_own_dtype_objects(make, np_type):
    """An equal but distinct dtype object (as arrays read from files carry) would make kernels that compare
    dtypes by identity take another path: tensors always get NumPy's own object."""
    odd = np.dtype(np_type).newbyteorder("=")
    a = np.ones(3, dtype=odd)
    assert a.dtype == np.dtype(np_type) and a.dtype is not np.dtype(np_type)
    assert make(a)._data.dtype is np.dtype(np_type)


@pytest.mark.parametrize("data", [[300], [-129], [float("nan")], [1e10], [[1, 2], [3, 200]]], ids=str)
def test_int8_from_numbers_that_do_not_fit_raises(data):
    """Numbers written out must fit int8, as NumPy's np.array([300], dtype=np.int8) and PyTorch's torch.tensor
    require: wrapping 300 to 44 would be a silent wrong value. (A cast of a tensor wraps, as both do.)"""
    with pytest.raises(OverflowError, match="int8"):
        nx.tensor(data, dtype=nx.int8)
    assert nx.tensor([127, -128, 1.9, -2.9], dtype=nx.int8).tolist() == [127, -128, 1, -2]
    assert nx.tensor([300]).to(nx.int8).tolist() == [44]
