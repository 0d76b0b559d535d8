"""Raw TCP flow model: `TCPFlow` and `TCPMessage` (one per chunk received)."""
from __future__ import annotations

from interpose.model.messages import Message, MessageFlow

__all__ = ["TCPFlow", "TCPMessage"]


class TCPMessage(Message):
    """A chunk of bytes as it arrived from one side."""


class TCPFlow(MessageFlow):
    type = "tcp"

    def inject(self, content: bytes | str, from_client: bool = True) -> TCPMessage:
        """Send bytes: `from_client=True` to the server as if the client sent them, False to the client."""
        data = content.encode("utf-8") if isinstance(content, str) else content
        msg = TCPMessage(from_client, data)
        self._inject(msg)
        return msg

    def __repr__(self) -> str:
        addr = self.server_conn.address
        where = f"{addr[0]}:{addr[1]}" if addr else "?"
        return f"<TCPFlow {where} {self.message_count} messages>"
