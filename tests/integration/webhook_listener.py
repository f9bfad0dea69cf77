#!/usr/bin/env python3
"""webhook_listener.py PORTFILE OUT [REFUSE] — a loopback webhook for alert
tests: answers every POST with 204 and appends its body (one line) to OUT;
writes the bound port to PORTFILE once listening.  With REFUSE: while the
file REFUSE exists, answers 503 instead and appends the body to OUT.refused
(a webhook that is down, for retry tests).  Runs until killed."""
import http.server, os, sys

port_file, out = sys.argv[1], sys.argv[2]
refuse = sys.argv[3] if len(sys.argv) > 3 else None

class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if refuse and os.path.exists(refuse):
            with open(out + ".refused", "a") as f:
                f.write(body.decode().replace("\n", " ") + "\n")
            self.send_response(503)
            self.end_headers()
            return
        with open(out, "a") as f:
            f.write(body.decode().replace("\n", " ") + "\n")
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass

srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(port_file + ".tmp", port_file)
srv.serve_forever()
