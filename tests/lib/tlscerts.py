"""Test certificates for tls: migration, made at test time with openssl (never committed)."""

import os
import subprocess


def _openssl(*args):
    subprocess.run(["openssl", *args], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


def make_certs(d):
    """Makes, in d: a CA and, signed by it, "target" and "source" (both naming 127.0.0.1);
    another CA ("rogue-ca") and "rogue", signed by that one but also naming 127.0.0.1.
    Returns ({name: (cert, key)}, {"ca": file, "rogue-ca": file})."""
    os.makedirs(d, exist_ok=True)
    ext = os.path.join(d, "leaf.ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
                "extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:127.0.0.1\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    for ca in ("ca", "rogue-ca"):
        _openssl("req", "-x509", *ec, "-keyout", os.path.join(d, ca + ".key"),
                 "-out", os.path.join(d, ca + ".crt"), "-days", "2", "-subj", "/CN=" + ca,
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    out = {}
    for name, ca in (("target", "ca"), ("source", "ca"), ("rogue", "rogue-ca")):
        crt, key, csr = (os.path.join(d, name + x) for x in (".crt", ".key", ".csr"))
        _openssl("req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=" + name)
        _openssl("x509", "-req", "-in", csr, "-CA", os.path.join(d, ca + ".crt"),
                 "-CAkey", os.path.join(d, ca + ".key"), "-CAcreateserial", "-out", crt,
                 "-days", "2", "-extfile", ext)
        out[name] = (crt, key)
    return out, {ca: os.path.join(d, ca + ".crt") for ca in ("ca", "rogue-ca")}


def tls_args(certs, cas, who, ca="ca"):
    """--tls-cert, --tls-key and --tls-ca for identity `who` trusting CA `ca`."""
    crt, key = certs[who]
    return ["--tls-cert", crt, "--tls-key", key, "--tls-ca", cas[ca]]
