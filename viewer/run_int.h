/*
 * One generation, as `lltrace run` performs it: load, render the prompt, decode, sample,
 * stream, and record into a trace. Shared by run, bench and replay --run.
 */
#ifndef VW_RUN_INT_H
#define VW_RUN_INT_H

#include "lm.h"

#include <stdbool.h>
#include <stdint.h>

#define VW_MAX_RULES 32

struct vw_run_opts {
    const char *model, *prompt, *prompt_file, *system, *chat_template, *trace;
    int64_t n_predict, n_ctx;
    int n_threads, kv_type;
    bool chat, verbose_prompt, ids, force;
    bool quiet; /* no streaming to stdout, no timing on stderr (bench, tests) */
    struct lm_sampler_opts sampler;
    struct lm_faults faults;
    const char *rules[VW_MAX_RULES];
    int n_rules;
    const int32_t *tokens; /* use these prompt tokens instead of tokenizing (replay --run) */
    int64_t n_tokens;
};

struct vw_run_result {
    int32_t *tokens; /* prompt then generated ids (malloc'd; free with vw_run_result_free) */
    int64_t n_prompt, n_gen;
    double prompt_s, gen_s; /* wall time of the prompt step and of the generation steps */
    float *last_logits;     /* (n_vocab) logits after the last step, malloc'd */
    int64_t n_vocab;
};

void vw_run_opts_init(struct vw_run_opts *o);
/* The trace page size for these recording rules (trc_writer_opts.page_size): 8192 when no op
 * can be recorded in full (a rule without a pattern at level stats or none, and no rule at
 * level full); 32768 when some ops may be recorded in full and some at level stats; else 0
 * (the tracer's default, 64 KiB, for a trace whose ops are all in full or not recorded). */
int vw_trace_page_size(const char *const *rules, int n_rules);
/* Runs a generation. res may be NULL. Returns an exit code (0 ok, 1 failure) and prints
 * diagnostics to stderr. */
int vw_run(const struct vw_run_opts *o, struct vw_run_result *res);
void vw_run_result_free(struct vw_run_result *r);

#endif
