#!/usr/bin/env python3
"""docs/openapi.yaml is tesserad's contract, and this test holds the server to it: starts
build/tesserad on a fresh state directory and
  - compares the document's routes with the server's own table (GET /api/v1/roles): a route
    either side lacks is a failure;
  - walks every documented operation with valid fixtures (tenants, users of the four roles, a
    shared template whose kernel does not exist, so no VM ever runs), checking that each answer's
    status is one the document lists for it, that each JSON body validates against the
    documented schema, and that each 202 carries Location: /api/v1/operations/{op};
  - the permission table: for every route and role, a request in the caller's own tenant
    answers 403 exactly when the role is below the route's least role, and docs/daemon.md's
    route table agrees with the server's, route by route;
  - tenants apart: another tenant's admin and viewer get 404 for every read, change and delete
    of the first tenant's VMs, volumes, templates and operations.
Prints "openapi: N passed, N failed"."""

import json
import os
import re
import subprocess
import sys
import tempfile
import time

import jsonschema
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tesserad import ROOT, TESSERAD, Daemon, UnixHTTPConnection, network_cleanup  # noqa: E402

SPEC = os.path.join(ROOT, "docs", "openapi.yaml")
GUIDE = os.path.join(ROOT, "docs", "daemon.md")
ROLES = ["viewer", "operator", "tenant-admin", "platform-admin"]
METHODS = ("get", "post", "put", "delete", "patch")
MIB = 1 << 20

passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what, flush=True)
    return cond


# ---- The document, as JSON Schema ----

