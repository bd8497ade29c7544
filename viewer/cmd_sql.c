/*
 * cmd_sql.c - `lltrace sql TRACE [QUERY]`: SQL against a trace, opened read-only and
 * defensively through the tracer's reader (which registers the tensor SQL functions on the
 * connection). Statements come from the argument, from a saved query (--query NAME, queries.c)
 * or from stdin; each result set is printed as an aligned table (always, unless --csv or
 * --json: scripts should ask for those explicitly), CSV or JSON (one array per statement).
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "cmds.h"
#include "query_int.h"
#include "vw.h"

#define MAX_ATTACH 8
#define MAX_PARAMS 32
#define MAX_STDIN  (64 << 20)

static const char usage_text[] =
    "usage: lltrace sql TRACE [QUERY]\n"
    "       lltrace sql TRACE --query NAME [KEY=VALUE...]\n"
    "       lltrace sql --list-queries | --help-functions\n"
    "\n"
    "Runs SQL against a trace opened read-only and defensively (any trace may come from\n"
    "anyone). QUERY may hold several statements; without QUERY they are read from stdin.\n"
    "The schema (tables, views, every column) is documented in schema/trace.sql; the tensor\n"
    "functions t_shape, t_stat, t_at, t_slice, t_maxabs, t_nmse, t_cos, t_ulp, t_equal,\n"
    "t_topk and t_dot are registered (see --help-functions).\n"
    "\n"
    "options:\n"
    "  --csv                   print CSV (RFC 4180, header row)\n"
    "  --json                  print a JSON array of objects per statement\n"
    "                          (default: an aligned table, numbers right-aligned, NULL shown as\n"
    "                          NULL, reals with at most 9 significant digits, which is exact\n"
    "                          for float32 values; CSV and JSON print every real exactly)\n"
    "  --attach NAME=OTHER     make trace OTHER available as schema NAME (repeatable): join\n"
    "                          with NAME.ops, compare tensors with 'NAME.<id>'\n"
    "  --query NAME            run a saved query; KEY=VALUE arguments set its parameters\n"
    "  --param KEY=VALUE       bind :KEY in QUERY (repeatable)\n"
    "  --list-queries          describe the saved queries and their SQL\n"
    "  --help-functions        document the tensor SQL functions, with examples\n"
    "  --max-width N           aligned table: cut cells wider than N characters\n"
    "                          (default 80 on a terminal, none when piped; 0 = never)\n"
    "  -h, --help              show this help\n"
    "\n"
    "examples:\n"
    "  lltrace sql t.trace \"SELECT name, rms FROM v_op_stats WHERE step = 0 AND layer = 0\"\n"
    "  lltrace sql t.trace --query top_tokens k=3\n"
    "  lltrace sql t.trace --query rope pos=4 layer=-1\n"
    "  lltrace sql t.trace --csv \"SELECT * FROM v_residual_rms\" > rms.csv\n"
    "  lltrace sql a.trace --attach ref=b.trace \\\n"
    "      \"SELECT a.step, t_nmse(a.tensor_id, 'ref.' || b.tensor_id) AS nmse\n"
    "       FROM v_op_stats a JOIN ref.v_op_stats b USING (step, name)\n"
    "       WHERE a.name = 'output'\"\n"
    "  echo \"SELECT count(*) FROM ops;\" | lltrace sql t.trace\n"
    "\n"
    "exit codes: 0 success, 1 SQL error (syntax, write attempt, corrupt tensor), 2 usage\n";

struct sql_args {
    const char *trace, *sql, *query;
    struct vw_table_opts topts;
    const char *attach[MAX_ATTACH];
    int n_attach;
    char *params[MAX_PARAMS];
    int n_params;
    bool list, functions;
};

enum { OPT_CSV = 1000, OPT_JSON, OPT_ATTACH, OPT_QUERY, OPT_PARAM, OPT_LIST, OPT_FUNCS, OPT_WIDTH };

static int add_param(struct sql_args *a, char *kv)
{
    if (a->n_params == MAX_PARAMS) {
        return vw_usage_error("sql", "too many parameters (at most %d)", MAX_PARAMS);
    }
    a->params[a->n_params++] = kv;
    return 0;
}

static int parse_option(struct sql_args *a, int c)
{
    long long w;
    switch (c) {
    case OPT_CSV:
    case OPT_JSON:
        a->topts.format = c == OPT_CSV ? VW_TABLE_FORMAT_CSV : VW_TABLE_FORMAT_JSON;
        return 0;
    case OPT_ATTACH:
        if (a->n_attach == MAX_ATTACH) {
            return vw_usage_error("sql", "too many --attach (at most %d)", MAX_ATTACH);
        }
        a->attach[a->n_attach++] = optarg;
        return 0;
    case OPT_QUERY:
        a->query = optarg;
        return 0;
    case OPT_PARAM:
        return add_param(a, optarg);
    case OPT_LIST:
        a->list = true;
        return 0;
    case OPT_FUNCS:
        a->functions = true;
        return 0;
    case OPT_WIDTH:
        if (vw_parse_i64(optarg, 0, 100000, &w) < 0) {
            return vw_usage_error("sql", "--max-width: '%s' is not a width", optarg);
        }
        a->topts.max_width = (int)w;
        return 0;
    default:
        return vw_usage_error("sql", "unknown option");
    }
}

static int parse_args(int argc, char **argv, struct sql_args *a)
{
    static const struct option longopts[] = {{"csv", no_argument, NULL, OPT_CSV},
                                             {"json", no_argument, NULL, OPT_JSON},
                                             {"attach", required_argument, NULL, OPT_ATTACH},
                                             {"query", required_argument, NULL, OPT_QUERY},
                                             {"param", required_argument, NULL, OPT_PARAM},
                                             {"list-queries", no_argument, NULL, OPT_LIST},
                                             {"help-functions", no_argument, NULL, OPT_FUNCS},
                                             {"max-width", required_argument, NULL, OPT_WIDTH},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int c, rc;
    a->topts.max_width = vw_isatty(stdout) ? 80 : 0;
    a->topts.real_digits = 9; /* every float32 exactly; --csv/--json give doubles exactly */
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c == 'h') {
            fputs(usage_text, stdout);
            return -1;
        }
        if (c == '?') {
            return vw_usage_error("sql", "bad option");
        }
        rc = parse_option(a, c);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* TRACE, then QUERY (ad hoc) or KEY=VALUE... (saved query). */
