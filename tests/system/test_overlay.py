#!/usr/bin/env python3
"""Networks across hosts (issue 11 part 5, docs/networks.md "Across hosts"), end to end: two
tesserad stand for two hosts, each in a network namespace of its own (hostA, hostB: the
hosts' network, joined by a veth pair, underlay 192.0.2.1 and .2). Each makes network `lan`
(10.0.0.0/24, VNI 4242, the other host as peer); VM a on A (its first free address) and VM b
on B (a fixed address, 10.0.0.9) get their leases from their own host's dnsmasq with the
overlay's MTU, ping each other and fetch pages from each other (a large one too: full-size
frames) through VXLAN on the underlay. Replacing A's peers live (PUT .../vxlan) cuts b off and
putting B back heals it, with the VMs running on. After everything is deleted no namespace,
VXLAN device, tap or dnsmasq of either daemon is left. Needs root, iproute2, dnsmasq, nft,
nsenter and /dev/net/tun: skips with a message otherwise. Prints "overlay: N passed, N failed".
"""

import json
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from syskit import TALLY, Console, check, wait_booted  # noqa: E402
sys.path.insert(0, os.path.dirname(__file__))
from tesserad import Daemon, network_cleanup, network_missing, procs  # noqa: E402
from test_networks import lease_of  # noqa: E402
import test_networks  # noqa: E402

BOOT_TIMEOUT = float(os.environ.get("TESSERA_BOOT_TIMEOUT", "300"))
HOSTS = {"A": ("tsrt-hostA", "192.0.2.1"), "B": ("tsrt-hostB", "192.0.2.2")}
VNI = 4242
WIRE = "tsrt-wire"  # the namespace beyond host A's trunk: a tagged peer and a capture
TRUNK = "tsrt-trunk"





def sh(*argv, ns=None):
    pre = ["ip", "netns", "exec", ns] if ns else []
    return subprocess.run(pre + list(argv), capture_output=True, text=True)


def underlay_up():
    for ns, _ in HOSTS.values():
        sh("ip", "netns", "delete", ns)
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh("ip", "netns", "delete", WIRE)
    sh("ip", "netns", "add", WIRE)
    r = sh("ip", "link", "add", TRUNK, "netns", HOSTS["A"][0], "type", "veth", "peer", "name",
           "eth0", "netns", WIRE)
    check(r.returncode == 0, "trunk veth: %s" % r.stderr)
    sh("ip", "-n", HOSTS["A"][0], "link", "set", TRUNK, "up")
    sh("ip", "-n", WIRE, "link", "set", "eth0", "up")
    r = sh("ip", "link", "add", "tsrt-ua", "netns", HOSTS["A"][0], "type", "veth", "peer", "name",
           "tsrt-ub", "netns", HOSTS["B"][0])
    check(r.returncode == 0, "underlay veth: %s" % r.stderr)
    for host, dev in (("A", "tsrt-ua"), ("B", "tsrt-ub")):
        ns, addr = HOSTS[host]
        sh("ip", "-n", ns, "addr", "add", addr + "/24", "dev", dev)
        sh("ip", "-n", ns, "link", "set", dev, "up")


def underlay_bytes(host):
    """Bytes seen leaving host's underlay (from its link counters: what goes there is all
    VXLAN, but for ARP). Bytes, not frames: with segmentation offload a veth counts one
    64 KiB segment as one packet."""
    ns, _ = HOSTS[host]
    dev = "tsrt-ua" if host == "A" else "tsrt-ub"
    r = sh("ip", "-j", "-s", "-n", ns, "link", "show", dev)
    return json.loads(r.stdout)[0]["stats64"]["tx"]["bytes"]


