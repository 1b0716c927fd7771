#!/usr/bin/env python3
"""Virtual networks (issue 11, docs/networks.md), end to end with build/tesserad and the default
BusyBox guest: two VMs of one tenant on one network get DHCP addresses, resolve each other's
names through the network's dnsmasq, ping each other and fetch a page from each other with
wget; a VM of another tenant on a network with the same subnet reaches neither (and neither
reaches it), checked with traffic next to a working control; the daemon is killed with -9 and
restarted with the VMs running and the network still works; after everything is deleted no
namespace, tap or dnsmasq process the daemon made is left. Needs root, iproute2, dnsmasq and
/dev/net/tun: skips with a message otherwise. Prints "networks: N passed, N failed".
"""

import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from syskit import Console, check, run_suite, skipped, wait_booted  # noqa: E402
from tesserad import network_cleanup, network_missing, procs  # noqa: E402

BOOT_TIMEOUT = float(os.environ.get("TESSERA_BOOT_TIMEOUT", "300"))
SUBNET = "10.77.0.0/24"




def host_objects(state, ns_ids, taps):
    """What the daemon of STATE made on the host: the namespaces `tsrn-ID` of the network ids
    given (its folders STATE/networks/ID, recorded while they existed), the taps given (from
    the VMs' documents) wherever they are (the host's namespace or a network's), and its live
    dnsmasq processes (zombies are init's to reap, not ours)."""
    ns_all = [n.split()[0] for n in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                    text=True).stdout.splitlines()]
    namespaces = sorted("tsrn-" + i for i in ns_ids if "tsrn-" + i in ns_all)
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    for n in namespaces:
        links += subprocess.run(["ip", "-n", n, "-o", "link", "show"], capture_output=True,
                                text=True).stdout
    found = sorted(t for t in taps if re.search(r"^\d+: %s[:@]" % t, links, re.M))
    live = procs(lambda argv: argv[0] == b"dnsmasq" and
                 any(state.encode() in a for a in argv))
    return {"namespaces": namespaces, "taps": found, "dnsmasq": live}


