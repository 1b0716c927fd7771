/* The web console's static files (src/daemon/webui.h) and the console tickets a browser opens
 * its websocket with (src/daemon/ticket.h): only "/" and plain files of /ui/ map to files, with
 * their types; traversal, dot files, folders and links are refused; a ticket is good once, for
 * its own VM, until it expires, and the table is bounded. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/ticket.h"
#include "daemon/webui.h"
#include "test.h"

static void test_resolve(void)
{
    static const char *const refused[] = {
        "/index.html",    "/ui/",        "/ui/../tesserad.db", "/ui/..",
        "/ui/.hidden.js", "/ui/a/b.js",  "/ui/a%2fb.js",       "/ui/app",
        "/ui/app.exe",    "/api/v1/vms", "/ui/a b.js",         "//",
    };
    char name[WEBUI_NAME_LEN];
    const char *type = NULL;
    size_t i;

    CHECK(webui_owns("/") && webui_owns("/ui/app.js") && !webui_owns("/api/v1/vms") &&
          !webui_owns("/metrics"));
    CHECK(webui_resolve("/", name, &type) == 0 && !strcmp(name, "index.html") &&
          !strcmp(type, "text/html; charset=utf-8"));
    CHECK(webui_resolve("/ui/app.js", name, &type) == 0 && !strcmp(name, "app.js") &&
          !strcmp(type, "text/javascript; charset=utf-8"));
    CHECK(webui_resolve("/ui/app.css", name, &type) == 0 &&
          !strcmp(type, "text/css; charset=utf-8"));
    for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        int ret = webui_resolve(refused[i], name, &type);

        CHECK(ret == -ENOENT);
        if (ret != -ENOENT)
            fprintf(stderr, "  %s resolved to %s\n", refused[i], name);
    }
}

static void test_open(void)
{
    char dir[] = "/tmp/test_webui.XXXXXX", path[256];
    uint64_t size = 0;
    int dfd, fd = -1;
    FILE *f;

    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/app.js", dir);
    f = fopen(path, "w");
    CHECK(f && fputs("console.log(1);\n", f) >= 0 && fclose(f) == 0);
    snprintf(path, sizeof(path), "%s/link.js", dir);
    CHECK(symlink("/etc/passwd", path) == 0);
    snprintf(path, sizeof(path), "%s/sub.js", dir);
    CHECK(mkdir(path, 0700) == 0);
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CHECK(dfd >= 0);
    CHECK(webui_open_file(dfd, "app.js", &fd, &size) == 0 && fd >= 0 && size == 16);
    if (fd >= 0)
        close(fd);
    CHECK(webui_open_file(dfd, "link.js", &fd, &size) == -ELOOP && fd == -1);
    CHECK(webui_open_file(dfd, "sub.js", &fd, &size) == -EINVAL && fd == -1);
    CHECK(webui_open_file(dfd, "absent.js", &fd, &size) == -ENOENT && fd == -1);
    close(dfd);
    snprintf(path, sizeof(path), "rm -rf '%s'", dir);
    CHECK(system(path) == 0);
}

static void test_tickets(void)
{
    struct api_caller alice = {.tenant = "alpha", .user = "alice", .role = "operator"}, got;
    static struct ticket_table tab;
    char a[TICKET_TEXT_LEN + 1], b[TICKET_TEXT_LEN + 1], bad[TICKET_TEXT_LEN + 1];
    int i, n = 0;

    ticket_table_init(&tab);
    CHECK(ticket_issue(&tab, &alice, "web", 100, a) == 0 && strlen(a) == TICKET_TEXT_LEN);
    CHECK(ticket_issue(&tab, &alice, "web", 100, b) == 0 && strcmp(a, b));
    /* Another VM's name, a wrong text, a short one: refused, and the ticket is not spent. */
    CHECK(ticket_redeem(&tab, a, "db", 101, &got) == -EACCES);
    memcpy(bad, a, sizeof(bad));
    bad[0] = bad[0] == '0' ? '1' : '0';
    CHECK(ticket_redeem(&tab, bad, "web", 101, &got) == -EACCES);
    CHECK(ticket_redeem(&tab, "", "web", 101, &got) == -EACCES);
    /* Good once, speaking for who asked. */
    memset(&got, 0, sizeof(got));
    CHECK(ticket_redeem(&tab, a, "web", 101, &got) == 0 && !strcmp(got.tenant, "alpha") &&
          !strcmp(got.user, "alice") && !strcmp(got.role, "operator"));
    CHECK(ticket_redeem(&tab, a, "web", 101, &got) == -EACCES);
    /* Expired at TICKET_TTL_S. */
    CHECK(ticket_redeem(&tab, b, "web", 100 + TICKET_TTL_S, &got) == -EACCES);
    /* Bounded: TICKET_MAX outstanding, then -EAGAIN until they expire. */
    for (i = 0; i < TICKET_MAX + 1; i++)
        n += ticket_issue(&tab, &alice, "web", 200, a) == 0;
    CHECK(n == TICKET_MAX);
    CHECK(ticket_issue(&tab, &alice, "web", 200, a) == -EAGAIN);
    CHECK(ticket_issue(&tab, &alice, "web", 200 + TICKET_TTL_S, a) == 0);
    ticket_table_destroy(&tab);
}

int main(void)
{
    test_resolve();
    test_open();
    test_tickets();
    return test_finish("webui");
}
