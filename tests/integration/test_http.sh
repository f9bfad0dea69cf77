#!/bin/bash
# test_http.sh — daemon/http (the libcurl ⇄ libuv glue and the pool) against
# a real loopback HTTP server.
#
# A small Python http.server subclass (written below into the test's temp
# dir) serves slow, hanging, trickling, dropping, oversized, echoing and
# upload endpoints and counts how many /slow requests it is handling at
# once.  A second instance speaks TLS with a throw-away self-signed
# certificate (when openssl is installed).  The C driver
# tests/integration/test_http_glue runs every scenario on a real uv loop
# and prints TAP lines plus "# figure" lines; this script then checks the
# driver's debug log: the Authorization header must appear redacted and the
# key never.
. "$(dirname "$0")/lib.sh"

DRIVER="$top_builddir/tests/integration/test_http_glue"
[ -x "$DRIVER" ] || skip "$DRIVER not built"
command -v python3 >/dev/null || skip "python3 not installed"

cat >"$T/server.py" <<'EOF'
import hashlib, json, os, socket, ssl, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse, parse_qs

lock = threading.Lock()
stats = {"in_flight": 0, "max_in_flight": 0, "requests": 0, "connections": 0, "drops": 0}

def q(h, k, d):
    return parse_qs(urlparse(h.path).query).get(k, [d])[0]

def multipart(body, ctype):
    boundary = ctype.split("boundary=", 1)[1].strip('"').encode()
    out = {"fields": {}}
    for part in body.split(b"--" + boundary)[1:]:
        if part.startswith(b"--"):
            break
        head, _, data = part.partition(b"\r\n\r\n")
        data = data[:-2]  # the CRLF before the next boundary
        disp = [l for l in head.decode().split("\r\n") if l.lower().startswith("content-disposition")][0]
        attrs = dict(a.strip().split("=", 1) for a in disp.split(";")[1:])
        name = attrs["name"].strip('"')
        if "filename" in attrs:
            out["file_field"] = name
            out["filename"] = attrs["filename"].strip('"')
            out["file_bytes"] = len(data)
            out["file_sha256"] = hashlib.sha256(data).hexdigest()
            out["file_type"] = [l.split(":", 1)[1].strip() for l in head.decode().split("\r\n") if l.lower().startswith("content-type")][0]
        else:
            out["fields"][name] = data.decode()
    return out

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

    def log_message(self, *a):
        pass

    def setup(self):
        super().setup()
        with lock:
            stats["connections"] += 1

    def reply(self, code, obj, headers=()):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length", "0"))
        slow = self.path.startswith("/upload")
        data = b""
        while len(data) < n:
            chunk = self.rfile.read(min(1 << 20, n - len(data)))
            if not chunk:
                break
            data += chunk
            if slow:
                time.sleep(0.15)  # a slow provider: several progress reports
        return data

    def route(self):
        p = urlparse(self.path)
        path = p.path
        with lock:
            stats["requests"] += 1
        if self.path.startswith("http://"):  # absolute URI: we are a proxy
            return self.reply(200, {"proxied": True, "uri": self.path, "method": self.command})
        if path == "/stats":
            with lock:
                return self.reply(200, dict(stats))
        if path == "/reset":
            self.body()
            with lock:
                stats.update(max_in_flight=0, requests=0, connections=0, drops=0)
            return self.reply(200, {"ok": True})
        if path == "/slow":
            with lock:
                stats["in_flight"] += 1
                stats["max_in_flight"] = max(stats["max_in_flight"], stats["in_flight"])
            time.sleep(int(q(self, "ms", "10")) / 1000)
            with lock:
                stats["in_flight"] -= 1
            return self.reply(200, {"id": int(q(self, "id", "0"))}, [("x-request-id", "req-" + q(self, "id", "0"))])
        if path == "/hang":
            end = time.time() + float(q(self, "s", "20"))
            while time.time() < end:
                time.sleep(0.05)
            return self.reply(200, {"late": True})
        if path == "/trickle":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(100):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.3)
            return
        if path == "/drop":
            self.body()
            with lock:
                stats["drops"] += 1
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if path == "/half":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if path == "/big":
            n = int(q(self, "n", "1000"))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            if q(self, "chunked", "0") == "1":
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                left = n
                while left:
                    k = min(left, 4096)
                    self.wfile.write(b"%x\r\n" % k + b"y" * k + b"\r\n")
                    left -= k
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.send_header("Content-Length", str(n))
                self.end_headers()
                self.wfile.write(b"y" * n)
            return
        if path.startswith("/status/"):
            self.body()
            code = int(path.rsplit("/", 1)[1])
            hs = [("x-request-id", "req-status")]
            if q(self, "retry_after", None):
                hs.append(("Retry-After", q(self, "retry_after", None)))
            if q(self, "retry_after_ms", None):
                hs.append(("retry-after-ms", q(self, "retry_after_ms", None)))
            return self.reply(code, {"error": {"message": "status %d" % code, "type": "test", "param": None, "code": None}}, hs)
        if path == "/upload":
            data = self.body()
            out = multipart(data, self.headers.get("Content-Type", ""))
            out["content_length"] = len(data)
            return self.reply(200, out)
        if path == "/echo":
            data = self.body()
            return self.reply(200, {"method": self.command, "path": self.path,
                                    "authorization": self.headers.get("Authorization"),
                                    "content_type": self.headers.get("Content-Type"),
                                    "body": data.decode(errors="replace")})
        return self.reply(404, {"error": {"message": "no route " + path, "type": "test"}})

    do_GET = do_POST = do_DELETE = do_PUT = route

