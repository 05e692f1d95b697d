"""One small name -> object registry, used by every registry in the package:
search spaces, backends, subnet samplers, monitor sources, CLI commands and
benchmarks (in the spirit of timm's model registry).

    SAMPLERS = Registry("sampler")

    @SAMPLERS.register("pss")
    class PSS(Sampler): ...

    SAMPLERS.get("pss")        # the class; RegistryError naming the known ones otherwise

Entries may also come from another package (or a part of this one that the
registry's own module must not import, such as the torch backend, which
lives in ``adaptive_rt.train``) through Python entry points: a registry made
with ``entry_points="adaptive_rt.backends"`` loads that group the first time
a name is missing or the names are listed. Nothing else is imported lazily.
"""
from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

__all__ = ["Registry", "RegistryError"]

T = TypeVar("T")


class RegistryError(ValueError):
    """An unknown name, or a name registered twice."""


class Registry(Generic[T]):
    """Named objects of one kind, in registration order."""

    def __init__(self, kind: str, entry_points: str | None = None):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._group = entry_points
        self._plugins_loaded = entry_points is None

    def register(self, name: str, obj: T | None = None, *, replace: bool = False) -> Callable[[T], T] | T:
        """``register(name, obj)``, or ``@register(name)`` as a decorator.
        Classes get a ``name`` attribute when they have none of their own."""
        if not isinstance(name, str) or not name:
            raise RegistryError(f"{self.kind} name must be a non-empty string")

        def add(o: T) -> T:
            if name in self._items and not replace and self._items[name] is not o:
                raise RegistryError(f"{self.kind} {name!r} registered twice")
            if isinstance(o, type) and "name" not in o.__dict__:
                o.name = name  # type: ignore[attr-defined]
            self._items[name] = o
            return o
        return add if obj is None else add(obj)

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        from importlib.metadata import entry_points
        for ep in entry_points(group=self._group):
            if ep.name in self._items:
                continue
            try:
                obj = ep.load()     # the module registers itself on import ...
            except ImportError:
                continue            # ... unless what it needs is not installed: not available here
            if ep.name not in self._items:
                self.register(ep.name, obj)

    def get(self, name: str) -> T:
        if name not in self._items:
            self._load_plugins()
        try:
            return self._items[name]
        except (KeyError, TypeError):
            raise RegistryError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        self._load_plugins()
        return list(self._items)

    def items(self) -> list[tuple[str, T]]:
        self._load_plugins()
        return list(self._items.items())

    def __contains__(self, name: object) -> bool:
        if name not in self._items:
            self._load_plugins()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {list(self._items)})"
