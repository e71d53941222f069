"""neurenix.linalg: solve, solve_triangular and cholesky against NumPy, their gradients (first, second and third
order) against finite differences and closed forms, and their errors (PyTorch's semantics and messages)."""

import numpy as np
import pytest

import neurenix as nx
from neurenix.linalg import LinAlgError, cholesky, inv, solve, solve_triangular
from neurenix.testing import gradcheck, gradgradcheck

DTYPES = ["float32", "float64"]
TOL = {"float32": dict(rtol=1e-4, atol=1e-5), "float64": dict(rtol=1e-10, atol=1e-12)}


def _rng(seed=0):
    return np.random.default_rng(seed)


def _regular(shape, seed=0):
    """Well-conditioned (..., n, n) matrices: standard normal plus n on the diagonal."""
    return _rng(seed).standard_normal(shape) + shape[-1] * np.eye(shape[-1])


def _spd(shape, seed=0):
    a = _rng(seed).standard_normal(shape)
    return a @ a.swapaxes(-1, -2) + shape[-1] * np.eye(shape[-1])


def _t(a, dtype="float64", grad=False):
    return nx.tensor(np.asarray(a).astype(dtype), requires_grad=grad)


# -- values ------------------------------------------------------------------------------------------------------

SOLVE_SHAPES = [((4, 4), (4, 2)), ((3, 5, 5), (3, 5, 1)), ((2, 1, 3, 3), (4, 3, 2)), ((3, 3), (2, 3, 4)),
                ((2, 3, 3), (3,)), ((2, 3, 3), (2, 3))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes", SOLVE_SHAPES, ids=str)
def test_solve_matches_numpy(shapes, dtype):
    a, b = _regular(shapes[0]).astype(dtype), _rng(1).standard_normal(shapes[1]).astype(dtype)
    vector = len(shapes[1]) == 1 or shapes[1] == shapes[0][:-1]
    want = np.linalg.solve(a, b[..., None])[..., 0] if vector else np.linalg.solve(a, b)
    got = solve(_t(a, dtype), _t(b, dtype))
    assert got.dtype.name == dtype and got.shape == want.shape
    np.testing.assert_allclose(got.numpy(), want, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_solve_from_the_right(dtype):
    a, b = _regular((2, 4, 4)).astype(dtype), _rng(1).standard_normal((2, 3, 4)).astype(dtype)
    got = solve(_t(a, dtype), _t(b, dtype), left=False)
    np.testing.assert_allclose(got.numpy() @ a, b, **TOL[dtype])
    v = _rng(2).standard_normal(4).astype(dtype)  # a row vector: x a = v (PyTorch refuses it, unless n is 1)
    x = solve(_t(a, dtype), _t(v, dtype), left=False).numpy()
    np.testing.assert_allclose(np.einsum("bi,bij->bj", x, a), np.broadcast_to(v, (2, 4)), **TOL[dtype])


def test_solve_pivots():
    """A zero where the first pivot would be: partial pivoting takes another row (no pivoting would fail)."""
    a = np.array([[0.0, 2.0, 1.0], [1.0, 1.0, 0.0], [3.0, 0.0, 1.0]])
    b = np.array([[1.0], [2.0], [3.0]])
    np.testing.assert_allclose(solve(_t(a), _t(b)).numpy(), np.linalg.solve(a, b), rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("upper", [False, True], ids=["lower", "upper"])
def test_cholesky_matches_numpy_and_reads_one_triangle(upper, dtype):
    a = _spd((3, 5, 5)).astype(dtype)
    want = np.linalg.cholesky(a, upper=upper)
    other = np.tril(np.full((5, 5), 1e6), -1) if upper else np.triu(np.full((5, 5), 1e6), 1)
    got = cholesky(_t(a + other.astype(dtype), dtype), upper=upper)  # garbage in the triangle it never reads
    assert got.dtype.name == dtype
    np.testing.assert_allclose(got.numpy(), want, **TOL[dtype])
    assert not np.any(np.tril(got.numpy(), -1) if upper else np.triu(got.numpy(), 1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("upper", [False, True], ids=["lower", "upper"])
@pytest.mark.parametrize("left", [True, False], ids=["left", "right"])
@pytest.mark.parametrize("unit", [False, True], ids=["", "unit"])
def test_solve_triangular_matches_numpy(upper, left, unit, dtype):
    a = _regular((2, 4, 4)).astype(dtype)
    t = np.triu(a) if upper else np.tril(a)
    if unit:
        t[..., range(4), range(4)] = 1
    b = _rng(1).standard_normal((2, 4, 3) if left else (2, 3, 4)).astype(dtype)
    want = np.linalg.solve(t, b) if left else np.linalg.solve(t.swapaxes(-1, -2), b.swapaxes(-1, -2)).swapaxes(-1, -2)
    a[..., range(4), range(4)] = a[..., range(4), range(4)] if not unit else np.nan  # an unread diagonal
    got = solve_triangular(_t(a, dtype), _t(b, dtype), upper=upper, left=left, unitriangular=unit)
    np.testing.assert_allclose(got.numpy(), want, **TOL[dtype])


def test_solve_triangular_zero_pivot_gives_infinities_as_pytorch():
    with np.errstate(all="ignore"):
        x = solve_triangular(_t([[0.0, 1.0], [0.0, 1.0]]), _t([[1.0], [1.0]]), upper=True).numpy()
    assert np.isnan(x[0, 0]) and x[1, 0] == 1.0


# -- gradients ---------------------------------------------------------------------------------------------------


def _sym_spd(a):
    """A symmetric positive-definite function of any square ``a``, so that finite differences move both triangles."""
    return a @ a.mT + 4 * nx.eye(a.shape[-1], dtype=a.dtype)


GRAD_CASES = {
    "solve": (lambda a, b: solve(a, b), ((2, 3, 3), (2, 3, 2))),
    "solve_broadcast": (lambda a, b: solve(a, b), ((3, 3), (2, 3, 2))),
    "solve_vector_right": (lambda a, b: solve(a, b, left=False), ((2, 3, 3), (3,))),
    "solve_triangular_upper": (lambda a, b: solve_triangular(a, b, upper=True), ((2, 3, 3), (2, 3, 2))),
    "solve_triangular_lower_right_unit": (lambda a, b: solve_triangular(a, b, upper=False, left=False,
                                                                       unitriangular=True), ((3, 3), (2, 4, 3))),
    "cholesky": (lambda a: cholesky(_sym_spd(a)), ((2, 3, 3),)),
    "cholesky_upper": (lambda a: cholesky(_sym_spd(a), upper=True), ((3, 3),)),
}


@pytest.mark.parametrize("name", GRAD_CASES)
def test_first_and_second_order_gradients_match_finite_differences(name):
    fn, shapes = GRAD_CASES[name]
    inputs = [_t(_regular(shapes[0]), grad=True)] + [_t(_rng(k).standard_normal(s), grad=True)
                                                     for k, s in enumerate(shapes[1:])]
    assert gradcheck(fn, inputs)
    assert gradgradcheck(fn, inputs)


def test_third_order_through_solve_has_the_closed_form():
    """x(t) = (A + t I)^-1 b has d^k x / dt^k = (-1)^k k! (A + t I)^-(k+1) b: three nested grads, each recorded."""
    a, b = _regular((3, 3)), _rng(1).standard_normal(3)
    t = nx.tensor(0.0, dtype=nx.float64, requires_grad=True)
    y = solve(_t(a) + t * nx.eye(3, dtype=nx.float64), _t(b)).sum()
    derivatives = []
    for _ in range(3):
        (y,) = nx.autograd.grad(y, [t], create_graph=True)
        derivatives.append(y.item())
    inv = np.linalg.inv(a)
    want = [-(inv @ inv @ b).sum(), 2 * (inv @ inv @ inv @ b).sum(), -6 * (inv @ inv @ inv @ inv @ b).sum()]
    np.testing.assert_allclose(derivatives, want, rtol=1e-10)


def test_cholesky_gradient_is_symmetric_as_pytorchs():
    """PyTorch's convention: the input is taken as symmetric, so the gradient is too (not lower-triangular)."""
    a = _t(_spd((4, 4)), grad=True)
    g = _rng(1).standard_normal((4, 4))
    cholesky(a).backward(_t(g))
    ga = a.grad.numpy()
    np.testing.assert_allclose(ga, ga.T, rtol=1e-12)
    # against the symmetric parametrisation a(s) = s + s^T: d/ds <g, L> = ga + ga^T
    s = _t(_spd((4, 4)) / 2, grad=True)
    cholesky(s + s.mT).backward(_t(g))
    np.testing.assert_allclose(s.grad.numpy(), 2 * ga, rtol=1e-10)


def test_gradients_of_only_one_operand():
    a, b = _t(_regular((3, 3)), grad=True), _t(_rng(1).standard_normal((3, 2)))
    solve(a, b).sum().backward()
    assert a.grad is not None and b.grad is None
    a2, b2 = _t(_regular((3, 3))), _t(_rng(1).standard_normal((3, 2)), grad=True)
    solve_triangular(a2, b2, upper=False).sum().backward()
    assert b2.grad is not None and a2.grad is None


# -- errors ------------------------------------------------------------------------------------------------------


def test_not_positive_definite_names_the_batch_element_and_the_minor():
    a = _spd((3, 4, 4))
    a[1, 2, 2] = -50.0
    with pytest.raises(LinAlgError, match=r"linalg.cholesky: \(Batch element 1\): .*not positive-definite \(the "
                                          r"leading minor of order 3 is not positive-definite\)"):
        cholesky(_t(a))
    with pytest.raises(RuntimeError, match=r"^linalg.cholesky: The factorization .* order 1 "):
        cholesky(_t(-np.eye(2)))  # unbatched: no batch element named
    with pytest.raises(LinAlgError, match="order 2"):
        cholesky(_t([[4.0, 1.0], [np.nan, 3.0]]))  # a NaN pivot fails, as in PyTorch


def test_singular_solve_names_the_batch_element():
    a = _regular((3, 3, 3))
    a[2, :, 1] = 2 * a[2, :, 0]
    a[2, :, 1] = a[2, :, 0] = 0.0  # exactly singular: two zero columns
    with pytest.raises(LinAlgError, match=r"linalg.solve: \(Batch element 2\): The solver failed because the "
                                          r"input matrix is singular"):
        solve(_t(a), _t(np.ones((3, 3, 1))))
    assert issubclass(LinAlgError, RuntimeError) and nx.linalg.LinAlgError is nx.errors.LinAlgError


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda: solve(nx.ones(3, 3, dtype=nx.int64), nx.ones(3)), nx.DTypeError, "A must be a float32 or float64 tensor, "
                                                                              r"got int64 \(shape \(3, 3\)\)"),
    (lambda: solve(nx.eye(3), nx.ones(3, dtype=nx.bool)), nx.DTypeError, "B must be a float32 or float64 tensor"),
    (lambda: solve(nx.ones(2, 3), nx.ones(2)), nx.ShapeError, r"A must be \(a batch of\) square matrices, but they "
                                                              r"are 2 by 3 \(shape \(2, 3\)\)"),
    (lambda: solve(nx.eye(3), nx.ones(2, 1)), nx.ShapeError, r"A of shape \(3, 3\) and B of shape \(2, 1\) do not fit "
                                                             r"the equation AX = B \(B needs 3 rows\)"),
    (lambda: solve(nx.eye(3).expand(2, 3, 3), nx.ones(4, 3, 1)), nx.ShapeError, "batch dimensions"),
    (lambda: solve([[1.0]], nx.ones(1)), TypeError, "A must be a Tensor, got list"),
    (lambda: cholesky(nx.ones(3)), nx.ShapeError, r"A must have at least 2 dimensions \(\.\.\., n, n\), got shape "
                                                  r"\(3,\)"),
    (lambda: cholesky(nx.eye(2), upper="yes"), TypeError, "upper must be a bool"),
    (lambda: solve_triangular(nx.eye(3), nx.ones(3), upper=True), nx.ShapeError, "B must have at least 2 dimensions"),
    (lambda: solve_triangular(nx.eye(3), nx.ones(3, 2), upper=None), TypeError, "upper must be a bool"),
    (lambda: solve_triangular(nx.eye(3), nx.ones(2, 2), upper=True, left=False), nx.ShapeError,
     r"XA = B \(B needs 3 columns\)"),
], ids=["int-A", "bool-B", "not-square", "rows", "batch", "list", "1-d", "upper-str", "triangular-1-d",
        "upper-none", "right-rows"])
def test_bad_arguments_are_named(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_mixed_float_dtypes_promote():
    x = solve(nx.eye(2, dtype=nx.float32), nx.ones(2, dtype=nx.float64))
    assert x.dtype == nx.float64


# -- empty operands, compiled replays ----------------------------------------------------------------------------


def test_empty_operands_and_their_gradients():
    a, b = _t(np.zeros((0, 3, 3)), grad=True), _t(np.zeros((0, 3, 2)), grad=True)
    solve(a, b).sum().backward()
    assert a.grad.shape == (0, 3, 3) and b.grad.shape == (0, 3, 2)
    a = _t(_regular((3, 3)), grad=True)
    x = solve(a, _t(np.zeros((3, 0))))
    assert x.shape == (3, 0)
    x.sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), np.zeros((3, 3)))
    assert cholesky(_t(np.zeros((2, 0, 0)))).shape == (2, 0, 0)


def test_a_compiled_solve_checks_at_every_replay():
    f = nx.compile(lambda a, b: solve(a, b))
    b = _t(np.ones((3, 1)))
    f(_t(_regular((3, 3))), b)
    np.testing.assert_allclose(f(_t(2 * np.eye(3)), b).numpy(), np.full((3, 1), 0.5))
    assert f.stats["replays"] == 1
    with pytest.raises(LinAlgError, match="singular"):
        f(_t(np.zeros((3, 3))), b)


# -- inv ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (4, 4), (2, 3, 3), (0, 2, 2), (3, 0, 0)], ids=str)
def test_inv_matches_numpy(shape, dtype):
    a = _regular(shape) if 0 not in shape else np.zeros(shape)
    got = inv(_t(a, dtype))
    assert got.shape == shape and got.dtype.name == dtype
    np.testing.assert_allclose(got.numpy(), np.linalg.inv(a) if a.size else a, **TOL[dtype])


def test_inv_gradients_and_errors():
    a = _t(_regular((2, 3, 3)), grad=True)
    assert gradcheck(inv, [a]) and gradgradcheck(inv, [a])
    with pytest.raises(LinAlgError, match="linalg.inv: .*singular"):
        inv(_t([[1.0, 2.0], [2.0, 4.0]]))
    with pytest.raises(nx.errors.ShapeError, match="linalg.inv: A must be .*square"):
        inv(_t(np.ones((2, 3))))
    with pytest.raises(nx.errors.DTypeError, match="linalg.inv: A must be a float32 or float64"):
        inv(nx.tensor([[1, 0], [0, 1]]))
