#!/usr/bin/env python3
"""Routers and NAT (issue 11 part 3, docs/networks.md "Routers and NAT"), end to end with
build/tesserad and the default BusyBox guest.

The test makes the "outside" (standing for the internet; nothing leaves the machine): a bridge
of the host `tsrt-extN` with a veth into a namespace `tsrt-outN` that holds 198.51.100.1 and
runs a small web server answering each request with the address it came from. The platform
administrator declares the bridge an external network. Tenants red and blue each get a network
`lan` of the same subnet and a router joining it to the outside; VM `a` (red) and `c` (blue)
boot on them. Checked with traffic: both VMs fetch the outside page, and the outside sees each
come from its own router's external address; a port forward on red's router makes `a`'s BusyBox
httpd reachable from the outside namespace; a floating IP does the same for `c` (and `c` then
goes out as its floating address); another tenant's router is a 404, a viewer cannot change
one, an attached network cannot be deleted. After a `kill -9` of tesserad and a restart the
routers' namespaces and rules are as before (a router's rules and another's host port deleted
while it was down are made again) and traffic still flows. After deleting everything,
no namespace, link, nft table or process of the daemon's is left.

Needs root, iproute2, dnsmasq, nft and /dev/net/tun: skips with a message otherwise. Prints
"routers: N passed, N failed".
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from syskit import TALLY, Console, check, wait_booted  # noqa: E402
from tesserad import Daemon, network_cleanup, network_missing, procs  # noqa: E402

TESSERA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "tessera")
BOOT_TIMEOUT = float(os.environ.get("TESSERA_BOOT_TIMEOUT", "300"))
SUBNET = "10.79.0.0/24"
N = os.getpid() % 10000
BRIDGE = "tsrt-ext%d" % N
OUTSIDE = "tsrt-out%d" % N
OUT_VETH = "tsrt-o%d" % N
OUT_IP = "198.51.100.1"

# The outside's web server: each answer names the address the request came from.
SERVER = r"""
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("outside-saw %s\n" % self.client_address[0]).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer((sys.argv[1], 8000), H).serve_forever()
"""





def sh(*argv):
    return subprocess.run(argv, capture_output=True, text=True)


def outside_up(tmp):
    """The outside: host bridge, its namespace on it, the web server. Returns the server."""
    for cmd in (["ip", "link", "add", BRIDGE, "type", "bridge"],
                ["ip", "link", "set", BRIDGE, "up"],
                ["ip", "netns", "add", OUTSIDE],
                ["ip", "link", "add", OUT_VETH, "type", "veth", "peer", "name", "eth0",
                 "netns", OUTSIDE],
                ["ip", "link", "set", OUT_VETH, "master", BRIDGE, "up"],
                ["ip", "-n", OUTSIDE, "addr", "add", OUT_IP + "/24", "dev", "eth0"],
                ["ip", "-n", OUTSIDE, "link", "set", "eth0", "up"],
                ["ip", "-n", OUTSIDE, "link", "set", "lo", "up"]):
        r = sh(*cmd)
        if r.returncode:
            raise RuntimeError("%s: %s" % (" ".join(cmd), r.stderr))
    path = os.path.join(tmp, "server.py")
    with open(path, "w") as f:
        f.write(SERVER)
    log = open(os.path.join(tmp, "server.log"), "w")
    return subprocess.Popen(["ip", "netns", "exec", OUTSIDE, sys.executable, path, OUT_IP],
                            stdout=log, stderr=log)


def outside_fetch(url):
    """A page fetched from inside the outside namespace (None when it fails)."""
    r = sh("ip", "netns", "exec", OUTSIDE, sys.executable, "-c",
           "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen(%r, "
           "timeout=8).read().decode())" % url)
    return r.stdout if r.returncode == 0 else None


def router_ids(state):
    top = os.path.join(state, "routers")
    return sorted(os.listdir(top)) if os.path.isdir(top) else []


def host_objects(state, net_ids, rtr_ids):
    """What the daemon of STATE made: its networks' and routers' namespaces, the routers'
    links on the host (`tsrx` + 11 hex digits of the id), the nft tables in the routers'
    namespaces, its dnsmasq processes."""
    ns_all = [n.split()[0] for n in sh("ip", "netns", "list").stdout.splitlines()]
    namespaces = sorted(n for n in ns_all if n in ["tsrn-" + i for i in net_ids] +
                        ["tsrr-" + i for i in rtr_ids])
    links = sh("ip", "-o", "link", "show").stdout
    host_links = sorted(l for l in ("tsrx" + i[:11] for i in rtr_ids)
                        if re.search(r"^\d+: %s[:@]" % l, links, re.M))
    tables = []
    for n in namespaces:
        if n.startswith("tsrr-"):
            tables += [n + ":" + t for t in sh("ip", "netns", "exec", n, "nft", "list",
                                               "tables").stdout.split("\n") if t]
    live = procs(lambda argv: argv[0] == b"dnsmasq" and
                 any(state.encode() in a for a in argv))
    return {"namespaces": namespaces, "links": host_links, "tables": sorted(tables),
            "dnsmasq": live}


def wait_address(con, ip, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        out, ok = con.ask("ip -4 -o addr show eth0")
        if ok and (" inet %s/24 " % ip) in out:
            return True
        time.sleep(2)
    return False


NET_IDS = set()


def run(d, state):
    d.ok("POST", "/api/v1/external-networks",
         body={"name": "internet", "bridge": BRIDGE, "subnet": "198.51.100.0/24",
               "gateway": OUT_IP, "pool": "198.51.100.10-198.51.100.20"})
    rtr = {}
    for t in ("red", "blue"):
        d.ok("POST", "/api/v1/tenants", body={"name": t})
        d.ok("POST", "/api/v1/networks?tenant=%s" % t, body={"name": "lan", "subnet": SUBNET})
        st, _, body = d.call("POST", "/api/v1/external-networks?tenant=%s" % t,
                             token=d.user(t, "admin-" + t, "tenant-admin"),
                             body={"name": "mine", "bridge": "lo", "subnet": "10.0.0.0/24",
                                   "pool": "10.0.0.5-10.0.0.6"})
        check(st == 403, "a tenant cannot make an external network: %d" % st)
        rtr[t] = d.ok("POST", "/api/v1/routers?tenant=%s" % t,
                      body={"name": "gw", "external_network": "internet",
                            "networks": ["lan"]})
    NET_IDS.update(os.listdir(os.path.join(state, "networks")))
    check(rtr["red"]["external_ip"] != rtr["blue"]["external_ip"] and
          rtr["red"]["snat"] is True, "each router has its own external address: %s" % rtr)
    # Tenants apart: blue sees no router of red's; a viewer of red changes nothing.
    st, _, _ = d.call("GET", "/api/v1/routers/gw?tenant=red",
                      token=d.user("blue", "bob", "viewer"))
    viewer = d.user("red", "vic", "viewer")
    check(st == 404, "blue's viewer naming red gets a 404: %d" % st)
    st, doc, _ = d.call("GET", "/api/v1/routers", token=viewer)
    check(st == 200 and [r["tenant"] for r in doc["routers"]] == ["red"],
          "red's viewer lists red's routers only: %s" % doc)
    st, _, _ = d.call("DELETE", "/api/v1/routers/gw", token=viewer)
    check(st == 403, "a viewer cannot delete a router: %d" % st)
    st, doc, _ = d.call("GET", "/api/v1/external-networks", token=viewer)
    check(st == 200 and doc["external_networks"] == [
        {"name": "internet", "subnet": "198.51.100.0/24", "gateway": OUT_IP}],
        "a tenant sees the external network's name, subnet and gateway only: %s" % doc)
    st, _, _ = d.call("DELETE", "/api/v1/networks/lan?tenant=red")
    check(st == 409, "a network attached to a router cannot be deleted: %d" % st)

    # Both networks' namespaces are lost while the daemon runs: a VM's start makes each again,
    # with its router's leg.
    for n in NET_IDS:
        sh("ip", "netns", "delete", "tsrn-" + n)
    vms = {}
    t0 = time.monotonic()
    for t, n in (("red", "a"), ("blue", "c")):
        vm = d.ok("POST", "/api/v1/vms?tenant=%s" % t,
                  body={"name": n, "template": "busybox", "nics": [{"network": "lan"}],
                        "start": True})
        d.wait_op(vm)
        vms[n] = (t, vm["nics"][0]["ip"])
    check(vms["a"][1] == vms["c"][1], "both VMs have one address in their tenant's subnet: %s" %
          vms)
    for t, n in (("red", "a"), ("blue", "c")):
        check(not wait_booted(d, t, [n], BOOT_TIMEOUT), "%s booted" % n)
    con = {n: Console(d, t, n) for n, (t, _) in vms.items()}
    for n, (t, ip) in vms.items():
        check(wait_address(con[n], ip), "%s has its lease %s" % (n, ip))
    print("  two VMs booted and leased in %.1fs" % (time.monotonic() - t0), flush=True)
    legs = [n for n in NET_IDS for r in router_ids(state)
            if subprocess.run(["ip", "-n", "tsrn-" + n, "link", "show", "r" + r[:12]],
                              capture_output=True).returncode == 0]
    check(sorted(legs) == sorted(NET_IDS),
          "the namespaces made again have their router legs: %s of %s" % (legs, NET_IDS))

    # Out through source NAT: each tenant's VM, same subnet and address, reaches the outside,
    # which sees its router's address.
    url = "http://%s:8000/" % OUT_IP
    for n, t in (("a", "red"), ("c", "blue")):
        out, ok = con[n].ask("wget -q -T 10 -O - %s" % url)
        check(ok and ("outside-saw %s" % rtr[t]["external_ip"]) in out,
              "%s reaches the outside as %s: %r" % (n, rtr[t]["external_ip"], out))

    # In through a port forward (by VM name) to a's httpd.
    con["a"].ask("mkdir -p /tmp/www && echo hello-from-a > /tmp/www/index.html && "
                 "httpd -p 80 -h /tmp/www")
    got = outside_fetch("http://%s:8080/" % rtr["red"]["external_ip"])
    check(got is None, "no forward yet, nothing reaches a: %r" % got)
    # ... made with the CLI, as a user would.
    r = subprocess.run([TESSERA, "--host", "unix:" + d.sock, "--token", d.token, "--json",
                        "router", "forward-add", "gw", "tcp", "8080", "a:80", "--tenant", "red"],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL)
    check(r.returncode == 0, "tessera router forward-add: %d %s" % (r.returncode, r.stderr))
    doc = json.loads(r.stdout) if r.returncode == 0 else {"port_forwards": None}
    check(doc["port_forwards"] == [{"protocol": "tcp", "external_port": 8080, "vm": "a",
                                    "ip": vms["a"][1], "port": 80}],
          "the forward names its VM and address: %s" % doc["port_forwards"])
    got = outside_fetch("http://%s:8080/" % rtr["red"]["external_ip"])
    check(got and "hello-from-a" in got, "the outside fetches a's page through the forward: %r" %
          got)
    # The same address and port of blue's router lead nowhere.
    got = outside_fetch("http://%s:8080/" % rtr["blue"]["external_ip"])
    check(got is None, "blue's router forwards nothing: %r" % got)

    # A floating IP for c: in to its httpd, and c goes out as it.
    con["c"].ask("mkdir -p /tmp/www && echo hello-from-c > /tmp/www/index.html && "
                 "httpd -p 80 -h /tmp/www")
    doc = d.ok("POST", "/api/v1/routers/gw/floating-ips?tenant=blue", body={"vm": "c"})
    fip = doc["floating_ips"][0]["external_ip"]
    check(fip not in (rtr["red"]["external_ip"], rtr["blue"]["external_ip"]),
          "the floating IP is an address of its own: %s" % fip)
    got = outside_fetch("http://%s/" % fip)
    check(got and "hello-from-c" in got, "the outside fetches c's page at %s: %r" % (fip, got))
    out, ok = con["c"].ask("wget -q -T 10 -O - %s" % url)
    check(ok and ("outside-saw %s" % fip) in out, "c goes out as its floating IP: %r" % out)
    for c in con.values():
        c.close()

    # kill -9 of the daemon: a restart keeps the routers as they are, traffic flows.
    rids = router_ids(state)
    before = host_objects(state, NET_IDS, rids)
    check(len(before["namespaces"]) == 4 and len(before["links"]) == 2 and
          len(before["tables"]) == 2, "two networks and two routers on the host: %s" % before)
    d.kill()
    # Drift while it is down: one router's rules and another's host port are gone; the
    # restart makes them again from the store.
    sh("ip", "netns", "exec", "tsrr-" + rids[0], "nft", "delete", "table", "ip", "tessera_router")
    sh("ip", "link", "delete", "tsrx" + rids[1][:11])
    check(host_objects(state, NET_IDS, rids) != before, "the drift is there before the restart")
    d.start()
    after = host_objects(state, NET_IDS, rids)
    check(after == before, "the restart repaired them: %s -> %s" % (before, after))
    got = outside_fetch("http://%s:8080/" % rtr["red"]["external_ip"])
    check(got and "hello-from-a" in got, "the forward works after the restart: %r" % got)
    got = outside_fetch("http://%s/" % fip)
    check(got and "hello-from-c" in got, "the floating IP works after the restart: %r" % got)
    ca = Console(d, "red", "a")
    out, ok = ca.ask("wget -q -T 10 -O - %s" % url)
    check(ok and "outside-saw %s" % rtr["red"]["external_ip"] in out,
          "a reaches the outside after the restart: %r" % out)

    # `network check` knows a router's leg as the network's own; with the legs gone (a
    # network namespace's veths deleted by hand) it names them, and a repair makes them again.
    for t in ("red", "blue"):
        chk = d.ok("GET", "/api/v1/networks/lan/check?tenant=%s" % t)
        check(chk["ok"] is True, "%s's network on a router has no drift: %s" % (t, chk))
    legs = [("tsrn-" + n, "r" + r[:12]) for n in NET_IDS for r in rids
            if subprocess.run(["ip", "-n", "tsrn-" + n, "link", "show", "r" + r[:12]],
                              capture_output=True).returncode == 0]
    check(len(legs) == 2, "one router leg in each network: %s" % legs)
    for ns, leg in legs:
        sh("ip", "-n", ns, "link", "delete", leg)
    for t in ("red", "blue"):
        chk = d.ok("GET", "/api/v1/networks/lan/check?tenant=%s" % t)
        check([x["object"][:11] for x in chk["drift"]] == ["router leg "],
              "%s's check names the lost router leg: %s" % (t, chk["drift"]))
        rep = d.ok("POST", "/api/v1/networks/lan/repair?tenant=%s" % t)
        check(rep["ok"] is True, "%s's repair makes the leg again: %s" % (t, rep))
    out, ok = ca.ask("wget -q -T 10 -O - %s" % url)
    check(ok and "outside-saw %s" % rtr["red"]["external_ip"] in out,
          "a reaches the outside after the repair: %r" % out)
    ca.close()

    # Everything goes, leaving nothing.
    for n, (t, _) in vms.items():
        d.wait_op(d.ok("POST", "/api/v1/vms/%s/actions/stop?tenant=%s" % (n, t)))
        for _ in range(50):
            st, _, body = d.call("DELETE", "/api/v1/vms/%s?tenant=%s" % (n, t))
            if st != 409 or b"target of router" in body:
                break
            time.sleep(0.2)
        # A VM that a forward or floating IP targets stays until they go: left behind, they
        # would lead to whichever VM gets its address next.
        held = {"a": ("port forward tcp/8080", "port-forwards/tcp/8080"),
                "c": ("floating IP " + fip, "floating-ips/" + fip)}.get(n)
        if held:
            check(st == 409 and held[0].encode() in body,
                  "VM %s is refused while router gw's %s targets it: %d %s" %
                  (n, held[0], st, body[:200]))
            d.ok("DELETE", "/api/v1/routers/gw/%s?tenant=%s" % (held[1], t))
            st, _, body = d.call("DELETE", "/api/v1/vms/%s?tenant=%s" % (n, t))
        check(st == 204, "VM %s deleted: %d %s" % (n, st, body[:200]))
    st, _, _ = d.call("DELETE", "/api/v1/external-networks/internet")
    check(st == 409, "an external network in use cannot be deleted: %d" % st)
    for t in ("red", "blue"):
        d.ok("DELETE", "/api/v1/routers/gw?tenant=%s" % t)
        d.ok("DELETE", "/api/v1/networks/lan?tenant=%s" % t)
    d.ok("DELETE", "/api/v1/external-networks/internet")
    time.sleep(0.5)
    objs = host_objects(state, NET_IDS, rids)
    check(objs == {"namespaces": [], "links": [], "tables": [], "dnsmasq": []},
          "nothing left after deleting everything: %s" % objs)
    check(not router_ids(state), "no router folder left")


def vm_pids(tmp):
    """The VMMs of this test's daemon (their command lines name its state directory)."""
    return procs(lambda argv: any(tmp.encode() in a for a in argv) and
                 b"tesserad" not in argv[0])