def our_objects(states, ids):
    """Each daemon's namespaces (tsrn-ID for the ids recorded), VXLAN devices (tsrw...) in its
    host's namespace or a network's, and dnsmasq processes."""
    ns_all = [n.split()[0] for n in sh("ip", "netns", "list").stdout.splitlines()]
    namespaces = sorted("tsrn-" + i for i in ids if "tsrn-" + i in ns_all)
    links = ""
    for ns in [h[0] for h in HOSTS.values()] + namespaces:
        links += sh("ip", "-n", ns, "-o", "link", "show").stdout
    devs = sorted(set(re.findall(r"^\d+: (tsr[0-9a-z]+)[:@]", links, re.M)))
    live = procs(lambda argv: argv[0] == b"dnsmasq" and
                 any(s.encode() in a for s in states for a in argv))
    return {"namespaces": namespaces, "links": devs, "dnsmasq": live}


def run(d, states):
    ids = set()
    for host in d:
        d[host].ok("POST", "/api/v1/tenants", body={"name": "t"})
    for host, other in (("A", "B"), ("B", "A")):
        net = d[host].ok("POST", "/api/v1/networks?tenant=t",
                         body={"name": "lan", "subnet": "10.0.0.0/24",
                               "vxlan": {"vni": VNI, "peers": [HOSTS[other][1]]}})
        check(net["vxlan"] == {"vni": VNI, "peers": [HOSTS[other][1]]},
              "host %s: the network spans hosts: %s" % (host, net))
        ids.update(os.listdir(os.path.join(states[host], "networks")))
    # One VNI per network on a host, and a peer must be another host's unicast address.
    st, _, _ = d["A"].call("POST", "/api/v1/networks?tenant=t",
                           body={"name": "lan2", "subnet": "10.1.0.0/24",
                                 "vxlan": {"vni": VNI, "peers": ["192.0.2.2"]}})
    check(st == 409, "a VNI taken on the host is a 409 (got %d)" % st)
    for bad in (["192.0.2.1"], ["224.0.0.1"], ["10.0.0.300"], ["192.0.2.2", "192.0.2.2"]):
        st, _, _ = d["A"].call("POST", "/api/v1/networks?tenant=t",
                               body={"name": "lan2", "subnet": "10.1.0.0/24",
                                     "vxlan": {"vni": 7, "peers": bad}})
        check(st == 400, "peers %s is a 400 (got %d)" % (bad, st))

    a = d["A"].ok("POST", "/api/v1/vms?tenant=t", body={"name": "a", "template": "busybox",
                                               "nics": [{"network": "lan"}], "start": True})
    b = d["B"].ok("POST", "/api/v1/vms?tenant=t", body={"name": "b", "template": "busybox",
                                               "nics": [{"network": "lan", "ip": "10.0.0.9"}],
                                               "start": True})
    check(b["nics"][0]["ip"] == "10.0.0.9", "b has the address it asked for: %s" % b["nics"])
    for bad, code in (("10.0.0.9", 409), ("10.0.0.1", 400), ("10.0.1.5", 400), ("10.0.0.255", 400)):
        st, _, body = d["B"].call("POST", "/api/v1/vms?tenant=t",
                                  body={"name": "x", "template": "busybox",
                                        "nics": [{"network": "lan", "ip": bad}]})
        check(st == code, "a NIC asking for %s is a %d (got %d %s)" % (bad, code, st, body[:100]))
    d["A"].wait_op(a)
    d["B"].wait_op(b)
    ip = {"a": a["nics"][0]["ip"], "b": "10.0.0.9"}
    t0 = time.monotonic()
    for host, n in (("A", "a"), ("B", "b")):
        check(not wait_booted(d[host], "t", [n], BOOT_TIMEOUT), "%s booted" % n)
    for host, n, vm in (("A", "a", a), ("B", "b", b)):
        got = lease_of(d[host], states[host], "t", "lan", vm["nics"][0]["mac"], 90)
        check(got == ip[n], "%s leased %s from its own host: %s" % (n, ip[n], got))
    print("  two VMs on two hosts booted and leased in %.1fs: %s" % (time.monotonic() - t0, ip),
          flush=True)
    con = {"a": Console(d["A"], "t", "a"), "b": Console(d["B"], "t", "b")}
    for n in con:
        out, ok = con[n].ask("ip -o link show eth0")
        check(ok and " mtu 1450 " in out, "%s's eth0 took the overlay's MTU: %r" % (n, out))
        con[n].ask("mkdir -p /tmp/www && echo hello-from-%s > /tmp/www/index.html && "
                   "dd if=/dev/zero of=/tmp/www/big bs=1k count=1024 2>/dev/null && "
                   "httpd -p 8080 -h /tmp/www" % n)
    sent0 = underlay_bytes("A")
    for src, dst in (("a", "b"), ("b", "a")):
        out, ok = con[src].ask("ping -c 3 -W 3 %s" % ip[dst])
        check(ok, "%s pings %s across the hosts: %r" % (src, dst, out))
        out, ok = con[src].ask("wget -q -T 10 -O - http://%s:8080/" % ip[dst])
        check(ok and "hello-from-%s" % dst in out, "%s fetches %s's page: %r" % (src, dst, out))
        out, ok = con[src].ask("wget -q -T 30 -O - http://%s:8080/big | wc -c" % ip[dst], 120)
        check(ok and "1048576" in out, "%s fetches 1 MiB from %s (full-size frames): %r" %
              (src, dst, out))
    out, ok = con["a"].ask("ping -c 10 -i 0.2 %s | tail -1" % ip["b"])
    rtt = re.search(r"= ([\d.]+)/([\d.]+)/([\d.]+)", out)
    if rtt:
        print("  a to b across VXLAN: ping avg %s ms (min %s, max %s)" %
              (rtt.group(2), rtt.group(1), rtt.group(3)), flush=True)
    # b fetched 1 MiB from a: it left host A through its underlay, encapsulated.
    check(underlay_bytes("A") - sent0 > 1 << 20,
          "the traffic went over host A's underlay: %d bytes" % (underlay_bytes("A") - sent0))

    # Peers replaced live: without B, a cannot reach b; with B again it can. The VMs, the
    # device and the leases stay.
    doc = d["A"].ok("PUT", "/api/v1/networks/lan/vxlan?tenant=t", body={"peers": ["192.0.2.7"]})
    check(doc["vxlan"]["peers"] == ["192.0.2.7"], "peers replaced: %s" % doc)
    out, ok = con["a"].ask("ip neigh flush dev eth0; ping -c 3 -W 2 %s" % ip["b"])
    check(not ok, "without B among A's peers, a cannot ping b: %r" % out)
    d["A"].ok("PUT", "/api/v1/networks/lan/vxlan?tenant=t", body={"peers": ["192.0.2.2"]})
    out, ok = con["a"].ask("ping -c 3 -W 3 %s" % ip["b"])
    check(ok, "with B back, a pings b again: %r" % out)
    st, _, _ = d["A"].call("PUT", "/api/v1/networks/lan/vxlan?tenant=t", body={"peers": "192.0.2.2"})
    check(st == 400, "peers must be a list (got %d)" % st)
    for host in ("A", "B"):
        chk = d[host].ok("GET", "/api/v1/networks/lan/check?tenant=t")
        check(chk["ok"] is True, "host %s's check knows the VXLAN device as the network's own: %s"
              % (host, chk))
    for c in con.values():
        c.close()

    for host, n in (("A", "a"), ("B", "b")):
        d[host].wait_op(d[host].ok("POST", "/api/v1/vms/%s/actions/stop?tenant=t" % n))
        for _ in range(50):
            st, _, body = d[host].call("DELETE", "/api/v1/vms/%s?tenant=t" % n)
            if st != 409:
                break
            time.sleep(0.2)
        check(st == 204, "VM %s deleted: %d %s" % (n, st, body[:200]))
        d[host].ok("DELETE", "/api/v1/networks/lan?tenant=t")
    objs = our_objects(list(states.values()), ids)
    check(objs == {"namespaces": [], "links": [], "dnsmasq": []},
          "nothing of the daemons' left after deleting everything: %s" % objs)


