"""neurenix.save / neurenix.load: round trips of tensors and state dicts, devices, and clear errors."""

import io
import math

import numpy as np
import pytest

import neurenix as nx
from neurenix import nn, optim


def _round_trip(obj, **load_options):
    buf = io.BytesIO()
    nx.save(obj, buf)
    buf.seek(0)
    return nx.load(buf, **load_options)


@pytest.mark.parametrize("dtype", [nx.float32, nx.float64, nx.int64, nx.bool])
@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 3, 4)])
def test_tensors_keep_values_dtype_and_shape(dtype, shape):
    x = nx.tensor(np.random.default_rng(0).standard_normal(shape) * 3).to(dtype)
    y = _round_trip(x)
    assert y.dtype == dtype and y.shape == x.shape and y.device == x.device
    np.testing.assert_array_equal(y.numpy(), x.numpy())


def test_nested_plain_values():
    obj = {"a": [1, 2.5, True, None, "s", (3, -math.inf)], 7: {"nan": math.nan}, (1, "k"): [], "np": np.float64(0.5)}
    got = _round_trip(obj)
    assert got["a"] == [1, 2.5, True, None, "s", (3, -math.inf)] and isinstance(got["a"][5], tuple)
    assert math.isnan(got[7]["nan"]) and got[(1, "k")] == [] and got["np"] == 0.5
    assert list(got) == ["a", 7, (1, "k"), "np"]


def test_shared_tensors_stay_shared_and_requires_grad_is_kept():
    w = nx.ones(2, requires_grad=True)
    got = _round_trip({"x": w, "y": [w], "z": nx.zeros(1)})
    assert got["x"] is got["y"][0] and got["x"].requires_grad and not got["z"].requires_grad


def test_module_and_optimizer_state_dicts_round_trip(tmp_path):
    nx.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    opt = optim.Adam(model.parameters(), lr=0.1, amsgrad=True)
    model(nx.ones(2, 3)).sum().backward()
    opt.step()
    path = tmp_path / "ckpt.safetensors"
    nx.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, path)
    loaded = nx.load(str(path))
    other = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    other.load_state_dict(loaded["model"])
    for a, b in zip(model.parameters(), other.parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    opt2 = optim.Adam(other.parameters(), lr=0.5, amsgrad=True)
    opt2.load_state_dict(loaded["optimizer"])
    assert opt2.param_groups[0]["lr"] == 0.1 and opt2.param_groups[0]["betas"] == (0.9, 0.999)
    assert opt2.state[next(iter(other.parameters()))]["step"] == 1


@pytest.mark.parametrize("map_location", ["cpu", nx.Device("cpu"), {"cpu": "cpu"}, lambda t, saved: t.double()])
def test_map_location(map_location):
    got = _round_trip({"t": nx.ones(2)}, map_location=map_location)["t"]
    assert got.device == nx.Device("cpu")
    assert got.dtype == (nx.float64 if callable(map_location) and not isinstance(map_location, (str, nx.Device))
                         else nx.float32)


class _Thing:
    pass


@pytest.mark.parametrize(("obj", "where"), [
    ({"fn": print}, r"obj\['fn'\]"), ([1, _Thing()], r"obj\[1\], a _Thing"), ({1, 2}, "a set"),
    ({"a": np.ones(2)}, "ndarray"),
])
def test_what_cannot_be_saved_is_named(obj, where):
    with pytest.raises(TypeError, match=where):
        nx.save(obj, io.BytesIO())


@pytest.mark.parametrize("blob", [b"", b"\x10\x00\x00\x00\x00\x00\x00\x00{}", b"\x02\x00\x00\x00\x00\x00\x00\x00[]",
                                  b"\x04\x00\x00\x00\x00\x00\x00\x00{}  xx"])
def test_corrupt_files_are_refused(blob):
    with pytest.raises(ValueError, match="neurenix.load"):
        nx.load(io.BytesIO(blob))


def test_a_truncated_file_is_refused():
    buf = io.BytesIO()
    nx.save({"a": nx.ones(100)}, buf)
    with pytest.raises(ValueError, match="data_offsets"):
        nx.load(io.BytesIO(buf.getvalue()[:-8]))


def test_weights_only_false_is_refused():
    with pytest.raises(ValueError, match="weights_only"):
        nx.load(io.BytesIO(b""), weights_only=False)


def test_files_are_safetensors_both_ways(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    path = tmp_path / "x.safetensors"
    nx.save({"w": nx.arange(6).reshape(2, 3).double(), "b": nx.tensor([True, False])}, path)
    arrays = st.load_file(str(path))
    np.testing.assert_array_equal(arrays["0"], np.arange(6).reshape(2, 3))
    np.testing.assert_array_equal(arrays["1"], [True, False])
    st.save_file({"x": np.ones(2, np.float32)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="not one neurenix.save wrote"):
        nx.load(tmp_path / "other.safetensors")
