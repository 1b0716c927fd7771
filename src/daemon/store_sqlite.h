/* The SQLite backend's own door, beside store.h: what its test needs to build a database at
 * every schema level. The daemon uses store_open_sqlite() only. */
#ifndef TESSERA_DAEMON_STORE_SQLITE_H
#define TESSERA_DAEMON_STORE_SQLITE_H

#include "daemon/store.h"

/* The schema level this tessera writes: the number of migration steps. */
unsigned store_sqlite_level(void);

/* As store_open_sqlite(), but migrates no further than level (1..store_sqlite_level()). For
 * the migration test: a store at a lower level must not be used for anything but closing. */
int store_sqlite_open_level(const char *path, unsigned level, struct store **out, char *err);

#endif