# ---- VLAN tags on host A's trunk, seen from the wire beyond it ----

PEER_MAC = bytes.fromhex("020000000077")
PEER_IP = "10.100.0.77"
SOL_PACKET, PACKET_AUXDATA, TP_STATUS_VLAN_VALID = 263, 8, 1 << 4


def wire_script(vm_ip, vm_mac, gw):
    """Python run in the wire namespace: a tagged peer on eth0 (802.1Q header written inline;
    the kernel may hand received tags over in PACKET_AUXDATA instead of the frame). It asks,
    for VLAN 100, 200 and untagged, who has the VM's and the gateway's address, and pings the
    VM over VLAN 100 and 200, answering the VM's ARP for the peer's address on the tag it came
    with; then it reports what it saw as JSON."""
    return r"""
import json, select, socket, struct, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind(("eth0", 0))
s.setsockopt(%(sol)d, %(aux)d, 1)
me, me_ip = bytes.fromhex("%(mac)s"), socket.inet_aton("%(pip)s")
vm_ip, gw = socket.inet_aton("%(vip)s"), socket.inet_aton("%(gw)s")
def frame(vid, dst, etype, payload):
    tag = struct.pack("!HH", 0x8100, vid) if vid else b""
    return dst + me + tag + struct.pack("!H", etype) + payload
def arp(op, tha, tip):
    return struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, me, me_ip, tha, tip)
def csum(b):
    if len(b) %% 2: b += b"\0"
    t = sum(struct.unpack("!%%dH" %% (len(b) // 2), b)); t = (t >> 16) + (t & 0xffff)
    return ~(t + (t >> 16)) & 0xffff
def echo(seq):
    icmp = struct.pack("!BBHHH", 8, 0, 0, 0x7777, seq) + b"tessera-vlan"
    icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), seq, 0, 64, 1, 0, me_ip, vm_ip)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return ip + icmp
seen = []  # (vid, src mac, ethertype, what)
def pump(t):
    end = time.time() + t
    while time.time() < end:
        if not select.select([s], [], [], max(0, end - time.time()))[0]:
            break
        data, anc, _, addr = s.recvmsg(65535, socket.CMSG_SPACE(32))
        if addr[2] == socket.PACKET_OUTGOING:
            continue
        vid = 0
        for lvl, typ, d in anc:
            if lvl == %(sol)d and typ == %(aux)d:
                st, _, _, _, _, tci, _ = struct.unpack("IIIHHHH", d[:20])
                if st & %(valid)d:
                    vid = tci & 0xfff
        if data[12:14] == b"\x81\x00":
            vid, data = struct.unpack("!H", data[14:16])[0] & 0xfff, data[:12] + data[16:]
        etype, body, what = struct.unpack("!H", data[12:14])[0], data[14:], ""
        if etype == 0x0806 and len(body) >= 28:
            op, spa, tpa = struct.unpack("!H", body[6:8])[0], body[14:18], body[24:28]
            what = "arp-%%s %%s>%%s" %% ("req" if op == 1 else "rep", socket.inet_ntoa(spa),
                                      socket.inet_ntoa(tpa))
            if op == 1 and tpa == me_ip:
                s.send(frame(vid, data[6:12], 0x0806, arp(2, data[6:12], spa)))
        elif etype == 0x0800 and len(body) >= 28 and body[9] == 1 and body[20] == 0:
            what = "echo-reply %%s" %% socket.inet_ntoa(body[12:16])
        seen.append((vid, data[6:12].hex(":"), etype, what))
pump(0.5)
for vid in (100, 200, 0):
    for tip in (vm_ip, gw):
        s.send(frame(vid, b"\xff" * 6, 0x0806, arp(1, b"\0" * 6, tip)))
    pump(1.5)
for vid in (100, 200):
    for seq in range(3):
        s.send(frame(vid, bytes.fromhex("%(vmac)s"), 0x0800, echo(seq + vid)))
        pump(1.0)
print(json.dumps(seen))
""" % {"sol": SOL_PACKET, "aux": PACKET_AUXDATA, "valid": TP_STATUS_VLAN_VALID,
       "mac": PEER_MAC.hex(), "pip": PEER_IP, "vip": vm_ip, "gw": gw,
       "vmac": vm_mac.replace(":", "")}


