"""Names a package exports but loads on first use (PEP 562), so that importing the package does
not import Paddle: a word-vector run on the CPU needs none."""

import importlib
from typing import Callable, Mapping

__all__ = ["lazy_getattr"]


def lazy_getattr(package: str, where: Mapping[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``package`` that imports ``where[name]`` (a module relative to
    the package) on the first access of ``name`` and keeps the value in the package."""

    def __getattr__(name: str) -> object:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name], package), name)
        setattr(importlib.import_module(package), name, value)
        return value

    return __getattr__
