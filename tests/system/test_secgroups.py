#!/usr/bin/env python3
"""Security groups (issue 11 part 4, docs/networks.md "Security groups"), end to end with
build/tesserad and three BusyBox guests on one network: srv and mate in group web (TCP 80 in),
cli in none. With traffic: cli fetches srv's page on port 80 but not the one on port 22, mate
(a member of web) reaches both; a rule for 22 added live opens it; a transfer running while an
unrelated rule is added finishes; deleting the rule closes 22 again; a table removed behind the
daemon's back comes back when the daemon restarts after a kill -9; taking the group off srv's
NIC leaves no table; a group in use cannot be deleted; nothing is left at the end. Needs root,
iproute2, dnsmasq, nft and /dev/net/tun: skips with a message otherwise. Prints
"secgroups: N passed, N failed".
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from syskit import TALLY, Console, check, wait_booted  # noqa: E402
sys.path.insert(0, os.path.dirname(__file__))
from tesserad import Daemon, network_cleanup, network_missing  # noqa: E402

BOOT_TIMEOUT = float(os.environ.get("TESSERA_BOOT_TIMEOUT", "300"))
Q = "?tenant=red"
VM_PIDS = []  # the VMMs the test started, killed by pid if a failure leaves them



def tables(ns):
    """The nft tables in the network's namespace."""
    return subprocess.run(["ip", "netns", "exec", ns, "nft", "list", "tables"],
                          capture_output=True, text=True).stdout


def fetch(con, ip, port, timeout=5):
    """Whether con's guest fetches the page on ip:port, and what it got."""
    out, ok = con.ask("wget -q -T %d -O - http://%s:%d/" % (timeout, ip, port), timeout=60)
    return ok, out


# srv's pages: "hello-web" on 80 with a CGI that answers in two parts 8 s apart (a connection
# that stays open across a rule change), "hello-ssh" on 22 (a second httpd: the port is what
# matters, not the protocol).
SRV_SETUP = ("mkdir -p /tmp/www/cgi-bin /tmp/w22 && echo hello-web > /tmp/www/index.html && "
             "echo hello-ssh > /tmp/w22/index.html && "
             "printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho first-part\\n"
             "touch /tmp/slow-started\\nsleep 8\\necho second-part\\n' "
             "> /tmp/www/cgi-bin/slow && chmod +x /tmp/www/cgi-bin/slow && "
             "httpd -p 80 -h /tmp/www && httpd -p 22 -h /tmp/w22")


