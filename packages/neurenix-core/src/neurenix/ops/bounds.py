"""Index bounds, checked on every backend: an index tensor (getitem, index_put, gather, class labels) with a
value out of range raises an IndexError instead of reading or writing somewhere else.

On ``cpu`` the values are on the host and are checked at once. On other devices, reading them would wait
for the device at every indexing op, so the check is queued instead, as CUDA's device-side asserts are:
two reductions (min and max) run on the device, and the next synchronisation on that device (``numpy()``,
``item()``, ``tolist()``, ``to()`` another device, ``neurenix.synchronize``) reads them and raises
(``Device.raise_pending``).
"""

from __future__ import annotations

from ..capture import recording
from ..device import Device, raise_outside


def check(buffer, device: Device, low: int, high: int, what: str) -> None:
    """Raise (now, or at the next synchronisation of ``device``) an IndexError if an index in ``buffer``
    is outside ``[low, high)``. ``what`` names the index, for the message. (A compiled step checks again
    at every replay.)"""
    k = device.kernels
    if device.type == "cpu":
        recording.host(_check_now, buffer, device, low, high, what)
        return
    shape = buffer.shape
    if 0 in shape:
        return  # nothing to check in an empty index
    if not shape:
        buffer, shape = k.reshape(buffer, (1,)), (1,)
    axes = tuple(range(len(shape)))
    recording.host(_queue, device, (k.min(buffer, axes, False), k.max(buffer, axes, False), low, high, what))


def _check_now(buffer, device: Device, low: int, high: int, what: str) -> None:
    raise_outside(device.kernels.to_numpy(buffer), low, high, what)


def _queue(device: Device, check: tuple) -> None:
    device.checks.append(check)
