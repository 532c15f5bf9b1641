#!/usr/bin/env python3
"""Receive callhook (VIS) call-event webhooks and verify their signatures. Standard library only.

    python3 verify.py --port 3000 --key KEY   # listens on http://127.0.0.1:3000/webhook
    python3 verify.py --selftest              # checks the published test vector

Create the webhook with "signingAlgo": "HMAC_SHA256", the same "signingKey" and "metadataPolicy"
"HEADER" (signature in X-VON-Signature) or "BODY" (in body["metadata"]["signature"]). The signature
is hex HMAC-SHA256, keyed with the UTF-8 signing key, over body["event"] as compact JSON with sorted
keys. Prints one line per delivery; answers 200 if it verifies, else 401 (callhook retries).
"""
import argparse, hashlib, hmac, json, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def sign(key, event):
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hmac.new(key.encode(), canonical.encode(), hashlib.sha256).hexdigest()


class Handler(BaseHTTPRequestHandler):
    key = None  # the webhook's signingKey, set from --key
    printing = threading.Lock()  # deliveries arrive on several threads at once

    def do_POST(self):
        try:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            event = body["event"]
            call = f'{event["state"]} {event["id"]}'
            metadata = body.get("metadata") or {}
            given = self.headers.get("X-VON-Signature") or metadata.get("signature")
        except (AttributeError, KeyError, TypeError, ValueError):
            return self.answer(400, "INVALID body (not a call event)")
        if not given:
            return self.answer(401, f"INVALID signature (missing) {call}")
        if not hmac.compare_digest(sign(self.key, event).encode(), str(given).encode()):
            return self.answer(401, f"INVALID signature (mismatch) {call}")
        self.answer(200, f"verified {call}")  # your code here: act on the event

    def answer(self, status, line):
        with self.printing:
            print(line, flush=True)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):  # one line per delivery is enough
        pass


def selftest():
    """CONTRACT.md's test vector, keys deliberately out of order."""
    event = {"userId": "24785", "type": "CALL", "state": "ANSWERED",
             "id": "5a85d86f253bcd10897f3189", "externalId": "callhalf-60227142553:0",
             "startTime": "2018-02-15T18:58:56.194+0000", "endTime": "2018-02-15T18:59:06.446+0000",
             "answerTime": "2018-02-15T18:59:03.496+0000", "duration": 2950,
             "direction": "OUTBOUND", "accountId": "376"}
    expected = "95aafd08cb72b1f9216ccd002b8917b04e41ecb19276ae759241fdc0cbb53fb5"
    ok = sign("mysecretkey", event) == expected
    print("selftest ok" if ok else "selftest FAILED", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description="Verify callhook webhook signatures.")
    cli.add_argument("--port", type=int, default=3000, help="0 picks a free port (printed)")
    cli.add_argument("--key", help="the webhook's signingKey")
    cli.add_argument("--selftest", action="store_true", help="check the test vector, exit 0 or 1")
    args = cli.parse_args()
    if args.selftest:
        raise SystemExit(selftest())
    if not args.key:
        cli.error("--key is required")
    Handler.key = args.key
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"listening on http://127.0.0.1:{server.server_port}/webhook", flush=True)
    server.serve_forever()
