"""Re-record the mitmproxy flow files in this directory with a real mitmdump.

    python tests/data/mitmproxy/record.py /path/to/venv-with-mitmproxy [more venvs...]

For each venv it starts `VENV/bin/mitmdump -w mitmVERSION.flows` (VERSION: mitmproxy's major version) with
a small addon (marks, comments and annotates some flows) and drives, through it, against servers this
script starts on loopback:

    1. GET  http://H/plain            200 text
    2. POST http://H/form             200, request body b"a=1&b=2", gzip-encoded response
    3. GET  https://H/secure          200 over TLS (the origin's self-signed cert; mitmdump --ssl-insecure)
    4. GET  http://127.0.0.1:1/       no server: an error flow (mitmdump answers 502)
    5. WebSocket ws://H/ws            text "hello", binary 00 01 ff, both echoed, then a 1000 close
    6. TCP  127.0.0.2:P via CONNECT   b"ping\\n" in, b"pong: ping\\n" out (`tcp_hosts`)

Flows 1 and 5 are marked, flow 1 has a comment and metadata (where that mitmproxy version has them). The
tests (tests/integration/test_mitmproxy_import.py) check exactly these flows. Only stdlib and openssl.
"""
from __future__ import annotations

import gzip
import http.server
import os
import shutil
import socket
import socketserver
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
from base64 import b64encode
from hashlib import sha1

HERE = os.path.dirname(os.path.abspath(__file__))

ADDON = '''
def _annotate(flow, path):
    if path in ("/plain", "/ws"):
        flow.marked = ":default:" if isinstance(flow.marked, str) else True
    if path == "/plain":
        if hasattr(flow, "comment"):
            flow.comment = "recorded by record.py"
        flow.metadata["interpose-test"] = {"n": 1, "s": "x"}

def request(flow):
    _annotate(flow, flow.request.path)

def tcp_end(flow):  # scripts run after mitmdump's own save addon: the TCP flow, the last one, is saved
    open(__file__ + ".done", "w").close()
'''


# -- servers ---------------------------------------------------------------------------------------------
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, body: bytes, extra: dict[str, str] | None = None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/ws":
            return self._websocket()
        self._send(f"ok {self.path}\n".encode())

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._send(gzip.compress(b"got " + body + b"\n", mtime=0), {"Content-Encoding": "gzip"})

    def _websocket(self) -> None:
        key = self.headers["Sec-WebSocket-Key"]
        accept = b64encode(sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        while True:
            opcode, payload = read_frame(self.rfile)
            if opcode == 8:
                self.wfile.write(frame(8, payload, mask=False))
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(frame(opcode, payload, mask=False))
            self.wfile.flush()


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def read_frame(f) -> tuple[int, bytes]:  # type: ignore[no-untyped-def]
    b0, b1 = f.read(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", f.read(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", f.read(8))[0]
    mask = f.read(4) if b1 & 0x80 else b""
    data = f.read(n)
    if mask:
        data = bytes(c ^ mask[i % 4] for i, c in enumerate(data))
    return b0 & 0x0F, data


def frame(opcode: int, payload: bytes, mask: bool = True) -> bytes:
    head = bytes([0x80 | opcode])
    bit = 0x80 if mask else 0
    if len(payload) < 126:
        head += bytes([bit | len(payload)])
    else:
        head += bytes([bit | 126]) + struct.pack("!H", len(payload))
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(c ^ key[i % 4] for i, c in enumerate(payload))


def tcp_server(host: str) -> socket.socket:
    srv = socket.create_server((host, 0))

    def serve() -> None:
        while True:
            conn, _ = srv.accept()
            with conn:
                data = b""
                while not data.endswith(b"\n"):
                    chunk = conn.recv(100)
                    if not chunk:
                        break
                    data += chunk
                conn.sendall(b"pong: " + data)
                conn.shutdown(socket.SHUT_WR)
                while conn.recv(100):
                    pass
    threading.Thread(target=serve, daemon=True).start()
    return srv


def start_http(tls_dir: str | None) -> Server:
    srv = Server(("127.0.0.1", 0), Handler)
    if tls_dir:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(tls_dir, "cert.pem"), os.path.join(tls_dir, "key.pem"))
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


