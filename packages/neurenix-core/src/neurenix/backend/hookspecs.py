"""The pluggy hook through which backends plug in.

A plugin is a module (or object) with a ``neurenix_backends`` hook implementation, announced in the
``neurenix.backends`` entry-point group of its distribution:

    [project.entry-points."neurenix.backends"]
    mydevice = "neurenix_backend_mydevice.plugin"

and ``neurenix_backend_mydevice/plugin.py``:

    from neurenix.backend import hookimpl

    @hookimpl
    def neurenix_backends():
        return [MyDeviceBackend()]
"""

from __future__ import annotations

import pluggy

PROJECT = "neurenix"
ENTRY_POINT_GROUP = "neurenix.backends"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def neurenix_backends() -> list:
    """Return the ``neurenix.backend.Backend`` objects this plugin provides.

    Keep it cheap: it runs when neurenix first needs a device. Probing hardware belongs in
    ``Backend.unavailable_reason``, which neurenix calls only for the device types in use.
    """
