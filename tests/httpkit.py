"""Loopback HTTP servers for the OTA tests: a folder served by http.server, and a raw
script of bytes answering every GET (None in the script stalls the connection until close())."""

import http.server
import socket
import threading


class RawServer:
    def __init__(self, *script):
        self.script = script
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.release = threading.Event()
        self.conns = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            try:
                conn.recv(4096)
                for part in self.script:
                    if part is None:
                        self.release.wait(60)
                        break
                    conn.sendall(part)
            except OSError:
                pass  # the client gave up first
            conn.close()

    def url(self, path="/app.bin"):
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self):
        self.release.set()
        self.sock.close()
        for c in self.conns:
            c.close()


class FileServer:
    def __init__(self, root):
        handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(root), **kw)  # noqa: E731
        http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path="/img"):
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
