"""The inference daemon (``adaptive-rt serve``) and its client."""
from .client import Client, DaemonError
from .protocol import ProtocolError

__all__ = ["Client", "DaemonError", "ProtocolError"]
