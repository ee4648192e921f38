"""Generation backends behind one small interface, chosen by name from a registry."""

from .base import Backend, BackendError, Completion, available_backends, make_backend, register_backend

__all__ = ["Backend", "BackendError", "Completion", "available_backends", "make_backend", "register_backend"]