def run(d, state):
    d.ok("POST", "/api/v1/tenants", body={"name": "red"})
    d.ok("POST", "/api/v1/networks" + Q, body={"name": "lan", "subnet": "10.78.0.0/24"})
    ns = "tsrn-" + os.listdir(os.path.join(state, "networks"))[0]
    g = d.ok("POST", "/api/v1/security-groups" + Q,
             body={"name": "web", "description": "web servers",
                   "rules": [{"direction": "ingress", "protocol": "tcp", "ports": "80"}]})
    check(g["rules"][0]["id"] == 1, "the group with its rule: %s" % g)
    ip = {}
    t0 = time.monotonic()
    for name, groups in (("srv", ["web"]), ("mate", ["web"]), ("cli", [])):
        nic = {"network": "lan"}
        if groups:
            nic["security_groups"] = groups
        vm = d.ok("POST", "/api/v1/vms" + Q,
                  body={"name": name, "template": "busybox", "nics": [nic], "start": True})
        d.wait_op(vm)
        ip[name] = vm["nics"][0]["ip"]
        VM_PIDS.append(d.ok("GET", "/api/v1/vms/%s%s" % (name, Q))["pid"])
    check(not wait_booted(d, "red", ["srv", "mate", "cli"], BOOT_TIMEOUT), "the VMs booted")
    con = {n: Console(d, "red", n) for n in ip}
    for n, c in con.items():
        for _ in range(60):
            out, ok = c.ask("ip -4 -o addr show eth0")
            if (" inet %s/" % ip[n]) in out:
                break
            time.sleep(1)
        check((" inet %s/" % ip[n]) in out, "%s has its address %s: %r" % (n, ip[n], out))
    print("  three VMs booted with addresses in %.1fs: %s" % (time.monotonic() - t0, ip),
          flush=True)
    out, ok = con["srv"].ask(SRV_SETUP)
    check(ok, "srv serves on 80 and 22: %r" % out)
    check("table inet tsr_sg" in tables(ns), "the network has its table: %s" % tables(ns))

    # TCP 80 only: 80 in, 22 not, ICMP not; a member of the group reaches both ports; srv's
    # own traffic out is free (and its replies come back).
    ok, out = fetch(con["cli"], ip["srv"], 80)
    check(ok and "hello-web" in out, "cli fetches srv's page on 80: %r" % out)
    ok, out = fetch(con["cli"], ip["srv"], 22)
    check(not ok and "hello-ssh" not in out, "cli does not reach srv's port 22: %r" % out)
    out, ok = con["cli"].ask("ping -c 2 -W 2 %s" % ip["srv"])
    check(not ok, "cli cannot ping srv (no ICMP rule): %r" % out)
    ok, out = fetch(con["mate"], ip["srv"], 22)
    check(ok and "hello-ssh" in out, "mate, a member of web, reaches srv's port 22: %r" % out)
    out, ok = con["srv"].ask("ping -c 2 -W 3 %s" % ip["cli"])
    check(ok, "srv pings cli (egress free, replies pass): %r" % out)

    # A rule for 22, live: open.
    t1 = time.monotonic()
    r22 = d.ok("POST", "/api/v1/security-groups/web/rules" + Q,
               body={"direction": "ingress", "protocol": "tcp", "ports": "22"})
    print("  a rule added in %.0f ms" % ((time.monotonic() - t1) * 1000), flush=True)
    ok, out = fetch(con["cli"], ip["srv"], 22)
    check(ok and "hello-ssh" in out, "after the rule, cli reaches srv's port 22: %r" % out)

    # A transfer under way survives an unrelated change: the CGI answers its first part, the
    # rule for ICMP goes in, its second part still arrives 8 s later.
    con["srv"].ask("rm -f /tmp/slow-started")
    con["cli"].ask("rm -f /tmp/slow.out; (wget -q -T 60 -O /tmp/slow.out "
                   "http://%s/cgi-bin/slow; echo wget-exit-$? >> /tmp/slow.out) & true" % ip["srv"])
    started = False
    for _ in range(30):
        out, started = con["srv"].ask("test -f /tmp/slow-started")
        if started:
            break
        time.sleep(0.5)
    check(started, "the slow answer began")
    d.ok("POST", "/api/v1/security-groups/web/rules" + Q,
         body={"direction": "ingress", "protocol": "icmp"})
    out, ok = con["cli"].ask("ping -c 2 -W 3 %s" % ip["srv"])
    check(ok, "the ICMP rule is in force: cli pings srv: %r" % out)
    out, ok = con["cli"].ask("for i in $(seq 30); do grep -q wget-exit /tmp/slow.out && break; "
                             "sleep 1; done; cat /tmp/slow.out", timeout=60)
    check("first-part" in out and "second-part" in out and "wget-exit-0" in out,
          "the connection opened before the change carried its answer to the end: %r" % out)

    # The rule for 22 deleted: closed again.
    d.ok("DELETE", "/api/v1/security-groups/web/rules/%d%s" % (r22["id"], Q))
    ok, out = fetch(con["cli"], ip["srv"], 22)
    check(not ok and "hello-ssh" not in out, "with its rule gone, 22 is closed: %r" % out)

    # Recovery: the table removed behind the daemon's back lets 22 through (the control:
    # the table is what closes it); a kill -9 and restart brings it back.
    subprocess.run(["ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "tsr_sg"])
    ok, out = fetch(con["cli"], ip["srv"], 22)
    check(ok and "hello-ssh" in out, "without the table, 22 is open: %r" % out)
    for c in con.values():  # through the daemon: they end with it
        c.close()
    d.kill()
    d.start()
    check("table inet tsr_sg" in tables(ns), "the restart made the table again: %s" % tables(ns))
    cc = Console(d, "red", "cli")
    ok, out = fetch(cc, ip["srv"], 22)
    check(not ok and "hello-ssh" not in out, "after the restart, 22 is closed again: %r" % out)

    # A group in use cannot go; off the NICs, no table is left.
    st, doc, _ = d.call("DELETE", "/api/v1/security-groups/web" + Q)
    check(st == 409 and ("'srv'" in doc["error"]["message"] or
                         "'mate'" in doc["error"]["message"]),
          "deleting a group in use is a 409 naming the VM: %d %s" % (st, doc))
    for n in ("srv", "mate"):
        vm = d.ok("PUT", "/api/v1/vms/%s/nics/0/security-groups%s" % (n, Q),
                  body={"security_groups": []})
        check("security_groups" not in vm["nics"][0], "%s's NIC unfiltered: %s" % (n, vm))
    check("tsr_sg" not in tables(ns), "no NIC in a group: no table: %s" % tables(ns))
    ok, out = fetch(cc, ip["srv"], 22)
    check(ok and "hello-ssh" in out, "srv unfiltered: cli reaches 22: %r" % out)
    cc.close()
    d.ok("DELETE", "/api/v1/security-groups/web" + Q)
    for n in ip:
        d.wait_op(d.ok("POST", "/api/v1/vms/%s/actions/stop%s" % (n, Q)))
        for _ in range(50):  # its exit is recorded by the supervisor, a moment later
            st, _, body = d.call("DELETE", "/api/v1/vms/%s%s" % (n, Q))
            if st != 409:
                break
            time.sleep(0.2)
        check(st == 204, "VM %s deleted: %d %s" % (n, st, body[:200]))
    d.ok("DELETE", "/api/v1/networks/lan" + Q)
    nss = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    check(ns not in nss, "the network's namespace (and its tables) is gone")


def main():
    why = network_missing()
    if why:
        print("secgroups: skipped: %s" % why)
        print("secgroups: 0 passed, 0 failed")
        return 0
    tmp = tempfile.mkdtemp(prefix="tsr-sg-")
    state = os.path.join(tmp, "state")
    d = Daemon(state)
    try:
        d.start()
        t0 = time.monotonic()
        run(d, state)
        print("%s secgroups (%.1fs)" % ("PASS" if not TALLY.failed else "FAIL",
                                        time.monotonic() - t0))
    except (AssertionError, OSError, KeyError, IndexError, RuntimeError, EOFError) as e:
        import traceback
        traceback.print_exc()
        check(False, "%s: %s" % (type(e).__name__, e))
    finally:
        try:
            d.stop()
        except Exception:
            pass
        # Whatever a failure left: the VMs (their own processes), dnsmasq, namespaces.
        for pid in VM_PIDS:
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    if tmp.encode() in f.read():
                        os.kill(pid, 9)
            except (OSError, TypeError):
                pass
        network_cleanup(state)
        if not TALLY.failed:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("logs in", tmp)
    print("secgroups: %d passed, %d failed" % (TALLY.passed, TALLY.failed))
    return 1 if TALLY.failed else 0


if __name__ == "__main__":
    sys.exit(main())