def lease_of(d, state, tenant, net, mac, timeout):
    """The address dnsmasq leased to mac (from the network's lease file), or None."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for nid in os.listdir(os.path.join(state, "networks")):
            try:
                with open(os.path.join(state, "networks", nid, "dnsmasq.leases")) as f:
                    for line in f:
                        parts = line.split()
                        if len(parts) >= 3 and parts[1] == mac:
                            return parts[2]
            except OSError:
                pass
        time.sleep(1)
    return None


VMS = [("red", "a"), ("red", "b"), ("blue", "c")]
PADS = ["pad1", "pad2"]
NS_IDS, TAPS = set(), set()
TESSERA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "tessera")


def run(d, state):
    for t in ("red", "blue"):
        d.ok("POST", "/api/v1/tenants", body={"name": t})
    # Both tenants take the same subnet and gateway: their networks are apart all the same.
    for t in ("red", "blue"):
        net = d.ok("POST", "/api/v1/networks?tenant=%s" % t,
                   body={"name": "lan", "subnet": SUBNET})
        check(net["gateway"] == "10.77.0.1" and net["dhcp"] is True, "network of %s: %s" % (t, net))
    NS_IDS.update(os.listdir(os.path.join(state, "networks")))
    objs = host_objects(state, NS_IDS, TAPS)
    check(len(objs["namespaces"]) == 2 and len(objs["dnsmasq"]) == 2 and not objs["taps"],
          "a namespace and a dnsmasq per network: %s" % objs)
    st, _, _ = d.call("GET", "/api/v1/networks/lan?tenant=red",
                      token=d.user("blue", "bob", "tenant-admin"))
    check(st == 404, "another tenant's network is a 404 (got %d)" % st)

    vms, fixed, tap_of = dict.fromkeys(VMS), {}, {}
    # Two VMs of blue that never start take 10.77.0.2 and .3, so c gets .4, an address nobody
    # in red has: a ping from red to c's address then reaches no one of red's.
    for p in PADS:
        vm = d.ok("POST", "/api/v1/vms?tenant=blue",
                  body={"name": p, "template": "busybox", "nics": [{"network": "lan"}]})
        TAPS.add(vm["nics"][0]["tap"])
    t0 = time.monotonic()
    for (t, n) in vms:
        vm = d.ok("POST", "/api/v1/vms?tenant=%s" % t,
                  body={"name": n, "template": "busybox", "nics": [{"network": "lan"}],
                        "start": True})
        d.wait_op(vm)
        vms[(t, n)] = vm["nics"][0]["mac"]
        TAPS.add(vm["nics"][0]["tap"])
        tap_of[n] = vm["nics"][0]["tap"]
        fixed[n] = vm["nics"][0]["ip"]
    for t, names in (("red", ["a", "b"]), ("blue", ["c"])):
        check(not wait_booted(d, t, names, BOOT_TIMEOUT), "%s's VMs booted" % t)
    ip = {}
    for (t, n), mac in vms.items():
        ip[n] = lease_of(d, state, t, "lan", mac, 90)
        check(ip[n] and ip[n] == fixed[n], "%s leased its fixed address %s: %s" %
              (n, fixed[n], ip[n]))
    print("  three VMs booted and leased in %.1fs: %s" % (time.monotonic() - t0, ip), flush=True)
    if not all(ip.values()):
        return
    con = {n: Console(d, t, n) for (t, n) in vms}
    for n in con:
        out, ok = con[n].ask("ip -4 -o addr show eth0")
        check(ok and (" inet %s/24 " % ip[n]) in out, "%s's eth0 has its lease: %r" % (n, out))

    # Within red: names resolve, ping and wget both ways.
    con["b"].ask("mkdir -p /tmp/www && echo hello-from-b > /tmp/www/index.html && "
                 "httpd -p 8080 -h /tmp/www")
    con["a"].ask("mkdir -p /tmp/www && echo hello-from-a > /tmp/www/index.html && "
                 "httpd -p 8080 -h /tmp/www")
    for src, dst in (("a", "b"), ("b", "a")):
        out, ok = con[src].ask("nslookup %s" % dst)
        check(ok and ip[dst] in out, "%s resolves %s to %s: %r" % (src, dst, ip[dst], out))
        out, ok = con[src].ask("ping -c 2 -W 3 %s" % ip[dst])
        check(ok, "%s pings %s: %r" % (src, dst, out))
        out, ok = con[src].ask("wget -q -T 10 -O - http://%s:8080/" % ip[dst])
        check(ok and "hello-from-%s" % dst in out, "%s fetches %s's page: %r" % (src, dst, out))

    # Measured, not asserted: a's round trip to b, and b's page of 16 MiB fetched by a.
    con["b"].ask("dd if=/dev/zero of=/tmp/www/big bs=1M count=16 2>/dev/null")
    out, ok = con["a"].ask("ping -c 10 -i 0.2 %s | tail -1" % ip["b"])
    rtt = re.search(r"= ([\d.]+)/([\d.]+)/([\d.]+)", out)
    out, ok = con["a"].ask("s=$(cut -d' ' -f1 /proc/uptime); wget -q -O /dev/null "
                           "http://%s:8080/big; e=$(cut -d' ' -f1 /proc/uptime); "
                           "echo \"took $s $e\"" % ip["b"], timeout=300)
    took = re.search(r"took ([\d.]+) ([\d.]+)", out)
    if rtt and took and ok:
        secs = float(took.group(2)) - float(took.group(1))
        print("  a to b: ping avg %s ms (min %s, max %s); 16 MiB by wget in %.2f s (%.1f MB/s)" %
              (rtt.group(2), rtt.group(1), rtt.group(3), secs, 16 * 1.048576 / max(secs, 0.01)),
              flush=True)

    # Port security: a with a forged MAC gets nothing through (its ARP requests are dropped at
    # its port, so b never answers); with its own MAC again it does.
    out, ok = con["a"].ask("ip link set eth0 down && ip link set eth0 address 52:54:00:66:66:66 "
                           "&& ip link set eth0 up && ip neigh flush dev eth0 && "
                           "ping -c 3 -W 2 %s" % ip["b"])
    check(not ok and "52:54:00:66:66:66" in con["a"].ask("ip link show eth0")[0],
          "a with a forged MAC cannot ping b: %r" % out)
    out, ok = con["a"].ask("ip link set eth0 down && ip link set eth0 address %s && "
                           "ip link set eth0 up && ping -c 2 -W 3 %s" %
                           (vms[("red", "a")], ip["b"]))
    check(ok, "a with its own MAC pings b again: %r" % out)
    # ... and from an address that is not its own, nothing either.
    out, ok = con["a"].ask("ip addr add 10.77.0.99/24 dev eth0 && ping -c 3 -W 2 -I 10.77.0.99 "
                           "%s" % ip["b"])
    check(not ok, "a from a forged address cannot ping b: %r" % out)
    out, ok = con["a"].ask("ip addr del 10.77.0.99/24 dev eth0 && ping -c 2 -W 3 %s" % ip["b"])
    check(ok, "a from its own address pings b: %r" % out)

    # Across tenants: c's network has the same subnet and gateway. Its own gateway answers
    # (the control: c's network works), a and b do not, and c neither resolves nor reaches
    # them; nor do they reach c.
    check(ip["c"] not in (ip["a"], ip["b"], "10.77.0.1"), "c's address is not red's: %s" % ip)
    out, ok = con["c"].ask("ping -c 2 -W 3 10.77.0.1")
    check(ok, "c reaches its own gateway: %r" % out)
    out, ok = con["c"].ask("nslookup a")
    check(not (ok and ip["a"] in out), "c does not resolve red's a: %r" % out)
    for red in ("a", "b"):
        out, ok = con["c"].ask("ping -c 3 -W 2 %s" % ip[red])
        check(not ok, "c cannot ping %s: %r" % (red, out))
        out, ok = con["c"].ask("wget -q -T 5 -O - http://%s:8080/" % ip[red])
        check(not ok and "hello-from" not in out, "c cannot fetch %s's page: %r" % (red, out))
        out, ok = con[red].ask("ping -c 3 -W 2 %s" % ip["c"])
        check(not ok, "%s cannot ping c: %r" % (red, out))
    for c in con.values():
        c.close()

    # kill -9 of the daemon: the networks and VMs run on; its restart finds them and leaves
    # the running dnsmasq alone (same pids), and traffic still flows.
    before = host_objects(state, NS_IDS, TAPS)
    d.kill()
    d.start()
    after = host_objects(state, NS_IDS, TAPS)
    check(after == before and len(after["taps"]) == 3,
          "the restart kept the networks as they were: %s -> %s" % (before, after))
    ca = Console(d, "red", "a")
    out, ok = ca.ask("ping -c 2 -W 3 %s" % ip["b"])
    check(ok, "a still pings b after the restart: %r" % out)

    drift(d, state, tap_of["a"])
    out, ok = ca.ask("ping -c 2 -W 3 %s" % ip["b"])
    check(ok, "a pings b again after the repair: %r" % out)
    ca.close()

    # A network in use cannot go; then everything goes, leaving nothing behind.
    st, _, _ = d.call("DELETE", "/api/v1/networks/lan?tenant=red")
    check(st == 409, "a network in use is a 409 (got %d)" % st)
    for (t, n) in vms:
        d.wait_op(d.ok("POST", "/api/v1/vms/%s/actions/stop?tenant=%s" % (n, t)))
        for _ in range(50):  # its exit is recorded by the supervisor, a moment later
            st, _, body = d.call("DELETE", "/api/v1/vms/%s?tenant=%s" % (n, t))
            if st != 409:
                break
            time.sleep(0.2)
        check(st == 204, "VM %s deleted: %d %s" % (n, st, body[:200]))
    for p in PADS:
        d.ok("DELETE", "/api/v1/vms/%s?tenant=blue" % p)
    objs = host_objects(state, NS_IDS, TAPS)
    check(not objs["taps"], "no tap left after the VMs' deletion: %s" % objs)
    for t in ("red", "blue"):
        d.ok("DELETE", "/api/v1/networks/lan?tenant=%s" % t)
    time.sleep(0.5)
    objs = host_objects(state, NS_IDS, TAPS)
    check(objs == {"namespaces": [], "taps": [], "dnsmasq": []},
          "nothing left after deleting everything: %s" % objs)
    check(not os.listdir(os.path.join(state, "networks")), "no network folder left")


def drift(d, state, tap):
    """Breaks red's network four ways behind the daemon's back: `network check` names each,
    `network repair` mends what is the daemon's to mend (interfaces someone else added, a veth
    pair here, are reported, not removed)."""
    ns = next("tsrn-" + i for i in NS_IDS
              if subprocess.run(["ip", "-n", "tsrn-" + i, "link", "show", tap],
                                capture_output=True).returncode == 0)
    chk = d.ok("GET", "/api/v1/networks/lan/check?tenant=red")
    check(chk["ok"] is True and chk["drift"] == [], "no drift after the restart: %s" % chk)
    folder = os.path.join(state, "networks", ns[len("tsrn-"):])
    with open(os.path.join(folder, "dnsmasq.pid")) as f:
        os.kill(int(f.read().split()[0]), 9)
    for argv in (["ip", "netns", "exec", ns, "nft", "delete", "table", "bridge", "tessera"],
                 ["ip", "-n", ns, "link", "set", tap, "nomaster"],
                 ["ip", "-n", ns, "link", "add", "stray0", "type", "veth", "peer", "name", "stray1"]):
        subprocess.run(argv, check=True)
    time.sleep(0.3)  # the killed dnsmasq's pid goes
    chk = d.ok("GET", "/api/v1/networks/lan/check?tenant=red")
    objects = {x["object"] for x in chk["drift"]}
    check(chk["ok"] is False and {"dnsmasq", "nft table bridge tessera", "tap " + tap,
                                  "interface stray0"} <= objects,
          "check names the dead dnsmasq, the lost rules, the unplugged tap and the stray "
          "interface: %s" % chk["drift"])
    r = subprocess.run([TESSERA, "--host", "unix:" + d.sock, "--token-file",
                        os.path.join(state, "admin.token"), "network", "check", "lan", "--tenant",
                        "red"], capture_output=True, text=True, timeout=30)
    check(r.returncode == 1 and ("tap " + tap) in r.stdout and "drift found" in r.stderr,
          "`tessera network check` shows the drift and exits 1: %d %r %r" %
          (r.returncode, r.stdout, r.stderr))
    rep = d.ok("POST", "/api/v1/networks/lan/repair?tenant=red")
    check(sorted(x["object"] for x in rep["drift"]) == ["interface stray0", "interface stray1"],
          "a repair mends the rules, the tap and dnsmasq and leaves the stray interface to its "
          "owner: %s" % rep["drift"])
    subprocess.run(["ip", "-n", ns, "link", "delete", "stray0"], check=True)
    chk = d.ok("GET", "/api/v1/networks/lan/check?tenant=red")
    check(chk["ok"] is True, "no drift left: %s" % chk)


def cleanup(d):
    # Whatever a failure left besides the VMs: dnsmasq, namespaces, taps.
    network_cleanup(d.state)
    for tap in host_objects(d.state, NS_IDS, TAPS)["taps"]:
        subprocess.run(["ip", "link", "delete", tap], stderr=subprocess.DEVNULL)


def main():
    why = network_missing()
    if why:
        return skipped("networks", why)
    return run_suite("networks", [("networks", lambda d: run(d, d.state))], prefix="tsr-net-",
                     cleanup=cleanup)


if __name__ == "__main__":
    sys.exit(main())
