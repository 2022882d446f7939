"""A contract stub of Stripe's /v1 API for black-box tests.

A threaded HTTP server on a loopback port that checks every request as the
real API would — the bearer secret key, a pinned Stripe-Version, a form
body (application/x-www-form-urlencoded with bracket nesting, strictly
percent-encoded), the parameters each endpoint takes and requires, an
Idempotency-Key on every POST and DELETE — and answers with Stripe's own
sample objects (tests/fixtures/stripe/fixtures.json, MIT, from
stripe/openapi) given fresh ids and the request's fields.

Idempotency as Stripe does it: a key seen with the same method, path and
parameters answers the first result again (Idempotent-Replayed: true); the
same key with other parameters is a 400 idempotency_error. Meter event
identifiers are unique (a second event with one is refused).

Faults (`fault(method, path_prefix, kind, count)`), taken in order by the
matching requests before they are applied:
  "429"      rate limited, Retry-After: 1, nothing applied
  "500"      an api_error, nothing applied
  "400"      an invalid_request_error, nothing applied
  "timeout"  the request IS applied (and its answer kept for the key),
             then the answer is held `hold_s` seconds: past the client's
             timeout, so the client retries what already happened.

`journal` lists every request applied: dicts with method, path, params
(the nested form), key (Idempotency-Key); `replays` counts answers given
again from the idempotency cache; `refused` lists what was refused and why
(a contract breach by the client shows there).
"""
import copy
import json
import os
import re
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                        "fixtures", "stripe", "fixtures.json")

# key[a][b] or key[0][c]: a name, then bracketed segments
KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\[[A-Za-z0-9_]*\])*$")
# what a strict encoder leaves unescaped, besides %XX
RAW_RE = re.compile(r"^[A-Za-z0-9\-._~%+]*$")

# endpoint -> (allowed top-level params, required flattened keys)
RULES = {
    ("POST", "customers"): ({"name", "email", "description", "metadata"},
                            {"metadata[platform]"}),
    ("POST", "subscriptions"): ({"customer", "items", "metadata",
                                 "proration_behavior"},
                                {"customer", "items[0][price]",
                                 "metadata[platform]"}),
    ("POST", "subscription"): ({"items", "metadata", "proration_behavior"},
                               {"items[0][id]", "items[0][price]"}),
    ("POST", "meter_events"): ({"event_name", "payload", "timestamp",
                                "identifier"},
                               {"event_name", "payload[stripe_customer_id]",
                                "payload[value]"}),
}


class StripeError(Exception):
    def __init__(self, status, type_, message, code=None, param=None,
                 headers=None):
        super().__init__(message)
        self.status = status
        self.body = {"error": {"type": type_, "message": message,
                               "code": code, "param": param}}
        self.headers = headers or {}


def parse_form(raw):
    """Flat [(key, value)] from a strict form body, else StripeError."""
    pairs = []
    if not raw:
        return pairs
    for part in raw.split("&"):
        if "=" not in part:
            raise StripeError(400, "invalid_request_error",
                              "malformed form part")
        k, v = part.split("=", 1)
        for s in (k, v):
            if not RAW_RE.match(s):
                raise StripeError(400, "invalid_request_error",
                                  "a reserved character is not "
                                  "percent-encoded")
            if re.search(r"%(?![0-9A-Fa-f]{2})", s):
                raise StripeError(400, "invalid_request_error",
                                  "bad percent-encoding")
        key = urllib.parse.unquote_plus(k, errors="strict")
        val = urllib.parse.unquote_plus(v, errors="strict")
        if not KEY_RE.match(key):
            raise StripeError(400, "invalid_request_error",
                              "malformed parameter name %r" % key,
                              param=key)
        pairs.append((key, val))
    return pairs


def nest(pairs):
    """{"items": {"0": {"price": ...}}} from bracket keys."""
    out = {}
    for key, val in pairs:
        segs = [key.split("[", 1)[0]] + re.findall(r"\[([^\]]*)\]", key)
        cur = out
        for s in segs[:-1]:
            nxt = cur.setdefault(s, {})
            if not isinstance(nxt, dict):
                raise StripeError(400, "invalid_request_error",
                                  "parameter %s is both a value and an "
                                  "object" % key, param=key)
            cur = nxt
        if segs[-1] in cur:
            raise StripeError(400, "invalid_request_error",
                              "parameter %s given twice" % key, param=key)
        cur[segs[-1]] = val
    return out


