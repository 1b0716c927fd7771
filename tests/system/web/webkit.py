"""What the browser tests (test_web.py, test_web_admin.py, test_web_metrics.py) share: where
Chromium and the built console are, whether a browser can run here, the daemon's http://
listener, and running a drive script (common.mjs) whose checks count in the Python tally."""

import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "lib"))
from syskit import TALLY, check  # noqa: E402
from tesserad import ROOT  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
WEB_DIR = os.path.join(ROOT, "build", "web")


def node_path():
    """The node the web build uses (the host's, or the pinned one it fetched when the host's is
    too old), or None."""
    if not shutil.which("node") or not shutil.which("npm"):
        return None
    r = subprocess.run([os.path.join(ROOT, "scripts", "web-build.sh"), "node"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, timeout=600)
    return r.stdout.strip() if r.returncode == 0 and r.stdout.strip() else None


def why_no_browser():
    """Why a browser run cannot happen here, or None."""
    if not os.access(CHROMIUM, os.X_OK):
        return "%s is missing (Debian: apt-get install chromium)" % CHROMIUM
    if not node_path():
        return "no node 20.19 or later (scripts/web-build.sh node says why)"
    if not os.path.isdir(os.path.join(ROOT, "web", "node_modules", "playwright-core")):
        return "web/node_modules has no playwright-core (make builds it)"
    if not os.path.isfile(os.path.join(ROOT, "build", "guest", "Image")):
        return "the default guest is not built (guest/build.sh): the busybox template needs it"
    return None


def http_base(tmp):
    """The http:// listener tesserad (logging to TMP/tesserad.log) names, or None."""
    for _ in range(50):
        with open(os.path.join(tmp, "tesserad.log")) as f:
            m = re.search(r"serving the API on (http://127\.0\.0\.1:\d+)", f.read())
        if m:
            return m.group(1)
        time.sleep(0.1)
    return None


def drive(script, name, artifacts, env, timeout=900):
    """Runs SCRIPT (beside this file) in node with env added (WEB_ARTIFACTS and CHROMIUM set
    here) into a fresh ARTIFACTS folder; its "NAME: N passed, N failed" joins the tally."""
    shutil.rmtree(artifacts, ignore_errors=True)
    env = dict(os.environ, WEB_ARTIFACTS=artifacts, CHROMIUM=CHROMIUM, **env)
    p = subprocess.run([node_path(), os.path.join(os.path.dirname(__file__), script)], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout)
    print(p.stdout, end="")
    m = re.search(r"^%s: (\d+) passed, (\d+) failed$" % re.escape(name), p.stdout, re.M)
    check(m is not None and p.returncode == 0, "the browser run ended cleanly (rc %d)" %
          p.returncode)
    if m:
        TALLY.passed += int(m.group(1))
        TALLY.failed += int(m.group(2))


def screenshots(artifacts, least):
    shots = sorted(os.listdir(artifacts)) if os.path.isdir(artifacts) else []
    check(len([s for s in shots if s.endswith(".png")]) >= least,
          "a screenshot of each view in %s: %s" % (artifacts, shots))
