/*
 * The lltrace commands: each lives in viewer/cmd_<name>.c as int cmd_<name>(int argc, char **argv)
 * (argv[0] is the command name) and returns the process exit code: 0 success, 1 failure or
 * difference found, 2 usage error. main.c dispatches through the table built from this list.
 */
#ifndef VW_CMDS_H
#define VW_CMDS_H

int cmd_help(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);
int cmd_mkmodel(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_sql(int argc, char **argv);
int cmd_ops(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_explain(int argc, char **argv);
int cmd_report(int argc, char **argv);
/* `lltrace info TRACE [--json]` for trace files (viewer/info_trace.c); cmd_info hands over
 * files that are SQLite databases. argv[0] is "info". */
int vw_info_trace(int argc, char **argv);

#endif
