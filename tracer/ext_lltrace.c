/*
 * ext_lltrace.c - the tensor SQL functions as a loadable SQLite extension (lltrace_sqlext.so),
 * so any SQLite client can query traces without lltrace:
 *
 *     sqlite3 run.trace
 *     sqlite> .load ./lltrace_sqlext
 *     sqlite> SELECT name, t_topk(tensor_id, 3) FROM v_op_stats WHERE name = 'output';
 *
 * The functions themselves live in trc_sqlfn.c (linked in from libtrc). They call SQLite
 * directly, so the host must use the same shared libsqlite3 as this module (true of the sqlite3
 * shell and Python's sqlite3 on Debian).
 */
#include <sqlite3ext.h>

#include "trc.h"

SQLITE_EXTENSION_INIT1

#ifdef __cplusplus
extern "C"
#endif
    int
    sqlite3_extension_init(sqlite3 *db, char **err, const sqlite3_api_routines *api);

int sqlite3_extension_init(sqlite3 *db, char **err, const sqlite3_api_routines *api)
{
    SQLITE_EXTENSION_INIT2(api);
    if (trc_sql_register(db) < 0) {
        *err = sqlite3_mprintf("lltrace: cannot register the tensor SQL functions");
        return SQLITE_ERROR;
    }
    return SQLITE_OK;
}
