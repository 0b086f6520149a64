"""Concurrent requests on the local API front, each as if in its own Lambda container.

On AWS each request of the API function runs in a container that serves one request at a time, so
Powertools' REST resolver keeps the request it is handling on the resolver itself: the event and context on
``BaseRouter`` (class attributes), the route context and middleware frames on each resolver and router.
The local front serves requests on many threads of one process, and one request must not see another's
event. :func:`install` makes those attributes per thread (this module only runs in the local stack; the
test ``test_concurrent_requests_do_not_cross`` guards it across Powertools upgrades).
"""

from __future__ import annotations

import threading
from typing import Any

_state = threading.local()
_installed = False


def _per_thread(name: str) -> dict[int, Any]:
    values = getattr(_state, name, None)
    if values is None:
        values = {}
        setattr(_state, name, values)
    return values


class _ClassValue:
    """A class attribute (``BaseRouter.current_event``) with one value per thread."""

    def __init__(self, name: str) -> None:
        self.name = name

    def get(self) -> Any:
        try:
            return _per_thread(self.name)[0]
        except KeyError:
            raise AttributeError(self.name) from None

    def set(self, value: Any) -> None:
        _per_thread(self.name)[0] = value


class _InstanceValue:
    """An instance attribute (``resolver.context``) with one value per thread and instance."""

    def __init__(self, name: str, factory: type) -> None:
        self.name, self.factory = name, factory

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        values = _per_thread(self.name)
        if id(instance) not in values:
            values[id(instance)] = self.factory()
        return values[id(instance)]

    def __set__(self, instance: Any, value: Any) -> None:
        _per_thread(self.name)[id(instance)] = value


def install() -> None:
    global _installed
    if _installed:
        return
    from aws_lambda_powertools.event_handler.api_gateway import BaseRouter

    event, context = _ClassValue("current_event"), _ClassValue("lambda_context")
    # Instance lookups (``self.current_event``): data descriptors in BaseRouter's own dict.
    for name, value in (("current_event", event), ("lambda_context", context)):
        setattr(BaseRouter, name, property(lambda self, v=value: v.get(), lambda self, new, v=value: v.set(new)))
    # The per-request dicts and lists every resolver and router keeps.
    BaseRouter.context = _InstanceValue("context", dict)
    BaseRouter.processed_stack_frames = _InstanceValue("processed_stack_frames", list)

    # Class-level reads and writes (``BaseRouter.current_event = ...`` in resolve): a metaclass property.
    class PerThreadRouterType(type(BaseRouter)):
        current_event = property(lambda cls: event.get(), lambda cls, value: event.set(value))
        lambda_context = property(lambda cls: context.get(), lambda cls, value: context.set(value))

    BaseRouter.__class__ = PerThreadRouterType
    _installed = True
