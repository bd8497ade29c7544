/*
 * progress.c - the terminal progress bar of progress.h. A redraw is "\r" + the whole line, so
 * the bar needs no cursor control beyond carriage return and erase-to-end-of-line.
 */
#include "progress.h"

#include <time.h>

#include "vw.h"

#define BAR_WIDTH 30

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void vw_progress_init(struct vw_progress *p, FILE *f, const char *label, int64_t total)
{
    p->f = f ? f : stderr;
    p->on = vw_isatty(p->f);
    p->label = label ? label : "";
    p->total = total > 0 ? total : 0;
    p->done = 0;
    p->last_ns = 0;
    p->last_pct = -1;
}

static void draw(struct vw_progress *p)
{
    int pct = p->total > 0 ? (int)(p->done * 100 / p->total) : 100;
    int fill = pct * BAR_WIDTH / 100;
    fprintf(p->f, "\r%s [", p->label);
    for (int i = 0; i < BAR_WIDTH; i++) {
        fputc(i < fill ? '#' : '.', p->f);
    }
    fprintf(p->f, "] %3d%%  %lld/%lld\033[K", pct, (long long)p->done, (long long)p->total);
    fflush(p->f);
    p->last_pct = pct;
}

void vw_progress_update(struct vw_progress *p, int64_t done)
{
    p->done = done < p->total ? done : p->total;
    if (!p->on) {
        return;
    }
    int64_t t = now_ns();
    if (p->last_pct < 0 || t - p->last_ns >= 100000000) {
        p->last_ns = t;
        draw(p);
    }
}

void vw_progress_release(struct vw_progress *p)
{
    if (!p || !p->on) {
        return;
    }
    draw(p);
    fputc('\n', p->f);
    fflush(p->f);
}
