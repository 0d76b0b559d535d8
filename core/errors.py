"""Exceptions the core raises.

    InterposeError
    ├── OptionsError          bad option name or value (bad CLI → exit 2)
    ├── AddonError            a script that cannot be loaded
    ├── FlowFileError         a flow file that cannot be read
    └── ProtocolError         bytes a peer sent that make no sense
        ├── ClientProtocolError   the client's fault: answered with a 4xx
        └── ServerProtocolError   the server's fault: answered with a 502
"""
from __future__ import annotations


class InterposeError(Exception):
    pass


class OptionsError(InterposeError):
    pass


class AddonError(InterposeError):
    pass


class FlowFileError(InterposeError):
    pass


class ProtocolError(InterposeError):
    def __init__(self, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.status = status


class ClientProtocolError(ProtocolError):
    pass


class ServerProtocolError(ProtocolError):
    def __init__(self, msg: str, status: int = 502) -> None:
        super().__init__(msg, status)
