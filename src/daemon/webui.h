/* webui: the web console's static files (docs/web.md), as tesserad serves them.
 *
 * The console is a single-page application built from web/ into a folder of a few files
 * (index.html and the assets of /ui/). The server maps a request path onto that folder with
 * webui_resolve() (pure: no file is touched) and opens the file with webui_open_file(). Only
 * "/" (index.html) and "/ui/NAME" exist, NAME one plain file name: no folders, no dot files,
 * so no path can leave the folder, and a symbolic link there is refused rather than followed.
 * No state, no locks: both functions may be called from any thread.
 */
#ifndef TESSERA_DAEMON_WEBUI_H
#define TESSERA_DAEMON_WEBUI_H

#include <stddef.h>
#include <stdint.h>

#define WEBUI_NAME_LEN 64          /* a file name of the folder, with its NUL */
#define WEBUI_FILE_MAX (32u << 20) /* the largest file served */

/* The Content-Security-Policy every answer of the console carries: scripts, connections and
 * everything else from this origin only; no frames, no plugins. Styles may also be inline:
 * xterm.js sizes its cells and colours through <style> elements it creates at run time. */
#define WEBUI_CSP                                                                              \
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' " \
    "data:; font-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; "       \
    "form-action 'none'; frame-ancestors 'none'"

/* Is url a path of the console ("/" or under "/ui/")? Such a path is the console's to answer,
 * found or not. */
int webui_owns(const char *url);

/* The file for url into name (WEBUI_NAME_LEN) and its Content-Type into *type: 0, or -ENOENT
 * for a path that names no possible file (another folder, a dot file, a character outside
 * [A-Za-z0-9._-], an extension with no known type). */
int webui_resolve(const char *url, char *name, const char **type);

/* Opens name in the folder dirfd: 0 with *fd (the caller closes it) and *size; -ENOENT when
 * absent, -ELOOP for a symbolic link, -EINVAL for anything but a regular file, -EFBIG past
 * WEBUI_FILE_MAX, other -errno from openat(2). */
int webui_open_file(int dirfd, const char *name, int *fd, uint64_t *size);

#endif