# -- clients through the proxy ------------------------------------------------------------------------------
def recv_head(sock: socket.socket | ssl.SSLSocket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(1)
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
    return data


def http_request(proxy: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", proxy)) as s:
        s.sendall(raw)
        head = recv_head(s)
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        body = b""
        while len(body) < length:
            body += s.recv(length - len(body))
        return head + body


def connect(proxy: int, host: str, port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", proxy))
    s.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    head = recv_head(s)
    assert head.startswith(b"HTTP/1.1 200"), head
    return s


def drive(proxy: int, http_port: int, https_port: int, tcp_port: int) -> None:
    h = f"127.0.0.1:{http_port}"
    r = http_request(proxy, f"GET http://{h}/plain HTTP/1.1\r\nHost: {h}\r\nConnection: close\r\n\r\n".encode())
    assert b"ok /plain" in r, r
    r = http_request(proxy, f"POST http://{h}/form HTTP/1.1\r\nHost: {h}\r\nContent-Type: application/"
                     f"x-www-form-urlencoded\r\nContent-Length: 7\r\nConnection: close\r\n\r\na=1&b=2".encode())
    assert r.startswith(b"HTTP/1.1 200"), r
    s = connect(proxy, "127.0.0.1", https_port)
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    with ctx.wrap_socket(s, server_hostname="localhost") as t:
        t.sendall(f"GET /secure HTTP/1.1\r\nHost: localhost:{https_port}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while b"ok /secure" not in data:
            chunk = t.recv(4096)
            assert chunk, data
            data += chunk
    r = http_request(proxy, b"GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: 127.0.0.1:1\r\nConnection: close\r\n\r\n")
    assert r.startswith(b"HTTP/1.1 502"), r
    with socket.create_connection(("127.0.0.1", proxy)) as s:
        s.sendall(f"GET http://{h}/ws HTTP/1.1\r\nHost: {h}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        assert recv_head(s).startswith(b"HTTP/1.1 101")
        f = s.makefile("rb")
        s.sendall(frame(1, b"hello"))
        assert read_frame(f) == (1, b"hello")
        s.sendall(frame(2, b"\x00\x01\xff"))
        assert read_frame(f) == (2, b"\x00\x01\xff")
        s.sendall(frame(8, struct.pack("!H", 1000) + b"bye"))
        assert read_frame(f)[0] == 8
    with connect(proxy, "127.0.0.2", tcp_port) as s:
        s.sendall(b"ping\n")
        data = b""
        while True:
            chunk = s.recv(100)
            if not chunk:
                break
            data += chunk
        assert data == b"pong: ping\n", data


# -- one recording ------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"mitmdump exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError("mitmdump did not listen")


def wait_written(addon: str, timeout: float = 30) -> None:
    """Until the addon saw the TCP flow end (mitmdump writes the file out when it exits)."""
    end = time.monotonic() + timeout
    while not os.path.exists(addon + ".done"):
        if time.monotonic() > end:
            raise TimeoutError("mitmdump did not end the TCP flow")
        time.sleep(0.05)


def mitm_version(venv: str) -> str:
    out = subprocess.run([os.path.join(venv, "bin", "python"), "-c", "import mitmproxy.version as v; print(v.VERSION)"],
                         capture_output=True, text=True, check=True).stdout
    return out.strip()


def record(venv: str, tmp: str) -> str:
    version = mitm_version(venv)
    out = os.path.join(HERE, f"mitm{version.split('.')[0]}.flows")
    addon = os.path.join(tmp, "annotate.py")
    with open(addon, "w") as f:
        f.write(ADDON)
    if os.path.exists(addon + ".done"):
        os.unlink(addon + ".done")
    http_srv, https_srv = start_http(None), start_http(tmp)
    tcp = tcp_server("127.0.0.2")
    port = free_port()
    proc = subprocess.Popen(
        [os.path.join(venv, "bin", "mitmdump"), "--listen-host", "127.0.0.1", "-p", str(port), "-q",
         "--set", f"confdir={tmp}/conf-{version}", "--ssl-insecure", "--set", r"tcp_hosts=^127\.0\.0\.2",
         "-s", addon, "-w", out],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_listening(port, proc)
        drive(port, http_srv.server_address[1], https_srv.server_address[1], tcp.getsockname()[1])
        wait_written(addon)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
        http_srv.shutdown()
        https_srv.shutdown()
        tcp.close()
    if err.strip():
        print(err.decode(errors="replace"), file=sys.stderr)
    return f"{out} (mitmproxy {version}, {os.path.getsize(out)} bytes)"


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    tmp = tempfile.mkdtemp()
    try:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650", "-subj",
                        "/CN=localhost", "-keyout", f"{tmp}/key.pem", "-out", f"{tmp}/cert.pem"],
                       check=True, capture_output=True)
        for venv in sys.argv[1:]:
            print(record(venv, tmp))
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
