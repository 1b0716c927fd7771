/* The daemon's listening sockets (src/daemon/listener.h): the --listen forms, plain http
 * refused beyond loopback, the address as bound (port 0), unix sockets (mode, a stale one
 * replaced, a live one or another file refused, only our own removed), and the TLS
 * certificate and key checks, each naming its file (certificates made here by certtool). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/listener.h"
#include "test.h"

static char dir[40];

static void test_specs(void)
{
    struct listener l;
    char err[LISTENER_ERR_LEN];
    static const char *const refused[] = {
        "http://0.0.0.0:80",
        "http://10.1.2.3:80",
        "http://localhost:80",
        "http://[::]:80",
        "ftp://x:1",
        "https://:443",
        "https://host",
        "https://host:99999",
        "https://h:8x",
        "https://[::1:443",
        "unix",
        "",
    };
    size_t i;

    for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        err[0] = '\0';
        CHECK(listener_open(refused[i], 0600, &l, err) == -EINVAL);
        CHECK(strstr(err, refused[i]) != NULL);
        CHECK(l.fd == -1);
    }
    CHECK(listener_open("http://0.0.0.0:80", 0600, &l, err) == -EINVAL &&
          strstr(err, "clear text"));

    CHECK(listener_open("http://127.0.0.1:0", 0600, &l, err) == 0);
    CHECK(l.fd >= 0 && !l.tls && !l.is_unix);
    CHECK(!strncmp(l.address, "http://127.0.0.1:", 17) && atoi(l.address + 17) > 0);
    close(l.fd);
    CHECK(listener_open("https://127.0.0.1:0", 0600, &l, err) == 0 && l.tls);
    CHECK(!strncmp(l.address, "https://127.0.0.1:", 18) && atoi(l.address + 18) > 0);
    close(l.fd);
}

static void test_unix(void)
{
    struct listener l, l2;
    char spec[80], path[64], err[LISTENER_ERR_LEN];
    struct stat st;
    int fd;

    snprintf(path, sizeof(path), "%s/api.sock", dir);
    snprintf(spec, sizeof(spec), "unix:%s", path);
    CHECK(listener_open(spec, 0660, &l, err) == 0 && l.is_unix);
    CHECK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0660);
    CHECK(!strcmp(l.address, spec));
    /* Live: refused, and the live one is untouched. */
    CHECK(listener_open(spec, 0660, &l2, err) == -EADDRINUSE && strstr(err, path));
    CHECK(stat(path, &st) == 0);
    /* Stale (nobody listening): replaced. */
    close(l.fd);
    CHECK(listener_open(spec, 0600, &l2, err) == 0);
    listener_remove(&l2);
    CHECK(stat(path, &st) == -1);
    close(l2.fd);
    /* Any other file is left alone. */
    fd = open(path, O_CREAT | O_WRONLY, 0600);
    close(fd);
    CHECK(listener_open(spec, 0600, &l, err) == -EEXIST && strstr(err, "not a socket"));
    unlink(path);
}

/* Runs a shell command (certtool from gnutls-bin, as install-deps.sh installs). */
static bool sh(const char *fmt, const char *a)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), fmt, a, a, a, a);
    return system(cmd) == 0;
}

static void test_tls(void)
{
    char cert[64], key[64], key2[64], bad[64], none[64], err[LISTENER_ERR_LEN];
    char *c = NULL, *k = NULL;
    FILE *f;

    snprintf(cert, sizeof(cert), "%s/c.pem", dir);
    snprintf(key, sizeof(key), "%s/k.pem", dir);
    snprintf(key2, sizeof(key2), "%s/k2.pem", dir);
    snprintf(bad, sizeof(bad), "%s/bad.pem", dir);
    snprintf(none, sizeof(none), "%s/none.pem", dir);
    CHECK(sh("cd %s && certtool --generate-privkey --outfile k.pem >/dev/null 2>&1 && "
             "certtool --generate-privkey --outfile k2.pem >/dev/null 2>&1 && "
             "printf 'cn = 127.0.0.1\\nexpiration_days = 2\\n' > t.tmpl && "
             "certtool --generate-self-signed --load-privkey k.pem --template t.tmpl "
             "--outfile c.pem >/dev/null 2>&1",
             dir));
    f = fopen(bad, "w");
    if (f) {
        fputs("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n", f);
        fclose(f);
    }

    CHECK(listener_tls_load(cert, key, &c, &k, err) == 0 && c && k);
    CHECK(strstr(c, "BEGIN CERTIFICATE") && strstr(k, "PRIVATE KEY"));
    free(c);
    free(k);
    CHECK(listener_tls_load(none, key, &c, &k, err) == -ENOENT && strstr(err, none) && !c && !k);
    CHECK(listener_tls_load(cert, none, &c, &k, err) == -ENOENT && strstr(err, none) && !c);
    CHECK(listener_tls_load(bad, key, &c, &k, err) == -EINVAL && strstr(err, bad) &&
          strstr(err, "not a PEM certificate"));
    CHECK(listener_tls_load(cert, bad, &c, &k, err) == -EINVAL && strstr(err, bad) &&
          strstr(err, "private key"));
    CHECK(listener_tls_load(cert, key2, &c, &k, err) == -EINVAL && strstr(err, key2) &&
          strstr(err, "does not match") && strstr(err, cert) && !c && !k);
    CHECK(listener_tls_load(NULL, key, &c, &k, err) == -EINVAL && strstr(err, "--tls-cert"));
    sh("rm -f %s/*.pem %s/t.tmpl", dir);
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/tessera-listener-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    test_specs();
    test_unix();
    test_tls();
    rmdir(dir);
    return test_finish("listener");
}
