"""The benchmark's origin servers: a test CA and server certificate, and a local nginx.

nginx runs in the foreground (`daemon off`) from its own configuration in a temporary directory. It
serves, on loopback:

- `http://127.0.0.1:HTTP/1k`: a 1024-byte body; `/100m`: a 100 MiB file;
- `https://127.0.0.1:HTTPS/1k` (HTTP/1.1 and HTTP/2 by ALPN): the same, with a certificate for
  `127.0.0.1` and `localhost` signed by a test CA generated here (`ca.pem`).
"""
from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    http2_max_concurrent_streams 256;
    ssl_certificate {tmp}/server.pem;
    ssl_certificate_key {tmp}/server-key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache off;
    ssl_session_tickets off;
    server {{
        listen 127.0.0.1:{http_port};
        listen 127.0.0.1:{https_port} ssl http2;
        server_name localhost;
        root {tmp}/www;
        location = /1k {{ }}
        location = /100m {{ }}
    }}
    server {{
        # like most real servers: sessions can be resumed (case 3c)
        listen 127.0.0.1:{https_resume_port} ssl;
        server_name localhost;
        ssl_session_cache shared:resume:4m;
        ssl_session_tickets on;
        root {tmp}/www;
        location = /1k {{ }}
    }}
}}
"""


@dataclass
class Origin:
    tmp: str
    http_port: int
    https_port: int
    ca_file: str
    https_resume_port: int = 0
    """HTTPS with session resumption (tickets and a session cache); the other HTTPS port has neither."""
    proc: subprocess.Popen[bytes] | None = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0, proc: subprocess.Popen[bytes] | None = None) -> bool:
    """Poll until 127.0.0.1:port accepts a TCP connection (or the process dies, or the timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.002)
    return False


def write_certs(tmp: str) -> str:
    """A test CA (`ca.pem`) and a server certificate for 127.0.0.1/localhost it signed; return the CA path."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "interpose bench test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_file = os.path.join(tmp, "ca.pem")
    with open(ca_file, "wb") as f:
        f.write(ca.public_bytes(pem))
    with open(os.path.join(tmp, "server.pem"), "wb") as f:
        f.write(cert.public_bytes(pem) + ca.public_bytes(pem))
    with open(os.path.join(tmp, "server-key.pem"), "wb") as f:
        f.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return ca_file


def write_content(tmp: str) -> None:
    www = os.path.join(tmp, "www")
    os.makedirs(www, exist_ok=True)
    with open(os.path.join(www, "1k"), "wb") as f:
        f.write(b"x" * 1023 + b"\n")
    with open(os.path.join(www, "100m"), "wb") as f:
        chunk = os.urandom(1 << 20)
        f.writelines(chunk for _ in range(100))


def start_nginx(tmp: str) -> Origin:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    write_content(tmp)
    ca_file = write_certs(tmp)
    origin = Origin(tmp, free_port(), free_port(), ca_file, free_port())
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(tmp=tmp, http_port=origin.http_port, https_port=origin.https_port,
                                  https_resume_port=origin.https_resume_port))
    origin.proc = subprocess.Popen(
        [nginx, "-c", conf, "-p", tmp, "-e", os.path.join(tmp, "nginx-error.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    if not (wait_port(origin.http_port, proc=origin.proc) and wait_port(origin.https_port, proc=origin.proc)
            and wait_port(origin.https_resume_port, proc=origin.proc)):
        err = origin.proc.stderr.read().decode(errors="replace") if origin.proc.poll() is not None else ""
        origin.stop()
        raise RuntimeError(f"nginx did not start: {err.strip() or 'timeout'}")
    return origin