def main():
    why = network_missing(("sysctl",))
    if why:
        print("routers: skipped: %s" % why)
        print("routers: 0 passed, 0 failed")
        return 0
    tmp = tempfile.mkdtemp(prefix="tsr-rtr-")
    state = os.path.join(tmp, "state")
    d = Daemon(state)
    server = None
    try:
        server = outside_up(tmp)
        d.start()
        t0 = time.monotonic()
        run(d, state)
        print("%s routers (%.1fs)" % ("PASS" if not TALLY.failed else "FAIL",
                                      time.monotonic() - t0))
    except (AssertionError, OSError, KeyError, RuntimeError, EOFError, TypeError) as e:
        import traceback
        traceback.print_exc()
        check(False, "%s: %s" % (type(e).__name__, e))
    finally:
        try:
            d.stop()
        except Exception:
            pass
        for pid in vm_pids(tmp):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if server:
            server.kill()
            server.wait()
        network_cleanup(state)
        for i in router_ids(state):
            sh("ip", "netns", "delete", "tsrr-" + i)
        sh("ip", "netns", "delete", OUTSIDE)
        sh("ip", "link", "delete", BRIDGE)
        if not TALLY.failed:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("logs in", tmp)
    print("routers: %d passed, %d failed" % (TALLY.passed, TALLY.failed))
    return 1 if TALLY.failed else 0


if __name__ == "__main__":
    sys.exit(main())