def resolve(spec, node):
    """node with every $ref inlined and OpenAPI 3.0's `nullable` turned into JSON Schema's
    null type (draft 7), so that jsonschema can check answers against it."""
    if isinstance(node, list):
        return [resolve(spec, n) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        return resolve(spec, target)
    out = {k: resolve(spec, v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = out["enum"] + [None]
        else:
            out = {"anyOf": [{"type": "null"}, out]}
    return out


class Spec:
    def __init__(self, path):
        with open(path) as f:
            self.doc = yaml.safe_load(f)
        self.ops = {}  # (METHOD, path) -> the operation, with the path's parameters
        for path, item in self.doc["paths"].items():
            for m in METHODS:
                if m in item:
                    op = dict(item[m])
                    op["parameters"] = item.get("parameters", []) + op.get("parameters", [])
                    self.ops[(m.upper(), path)] = op

    def statuses(self, method, path):
        return sorted(int(s) for s in self.ops[(method, path)]["responses"])

    def response(self, method, path, status):
        return resolve(self.doc, self.ops[(method, path)]["responses"].get(str(status)))

    def request_schema(self, method, path):
        rb = self.ops[(method, path)].get("requestBody")
        if not rb:
            return None
        media = rb["content"].get("application/json")  # an upload's is octet-stream
        return resolve(self.doc, media["schema"]) if media else None


def validate(schema, value):
    """None when value fits schema, else the validator's message."""
    try:
        jsonschema.Draft7Validator(schema, format_checker=None).validate(value)
        return None
    except jsonschema.ValidationError as e:
        return "%s at %s" % (e.message[:300], "/".join(str(p) for p in e.absolute_path))


def check_document(spec):
    """What an OpenAPI validator would say first (Debian 12 packages none): the version, a
    unique operationId each, path parameters declared exactly as the path names them, a
    description for every response, and every schema valid JSON Schema once resolved."""
    check(spec.doc.get("openapi") == "3.0.3", "openapi: 3.0.3")
    ids = [op.get("operationId") for op in spec.ops.values()]
    check(None not in ids and len(set(ids)) == len(ids), "one unique operationId each: %s" % ids)
    for (method, path), op in sorted(spec.ops.items()):
        params = [resolve(spec.doc, p) for p in op["parameters"]]
        declared = {p["name"] for p in params if p["in"] == "path"}
        check(declared == set(re.findall(r"\{([^}]*)\}", path)),
              "%s %s declares the path parameters %s" % (method, path, sorted(declared)))
        check(all(p["in"] != "path" or p.get("required") for p in params),
              "%s %s: path parameters are required" % (method, path))
        for p in params:
            check(jsonschema.Draft7Validator.check_schema(p["schema"]) is None,
                  "%s %s: parameter %s has a schema" % (method, path, p["name"]))
        for status, resp in op["responses"].items():
            resp = resolve(spec.doc, resp)
            check(re.fullmatch(r"[1-5]\d\d", status) and resp.get("description"),
                  "%s %s %s: a status with a description" % (method, path, status))
            for media in (resp.get("content") or {}).values():
                jsonschema.Draft7Validator.check_schema(media["schema"])
        schema = spec.request_schema(method, path)
        if schema is not None:
            jsonschema.Draft7Validator.check_schema(schema)


# ---- Requests, each checked against the document ----

class Client:
    def __init__(self, d, spec):
        self.d, self.spec = d, spec
        self.exercised = {}  # (METHOD, path) -> set of statuses seen

    def raw(self, method, path, token, body=None, headers=None, data=None, stream=False):
        """One request; data is a raw body, headers extra ones. With stream, reads only the
        answer's head and first line (an event stream does not end) and closes."""
        c = UnixHTTPConnection(self.d.sock, timeout=90)
        h = {"Authorization": "Bearer " + token} if token is not None else {}
        h.update(headers or {})
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        headers = {k.lower(): v for k, v in r.getheaders()}
        if stream and r.status == 200:
            payload = r.readline()
            c.close()
            return r.status, None, headers, payload
        payload = r.read()
        c.close()
        try:
            doc = json.loads(payload) if payload else None
        except ValueError:
            doc = None  # not JSON: the schema check says so
        return r.status, doc, headers, payload

    def call(self, method, route, params=None, token=None, body=None, query="", want=None,
             what="", anon=False):
        """Sends METHOD route (with {x} from params) and checks the answer against the
        document: a listed status, a body of its schema, a 202's Location. Returns
        (status, doc)."""
        path = route
        for k, v in (params or {}).items():
            path = path.replace("{%s}" % k, v)
        tok = None if anon else token or self.d.token
        label = "%s %s%s %s" % (method, path, query, what)
        st, doc, headers, payload = self.raw(method, path + query, tok, body)
        self.exercised.setdefault((method, route), set()).add(st)
        if want is not None:
            check(st == want, "%s: got %d %s, want %d" % (label, st, payload[:300], want))
        if (method, route) not in self.spec.ops:
            return st, doc
        listed = self.spec.statuses(method, route)
        if not check(st in listed, "%s: status %d is not among the documented %s (%s)" %
                     (label, st, listed, payload[:200])):
            return st, doc
        resp = self.spec.response(method, route, st)
        content = (resp.get("content") or {}).get("application/json")
        if content:
            err = validate(content["schema"], doc)
            check(err is None, "%s: the %d body does not fit the document: %s\n  %s" %
                  (label, st, err, payload[:400]))
        else:
            check(not payload, "%s: %d should have no body, has %r" % (label, st, payload[:100]))
        if "Location" in (resp.get("headers") or {}):
            loc = headers.get("location", "")
            op = doc.get("operation", doc) if isinstance(doc, dict) else {}
            check(loc == "/api/v1/operations/%s" % op.get("id"),
                  "%s: Location %r names the operation %s" % (label, loc, op.get("id")))
        return st, doc

    def front(self, method, route, params=None, token=None, headers=None, data=None,
              stream=False, want=None, what=""):
        """A route of the HTTP front end (a stream, a websocket, an upload): like call(), with
        raw bodies and headers; a 200 stream answers its head and first line. Returns
        (status, doc, headers, payload)."""
        path = route
        for k, v in (params or {}).items():
            path = path.replace("{%s}" % k, v)
        label = "%s %s %s" % (method, path, what)
        st, doc, headers, payload = self.raw(method, path, token or self.d.token,
                                             headers=headers, data=data, stream=stream)
        self.exercised.setdefault((method, route), set()).add(st)
        if want is not None:
            check(st == want, "%s: got %d %s, want %d" % (label, st, payload[:300], want))
        listed = self.spec.statuses(method, route)
        if not check(st in listed, "%s: status %d is not among the documented %s (%s)" %
                     (label, st, listed, payload[:200])):
            return st, doc, headers, payload
        resp = self.spec.response(method, route, st)
        media = resp.get("content") or {}
        if "application/json" in media:
            err = validate(media["application/json"]["schema"], doc)
            check(err is None, "%s: the %d body does not fit the document: %s\n  %s" %
                  (label, st, err, payload[:400]))
        elif media:
            ctype = headers.get("content-type", "")
            check(any(ctype.startswith(m) for m in media),
                  "%s: Content-Type %r, documented %s" % (label, ctype, sorted(media)))
        if "Location" in (resp.get("headers") or {}):
            check(headers.get("location") == "/api/v1/operations/%s" % (doc or {}).get("id"),
                  "%s: Location %r names the operation" % (label, headers.get("location")))
        return st, doc, headers, payload

    def change(self, method, route, params=None, token=None, body=None, query="", want=None,
               what=""):
        """A change with a body: the fixture must fit the documented request schema, the same
        body with an unknown field must be a 400 (the server is as strict as the document),
        then the real request."""
        schema = self.spec.request_schema(method, route)
        if check(schema is not None, "%s %s: the document gives it no request body" %
                 (method, route)):
            err = validate(schema, body)
            check(err is None, "%s %s: the test's body %s does not fit the document: %s" %
                  (method, route, body, err))
            bad = dict(body, zz_unknown=1)
            check(validate(schema, bad) is not None,
                  "%s %s: the document allows unknown fields" % (method, route))
            self.call(method, route, params, token, bad, query, want=400, what="unknown field")
        return self.call(method, route, params, token, body, query, want=want, what=what)


# ---- (b) the document against the server's own table ----

def check_routes(cl, spec):
    st, roles = cl.call("GET", "/api/v1/roles", want=200)
    check(roles["roles"] == ROLES, "roles weakest first: %s" % roles["roles"])
    server = {(p["method"], p["path"]): p["role"] for p in roles["permissions"]}
    check(len(server) == len(roles["permissions"]), "the server's table has no duplicates")
    api = {k for k in spec.ops if k[1].startswith("/api/v1/")}  # /metrics is outside /roles
    for key in sorted(set(server) - api):
        check(False, "the server has %s %s; docs/openapi.yaml lacks it" % key)
    for method, path in sorted(api - set(server)):
        real = re.sub(r"\{[^}]*\}", "x0", path)
        st, _, _, _ = cl.raw(method, real, cl.d.token)
        check(False, "docs/openapi.yaml has %s %s; the server lacks it (answers %d)" %
              (method, path, st))
    check(set(server) == api, "document and server have the same %d routes" %
          len(server))
    # Every other method on a documented path: 405, with Allow naming the documented ones.
    error = resolve(spec.doc, spec.doc["components"]["schemas"]["Error"])
    for path in sorted(p for p in spec.doc["paths"] if p.startswith("/api/v1/")):
        documented = {m for (m, p) in spec.ops if p == path}
        real = re.sub(r"\{[^}]*\}", "x0", path)
        for m in ("GET", "POST", "PUT", "DELETE", "PATCH"):
            if m in documented:
                continue
            st, doc, headers, payload = cl.raw(m, real, cl.d.token, {} if m != "GET" else None)
            allow = {a.strip() for a in headers.get("allow", "").split(",") if a.strip()}
            check(st == 405 and allow == documented and validate(error, doc) is None,
                  "undocumented %s %s: %d Allow %r %s, want 405 Allow %s" %
                  (m, path, st, headers.get("allow"), payload[:120], sorted(documented)))
    return server


def guide_table():
    """{(METHOD, path): least role} from docs/daemon.md's table under "## Routes"."""
    rows, inside = {}, False
    with open(GUIDE) as f:
        for line in f:
            if line.startswith("## "):
                inside = line.strip() == "## Routes"
                continue
            if not inside or not line.startswith("| `"):
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            role = cells[-1]
            for m, p in re.findall(r"`(GET|POST|PUT|DELETE|PATCH) (/api/v1/[^`?\s]*)", cells[0]):
                check((m, p) not in rows, "docs/daemon.md lists %s %s twice" % (m, p))
                rows[(m, p)] = role
    return rows


def check_guide(server):
    rows = guide_table()
    for key in sorted(set(server) | set(rows)):
        check(rows.get(key) == server.get(key),
              "docs/daemon.md's route table says %s %s needs %s; the server says %s" %
              (key[0], key[1], rows.get(key), server.get(key)))


# ---- (c) every documented operation, walked with valid fixtures ----

class World:
    """The fixtures: tenants alpha and beta, a user of each role, a shared template."""

    def __init__(self, cl):
        self.cl = cl
        self.tok = {"platform-admin": cl.d.token}
        self.token_ids = {}
        self.seq = 0

    def fresh(self, prefix):
        self.seq += 1
        return "%s%d" % (prefix, self.seq)

    def user(self, tenant, name, role):
        self.cl.change("POST", "/api/v1/tenants/{tenant}/users", {"tenant": tenant},
                       body={"name": name, "role": role}, want=201)
        st, doc = self.cl.change("POST", "/api/v1/tokens", body={"tenant": tenant, "user": name,
                                                                 "description": "test " + name},
                                 want=201)
        self.token_ids[name] = doc["id"]
        return doc["token"]


def walk(cl, w):
    c = cl
    c.call("GET", "/api/v1/tenants", want=200)
    for t in ("alpha", "beta", "gamma"):
        c.change("POST", "/api/v1/tenants", body={"name": t}, want=201)
    c.change("POST", "/api/v1/tenants", body={"name": "alpha"}, want=409, what="taken")
    c.call("GET", "/api/v1/tenants/{tenant}", {"tenant": "alpha"}, want=200)
    c.call("GET", "/api/v1/tenants/{tenant}", {"tenant": "nobody"}, want=404)
    c.call("GET", "/api/v1/tenants/{tenant}", {"tenant": "Bad.Name"}, want=400)
    w.tok["tenant-admin"] = w.user("alpha", "ann", "tenant-admin")
    w.tok["operator"] = w.user("alpha", "oscar", "operator")
    w.tok["viewer"] = w.user("alpha", "vic", "viewer")
    w.tok["beta-admin"] = w.user("beta", "bob", "tenant-admin")
    w.tok["beta-viewer"] = w.user("beta", "val", "viewer")
    ann, oscar, vic = w.tok["tenant-admin"], w.tok["operator"], w.tok["viewer"]
    walk_login(c, w)
    c.call("GET", "/api/v1/tenants/{tenant}/users", {"tenant": "alpha"}, token=vic, want=200)
    w.user("alpha", "tmp", "operator")
    u = {"tenant": "alpha", "user": "tmp"}
    st, doc = c.change("PUT", "/api/v1/tenants/{tenant}/users/{user}", u, token=ann,
                       body={"role": "viewer"}, want=200)
    check(st == 200 and doc["role"] == "viewer", "a user's new role: %s" % doc)
    c.change("PUT", "/api/v1/tenants/{tenant}/users/{user}", {"tenant": "alpha", "user": "ann"},
             token=ann, body={"role": "viewer"}, want=409, what="oneself")
    c.call("PUT", "/api/v1/tenants/{tenant}/users/{user}", u, token=ann,
           body={"role": "platform-admin"}, want=400)
    c.call("DELETE", "/api/v1/tenants/{tenant}/users/{user}", u, token=ann, want=204)
    c.call("DELETE", "/api/v1/tenants/{tenant}/users/{user}", u, token=ann, want=404)
    c.call("GET", "/api/v1/tokens", token=ann, want=200)
    c.call("GET", "/api/v1/tokens", want=200)
    st, own = c.change("POST", "/api/v1/tokens", body={"description": "spare"}, want=201)
    c.change("POST", "/api/v1/tokens", body={"role": "viewer", "description": "narrow"},
             token=ann, want=201)

    # Quota and host.
    c.call("GET", "/api/v1/tenants/{tenant}/quota", {"tenant": "alpha"}, token=vic, want=200)
    c.change("PUT", "/api/v1/tenants/{tenant}/quota", {"tenant": "alpha"},
             body={"vcpus": 64, "memory_bytes": None, "disk_bytes": 1 << 40, "vms": 100},
             want=200)
    c.change("PUT", "/api/v1/tenants/{tenant}/quota", {"tenant": "gamma"}, body={"vms": 0},
             want=200)
    c.call("GET", "/api/v1/tenants/{tenant}/resources", {"tenant": "alpha"}, token=vic, want=200)
    c.change("PUT", "/api/v1/tenants/{tenant}/resources", {"tenant": "alpha"},
             body={"cpu": {"shares": 3000, "limit": 1.5}, "memory": {"limit_bytes": None}},
             want=200)
    c.call("GET", "/api/v1/host", token=vic, want=200)
    c.change("PUT", "/api/v1/host", body={"cpu_overcommit": 16, "memory_overcommit": 4}, want=200)
    c.call("GET", "/api/v1/pools", token=vic, want=200)

    # The shared template: the platform's volume and a kernel that does not exist, so that a
    # start fails at once and no VM ever runs.
    c.change("POST", "/api/v1/volumes", body={"name": "base-vol", "size_bytes": 4 * MIB},
             want=201)
    c.change("POST", "/api/v1/templates",
             body={"name": "base", "volume": "base-vol", "cpus": 1, "memory_bytes": 64 * MIB,
                   "boot": {"kernel": "/nonexistent/Image", "cmdline": "console=ttyS0"},
                   "os": "none"}, want=201)
    c.change("POST", "/api/v1/templates",
             body={"name": "base2", "volume": "base-vol", "boot": {"kernel": "/x"}},
             want=409, what="a template's volume")

    # A tenant's volumes and template.
    c.change("POST", "/api/v1/volumes", token=ann,
             body={"name": "data", "size_bytes": 8 * MIB, "format": "raw", "pool": "default"},
             want=201)
    c.change("POST", "/api/v1/volumes", token=ann, body={"name": "data", "size_bytes": MIB},
             want=409, what="taken")
    c.call("GET", "/api/v1/volumes", token=vic, want=200)
    c.call("GET", "/api/v1/volumes", want=200)
    c.call("GET", "/api/v1/volumes", query="?tenant=alpha", want=200)
    c.call("GET", "/api/v1/volumes/{name}", {"name": "data"}, token=vic, want=200)
    c.call("GET", "/api/v1/volumes/{name}", {"name": "nothing"}, token=vic, want=404)
    c.change("POST", "/api/v1/volumes/{name}/resize", {"name": "data"}, token=ann,
             body={"size_bytes": 16 * MIB}, want=200)
    c.change("POST", "/api/v1/volumes/{name}/resize", {"name": "data"}, token=ann,
             body={"size_bytes": 2 * MIB}, want=400, what="shrink")
    c.change("POST", "/api/v1/volumes/{name}/clone", {"name": "data"}, token=ann,
             body={"name": "data2", "mode": "full"}, want=201)
    c.change("POST", "/api/v1/volumes", token=ann, body={"name": "tbase", "size_bytes": 4 * MIB},
             want=201)
    c.change("POST", "/api/v1/volumes/{name}/clone", {"name": "tbase"}, token=ann,
             body={"name": "tlinked"}, want=201)
    c.change("POST", "/api/v1/templates", token=ann,
             body={"name": "mine", "volume": "tbase", "boot_from": "base", "cpus": 2,
                   "memory_bytes": 32 * MIB, "disk_bytes": 8 * MIB, "os": "mine"}, want=201)
    c.change("POST", "/api/v1/templates", token=ann,
             body={"name": "hostile", "volume": "data", "boot": {"kernel": "/etc/shadow"}},
             want=403, what="boot by a tenant")
    c.call("GET", "/api/v1/templates", token=vic, want=200)
    c.call("GET", "/api/v1/templates", want=200)
    c.call("GET", "/api/v1/templates/{name}", {"name": "mine"}, token=vic, want=200)
    c.call("GET", "/api/v1/templates/{name}", {"name": "base"}, token=vic, want=200)
    c.change("POST", "/api/v1/volumes/{name}/resize", {"name": "tbase"}, token=ann,
             body={"size_bytes": 8 * MIB}, want=409, what="a template's base")
    c.call("DELETE", "/api/v1/volumes/{name}", {"name": "tbase"}, token=ann, want=409)

    # VMs: created stopped; one created with "start" and one started by an operator, whose
    # operations fail quickly (the kernel does not exist).
    c.change("POST", "/api/v1/vms", token=ann,
             body={"name": "web", "template": "mine", "cpus": 1, "memory_bytes": 32 * MIB,
                   "disk_bytes": 8 * MIB, "clone": "linked", "restart_policy": "never",
                   "port_forwards": [{"proto": "tcp", "host_addr": "127.0.0.1",
                                      "host_port": 20022, "guest_port": 22}],
                   "cloud_init": {"hostname": "web", "user_data": "#!/bin/sh\necho hi\n",
                                  "network": {"mode": "static", "address": "10.0.2.15/24",
                                              "gateway": "10.0.2.2", "dns": ["10.0.2.3"]}}},
             want=201)
    c.change("POST", "/api/v1/vms", token=ann,
             body={"name": "web9", "template": "mine",
                   "port_forwards": [{"host_port": 20022, "guest_port": 80}]},
             want=409, what="a taken host port")
    c.change("POST", "/api/v1/vms", token=ann, body={"name": "web9", "template": "nothing"},
             want=404)
    st, doc = c.change("POST", "/api/v1/vms", token=ann,
                       body={"name": "web2", "template": "base", "start": True}, want=202)
    ops = [doc["operation"]["id"]] if st == 202 else []
    st, doc = c.call("POST", "/api/v1/vms/{name}/actions/{action}",
                     {"name": "web", "action": "start"}, token=oscar, want=202)
    if st == 202:
        ops.append(doc["id"])
    c.call("POST", "/api/v1/vms/{name}/actions/{action}", {"name": "web", "action": "fly"},
           token=oscar, want=404)
    c.call("GET", "/api/v1/operations", token=vic, want=200)
    c.call("GET", "/api/v1/operations", query="?tenant=alpha", want=200)
    for op in ops:
        c.call("GET", "/api/v1/operations/{op}", {"op": op}, token=vic, want=200)
        st, done = c.call("GET", "/api/v1/operations/{op}/wait", {"op": op}, token=vic,
                          query="?timeout=60", want=200)
        check(st == 200 and done["status"] == "failure" and done["error"],
              "a start with no kernel fails with a reason: %s" % done)
    c.call("GET", "/api/v1/operations/{op}/wait", {"op": "0" * 16}, token=vic, want=404)
    c.call("GET", "/api/v1/operations/{op}/wait", {"op": ops[0] if ops else "0" * 16},
           token=vic, query="?timeout=forever", want=400)
    c.call("GET", "/api/v1/vms", token=vic, want=200)
    c.call("GET", "/api/v1/vms", want=200)
    walk_networks(c, w)
    walk_secgroups(c, w)
    walk_routers(c, w)
    st, vm = c.call("GET", "/api/v1/vms/{name}", {"name": "web"}, token=vic, want=200)
    check(st == 200 and vm["state"] == "error" and vm["error"], "the failed start: %s" % vm)
    c.call("GET", "/api/v1/vms/{name}/log", {"name": "web"}, token=vic, want=200)
    c.call("GET", "/api/v1/vms/{name}/stats", {"name": "web"}, token=vic, want=200)
    c.change("PUT", "/api/v1/vms/{name}/resources", {"name": "web"},
             body={"cpu": {"shares": 2000, "limit": 0.5}, "memory": {"limit_bytes": None}},
             token=ann, want=200)
    walk_front(c, w)
    walk_snapshots(c, w)
    c.call("POST", "/api/v1/vms/{name}/actions/{action}", {"name": "web", "action": "stop"},
           token=oscar, want=409, what="stop a VM in error")
    c.call("DELETE", "/api/v1/vms/{name}", {"name": "web2"}, token=ann, want=204)
    c.call("DELETE", "/api/v1/templates/{name}", {"name": "mine"}, token=ann, want=409,
           what="a VM was made from it")
    _, doc = c.call("DELETE", "/api/v1/tenants/{tenant}", {"tenant": "alpha"}, want=409,
                    what="it owns objects")
    msg = ((doc or {}).get("error") or {}).get("message", "")
    check("VM" in msg and "delete them first" in msg,
          "the refusal names what the tenant still owns: %r" % msg)
    return own


WS_HANDSHAKE = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


PASSWORD = "correct horse battery"


def walk_login(c, w):
    """Passwords set by oneself and by a tenant-admin, a login's session token and its end."""
    ann, vic = w.tok["tenant-admin"], w.tok["viewer"]
    c.call("PUT", "/api/v1/password", token=ann, body={"password": PASSWORD}, want=204,
           what="one's own")
    c.call("PUT", "/api/v1/password", token=ann, body={"user": "oscar", "password": PASSWORD},
           want=204, what="a tenant-admin sets an operator's")
    c.call("PUT", "/api/v1/password", token=vic, body={"user": "oscar", "password": "x" * 9},
           want=403, what="a viewer sets another's")
    c.call("PUT", "/api/v1/password", token=ann, body={"user": "nobody", "password": PASSWORD},
           want=404, what="no such user")
    c.call("PUT", "/api/v1/password", token=ann, body={"password": "short"}, want=400,
           what="too short")
    c.call("PUT", "/api/v1/password", token=w.tok["beta-admin"],
           body={"user": "oscar", "password": PASSWORD}, want=404,
           what="another tenant's user is not there")
    st, doc = c.call("POST", "/api/v1/login", anon=True, want=201, what="oscar",
                     body={"tenant": "alpha", "user": "oscar", "password": PASSWORD})
    session = doc["token"] if st == 201 else ""
    check(st == 201 and doc["role"] == "operator" and doc["expires"] > time.time() + 7 * 3600,
          "a login is a token with the user's role for 8 hours: %s" % doc)
    c.call("GET", "/api/v1/tokens", token=session, want=200, what="with the session")
    for body, what in (({"tenant": "alpha", "user": "oscar", "password": PASSWORD + "x"},
                        "a wrong password"),
                       ({"tenant": "alpha", "user": "vic", "password": PASSWORD},
                        "a user without a password"),
                       ({"tenant": "beta", "user": "oscar", "password": PASSWORD},
                        "the wrong tenant"),
                       ({"user": "nobody", "password": PASSWORD}, "no such user")):
        st, doc = c.call("POST", "/api/v1/login", anon=True, body=body, want=401, what=what)
        check(st == 401 and doc["error"]["message"] == "wrong tenant, user or password",
              "%s gets the one message: %s" % (what, doc))
    c.call("POST", "/api/v1/login", anon=True, body={"user": "oscar"}, want=400,
           what="no password")
    c.call("POST", "/api/v1/login", anon=True, want=400, what="a ttl of 0",
           body={"tenant": "alpha", "user": "oscar", "password": PASSWORD, "ttl": 0})
    # Guessing one name: free tries, then it must wait, and a right password waits too.
    for i in range(5):
        c.call("POST", "/api/v1/login", anon=True, want=401, what="guess %d" % i,
               body={"tenant": "alpha", "user": "ann", "password": "guess-%d-xx" % i})
    st, doc = c.call("POST", "/api/v1/login", anon=True, want=429, what="the sixth guess",
                     body={"tenant": "alpha", "user": "ann", "password": PASSWORD})
    check("try again in" in (doc or {}).get("error", {}).get("message", ""),
          "the 429 says how long to wait: %s" % doc)
    c.call("POST", "/api/v1/login", anon=True, want=201, what="another name is not held up",
           body={"tenant": "alpha", "user": "oscar", "password": PASSWORD, "ttl": 1})
    time.sleep(1.2)
    st, doc = c.call("POST", "/api/v1/login", anon=True, want=201, what="after the wait",
                     body={"tenant": "alpha", "user": "ann", "password": PASSWORD, "ttl": 1})
    short = doc["token"] if st == 201 else ""
    c.call("GET", "/api/v1/tokens", token=short, want=200, what="a 1 s session, at once")
    time.sleep(2.1)
    c.call("GET", "/api/v1/tokens", token=short, want=401, what="a 1 s session, expired")
    # Logout revokes the session at once.
    c.call("POST", "/api/v1/logout", token=session, want=204)
    c.call("GET", "/api/v1/tokens", token=session, want=401, what="after logout")
    st, doc = c.call("GET", "/api/v1/audit", token=ann, want=200)
    logins = [a for a in doc["audit"] if a["action"] == "session.login"]
    check(any(a["status"] == 201 and a["actor"] == "alpha/oscar" for a in logins) and
          any(a["status"] == 429 and a["target"] == "alpha/ann" for a in logins),
          "logins, good and refused, are in the tenant's audit log: %s" % logins[:4])


def walk_front(c, w):
    """The HTTP front end's routes: the event stream, the console's handshake (no VM runs
    here: 409), an upload of a raw image, and /metrics."""
    ann, vic = w.tok["tenant-admin"], w.tok["viewer"]
    st, _, headers, first = c.front("GET", "/api/v1/events", token=vic, stream=True, want=200)
    check(st == 200 and first.startswith(b":"), "the event stream opens with a comment: %r" %
          first)
    c.front("GET", "/api/v1/events", token="0" * 43, want=401, what="a bad token")
    vm = {"name": "web"}
    c.front("GET", "/api/v1/vms/{name}/console", vm, token=w.tok["operator"],
            headers=WS_HANDSHAKE, want=409, what="a VM that is not running")
    c.front("GET", "/api/v1/vms/{name}/console", vm, token=w.tok["operator"], want=400,
            what="no upgrade headers")
    c.front("GET", "/api/v1/vms/{name}/console", vm, token=w.tok["operator"],
            headers=dict(WS_HANDSHAKE, **{"Sec-WebSocket-Version": "8"}), want=426,
            what="websocket version 8")
    c.front("GET", "/api/v1/vms/{name}/console", {"name": "nothing"}, token=w.tok["operator"],
            headers=WS_HANDSHAKE, want=404)
    # A browser's way in: a ticket, good once, instead of the Authorization header.
    st, t = c.call("POST", "/api/v1/vms/{name}/console-ticket", vm, token=w.tok["operator"],
                   want=201)
    if st == 201:
        st, _, _, _ = c.raw("GET", "/api/v1/vms/web/console?ticket=" + t["ticket"], None,
                            headers=WS_HANDSHAKE)
        check(st == 409, "the ticket opens the console as its caller (409: not running): %d" % st)
        st, doc, _, _ = c.raw("GET", "/api/v1/vms/web/console?ticket=" + t["ticket"], None,
                              headers=WS_HANDSHAKE)
        check(st == 401 and doc["error"]["field"] == "ticket", "a ticket is good once: %d" % st)
    c.call("POST", "/api/v1/vms/{name}/console-ticket", vm, token=vic, want=403)
    c.call("POST", "/api/v1/vms/{name}/console-ticket", {"name": "nothing"},
           token=w.tok["operator"], want=404)
    # An upload: a raw image of 1 MiB with a pattern, into a raw volume of 2 MiB.
    c.change("POST", "/api/v1/volumes", token=ann,
             body={"name": "upvol", "size_bytes": 2 * MIB, "format": "raw"}, want=201)
    image = bytes(range(256)) * (MIB // 256)
    octet = {"Content-Type": "application/octet-stream"}
    st, op, _, _ = c.front("PUT", "/api/v1/volumes/{name}/data", {"name": "upvol"}, token=ann,
                           headers=octet, data=image, want=202)
    if st == 202:
        st, done = c.call("GET", "/api/v1/operations/{op}/wait", {"op": op["id"]}, token=ann,
                          query="?timeout=60", want=200)
        check(st == 200 and done["action"] == "volume.upload" and done["status"] == "success",
              "the upload is imported: %s" % done)
    st, vol = c.call("GET", "/api/v1/volumes/{name}", {"name": "upvol"}, token=ann, want=200)
    check(st == 200 and vol["size_bytes"] == MIB and vol["used_by"] is None,
          "the volume has the image's size and is free again: %s" % vol)
    c.front("PUT", "/api/v1/volumes/{name}/data", {"name": "vm-web"}, token=ann, headers=octet,
            data=image[:4096], want=409, what="a VM's disk")
    c.front("PUT", "/api/v1/volumes/{name}/data", {"name": "nothing"}, token=ann,
            headers=octet, data=image[:4096], want=404)
    # /metrics: any valid token, Prometheus text.
    st, _, headers, text = c.front("GET", "/metrics", token=vic, want=200)
    check(st == 200 and b"# TYPE " in text, "metrics in the exposition format: %r" % text[:200])
    c.front("GET", "/metrics", token="0" * 43, want=401, what="a bad token")


def walk_networks(c, w):
    """A virtual network without DHCP (no dnsmasq needed), a VM with a NIC on it, and the
    refusals: a bad subnet, a taken name, a network in use, a VM naming no network."""
    ann, vic = w.tok["tenant-admin"], w.tok["viewer"]
    st, net = c.change("POST", "/api/v1/networks", token=ann,
                       body={"name": "lan", "subnet": "10.0.0.0/24", "gateway": "10.0.0.254",
                             "dhcp": False}, want=201)
    check(st == 201 and net["gateway"] == "10.0.0.254" and net["dhcp"] is False,
          "the network as asked: %s" % net)
    c.change("POST", "/api/v1/networks", token=ann, body={"name": "lan", "subnet": "10.1.0.0/24",
                                                          "dhcp": False}, want=409, what="taken")
    c.change("POST", "/api/v1/networks", token=ann, body={"name": "bad", "subnet": "10.1.0.1/24"},
             want=400, what="host bits set")
    c.change("POST", "/api/v1/networks", token=ann, body={"name": "bad", "subnet": "10.1.0.0/33"},
             want=400, what="a prefix over 32")
    c.call("GET", "/api/v1/networks", token=vic, want=200)
    c.call("GET", "/api/v1/networks/{name}", {"name": "lan"}, token=vic, want=200)
    c.call("GET", "/api/v1/networks/{name}", {"name": "nothing"}, token=vic, want=404)
    st, chk = c.call("GET", "/api/v1/networks/{name}/check", {"name": "lan"}, token=vic, want=200)
    check(st == 200 and chk["ok"] is True and chk["drift"] == [],
          "a network just made has no drift: %s" % chk)
    c.call("POST", "/api/v1/networks/{name}/repair", {"name": "lan"}, token=vic, want=403,
           what="a viewer repairs")
    st, chk = c.call("POST", "/api/v1/networks/{name}/repair", {"name": "lan"}, token=ann,
                     want=200)
    check(st == 200 and chk["ok"] is True, "a repair answers the check after it: %s" % chk)
    st, vm = c.change("POST", "/api/v1/vms", token=ann,
                      body={"name": "onlan", "template": "mine",
                            "nics": [{"network": "lan"}, {"network": "lan"}]}, want=201)
    check(st == 201 and [n["network"] for n in vm["nics"]] == ["lan", "lan"] and
          len({n["mac"] for n in vm["nics"]}) == 2 and len({n["tap"] for n in vm["nics"]}) == 2 and
          [n["ip"] for n in vm["nics"]] == ["10.0.0.1", "10.0.0.2"],
          "the VM's two NICs are on the network, each with its own MAC, tap and address (the "
          "lowest free: the gateway is 10.0.0.254): %s" % vm)
    c.change("POST", "/api/v1/vms", token=ann,
             body={"name": "x", "template": "mine", "nics": [{"network": "nothing"}]}, want=404)
    # A NIC may ask for its address: a free host address of the subnet, not the gateway's.
    st, vm = c.change("POST", "/api/v1/vms", token=ann,
                      body={"name": "fixed", "template": "mine",
                            "nics": [{"network": "lan", "ip": "10.0.0.77"}]}, want=201)
    check(st == 201 and vm["nics"][0]["ip"] == "10.0.0.77", "the address asked for: %s" % vm)
    for ip, code, what in (("10.0.0.77", 409, "a taken address"),
                           ("10.0.0.254", 400, "the gateway's address"),
                           ("10.9.0.5", 400, "an address outside the subnet"),
                           ("10.0.0.0", 400, "the network's own address"),
                           ("nonsense", 400, "not an address")):
        c.change("POST", "/api/v1/vms", token=ann,
                 body={"name": "x", "template": "mine", "nics": [{"network": "lan", "ip": ip}]},
                 want=code, what=what)
    c.call("DELETE", "/api/v1/vms/{name}", {"name": "fixed"}, token=ann, want=204)
    # A network across hosts (VXLAN; this daemon has --vxlan-local), its peers replaced live;
    # a VLAN tag needs a trunk this daemon has not.
    vni = 100000 + os.getpid() % 100000
    st, net = c.change("POST", "/api/v1/networks", token=ann,
                       body={"name": "span", "subnet": "10.4.0.0/24", "dhcp": False,
                             "vxlan": {"vni": vni, "peers": ["192.0.2.2"]}}, want=201)
    check(st == 201 and net["vxlan"] == {"vni": vni, "peers": ["192.0.2.2"]},
          "the network spans hosts: %s" % net)
    c.change("POST", "/api/v1/networks", token=ann,
             body={"name": "span2", "subnet": "10.4.0.0/24", "dhcp": False,
                   "vxlan": {"vni": vni, "peers": []}}, want=409, what="a VNI taken")
    for bad in ({"vni": 0, "peers": []}, {"vni": 1 << 24, "peers": []}, {"vni": 5},
                {"vni": 5, "peers": ["192.0.2.1"]}, {"vni": 5, "peers": ["239.1.1.1"]},
                {"vni": 5, "peers": [], "group": "x"}, "5"):
        c.call("POST", "/api/v1/networks", token=ann,
               body={"name": "span2", "subnet": "10.4.0.0/24", "dhcp": False, "vxlan": bad},
               want=400, what="vxlan %r" % (bad,))
    st, net = c.change("PUT", "/api/v1/networks/{name}/vxlan", {"name": "span"}, token=ann,
                       body={"peers": ["192.0.2.3", "192.0.2.4"]}, want=200)
    check(st == 200 and net["vxlan"]["peers"] == ["192.0.2.3", "192.0.2.4"],
          "peers replaced: %s" % net)
    c.call("PUT", "/api/v1/networks/{name}/vxlan", {"name": "span"}, token=vic,
           body={"peers": []}, want=403, what="a viewer")
    c.change("PUT", "/api/v1/networks/{name}/vxlan", {"name": "span"}, token=ann,
             body={"peers": ["192.0.2.3", "192.0.2.3"]}, want=400, what="a peer twice")
    c.change("PUT", "/api/v1/networks/{name}/vxlan", {"name": "lan"}, token=ann,
             body={"peers": []}, want=409, what="a network without vxlan")
    c.call("PUT", "/api/v1/networks/{name}/vxlan", {"name": "nothing"}, token=ann,
           body={"peers": []}, want=404, what="no such network")
    c.call("DELETE", "/api/v1/networks/{name}", {"name": "span"}, token=ann, want=204)
    c.change("POST", "/api/v1/networks", token=ann,
             body={"name": "tagged", "subnet": "10.5.0.0/24", "dhcp": False, "vlan": 100},
             want=409, what="a VLAN tag without --vlan-trunk")
    c.call("POST", "/api/v1/networks", token=ann,
           body={"name": "tagged", "subnet": "10.5.0.0/24", "dhcp": False, "vlan": 4095},
           want=400, what="a tag over 4094")
    # A /29 has 5 addresses besides its gateway's: a 6th NIC finds none.
    c.change("POST", "/api/v1/networks", token=ann,
             body={"name": "tiny", "subnet": "10.3.0.0/29", "dhcp": False}, want=201)
    c.change("POST", "/api/v1/vms", token=ann,
             body={"name": "t1", "template": "mine", "nics": [{"network": "tiny"}] * 4}, want=201)
    st, vm = c.change("POST", "/api/v1/vms", token=ann,
                      body={"name": "t2", "template": "mine", "nics": [{"network": "tiny"}]},
                      want=201)
    check(st == 201 and vm["nics"][0]["ip"] == "10.3.0.6", "the last address: %s" % vm)
    c.change("POST", "/api/v1/vms", token=ann,
             body={"name": "t3", "template": "mine", "nics": [{"network": "tiny"}]}, want=409,
             what="a full network")
    for n in ("t1", "t2"):
        c.call("DELETE", "/api/v1/vms/{name}", {"name": n}, token=ann, want=204)
    c.call("DELETE", "/api/v1/networks/{name}", {"name": "tiny"}, token=ann, want=204)
    c.call("DELETE", "/api/v1/networks/{name}", {"name": "lan"}, token=ann, want=409,
           what="in use")
    c.call("DELETE", "/api/v1/vms/{name}", {"name": "onlan"}, token=ann, want=204)
    c.call("DELETE", "/api/v1/networks/{name}", {"name": "lan"}, token=ann, want=204)
    c.call("DELETE", "/api/v1/networks/{name}", {"name": "lan"}, token=ann, want=404)
    # A tenant holds 16 networks at most (each is a namespace and a dnsmasq on the host).
    for i in range(16):
        c.call("POST", "/api/v1/networks", query="?tenant=gamma",
               body={"name": "cap%d" % i, "subnet": "10.2.0.0/24", "dhcp": False}, want=201)
    c.change("POST", "/api/v1/networks", query="?tenant=gamma",
             body={"name": "cap16", "subnet": "10.2.0.0/24", "dhcp": False}, want=409,
             what="a 17th network")
    for i in range(16):
        c.call("DELETE", "/api/v1/networks/{name}", {"name": "cap%d" % i}, query="?tenant=gamma",
               want=204)
    # One left for the cross-tenant probes (removed at the end).
    c.change("POST", "/api/v1/networks", token=ann,
             body={"name": "lan2", "subnet": "10.0.0.0/24", "dhcp": False}, want=201)


def walk_secgroups(c, w):
    """Security groups on the network lan2 (no DHCP): a group and its rules, a VM NIC in it, a
    live change of the NIC's groups, and the refusals: hostile rules (each 400 naming its
    field), unknown groups, a group in use."""
    ann, vic = w.tok["tenant-admin"], w.tok["viewer"]
    sg, one = "/api/v1/security-groups", "/api/v1/security-groups/{name}"
    st, g = c.change("POST", sg, token=ann,
                     body={"name": "web", "description": "web servers",
                           "rules": [{"direction": "ingress", "protocol": "tcp", "ports": "80"},
                                     {"direction": "ingress", "protocol": "icmp",
                                      "peer": "10.0.0.0/8"}]}, want=201)
    check(st == 201 and [(r["id"], r["peer"], r.get("ports")) for r in g["rules"]] ==
          [(1, "0.0.0.0/0", "80"), (2, "10.0.0.0/8", None)], "the group as asked: %s" % g)
    c.change("POST", sg, token=ann, body={"name": "web"}, want=409, what="taken")
    for rule, field in (({"direction": "sideways"}, "rules[0].direction"),
                        ({"direction": "ingress", "protocol": "sctp"}, "rules[0].protocol"),
                        ({"direction": "ingress", "protocol": "tcp", "ports": "0"},
                         "rules[0].ports"),
                        ({"direction": "ingress", "protocol": "tcp", "ports": "90-80"},
                         "rules[0].ports"),
                        ({"direction": "ingress", "protocol": "icmp", "ports": "80"},
                         "rules[0].ports"),
                        ({"direction": "ingress", "peer": "10.0.0.1/8"}, "rules[0].peer"),
                        ({"direction": "ingress", "peer": "group:Bad;"}, "rules[0].peer"),
                        ({"direction": "ingress", "ports": 80}, "rules[0].ports"),
                        ({"protocol": "tcp"}, "rules[0].direction")):
        st, doc = c.call("POST", sg, token=ann, body={"name": "bad", "rules": [rule]}, want=400,
                         what=str(rule))
        check(st == 400 and doc["error"]["field"] == field,
              "%s: the error names %s: %s" % (rule, field, doc))
    c.call("POST", sg, token=ann, want=404, what="a peer group that does not exist",
           body={"name": "bad", "rules": [{"direction": "ingress", "peer": "group:nothing"}]})
    st, g = c.change("POST", sg, token=ann, want=201,
                     body={"name": "ssh", "rules": [{"direction": "ingress", "protocol": "tcp",
                                                     "ports": "22", "peer": "group:web"}]})
    c.call("GET", sg, token=vic, want=200)
    c.call("GET", one, {"name": "web"}, token=vic, want=200)
    c.call("GET", one, {"name": "nothing"}, token=vic, want=404)
    st, r = c.change("POST", one + "/rules", {"name": "web"}, token=ann,
                     body={"direction": "ingress", "protocol": "tcp", "ports": "8000-8080"},
                     want=201)
    check(st == 201 and r["id"] == 3 and r["ports"] == "8000-8080", "a third rule: %s" % r)
    c.call("POST", one + "/rules", {"name": "web"}, token=ann, body={"direction": "up"},
           want=400)
    c.call("DELETE", one + "/rules/{rule}", {"name": "web", "rule": "3"}, token=ann, want=204)
    c.call("DELETE", one + "/rules/{rule}", {"name": "web", "rule": "3"}, token=ann, want=404)
    c.call("DELETE", one + "/rules/{rule}", {"name": "web", "rule": "x1"}, token=ann, want=404)
    st, g = c.change("PUT", one, {"name": "web"}, token=ann,
                     body={"rules": [{"direction": "egress", "protocol": "udp", "ports": "53"}]},
                     want=200)
    check(st == 200 and g["rules"] == [{"id": 1, "direction": "egress", "protocol": "udp",
                                        "ports": "53", "peer": "0.0.0.0/0"}] and
          g["description"] == "web servers", "the rules replaced, the description kept: %s" % g)
    st, vm = c.change("POST", "/api/v1/vms", token=ann,
                      body={"name": "sgvm", "template": "mine",
                            "nics": [{"network": "lan2", "security_groups": ["web"]}]}, want=201)
    check(st == 201 and vm["nics"][0]["security_groups"] == ["web"], "the NIC in web: %s" % vm)
    c.call("POST", "/api/v1/vms", token=ann, want=404, what="a group that does not exist",
           body={"name": "x", "template": "mine",
                 "nics": [{"network": "lan2", "security_groups": ["nothing"]}]})
    c.call("POST", "/api/v1/vms", token=ann, want=400, what="a group named twice",
           body={"name": "x", "template": "mine",
                 "nics": [{"network": "lan2", "security_groups": ["web", "web"]}]})
    nic = "/api/v1/vms/{name}/nics/{nic}/security-groups"
    st, vm = c.change("PUT", nic, {"name": "sgvm", "nic": "0"}, token=ann,
                      body={"security_groups": ["web", "ssh"]}, want=200)
    check(st == 200 and vm["nics"][0]["security_groups"] == ["web", "ssh"],
          "the NIC's groups changed: %s" % vm)
    c.call("PUT", nic, {"name": "sgvm", "nic": "1"}, token=ann,
           body={"security_groups": ["web"]}, want=404, what="no NIC 1")
    c.call("PUT", nic, {"name": "sgvm", "nic": "x"}, token=ann,
           body={"security_groups": ["web"]}, want=404, what="no NIC x")
    st, doc = c.call("DELETE", one, {"name": "web"}, token=ann, want=409, what="in use")
    check(st == 409 and "sgvm" in doc["error"]["message"], "the 409 names the VM: %s" % doc)
    st, vm = c.change("PUT", nic, {"name": "sgvm", "nic": "0"}, token=ann,
                      body={"security_groups": []}, want=200)
    check(st == 200 and "security_groups" not in vm["nics"][0], "the NIC unfiltered: %s" % vm)
    c.call("DELETE", one, {"name": "web"}, token=ann, want=409, what="the peer of ssh's rule")
    c.call("DELETE", one, {"name": "ssh"}, token=ann, want=204)
    c.call("DELETE", one, {"name": "web"}, token=ann, want=204)
    c.call("DELETE", one, {"name": "web"}, token=ann, want=404)
    c.call("DELETE", "/api/v1/vms/{name}", {"name": "sgvm"}, token=ann, want=204)
    # One left for the cross-tenant probes (removed at the end).
    c.change("POST", sg, token=ann, body={"name": "web2"}, want=201)


# A bridge of the host standing for the way out (docs/networks.md, "Routers and NAT"): nothing
# is plugged into it, and it goes at the end.
EXT_BRIDGE = "tsrt-oa%d" % (os.getpid() % 100000)
EXT_POOL = "198.51.100.10-198.51.100.250"


def walk_routers(c, w):
    """An external network (the platform's), a router joining a network and the outside, its
    sub-resources (attach, forward, floating IP and their deletes), PUT, and the refusals: a
    tenant making an external network, a bad pool, overlapping subnets, a forward into no
    network, deleting a network or an external network in use."""
    ann, vic = w.tok["tenant-admin"], w.tok["viewer"]
    subprocess.run(["ip", "link", "add", EXT_BRIDGE, "type", "bridge"], check=True)
    ext = {"name": "ext", "bridge": EXT_BRIDGE, "subnet": "198.51.100.0/24",
           "gateway": "198.51.100.1", "pool": EXT_POOL}
    c.change("POST", "/api/v1/external-networks", body=ext, want=201)
    c.call("POST", "/api/v1/external-networks", token=ann, body=dict(ext, name="mine"),
           want=403, what="a tenant's")
    c.change("POST", "/api/v1/external-networks", body=dict(ext, name="e2", subnet="198.51.0.0/16"),
             want=409, what="an overlapping subnet")
    c.change("POST", "/api/v1/external-networks",
             body=dict(ext, name="e2", pool="198.51.100.1-198.51.100.9"), want=400,
             what="a pool holding the gateway")
    st, doc = c.call("GET", "/api/v1/external-networks", token=vic, want=200)
    check(st == 200 and doc["external_networks"] == [
        {"name": "ext", "subnet": "198.51.100.0/24", "gateway": "198.51.100.1"}],
        "a tenant sees no bridge or pool: %s" % doc)
    c.call("GET", "/api/v1/external-networks/{name}", {"name": "ext"}, want=200)
    c.call("GET", "/api/v1/external-networks/{name}", {"name": "nothing"}, want=404)
    for n, sub in (("rnet", "10.20.0.0/24"), ("rnet2", "10.21.0.0/24"), ("rover", "10.20.0.0/16")):
        c.change("POST", "/api/v1/networks", token=ann,
                 body={"name": n, "subnet": sub, "dhcp": False}, want=201)
    st, gw = c.change("POST", "/api/v1/routers", token=ann,
                      body={"name": "gw", "external_network": "ext", "networks": ["rnet"]},
                      want=201)
    check(st == 201 and gw["external_ip"] == "198.51.100.10" and gw["snat"] is True,
          "the router has the pool's first address: %s" % gw)
    n = {"name": "gw"}
    c.call("GET", "/api/v1/routers", token=vic, want=200)
    c.call("GET", "/api/v1/routers/{name}", n, token=vic, want=200)
    c.change("POST", "/api/v1/routers/{name}/networks", n, token=ann, body={"network": "rover"},
             want=409, what="overlapping networks")
    c.change("POST", "/api/v1/routers/{name}/networks", n, token=ann, body={"network": "rnet2"},
             want=201)
    c.change("POST", "/api/v1/routers/{name}/port-forwards", n, token=ann,
             body={"protocol": "tcp", "external_port": 8080, "ip": "10.20.0.5", "port": 80},
             want=201)
    c.change("POST", "/api/v1/routers/{name}/port-forwards", n, token=ann,
             body={"protocol": "tcp", "external_port": 8081, "ip": "10.99.0.5"}, want=400,
             what="an address behind no network of the router")
    c.call("POST", "/api/v1/routers/{name}/port-forwards", n, token=ann,
           body={"protocol": "sctp", "external_port": 8081, "ip": "10.20.0.5"}, want=400,
           what="a protocol")
    st, doc = c.change("POST", "/api/v1/routers/{name}/floating-ips", n, token=ann,
                       body={"ip": "10.21.0.6"}, want=201)
    fip = doc["floating_ips"][0]["external_ip"] if st == 201 else "198.51.100.11"
    check(fip == "198.51.100.11", "the floating IP is the next pool address: %s" % fip)
    c.change("PUT", "/api/v1/routers/{name}", n, token=ann, body={"snat": False}, want=200)
    c.change("PUT", "/api/v1/routers/{name}", n, token=ann, body={"external_ip": "198.51.100.99"},
             want=409, what="the daemon's address")
    c.call("DELETE", "/api/v1/routers/{name}/port-forwards/{protocol}/{port}",
           {"name": "gw", "protocol": "tcp", "port": "8080"}, token=ann, want=200)
    c.call("DELETE", "/api/v1/routers/{name}/port-forwards/{protocol}/{port}",
           {"name": "gw", "protocol": "tcp", "port": "8080"}, token=ann, want=404)
    c.call("DELETE", "/api/v1/routers/{name}/floating-ips/{address}",
           {"name": "gw", "address": fip}, token=ann, want=200)
    c.call("DELETE", "/api/v1/routers/{name}/networks/{network}",
           {"name": "gw", "network": "rnet2"}, token=ann, want=200)
    c.call("DELETE", "/api/v1/routers/{name}/networks/{network}",
           {"name": "gw", "network": "rnet2"}, token=ann, want=404)
    c.call("DELETE", "/api/v1/networks/{name}", {"name": "rnet"}, token=ann, want=409,
           what="attached to a router")
    c.call("DELETE", "/api/v1/external-networks/{name}", {"name": "ext"}, want=409,
           what="a router uses it")
    for n in ("rnet2", "rover"):
        c.call("DELETE", "/api/v1/networks/{name}", {"name": n}, token=ann, want=204)
    # Router gw, network rnet and the external network stay for the cross-tenant probes and the
    # permission table; walk_deletes() removes them.


def walk_snapshots(c, w):
    """Snapshots of a qcow2 volume and of a stopped VM's disk, a clone of a stopped VM and a
    template made from it."""
    ann, oscar, vic = w.tok["tenant-admin"], w.tok["operator"], w.tok["viewer"]
    for coll, name in (("volumes", "snapvol"), ("vms", "web")):
        base = "/api/v1/%s/{name}/snapshots" % coll
        n = {"name": name}
        if coll == "volumes":
            c.change("POST", "/api/v1/volumes", token=ann,
                     body={"name": name, "size_bytes": 4 * MIB}, want=201)
        st, doc = c.call("GET", base, n, token=vic, want=200)
        check(st == 200 and doc["snapshots"] == [], "%s %s has no snapshots yet: %s" %
              (coll, name, doc))
        st, doc = c.change("POST", base, n, token=ann, body={"name": "s1"}, want=201)
        check(st == 201 and [s["name"] for s in doc["snapshots"]] == ["s1"],
              "%s %s: one snapshot: %s" % (coll, name, doc))
        c.change("POST", base, n, token=ann, body={"name": "s1"}, want=409, what="taken")
        c.change("POST", base, n, token=ann, body={"name": "s2"}, want=201)
        st, doc = c.call("POST", base + "/{snap}/revert", dict(n, snap="s1"),
                         token=ann if coll == "volumes" else oscar, want=200)
        c.call("POST", base + "/{snap}/revert", dict(n, snap="nope"), token=ann, want=404)
        c.call("POST", base + "/{snap}/revert", dict(n, snap="Bad.Name"), token=ann, want=400)
        c.call("DELETE", base + "/{snap}", dict(n, snap="s2"), token=ann, want=204)
        c.call("DELETE", base + "/{snap}", dict(n, snap="s2"), token=ann, want=404)
        c.call("DELETE", base + "/{snap}", dict(n, snap="s1"), token=ann, want=204)
        st, doc = c.call("GET", base, n, token=vic, want=200)
        check(st == 200 and doc["snapshots"] == [], "%s %s: all deleted: %s" % (coll, name, doc))
    c.call("GET", "/api/v1/volumes/{name}/snapshots", {"name": "upvol"}, token=vic, want=409,
           what="a raw volume")
    c.change("POST", "/api/v1/volumes/{name}/snapshots", {"name": "vm-web"}, token=ann,
             body={"name": "s1"}, want=409, what="a VM's disk, through the volume")
    # A clone of the stopped VM, and a template of its disk.
    st, vm = c.change("POST", "/api/v1/vms/{name}/clone", {"name": "web"}, token=ann,
                      body={"name": "webclone"}, want=201)
    check(st == 201 and vm["state"] == "stopped" and vm["port_forwards"] == [] and
          vm["volume"] == "vm-webclone", "the clone is stopped, on its own disk: %s" % vm)
    c.change("POST", "/api/v1/vms/{name}/clone", {"name": "web"}, token=ann,
             body={"name": "webclone"}, want=409, what="taken")
    c.call("POST", "/api/v1/vms/{name}/clone", {"name": "nothing"}, token=ann,
           body={"name": "x"}, want=404)
    st, t = c.change("POST", "/api/v1/templates", token=ann,
                     body={"name": "fromweb", "from_vm": "web"}, want=201)
    check(st == 201 and t["volume"] == "fromweb", "a template of the VM's disk: %s" % t)
    c.change("POST", "/api/v1/templates", token=ann,
             body={"name": "x", "from_vm": "web", "volume": "data"}, want=400, what="both")


def walk_deletes(c, w, own):
    ann = w.tok["tenant-admin"]
    for vm in ("web", "webclone"):
        c.call("DELETE", "/api/v1/vms/{name}", {"name": vm}, token=ann, want=204)
    c.call("DELETE", "/api/v1/vms/{name}", {"name": "web"}, token=ann, want=404)
    for t in ("mine", "fromweb"):
        c.call("DELETE", "/api/v1/templates/{name}", {"name": t}, token=ann, want=204)
    for v in ("data2", "data", "tlinked", "tbase", "upvol", "snapvol", "fromweb"):
        c.call("DELETE", "/api/v1/volumes/{name}", {"name": v}, token=ann, want=204)
    c.call("DELETE", "/api/v1/networks/{name}", {"name": "lan2"}, token=ann, want=204)
    c.call("DELETE", "/api/v1/security-groups/{name}", {"name": "web2"}, token=ann, want=204)
    c.call("DELETE", "/api/v1/routers/{name}", {"name": "gw"}, token=ann, want=204)
    c.call("DELETE", "/api/v1/routers/{name}", {"name": "gw"}, token=ann, want=404)
    c.call("DELETE", "/api/v1/networks/{name}", {"name": "rnet"}, token=ann, want=204)
    c.call("DELETE", "/api/v1/tokens/{id}", {"id": own["id"]}, want=204)
    c.call("DELETE", "/api/v1/tokens/{id}", {"id": "xyz"}, want=400)
    c.change("PUT", "/api/v1/tenants/{tenant}/quota", {"tenant": "gamma"},
             body={"vcpus": None, "memory_bytes": None, "disk_bytes": None, "vms": None},
             want=200)
    # A quota is a setting, not an object to delete first: it goes with its tenant.
    c.call("DELETE", "/api/v1/tenants/{tenant}", {"tenant": "gamma"}, want=204)
    c.call("GET", "/api/v1/tenants/{tenant}/quota", {"tenant": "gamma"}, want=404)
    c.change("POST", "/api/v1/tenants", body={"name": "gamma"}, want=201)
    st, quota = c.call("GET", "/api/v1/tenants/{tenant}/quota", {"tenant": "gamma"}, want=200)
    check(st == 200 and quota["limits"]["vms"] is None, "a new gamma has no old quota: %s" % quota)
    c.call("GET", "/api/v1/audit", token=w.tok["viewer"], want=200)
    c.call("GET", "/api/v1/audit", want=200)


# ---- (d) the permission table ----

def permissions(c, w, server):
    """For every route and role: 403 exactly when the role is below the route's least role,
    in the caller's own tenant (alpha for its users; the platform's own objects for the
    platform-admin). Allowed requests are valid ones and must succeed."""
    cache = {}

    def scope_of(role):
        return "" if role == "platform-admin" else "alpha"

    def admin_in(role, method, route, params, body=None):
        """Makes a fixture as the platform-admin in the caller's tenant."""
        query = "?tenant=%s" % scope_of(role)
        if body is None:
            return c.call(method, route, params, query=query)
        return c.call(method, route, params, body=body, query=query)

    def volume(role):
        n = w.fresh("pv")
        admin_in(role, "POST", "/api/v1/volumes", None, {"name": n, "size_bytes": MIB})
        return n

    def vm(role):
        n = w.fresh("pm")
        admin_in(role, "POST", "/api/v1/vms", None, {"name": n, "template": "base"})
        return n

    def template(role):
        n = w.fresh("pt")
        admin_in(role, "POST", "/api/v1/templates", None,
                 {"name": n, "volume": volume(role), "boot_from": "base"})
        return n

    def raw_volume(role):
        n = w.fresh("pv")
        admin_in(role, "POST", "/api/v1/volumes", None,
                 {"name": n, "size_bytes": MIB, "format": "raw"})
        return n

    def snapped(coll, role):
        """A new volume or VM with the snapshot s1."""
        n = volume(role) if coll == "volumes" else vm(role)
        admin_in(role, "POST", "/api/v1/%s/{name}/snapshots" % coll, {"name": n},
                 {"name": "s1"})
        return n

    def cached(key, role, make):
        k = (key, scope_of(role))
        if k not in cache:
            cache[k] = make(role)
        return cache[k]

    def network(role):
        n = w.fresh("pn")
        admin_in(role, "POST", "/api/v1/networks", None,
                 {"name": n, "subnet": "10.9.0.0/24", "dhcp": False})
        return n

    def secgroup(role):
        n = w.fresh("pg")
        admin_in(role, "POST", "/api/v1/security-groups", None,
                 {"name": n, "rules": [{"direction": "ingress", "protocol": "tcp",
                                        "ports": "80"}]})
        return n

    def nic_vm(role):
        n = w.fresh("pm")
        admin_in(role, "POST", "/api/v1/vms", None,
                 {"name": n, "template": "base",
                  "nics": [{"network": cached("network", role, network)}]})
        return n

    ext_seq = [0]

    def ext_body():
        """A new external network's body, on a subnet of its own (198.18.N.0/24)."""
        ext_seq[0] += 1
        return {"name": w.fresh("pe"), "bridge": EXT_BRIDGE,
                "subnet": "198.18.%d.0/24" % ext_seq[0],
                "pool": "198.18.%d.10-198.18.%d.20" % (ext_seq[0], ext_seq[0])}

    def ext_network(role):
        body = ext_body()
        c.call("POST", "/api/v1/external-networks", body=body)
        return body["name"]

    seq = [0]

    def unique():
        seq[0] += 1
        return seq[0]

    def fresh_network(role):
        """A new network on a subnet of its own (a router joins subnets apart)."""
        n = w.fresh("pn")
        admin_in(role, "POST", "/api/v1/networks", None,
                 {"name": n, "subnet": "10.30.%d.0/24" % unique(), "dhcp": False})
        return n

    def router(role, ext=False):
        """A new router in the caller's scope; with ext, on the walk's external network and
        joined to a new network of 10.9.0.0/24. A tenant holds 8 routers: the fixtures share
        them where they can."""
        n = w.fresh("pr")
        body = {"name": n}
        if ext:
            body.update({"external_network": "ext", "networks": [network(role)]})
        admin_in(role, "POST", "/api/v1/routers", None, body)
        return n

    def sub(role, kind, body):
        """Adds to the caller's scope's shared router with a way out; the router's answer."""
        n = cached("xrouter", role, lambda x: router(x, ext=True))
        st, doc = admin_in(role, "POST", "/api/v1/routers/{name}/%s" % kind, {"name": n}, body)
        return n, doc

    def attached(role):
        n = cached("router", role, router)
        net = fresh_network(role)
        admin_in(role, "POST", "/api/v1/routers/{name}/networks", {"name": n}, {"network": net})
        return {"name": n, "network": net}

    def forwarded(role):
        port = 9000 + unique()
        n, _ = sub(role, "port-forwards", {"protocol": "tcp", "external_port": port,
                                           "ip": "10.9.0.5"})
        return {"name": n, "protocol": "tcp", "port": str(port)}

    def floating(role):
        ip = "10.9.0.%d" % (10 + unique())
        n, doc = sub(role, "floating-ips", {"ip": ip})
        return {"name": n, "address": [f["external_ip"] for f in doc["floating_ips"]
                                       if f["ip"] == ip][0]}

    vnis = [200000 + os.getpid() % 100000]

    def spanning(role):
        n = w.fresh("px")
        vnis[0] += 1
        admin_in(role, "POST", "/api/v1/networks", None,
                 {"name": n, "subnet": "10.9.0.0/24", "dhcp": False,
                  "vxlan": {"vni": vnis[0], "peers": []}})
        return n

    def operation(role):
        n = cached("vm", role, vm)
        st, doc = admin_in(role, "POST", "/api/v1/vms/{name}/actions/{action}",
                           {"name": n, "action": "start"})
        c.call("GET", "/api/v1/operations/{op}/wait", {"op": doc["id"]}, query="?timeout=60")
        return doc["id"]

    def own_tenant(role):
        if role != "platform-admin":
            return "alpha"
        n = w.fresh("pten")
        c.call("POST", "/api/v1/tenants", body={"name": n})
        return n

    def fresh_user(role):
        """A new viewer in the caller's tenant (a fresh tenant's for the platform-admin)."""
        tenant, n = own_tenant(role), w.fresh("pu")
        c.call("POST", "/api/v1/tenants/{tenant}/users", {"tenant": tenant},
               body={"name": n, "role": "viewer"})
        return {"tenant": tenant, "user": n}

    def token_id(role):
        tenant = scope_of(role)
        st, doc = c.call("POST", "/api/v1/tokens",
                         body={"tenant": tenant, "user": "vic" if tenant else "admin",
                               "description": "to revoke"})
        return doc["id"]

    def fresh_token(role):
        tenant = scope_of(role)
        user = {"platform-admin": "admin", "tenant-admin": "ann", "operator": "oscar",
                "viewer": "vic"}[role]
        st, doc = c.call("POST", "/api/v1/tokens",
                         body={"tenant": tenant, "user": user, "description": "to log out"})
        return doc["token"]

    # (METHOD, route) -> role -> (params, body)
    fixtures = {
        ("POST", "/api/v1/login"):
            lambda r: ({}, {"tenant": "alpha", "user": "oscar", "password": PASSWORD}),
        ("POST", "/api/v1/logout"): lambda r: ({}, None),
        ("PUT", "/api/v1/password"): lambda r: ({}, {"password": PASSWORD}),
        ("GET", "/api/v1/tenants"): lambda r: ({}, None),
        ("POST", "/api/v1/tenants"): lambda r: ({}, {"name": w.fresh("pten")}),
        ("GET", "/api/v1/tenants/{tenant}"): lambda r: ({"tenant": own_tenant(r)}, None),
        ("DELETE", "/api/v1/tenants/{tenant}"): lambda r: ({"tenant": own_tenant(r)}, None),
        ("GET", "/api/v1/tenants/{tenant}/users"): lambda r: ({"tenant": own_tenant(r)}, None),
        ("POST", "/api/v1/tenants/{tenant}/users"):
            lambda r: ({"tenant": own_tenant(r)}, {"name": w.fresh("pu"), "role": "viewer"}),
        ("PUT", "/api/v1/tenants/{tenant}/users/{user}"):
            lambda r: (fresh_user(r), {"role": "operator"}),
        ("DELETE", "/api/v1/tenants/{tenant}/users/{user}"): lambda r: (fresh_user(r), None),
        ("GET", "/api/v1/tenants/{tenant}/quota"): lambda r: ({"tenant": own_tenant(r)}, None),
        ("PUT", "/api/v1/tenants/{tenant}/quota"):
            lambda r: ({"tenant": own_tenant(r)}, {"vms": None}),
        ("GET", "/api/v1/tenants/{tenant}/resources"):
            lambda r: ({"tenant": own_tenant(r)}, None),
        ("PUT", "/api/v1/tenants/{tenant}/resources"):
            lambda r: ({"tenant": own_tenant(r)}, {"cpu": {"shares": 1000}}),
        ("GET", "/api/v1/vms/{name}/stats"): lambda r: ({"name": cached("vm", r, vm)}, None),
        ("GET", "/api/v1/vms/{name}/stats/history"):
            lambda r: ({"name": cached("vm", r, vm)}, None),
        ("GET", "/api/v1/host/stats/history"): lambda r: ({}, None),
        ("PUT", "/api/v1/vms/{name}/resources"):
            lambda r: ({"name": cached("vm", r, vm)}, {"cpu": {"shares": 1500}}),
        ("GET", "/api/v1/tokens"): lambda r: ({}, None),
        ("POST", "/api/v1/tokens"): lambda r: ({}, {"description": "perm"}),
        ("DELETE", "/api/v1/tokens/{id}"): lambda r: ({"id": token_id(r)}, None),
        ("GET", "/api/v1/audit"): lambda r: ({}, None),
        ("GET", "/api/v1/roles"): lambda r: ({}, None),
        ("GET", "/api/v1/host"): lambda r: ({}, None),
        ("PUT", "/api/v1/host"): lambda r: ({}, {"cpu_overcommit": 16}),
        ("GET", "/api/v1/pools"): lambda r: ({}, None),
        ("GET", "/api/v1/volumes"): lambda r: ({}, None),
        ("POST", "/api/v1/volumes"): lambda r: ({}, {"name": w.fresh("pv"), "size_bytes": MIB}),
        ("GET", "/api/v1/volumes/{name}"):
            lambda r: ({"name": cached("volume", r, volume)}, None),
        ("DELETE", "/api/v1/volumes/{name}"): lambda r: ({"name": volume(r)}, None),
        ("POST", "/api/v1/volumes/{name}/resize"):
            lambda r: ({"name": volume(r)}, {"size_bytes": 2 * MIB}),
        ("POST", "/api/v1/volumes/{name}/clone"):
            lambda r: ({"name": cached("volume", r, volume)}, {"name": w.fresh("pv")}),
        ("GET", "/api/v1/templates"): lambda r: ({}, None),
        ("POST", "/api/v1/templates"):
            lambda r: ({}, {"name": w.fresh("pt"), "volume": volume(r), "boot_from": "base"}),
        ("GET", "/api/v1/templates/{name}"):
            lambda r: ({"name": cached("template", r, template)}, None),
        ("DELETE", "/api/v1/templates/{name}"): lambda r: ({"name": template(r)}, None),
        ("GET", "/api/v1/vms"): lambda r: ({}, None),
        ("POST", "/api/v1/vms"): lambda r: ({}, {"name": w.fresh("pm"), "template": "base"}),
        ("GET", "/api/v1/vms/{name}"): lambda r: ({"name": cached("vm", r, vm)}, None),
        ("DELETE", "/api/v1/vms/{name}"): lambda r: ({"name": vm(r)}, None),
        ("POST", "/api/v1/vms/{name}/actions/{action}"):
            lambda r: ({"name": vm(r), "action": "start"}, None),
        ("GET", "/api/v1/vms/{name}/log"): lambda r: ({"name": cached("vm", r, vm)}, None),
        ("GET", "/api/v1/operations"): lambda r: ({}, None),
        ("GET", "/api/v1/security-groups"): lambda r: ({}, None),
        ("POST", "/api/v1/security-groups"): lambda r: ({}, {"name": w.fresh("pg")}),
        ("GET", "/api/v1/security-groups/{name}"):
            lambda r: ({"name": cached("secgroup", r, secgroup)}, None),
        ("PUT", "/api/v1/security-groups/{name}"):
            lambda r: ({"name": cached("secgroup", r, secgroup)}, {"description": "d"}),
        ("DELETE", "/api/v1/security-groups/{name}"): lambda r: ({"name": secgroup(r)}, None),
        ("POST", "/api/v1/security-groups/{name}/rules"):
            lambda r: ({"name": cached("secgroup", r, secgroup)},
                       {"direction": "ingress", "protocol": "tcp", "ports": "22"}),
        ("DELETE", "/api/v1/security-groups/{name}/rules/{rule}"):
            lambda r: ({"name": secgroup(r), "rule": "1"}, None),
        ("PUT", "/api/v1/vms/{name}/nics/{nic}/security-groups"):
            lambda r: ({"name": cached("nicvm", r, nic_vm), "nic": "0"},
                       {"security_groups": [cached("secgroup", r, secgroup)]}),
        ("GET", "/api/v1/networks"): lambda r: ({}, None),
        ("POST", "/api/v1/networks"):
            lambda r: ({}, {"name": w.fresh("pn"), "subnet": "10.9.0.0/24", "dhcp": False}),
        ("GET", "/api/v1/networks/{name}"):
            lambda r: ({"name": cached("network", r, network)}, None),
        ("DELETE", "/api/v1/networks/{name}"): lambda r: ({"name": network(r)}, None),
        ("GET", "/api/v1/networks/{name}/check"):
            lambda r: ({"name": cached("network", r, network)}, None),
        ("POST", "/api/v1/networks/{name}/repair"):
            lambda r: ({"name": cached("network", r, network)}, None),
        ("GET", "/api/v1/external-networks"): lambda r: ({}, None),
        ("POST", "/api/v1/external-networks"): lambda r: ({}, ext_body()),
        ("GET", "/api/v1/external-networks/{name}"): lambda r: ({"name": "ext"}, None),
        ("DELETE", "/api/v1/external-networks/{name}"): lambda r: ({"name": ext_network(r)}, None),
        ("GET", "/api/v1/routers"): lambda r: ({}, None),
        ("POST", "/api/v1/routers"): lambda r: ({}, {"name": w.fresh("pr")}),
        ("GET", "/api/v1/routers/{name}"): lambda r: ({"name": cached("router", r, router)}, None),
        ("PUT", "/api/v1/routers/{name}"):
            lambda r: ({"name": cached("router", r, router)}, {"snat": False}),
        ("DELETE", "/api/v1/routers/{name}"): lambda r: ({"name": router(r)}, None),
        ("POST", "/api/v1/routers/{name}/networks"):
            lambda r: ({"name": cached("router", r, router)}, {"network": fresh_network(r)}),
        ("DELETE", "/api/v1/routers/{name}/networks/{network}"): lambda r: (attached(r), None),
        ("POST", "/api/v1/routers/{name}/port-forwards"):
            lambda r: ({"name": cached("xrouter", r, lambda x: router(x, ext=True))},
                       {"protocol": "tcp", "external_port": 8000 + unique(), "ip": "10.9.0.5",
                        "port": 80}),
        ("DELETE", "/api/v1/routers/{name}/port-forwards/{protocol}/{port}"):
            lambda r: (forwarded(r), None),
        ("POST", "/api/v1/routers/{name}/floating-ips"):
            lambda r: ({"name": cached("xrouter", r, lambda x: router(x, ext=True))},
                       {"ip": "10.9.0.%d" % (10 + unique())}),
        ("DELETE", "/api/v1/routers/{name}/floating-ips/{address}"):
            lambda r: (floating(r), None),
        ("PUT", "/api/v1/networks/{name}/vxlan"):
            lambda r: ({"name": cached("spanning", r, spanning)}, {"peers": ["192.0.2.9"]}),
        ("GET", "/api/v1/vms/{name}/snapshots"): lambda r: ({"name": cached("vm", r, vm)}, None),
        ("POST", "/api/v1/vms/{name}/snapshots"): lambda r: ({"name": vm(r)}, {"name": "s1"}),
        ("POST", "/api/v1/vms/{name}/snapshots/{snap}/revert"):
            lambda r: ({"name": snapped("vms", r), "snap": "s1"}, None),
        ("DELETE", "/api/v1/vms/{name}/snapshots/{snap}"):
            lambda r: ({"name": snapped("vms", r), "snap": "s1"}, None),
        ("POST", "/api/v1/vms/{name}/clone"):
            lambda r: ({"name": cached("vm", r, vm)}, {"name": w.fresh("pm")}),
        ("GET", "/api/v1/volumes/{name}/snapshots"):
            lambda r: ({"name": cached("volume", r, volume)}, None),
        ("POST", "/api/v1/volumes/{name}/snapshots"):
            lambda r: ({"name": volume(r)}, {"name": "s1"}),
        ("POST", "/api/v1/volumes/{name}/snapshots/{snap}/revert"):
            lambda r: ({"name": snapped("volumes", r), "snap": "s1"}, None),
        ("DELETE", "/api/v1/volumes/{name}/snapshots/{snap}"):
            lambda r: ({"name": snapped("volumes", r), "snap": "s1"}, None),
        # The front end's: an event stream, a console handshake (no VM runs: 409 once the role
        # passes), an upload of a small raw image.
        ("GET", "/api/v1/events"): lambda r: ({}, None),
        ("GET", "/api/v1/vms/{name}/console"): lambda r: ({"name": cached("vm", r, vm)}, None),
        ("POST", "/api/v1/vms/{name}/console-ticket"):
            lambda r: ({"name": cached("vm", r, vm)}, None),
        ("PUT", "/api/v1/volumes/{name}/data"): lambda r: ({"name": raw_volume(r)}, None),
        ("GET", "/api/v1/operations/{op}"):
            lambda r: ({"op": cached("op", r, operation)}, None),
        ("GET", "/api/v1/operations/{op}/wait"):
            lambda r: ({"op": cached("op", r, operation)}, None),
    }
    for (method, route), least in sorted(server.items()):
        make = fixtures.get((method, route))
        if not check(make is not None, "no permission fixture for %s %s: add one" %
                     (method, route)):
            continue
        for role in ROLES:
            params, body = make(role)
            below = least != "anyone" and ROLES.index(role) < ROLES.index(least)
            # No ?tenant=: each caller acts in its own tenant.
            allowed = (200, 300)
            if route == "/api/v1/events":
                st, doc, _, _ = c.front(method, route, params, token=w.tok[role], stream=True,
                                        what="as " + role)
            elif route.endswith("/console"):
                st, doc, _, _ = c.front(method, route, params, token=w.tok[role],
                                        headers=WS_HANDSHAKE, what="as " + role)
                allowed = (409, 410)
            elif route.endswith("/data"):
                st, doc, _, _ = c.front(method, route, params, token=w.tok[role],
                                        headers={"Content-Type": "application/octet-stream"},
                                        data=b"\x5a" * 65536, what="as " + role)
                if st == 202:
                    c.call("GET", "/api/v1/operations/{op}/wait", {"op": doc["id"]},
                           query="?timeout=60&tenant=" + scope_of(role))
            elif route == "/api/v1/logout":
                st, doc = c.call(method, route, params, token=fresh_token(role),
                                 what="as " + role)
            else:
                st, doc = c.call(method, route, params, token=w.tok[role], body=body,
                                 what="as " + role)
            if below:
                check(st == 403, "%s %s as %s (least role %s): %d, want 403" %
                      (method, route, role, least, st))
            else:
                check(st != 403 and allowed[0] <= st < allowed[1],
                      "%s %s as %s (least role %s): %d %s" % (method, route, role, least, st, doc))
            if method == "POST" and route.endswith("/actions/{action}") and st == 202:
                c.call("GET", "/api/v1/operations/{op}/wait", {"op": doc["id"]},
                       query="?timeout=60")


# ---- (e) tenants apart ----

def cross_tenant(c, w, op_id):
    """beta's admin and viewer probe alpha's objects: 404 for every read, change and delete,
    and alpha's objects are untouched afterwards."""
    n = {"name": "web"}
    probes = [
        ("GET", "/api/v1/vms/{name}", n, None, ""),
        ("DELETE", "/api/v1/vms/{name}", n, None, ""),
        ("GET", "/api/v1/vms/{name}/log", n, None, ""),
        ("GET", "/api/v1/vms/{name}/stats", n, None, ""),
        ("GET", "/api/v1/vms/{name}/stats/history", n, None, ""),
        ("PUT", "/api/v1/vms/{name}/resources", n, {"cpu": {"shares": 1}}, ""),
        ("GET", "/api/v1/tenants/{tenant}/resources", {"tenant": "alpha"}, None, ""),
        ("GET", "/api/v1/volumes/{name}", {"name": "data"}, None, ""),
        ("DELETE", "/api/v1/volumes/{name}", {"name": "data"}, None, ""),
        ("POST", "/api/v1/volumes/{name}/resize", {"name": "data"}, {"size_bytes": 64 * MIB}, ""),
        ("POST", "/api/v1/volumes/{name}/clone", {"name": "data"}, {"name": "stolen"}, ""),
        ("GET", "/api/v1/templates/{name}", {"name": "mine"}, None, ""),
        ("GET", "/api/v1/networks/{name}", {"name": "lan2"}, None, ""),
        ("GET", "/api/v1/networks/{name}/check", {"name": "lan2"}, None, ""),
        ("POST", "/api/v1/networks/{name}/repair", {"name": "lan2"}, None, ""),
        ("DELETE", "/api/v1/networks/{name}", {"name": "lan2"}, None, ""),
        ("GET", "/api/v1/security-groups/{name}", {"name": "web2"}, None, ""),
        ("PUT", "/api/v1/security-groups/{name}", {"name": "web2"}, {"description": "x"}, ""),
        ("DELETE", "/api/v1/security-groups/{name}", {"name": "web2"}, None, ""),
        ("POST", "/api/v1/security-groups/{name}/rules", {"name": "web2"},
         {"direction": "ingress"}, ""),
        ("DELETE", "/api/v1/security-groups/{name}/rules/{rule}", {"name": "web2", "rule": "1"},
         None, ""),
        ("PUT", "/api/v1/vms/{name}/nics/{nic}/security-groups", {"name": "web", "nic": "0"},
         {"security_groups": []}, ""),
        ("PUT", "/api/v1/networks/{name}/vxlan", {"name": "lan2"}, {"peers": []}, ""),
        ("DELETE", "/api/v1/templates/{name}", {"name": "mine"}, None, ""),
        ("GET", "/api/v1/routers/{name}", {"name": "gw"}, None, ""),
        ("PUT", "/api/v1/routers/{name}", {"name": "gw"}, {"snat": True}, ""),
        ("DELETE", "/api/v1/routers/{name}", {"name": "gw"}, None, ""),
        ("POST", "/api/v1/routers/{name}/networks", {"name": "gw"}, {"network": "rnet"}, ""),
        ("DELETE", "/api/v1/routers/{name}/networks/{network}", {"name": "gw", "network": "rnet"},
         None, ""),
        ("POST", "/api/v1/routers/{name}/port-forwards", {"name": "gw"},
         {"protocol": "tcp", "external_port": 1, "ip": "10.20.0.5"}, ""),
        ("DELETE", "/api/v1/routers/{name}/port-forwards/{protocol}/{port}",
         {"name": "gw", "protocol": "tcp", "port": "1"}, None, ""),
        ("POST", "/api/v1/routers/{name}/floating-ips", {"name": "gw"}, {"ip": "10.20.0.5"}, ""),
        ("DELETE", "/api/v1/routers/{name}/floating-ips/{address}",
         {"name": "gw", "address": "198.51.100.10"}, None, ""),
        ("GET", "/api/v1/operations/{op}", {"op": op_id}, None, ""),
        ("GET", "/api/v1/operations/{op}/wait", {"op": op_id}, None, "?timeout=0"),
        ("GET", "/api/v1/tenants/{tenant}", {"tenant": "alpha"}, None, ""),
        ("DELETE", "/api/v1/tenants/{tenant}", {"tenant": "alpha"}, None, ""),
        ("GET", "/api/v1/tenants/{tenant}/users", {"tenant": "alpha"}, None, ""),
        ("POST", "/api/v1/tenants/{tenant}/users", {"tenant": "alpha"},
         {"name": "mallory", "role": "tenant-admin"}, ""),
        ("PUT", "/api/v1/tenants/{tenant}/users/{user}", {"tenant": "alpha", "user": "vic"},
         {"role": "operator"}, ""),
        ("DELETE", "/api/v1/tenants/{tenant}/users/{user}", {"tenant": "alpha", "user": "vic"},
         None, ""),
        ("GET", "/api/v1/tenants/{tenant}/quota", {"tenant": "alpha"}, None, ""),
        ("PUT", "/api/v1/tenants/{tenant}/quota", {"tenant": "alpha"}, {"vms": None}, ""),
        ("DELETE", "/api/v1/tokens/{id}", {"id": w.token_ids["vic"]}, None, ""),
    ]
    for action in ("start", "stop", "shutdown", "reboot", "pause", "resume"):
        probes.append(("POST", "/api/v1/vms/{name}/actions/{action}",
                       {"name": "web", "action": action}, None, ""))
    # Naming the tenant outright, on every tenant-scoped collection and object.
    for method, route, params, body in (
            ("GET", "/api/v1/vms", None, None), ("GET", "/api/v1/volumes", None, None),
            ("GET", "/api/v1/templates", None, None), ("GET", "/api/v1/operations", None, None),
            ("GET", "/api/v1/networks", None, None),
            ("GET", "/api/v1/security-groups", None, None),
            ("POST", "/api/v1/security-groups", None, {"name": "x"}),
            ("GET", "/api/v1/routers", None, None), ("POST", "/api/v1/routers", None, {"name": "x"}),
            ("POST", "/api/v1/networks", None, {"name": "x", "subnet": "10.0.0.0/24"}),
            ("POST", "/api/v1/volumes", None, {"name": "x", "size_bytes": MIB}),
            ("POST", "/api/v1/vms", None, {"name": "x", "template": "base"}),
            ("GET", "/api/v1/vms/{name}", n, None), ("DELETE", "/api/v1/vms/{name}", n, None)):
        probes.append((method, route, params, body, "?tenant=alpha"))
    for who in ("beta-admin", "beta-viewer"):
        for method, route, params, body, query in probes:
            c.call(method, route, params, token=w.tok[who], body=body, query=query, want=404,
                   what="as " + who)
    # Objects named in a body: beta's admin may create, but not from alpha's objects.
    bob = w.tok["beta-admin"]
    c.call("POST", "/api/v1/vms", token=bob, body={"name": "x", "template": "mine"}, want=404,
           what="alpha's template")
    c.call("POST", "/api/v1/tokens", token=bob, body={"tenant": "alpha", "user": "ann"},
           want=404, what="a token for alpha's admin")
    c.call("POST", "/api/v1/templates", token=bob,
           body={"name": "x", "volume": "data", "boot_from": "base"}, want=404,
           what="alpha's volume")
    # Listings hold none of alpha's objects.
    for who in ("beta-admin", "beta-viewer"):
        for coll in ("vms", "volumes", "templates", "operations", "networks", "security-groups",
                     "routers"):
            st, doc = c.call("GET", "/api/v1/" + coll, token=w.tok[who], want=200)
            items = doc.get(coll.replace("-", "_"), []) if st == 200 else []
            check(all(i.get("tenant") in ("beta", "") for i in items),
                  "%s lists only its own and shared %s: %s" % (who, coll, items))
    # Nothing changed.
    ann = w.tok["tenant-admin"]
    c.call("GET", "/api/v1/vms/{name}", n, token=ann, want=200, what="still there")
    st, vol = c.call("GET", "/api/v1/volumes/{name}", {"name": "data"}, token=ann, want=200)
    check(st == 200 and vol["size_bytes"] == 16 * MIB, "alpha's volume kept its size")
    c.call("GET", "/api/v1/templates/{name}", {"name": "mine"}, token=ann, want=200)
    st, users = c.call("GET", "/api/v1/tenants/{tenant}/users", {"tenant": "alpha"}, token=ann)
    check(st == 200 and "mallory" not in [u["name"] for u in users["users"]],
          "no user slipped into alpha")


def run(d):
    spec = Spec(SPEC)
    check_document(spec)
    c = Client(d, spec)
    server = check_routes(c, spec)
    check_guide(server)
    w = World(c)
    own = walk(c, w)
    st, ops = c.call("GET", "/api/v1/operations", token=w.tok["tenant-admin"])
    op_id = ops["operations"][0]["id"] if st == 200 and ops["operations"] else "0" * 16
    cross_tenant(c, w, op_id)
    permissions(c, w, server)
    walk_deletes(c, w, own)
    for key in sorted(spec.ops):
        seen = c.exercised.get(key, set())
        if key == ("GET", "/api/v1/vms/{name}/console"):
            # Its success is a running VM's websocket (tests/system/test_daemon_http.py); here no
            # VM runs, so the walk reaches the handshake's last check: the VM's state.
            check(409 in seen, "the console handshake reached the VM (saw %s)" % sorted(seen))
            continue
        check(any(200 <= s < 300 for s in seen),
              "%s %s was never walked to a success (saw %s)" % (key[0], key[1], sorted(seen)))


def main():
    for need in (TESSERAD, os.path.join(ROOT, "build", "tessera")):
        if not os.access(need, os.X_OK):
            print("openapi: %s is missing (run make)" % need)
            print("openapi: 0 passed, 1 failed")
            return 1
    tmp = tempfile.mkdtemp(prefix="tessera-openapi-")
    d = Daemon(os.path.join(tmp, "state"), args=["--vxlan-local", "192.0.2.1"])
    try:
        d.start()
        run(d)
        check(d.stop() == 0, "clean stop")
    except Exception as e:  # a daemon that does not start, or a request that hangs
        import traceback
        traceback.print_exc()
        check(False, "%s: %s" % (type(e).__name__, e))
    finally:
        if d.proc and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()
        if failed:
            with open(os.path.join(tmp, "tesserad.log"), errors="replace") as f:
                print("tesserad's log:\n" + f.read()[-3000:])
        network_cleanup(os.path.join(tmp, "state"))
        routers = os.path.join(tmp, "state", "routers")
        for i in os.listdir(routers) if os.path.isdir(routers) else []:
            subprocess.run(["ip", "netns", "delete", "tsrr-" + i], stderr=subprocess.DEVNULL)
        subprocess.run(["ip", "link", "delete", EXT_BRIDGE], stderr=subprocess.DEVNULL)
        subprocess.run(["rm", "-rf", tmp])
    print("openapi: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
