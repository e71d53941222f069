"""Progress bars for long loops (tqdm, on stderr), shown only when asked for: the library prints nothing
by default, and reports everything else through the ``logging`` module (logger ``neurenix.meta``)."""

from __future__ import annotations

from collections.abc import Iterable


def progress_bar(iterable: Iterable, desc: str, total: int, initial: int = 0, unit: str = "epoch"):
    """A tqdm bar over ``iterable`` that starts at ``initial`` of ``total`` (a resumed run) and shows the speed;
    callers add the loss with ``set_postfix``."""
    from tqdm.auto import tqdm  # here, not at import: tqdm.auto is a fifth of `import neurenix.meta`

    return tqdm(iterable, desc=desc, total=total, initial=initial, unit=unit, dynamic_ncols=True)