class S(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512

args = sys.argv[1:]
srv = S(("127.0.0.1", 0), H)
if len(args) == 3:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args[1], args[2])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
tmp = args[0] + ".tmp"
with open(tmp, "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(tmp, args[0])
srv.serve_forever()
EOF

python3 "$T/server.py" "$T/port" 2>"$T/server.log" &
PIDS="$PIDS $!"
wait_until 10 test -s "$T/port" || { cat "$T/server.log"; fail "server did not start"; exit 1; }
BASE="http://127.0.0.1:$(cat "$T/port")"

TLS_ARGS=()
if command -v openssl >/dev/null; then
    if openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
        -addext subjectAltName=IP:127.0.0.1 -keyout "$T/key.pem" -out "$T/cert.pem" \
        >/dev/null 2>&1; then
        python3 "$T/server.py" "$T/tlsport" "$T/cert.pem" "$T/key.pem" 2>"$T/tls.log" &
        PIDS="$PIDS $!"
        if wait_until 10 test -s "$T/tlsport"; then
            TLS_ARGS=("https://127.0.0.1:$(cat "$T/tlsport")" "$T/cert.pem")
        fi
    fi
fi
[ ${#TLS_ARGS[@]} -eq 0 ] && echo "# TLS checks skipped (no openssl or TLS server)"

KEY="sk-test-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
# The driver must see no proxy from the environment except where it sets one.
env -u http_proxy -u https_proxy -u HTTPS_PROXY -u all_proxy -u ALL_PROXY -u no_proxy \
    -u NO_PROXY TMPDIR="$T" VT_TEST_KEY="$KEY" \
    "$DRIVER" "$BASE" "${TLS_ARGS[@]}" 2>"$T/driver.log"
rc=$?
if [ $rc -eq 0 ]; then ok "driver passed"; else fail "driver exit $rc"; tail -30 "$T/driver.log"; fi

check "debug log shows the Authorization header redacted" \
    grep -q 'Authorization: Bearer \[redacted\]' "$T/driver.log"
if grep -q -- "$KEY" "$T/driver.log"; then fail "the API key appears in the log"; else ok "the API key never appears in the log"; fi

echo "1..$CHECKS"
[ "$FAILS" -eq 0 ]
