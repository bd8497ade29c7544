/*
 * shared_stub.c - the one source of liblltrace_trc.so: the library's content is all of libtrc
 * (linked whole-archive); this file only gives CMake a source to build the target from.
 */
#include "trc.h"

/* The schema version this shared library reads and writes (trc.h's TRC_SCHEMA_VERSION), so a
 * foreign-language binding can check it matches the header it was written against. */
int lltrace_trc_schema_version(void);
int lltrace_trc_schema_version(void)
{
    return TRC_SCHEMA_VERSION;
}
