#!/usr/bin/env python3
"""A small HTTP server for the download specs (spec/data_download_spec.lua).

    python3 spec/http_server.py FOLDER PORT_FILE

Serves FOLDER on 127.0.0.1 at a port the system chooses, written to PORT_FILE once it listens.
GET /cut/NAME sends NAME's full Content-Length but only the first half of its bytes, then closes the
connection: a transfer cut short. Runs until killed.
"""
import functools
import http.server
import os
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if not self.path.startswith("/cut/"):
            return super().do_GET()
        with open(os.path.join(self.directory, self.path[len("/cut/"):]), "rb") as f:
            data = f.read()
        self.send_response(200)
        self.send_header("Content-Type", "application/gzip")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        self.close_connection = True


def main():
    folder, port_file = sys.argv[1], sys.argv[2]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=folder))
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(port_file + ".tmp", port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