class StripeStub:
    def __init__(self, secret_key, api_version, meter_event="nno_requests",
                 hold_s=2.5):
        self.secret_key = secret_key
        self.api_version = api_version
        self.meter_event = meter_event
        self.hold_s = hold_s
        with open(FIXTURES) as f:
            self.fixtures = json.load(f)["resources"]
        self.lock = threading.Lock()
        self.journal = []
        self.refused = []
        self.replays = 0
        self.faults = []   # [method, prefix, kind, count]
        self.idem = {}     # key -> (signature, status, body)
        self.customers = {}
        self.subscriptions = {}
        self.meter_events = {}  # identifier -> event
        self.server = None

    # -- control ------------------------------------------------------------
    def start(self):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                stub.handle(self)

            def do_POST(self):
                stub.handle(self)

            def do_DELETE(self):
                stub.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever,
                         daemon=True).start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.server.server_address[1]

    def fault(self, method, prefix, kind, count=1):
        with self.lock:
            self.faults.append([method, prefix, kind, count])

    def entries(self, method=None, path=None):
        with self.lock:
            return [dict(e) for e in self.journal
                    if (method is None or e["method"] == method)
                    and (path is None or e["path"].startswith(path))]

    # -- the API --------------------------------------------------------------
    def _new_id(self, prefix):
        return prefix + "_" + secrets.token_hex(7)

    def _take_fault(self, method, path):
        for f in self.faults:
            if f[0] == method and path.startswith(f[1]) and f[3] > 0:
                f[3] -= 1
                return f[2]
        return None

    def handle(self, h):
        try:
            status, body, headers, hold = self._handle(h)
        except StripeError as e:
            status, body, headers, hold = e.status, e.body, e.headers, 0
            with self.lock:
                self.refused.append({"method": h.command, "path": h.path,
                                     "status": e.status,
                                     "error": e.body["error"]["message"]})
        data = json.dumps(body).encode()
        if hold:
            time.sleep(hold)
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            h.send_header("Request-Id", self._new_id("req"))
            for k, v in headers.items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data)
        except OSError:
            pass  # the client gave up (a held answer)

    def _handle(self, h):
        method = h.command
        path = urllib.parse.urlsplit(h.path).path
        n = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(n).decode("ascii", "strict") if n else ""
        auth = h.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not secrets.compare_digest(
                auth[7:].encode(), self.secret_key.encode()):
            raise StripeError(401, "invalid_request_error",
                              "Invalid API Key provided")
        if h.headers.get("Stripe-Version") != self.api_version:
            raise StripeError(400, "invalid_request_error",
                              "Stripe-Version missing or not the pinned one")
        key = h.headers.get("Idempotency-Key")
        if method in ("POST", "DELETE"):
            if not key or len(key) > 255:
                raise StripeError(400, "invalid_request_error",
                                  "every POST needs an Idempotency-Key here")
        if method == "POST":
            ctype = h.headers.get("Content-Type", "")
            if ctype.split(";")[0].strip() != \
                    "application/x-www-form-urlencoded":
                raise StripeError(400, "invalid_request_error",
                                  "form bodies only")
        elif raw:
            raise StripeError(400, "invalid_request_error",
                              "%s takes no body" % method)
        pairs = parse_form(raw)
        params = nest(pairs)
        sig = (method, path, tuple(sorted(pairs)))
        with self.lock:
            if key and key in self.idem:
                first = self.idem[key]
                if first[0] != sig:
                    raise StripeError(
                        400, "idempotency_error",
                        "Keys for idempotent requests can only be used with "
                        "the same parameters they were first used with.")
                self.replays += 1
                return first[1], copy.deepcopy(first[2]), \
                    {"Idempotent-Replayed": "true"}, 0
            kind = self._take_fault(method, path)
            if kind == "429":
                raise StripeError(429, "invalid_request_error",
                                  "Too many requests", code="rate_limit",
                                  headers={"Retry-After": "1"})
            if kind == "500":
                raise StripeError(500, "api_error", "An unknown error")
            if kind == "400":
                raise StripeError(400, "invalid_request_error",
                                  "Injected refusal", code="parameter_invalid")
            status, body = self._apply(method, path, params, pairs)
            if key:
                self.idem[key] = (sig, status, copy.deepcopy(body))
            self.journal.append({"method": method, "path": path,
                                 "params": params, "key": key,
                                 "id": body.get("id")})
            hold = self.hold_s if kind == "timeout" else 0
            return status, body, {}, hold

    def _check(self, rule, params, pairs):
        allowed, required = RULES[rule]
        for k in params:
            if k not in allowed:
                raise StripeError(400, "invalid_request_error",
                                  "Received unknown parameter: %s" % k,
                                  param=k)
        have = {k for k, _ in pairs}
        for r in required:
            if r not in have or not dict(pairs)[r]:
                raise StripeError(400, "invalid_request_error",
                                  "Missing required param: %s." % r,
                                  param=r)

    def _apply(self, method, path, params, pairs):
        m = re.match(r"^/v1/subscriptions/(sub_[A-Za-z0-9]+)$", path)
        if method == "POST" and path == "/v1/customers":
            self._check(("POST", "customers"), params, pairs)
            c = copy.deepcopy(self.fixtures["customer"])
            c.update(id=self._new_id("cus"), name=params.get("name"),
                     metadata=params.get("metadata", {}),
                     created=int(time.time()))
            self.customers[c["id"]] = c
            return 200, c
        if method == "POST" and path == "/v1/subscriptions":
            self._check(("POST", "subscriptions"), params, pairs)
            if params["customer"] not in self.customers:
                raise StripeError(400, "invalid_request_error",
                                  "No such customer", code="resource_missing",
                                  param="customer")
            s = copy.deepcopy(self.fixtures["subscription"])
            sid = self._new_id("sub")
            item = copy.deepcopy(self.fixtures["subscription_item"])
            item.update(id=self._new_id("si"), subscription=sid)
            item["price"]["id"] = params["items"]["0"]["price"]
            s.update(id=sid, customer=params["customer"], status="active",
                     metadata=params.get("metadata", {}))
            s["items"] = {"object": "list", "data": [item], "has_more": False,
                          "url": "/v1/subscription_items?subscription=" + sid}
            self.subscriptions[sid] = s
            return 200, s
        if m and m.group(1) not in self.subscriptions:
            raise StripeError(404, "invalid_request_error",
                              "No such subscription", code="resource_missing")
        if m and method == "GET":
            return 200, self.subscriptions[m.group(1)]
        if m and method == "POST":
            self._check(("POST", "subscription"), params, pairs)
            s = self.subscriptions[m.group(1)]
            if s["status"] == "canceled":
                raise StripeError(400, "invalid_request_error",
                                  "A canceled subscription cannot be updated")
            item = s["items"]["data"][0]
            if params["items"]["0"]["id"] != item["id"]:
                raise StripeError(400, "invalid_request_error",
                                  "No such subscription item",
                                  param="items[0][id]")
            item["price"]["id"] = params["items"]["0"]["price"]
            s["metadata"].update(params.get("metadata", {}))
            return 200, s
        if m and method == "DELETE":
            s = self.subscriptions[m.group(1)]
            s["status"] = "canceled"
            s["canceled_at"] = int(time.time())
            return 200, s
        if method == "POST" and path == "/v1/billing/meter_events":
            self._check(("POST", "meter_events"), params, pairs)
            if params["event_name"] != self.meter_event:
                raise StripeError(400, "invalid_request_error",
                                  "No active meter for this event_name")
            cus = params["payload"]["stripe_customer_id"]
            if cus not in self.customers:
                raise StripeError(400, "invalid_request_error",
                                  "No such customer", param="payload")
            if not re.match(r"^[0-9]+$", params["payload"]["value"]):
                raise StripeError(400, "invalid_request_error",
                                  "value must be a whole number")
            now = int(time.time())
            ts = params.get("timestamp")
            if ts is not None:
                if not re.match(r"^[0-9]+$", ts) or not (
                        now - 35 * 86400 <= int(ts) <= now + 300):
                    raise StripeError(400, "invalid_request_error",
                                      "timestamp out of range",
                                      param="timestamp")
            ident = params.get("identifier") or self._new_id("ident")
            if ident in self.meter_events:
                raise StripeError(400, "invalid_request_error",
                                  "An event already exists with identifier "
                                  + ident, param="identifier")
            e = copy.deepcopy(self.fixtures["billing.meter_event"])
            e.update(event_name=params["event_name"], identifier=ident,
                     payload=params["payload"],
                     timestamp=int(ts) if ts else now, created=now)
            self.meter_events[ident] = e
            return 200, e
        raise StripeError(404, "invalid_request_error",
                          "Unrecognized request URL (%s: %s)" % (method, path))