def ovs_procs(state):
    return procs(lambda argv: argv[0] in (b"ovsdb-server", b"ovs-vswitchd") and
                 any(state.encode() in a for a in argv))


def run_vlan(d, state):
    """Networks v100 (tag 100) and v200 (tag 200) on host A, one subnet for both; VM c on
    v100. From the wire: c and v100's gateway answer only over VLAN 100, v200's gateway only
    over VLAN 200, nothing untagged; c answers pings tagged 100, not 200; every frame of c's
    carries tag 100."""
    nets, nid = {}, {}
    top = os.path.join(state, "networks")
    for name, tag in (("v100", 100), ("v200", 200)):
        before = set(os.listdir(top))
        nets[name] = d.ok("POST", "/api/v1/networks?tenant=t",
                          body={"name": name, "subnet": "10.100.0.0/24", "vlan": tag})
        check(nets[name].get("vlan") == tag, "network %s has tag %d: %s" % (name, tag, nets[name]))
        nid[name] = (set(os.listdir(top)) - before).pop()
    st, _, _ = d.call("POST", "/api/v1/networks?tenant=t",
                      body={"name": "v3", "subnet": "10.3.0.0/24", "vlan": 100})
    check(st == 409, "a tag taken on the host is a 409 (got %d)" % st)
    for bad in (0, 4095, "100"):
        st, _, _ = d.call("POST", "/api/v1/networks?tenant=t",
                          body={"name": "v3", "subnet": "10.3.0.0/24", "vlan": bad})
        check(st == 400, "vlan %r is a 400 (got %d)" % (bad, st))
    check(len(ovs_procs(state)) == 2, "the daemon's own ovsdb-server and ovs-vswitchd run: %s" %
          ovs_procs(state))
    c = d.ok("POST", "/api/v1/vms?tenant=t", body={"name": "c", "template": "busybox",
                                                   "nics": [{"network": "v100"}], "start": True})
    d.wait_op(c)
    cip, cmac = c["nics"][0]["ip"], c["nics"][0]["mac"]
    check(not wait_booted(d, "t", ["c"], BOOT_TIMEOUT), "c booted")
    check(lease_of(d, state, "t", "v100", cmac, 90) == cip, "c leased %s" % cip)
    r = sh("python3", "-c", wire_script(cip, cmac, "10.100.0.1"), ns=WIRE)
    try:
        seen = json.loads(r.stdout)
    except ValueError:
        check(False, "the wire's capture: %r %r" % (r.stdout[-300:], r.stderr[-300:]))
        return
    gw_mac = {}
    for name in nets:
        link = sh("ip", "-n", "tsrn-" + nid[name], "-j", "link", "show", "br0").stdout
        gw_mac[name] = json.loads(link)[0]["address"] if link else None

    def got(vid, what, mac=None):
        return any(v == vid and w == what and (mac is None or m == mac) for v, m, _, w in seen)
    ask_c, ask_gw = "arp-rep %s>%s" % (cip, PEER_IP), "arp-rep 10.100.0.1>%s" % PEER_IP
    check(got(100, ask_c, cmac), "c answers ARP over VLAN 100: %s" % seen)
    check(got(100, ask_gw, gw_mac["v100"]), "v100's gateway answers over VLAN 100: %s" % seen)
    check(got(200, ask_gw, gw_mac["v200"]), "v200's gateway answers over VLAN 200: %s" % seen)
    check(not got(200, ask_c) and not got(0, ask_c) and not got(0, ask_gw) and
          not got(100, ask_gw, gw_mac["v200"]) and not got(200, ask_gw, gw_mac["v100"]),
          "no answer on the wrong tag or untagged: %s" % seen)
    check(got(100, "echo-reply %s" % cip, cmac), "c answers pings tagged 100: %s" % seen)
    check(not got(200, "echo-reply %s" % cip), "c does not answer pings tagged 200: %s" % seen)
    c_tags = sorted(set(v for v, m, _, _ in seen if m == cmac))
    check(c_tags == [100], "every frame of c's on the trunk carries tag 100: %s" % c_tags)
    print("  on the trunk: %d frames, tags %s" % (len(seen), sorted(set(v for v, *_ in seen))),
          flush=True)

    # kill -9 of the daemon and a restart: the switch (same processes) and the tags go on.
    procs = sorted(ovs_procs(state))
    d.kill()
    d.start()
    check(sorted(ovs_procs(state)) == procs, "the restart kept the switch: %s -> %s" %
          (procs, sorted(ovs_procs(state))))
    r = sh("python3", "-c", wire_script(cip, cmac, "10.100.0.1"), ns=WIRE)
    try:
        seen = json.loads(r.stdout)
    except ValueError:
        seen = []
    check(got(100, ask_c, cmac) and got(100, "echo-reply %s" % cip, cmac) and
          not got(200, ask_c), "after the restart c still answers over VLAN 100 only: %s" % seen)
    chk = d.ok("GET", "/api/v1/networks/v100/check?tenant=t")
    check(chk["ok"] is True, "the check knows the VLAN uplink as the network's own: %s" % chk)

    d.wait_op(d.ok("POST", "/api/v1/vms/c/actions/stop?tenant=t"))
    for _ in range(50):
        st, _, body = d.call("DELETE", "/api/v1/vms/c?tenant=t")
        if st != 409:
            break
        time.sleep(0.2)
    check(st == 204, "VM c deleted: %d" % st)
    d.ok("DELETE", "/api/v1/networks/v100?tenant=t")
    check(len(ovs_procs(state)) == 2, "the switch stays while v200 has a tag")
    d.ok("DELETE", "/api/v1/networks/v200?tenant=t")
    links = sh("ip", "-n", HOSTS["A"][0], "-o", "link", "show").stdout
    left = re.findall(r"^\d+: (tsr[0-9a-z]+)[:@]", links, re.M)
    check(not ovs_procs(state) and not left and not os.path.exists(os.path.join(state, "ovs")),
          "no switch, port or link of ours left: %s %s" % (ovs_procs(state), left))


