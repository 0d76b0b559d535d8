"""WebSocket flow model: `WebSocketFlow` and `WebSocketMessage`."""
from __future__ import annotations

from interpose.http import HTTPFlow
from interpose.model.messages import DEFAULT_MAX_MESSAGES, Message, MessageFlow

__all__ = ["WebSocketFlow", "WebSocketMessage"]


class WebSocketMessage(Message):
    """A complete WebSocket message (fragments already joined). `content` is always bytes."""

    def __init__(self, from_client: bool, content: bytes, is_text: bool = False,
                 timestamp: float | None = None) -> None:
        super().__init__(from_client, content, timestamp)
        self._is_text = is_text

    @property
    def is_text(self) -> bool:
        return self._is_text

    @property
    def type(self) -> str:
        return "text" if self._is_text else "binary"


class WebSocketFlow(MessageFlow):
    """The messages of one WebSocket connection. `handshake_flow` is the HTTP upgrade."""

    type = "websocket"

    def __init__(self, handshake_flow: HTTPFlow, live: bool = True, max_messages: int = DEFAULT_MAX_MESSAGES) -> None:
        super().__init__(handshake_flow.client_conn, handshake_flow.server_conn, live, max_messages)
        self.handshake_flow = handshake_flow
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.closed_by_client: bool | None = None

    def inject(self, content: bytes | str, from_client: bool = True, text: bool | None = None) -> WebSocketMessage:
        """Send a new message: `from_client=True` to the server as if the client sent it, False to the client."""
        if text is None:
            text = isinstance(content, str)
        data = content.encode("utf-8") if isinstance(content, str) else content
        msg = WebSocketMessage(from_client, data, is_text=text)
        self._inject(msg)
        return msg

    @property
    def timestamp_start(self) -> float:
        return self.handshake_flow.timestamp_start

    def __repr__(self) -> str:
        return f"<WebSocketFlow {self.handshake_flow.request.url} {self.message_count} messages>"
