"""A griffe extension for the API reference (mkdocs.yml loads it): read core's ``neurenix/__init__.py``.

``neurenix`` spans two distributions (core, and ``neurenix.meta`` from neurenix-meta) through
``pkgutil.extend_path``. Griffe takes a package in that style for a bare namespace and skips its
``__init__.py``, which here holds real API (``init``, the re-exports, ``__all__``): put it back.
"""

from __future__ import annotations

import griffe


class NeurenixInit(griffe.Extension):
    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs) -> None:
        if pkg.name != "neurenix" or not isinstance(pkg.filepath, list):
            return
        # the first in search order: the repository's core, ahead of any installed copy
        init = next(p / "__init__.py" for p in pkg.filepath if (p / "__init__.py").exists())
        code = init.read_text()
        loader.lines_collection[init] = code.splitlines()
        module = griffe.visit("neurenix", init, code, docstring_parser=loader.docstring_parser,
                              docstring_options=loader.docstring_options, lines_collection=loader.lines_collection,
                              modules_collection=loader.modules_collection)
        pkg.docstring = module.docstring
        if pkg.docstring is not None:
            pkg.docstring.parent = pkg
        pkg.exports = module.exports
        for name, member in module.members.items():
            if name not in pkg.members:  # a submodule keeps its name (neurenix.tensor the module, not the function)
                pkg.set_member(name, member)