static int parse_operands(int argc, char **argv, struct sql_args *a)
{
    int i = optind;
    if (a->list || a->functions) {
        return 0;
    }
    if (i >= argc) {
        return vw_usage_error("sql", "missing TRACE");
    }
    a->trace = argv[i++];
    if (a->query) {
        for (; i < argc; i++) {
            if (add_param(a, argv[i]) != 0) {
                return 2;
            }
        }
        return 0;
    }
    if (i < argc) {
        a->sql = argv[i++];
    }
    if (i < argc) {
        return vw_usage_error("sql", "unexpected argument '%s' (quote the whole QUERY)", argv[i]);
    }
    return 0;
}

/* All of stdin, malloc'd and NUL-terminated; NULL when too large or unreadable. */
static char *read_stdin(void)
{
    size_t n = 0, cap = 4096;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *nb = cap >= MAX_STDIN ? NULL : realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - 1 - n, stdin);
        n += r;
        if (r == 0 && ferror(stdin)) {
            free(buf);
            return NULL;
        }
        if (r == 0) {
            buf[n] = 0;
            return buf;
        }
    }
    return NULL;
}

/* Runs one prepared statement: binds parameters, refuses writes, prints rows. Returns 0 or 1. */
static int run_stmt(trc_reader *r, sqlite3_stmt *st, const struct sql_args *a, int *n_printed)
{
    sqlite3 *db = trc_reader_sql_handle(r);
    char err[256];
    const struct vw_query *q = a->query ? vw_query_find(a->query) : NULL;
    if (vw_query_bind(st, q, a->n_params, a->params, err, sizeof err) < 0) {
        return vw_error("%s: %s", trc_reader_path(r), err);
    }
    if (!sqlite3_stmt_readonly(st)) {
        return vw_error("%s: attempt to write a readonly database", trc_reader_path(r));
    }
    if (sqlite3_column_count(st) > 0 && *n_printed > 0 &&
        a->topts.format == VW_TABLE_FORMAT_ALIGNED) {
        fputc('\n', stdout);
    }
    int64_t n = vw_table_print_stmt(st, stdout, &a->topts);
    if (n == -2) {
        return vw_error("%s: out of memory", trc_reader_path(r));
    }
    if (n < 0) {
        return vw_error("%s: %s", trc_reader_path(r), sqlite3_errmsg(db));
    }
    *n_printed += sqlite3_column_count(st) > 0;
    return 0;
}

/* Prepares and runs each statement of sql in turn; stops at the first error. */
static int run_sql(trc_reader *r, const char *sql, const struct sql_args *a)
{
    sqlite3 *db = trc_reader_sql_handle(r);
    const char *tail = sql;
    int n_printed = 0, rc = 0;
    while (rc == 0 && tail && *tail) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, tail, -1, &st, &tail) != SQLITE_OK) {
            return vw_error("%s: %s", trc_reader_path(r), sqlite3_errmsg(db));
        }
        if (!st) {
            break; /* only whitespace or comments left */
        }
        rc = run_stmt(r, st, a, &n_printed);
        sqlite3_finalize(st);
    }
    fflush(stdout);
    return rc;
}

static int attach_all(trc_reader *r, const struct sql_args *a)
{
    for (int i = 0; i < a->n_attach; i++) {
        char name[64];
        const char *eq = strchr(a->attach[i], '=');
        if (!eq || eq == a->attach[i] || (size_t)(eq - a->attach[i]) >= sizeof name) {
            return vw_usage_error("sql", "--attach '%s': want NAME=OTHER.trace", a->attach[i]);
        }
        memcpy(name, a->attach[i], (size_t)(eq - a->attach[i]));
        name[eq - a->attach[i]] = 0;
        if (trc_reader_attach(r, name, eq + 1) < 0) {
            return vw_reader_error(r);
        }
    }
    return 0;
}

int cmd_sql(int argc, char **argv)
{
    struct sql_args a = {0};
    int rc = parse_args(argc, argv, &a);
    rc = rc == 0 ? parse_operands(argc, argv, &a) : rc;
    if (rc != 0) {
        return rc < 0 ? 0 : rc;
    }
    if (a.functions || a.list) {
        fputs(a.functions ? trc_sql_functions_help() : "", stdout);
        if (a.list) {
            vw_queries_list(stdout);
        }
        return 0;
    }
    const struct vw_query *q = a.query ? vw_query_find(a.query) : NULL;
    if (a.query && !q) {
        return vw_usage_error("sql", "no saved query '%s' (see --list-queries)", a.query);
    }
    trc_reader *r = NULL;
    if (vw_open_trace_reader(a.trace, &r) != 0) {
        return 1;
    }
    rc = attach_all(r, &a);
    char *input = NULL;
    if (rc == 0 && !q && !a.sql) {
        input = read_stdin();
        rc = input ? 0 : vw_error("stdin: cannot read the statements (at most 64 MiB)");
    }
    if (rc == 0) {
        rc = run_sql(r, q ? q->sql : a.sql ? a.sql : input, &a);
    }
    free(input);
    trc_reader_close(r);
    return rc;
}
