"""Hostile servers on loopback for the reliability suite: a body dripped a byte at a time, an endless body, a gzip
bomb, and any of them behind a self-signed certificate. Each answers every request the same way."""

import socket
import ssl
import threading
import time
import zlib


def drip(body=b'{"data": []}', every=0.5):
    """A 200 whose JSON body comes one byte every `every` seconds (each receive within the read timeout)."""
    def answer(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
        for byte in body:
            conn.sendall(bytes([byte]))
            time.sleep(every)
    return answer


def endless(start=b'{"data": [', item=b'"' + b"x" * 1000 + b'",', content_type=b"application/json"):
    """A 200 whose chunked body never ends."""
    def answer(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: " + content_type + b"\r\nTransfer-Encoding: chunked\r\n\r\n")
        piece = start + item * 64
        while True:
            conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            piece = item * 64
    return answer


def gzip_bomb(inflated_mib=1024, encoded=False, head=b""):
    """A 200 holding a small gzip file that inflates to inflated_mib MiB of one field: as the body itself (a .gz
    download) or as a Content-Encoding: gzip transfer."""
    block = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [block.compress(head)]
    zeros = b"a" * (1 << 20)
    for _ in range(inflated_mib):
        parts.append(block.compress(zeros))
    parts.append(block.flush())
    data = b"".join(parts)

    def answer(conn):
        kind = b"application/json" if encoded else b"application/gzip"
        extra = b"Content-Encoding: gzip\r\n" if encoded else b""
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: " + kind + b"\r\n" + extra
                     + b"Content-Length: %d\r\n\r\n" % len(data) + data)
    return answer


class Hostile:
    """A loopback server answering every connection with answer(conn); optionally TLS with a self-signed cert."""

    def __init__(self, answer, ssl_context=None):
        self.answer, self.context = answer, ssl_context
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.requests = 0
        self.stopped = False
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self):
        return f"{'https' if self.context else 'http'}://127.0.0.1:{self.port}"

    def _serve(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn):
        try:
            if self.context is not None:
                conn = self.context.wrap_socket(conn, server_side=True)
            conn.settimeout(30)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            self.requests += 1
            self.answer(conn)
        except (OSError, ssl.SSLError):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def stop(self):
        self.stopped = True
        self.sock.close()
