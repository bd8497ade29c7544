/*
 * A progress bar for long commands (export --all of a large trace): drawn on stderr when it is a
 * terminal, redrawn at most ten times a second, and completely silent when stderr is piped or
 * redirected, so logs and test output stay clean.
 */
#ifndef VW_PROGRESS_H
#define VW_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Caller-allocated; fields are private to progress.c except `on`, which a test may force. */
struct vw_progress {
    FILE *f;
    bool on; /* draw at all: f is a terminal */
    const char *label;
    int64_t total, done;
    int64_t last_ns; /* time of the last redraw */
    int last_pct;
};

/* Starts a bar of `total` units on f (stderr when NULL); label is borrowed until release. */
void vw_progress_init(struct vw_progress *p, FILE *f, const char *label, int64_t total);
/* Records that `done` units are complete; redraws when due. */
void vw_progress_update(struct vw_progress *p, int64_t done);
/* Draws the final state and ends the line (nothing when silent). Accepts NULL. */
void vw_progress_release(struct vw_progress *p);

#endif