def kill_vmms(tmp):
    """Kills the VMMs a failure left: processes whose command line names a file under tmp
    (each VM's config), by pid."""
    for pid in procs(lambda argv: argv[0].endswith(b"tessera") and
                     any(a.startswith(tmp.encode() + b"/") for a in argv)):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def main():
    why = network_missing(("nsenter", "bridge", "ovs-vswitchd"))
    if why:
        print("overlay: skipped: %s" % why)
        print("overlay: 0 passed, 0 failed")
        return 0
    tmp = tempfile.mkdtemp(prefix="tsr-ovl-")
    states, d = {}, {}
    test_networks.check = check
    try:
        underlay_up()
        for host, (ns, addr) in HOSTS.items():
            os.makedirs(os.path.join(tmp, host))
            states[host] = os.path.join(tmp, host, "state")
            d[host] = Daemon(states[host], args=["--vxlan-local", addr] +
                             (["--vlan-trunk", TRUNK] if host == "A" else []),
                             prefix=["nsenter", "--net=/run/netns/" + ns])
            d[host].start()
        t0 = time.monotonic()
        run(d, states)
        run_vlan(d["A"], states["A"])
        print("%s overlay (%.1fs)" % ("PASS" if not TALLY.failed else "FAIL",
                                      time.monotonic() - t0))
    except (AssertionError, OSError, KeyError, RuntimeError, EOFError, ValueError) as e:
        import traceback
        traceback.print_exc()
        check(False, "%s: %s" % (type(e).__name__, e))
    finally:
        for x in d.values():
            try:
                x.stop()
            except Exception:
                pass
        kill_vmms(tmp)
        for s in states.values():
            network_cleanup(s)
        for ns, _ in HOSTS.values():
            sh("ip", "netns", "delete", ns)
        sh("ip", "netns", "delete", WIRE)
        if not TALLY.failed:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("logs in", tmp)
    print("overlay: %d passed, %d failed" % (TALLY.passed, TALLY.failed))
    return 1 if TALLY.failed else 0


if __name__ == "__main__":
    sys.exit(main())
