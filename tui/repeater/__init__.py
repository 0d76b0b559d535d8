"""The repeater: a flow's request as raw text the user edits and sends again, in tabs with a history; a
WebSocket flow's handshake, opened again and again, with messages typed by the user.

    http       the edited raw request → a Request (h11)
    websocket  a WebSocket tab's connection through the proxy (wsproto), and its message log
    view       the urwid view with its tabs; it never touches a socket (tui/actions/repeater.py does)
"""
