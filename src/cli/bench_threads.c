/* kvz bench threads: decode steps over one shared cache asked from one host thread, then from
 * four host threads at once, with the time of each and whether every answer stayed the same. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cache_cases.h"
#include "cli/cli.h"
#include "kvz.h"

enum { HOSTS = 4, STEPS = 64, OUT = KVZ_CC_H * KVZ_CC_G * KVZ_CC_D };

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct host {
    const kvz_cache *c;
    int steps, failed;
    float out[OUT]; /* the last step's output */
} host;

/* One host thread: its own query on the shared cache, `steps` decode steps. */
static void *host_main(void *arg)
{
    host *h = arg;
    kvz_cc_decoder *d = kvz_cc_decoder_create(h->c);
    h->failed = !d;
    for (int s = 0; d && s < h->steps && !h->failed; s++)
        h->failed = kvz_cc_decode_step(d) != 0;
    if (d && !h->failed)
        memcpy(h->out, kvz_cc_decoder_output(d), sizeof h->out);
    kvz_cc_decoder_destroy(d);
    return NULL;
}

int kvz_bench_threads(int json)
{
    kvz_cache *c = kvz_cc_build();
    if (!c)
        return kvz_cli_error("bench threads: building the cache failed: %s", kvz_last_error());
    static host one, many[HOSTS];
    one = (host){c, STEPS, 0, {0}};
    host_main(&one); /* warm-up: pages, scratch, the pool's workers */
    const double t0 = now();
    host_main(&one);
    const double t_one = now() - t0;
    pthread_t t[HOSTS];
    int started = 0;
    const double t1 = now();
    for (; started < HOSTS; started++) {
        many[started] = (host){c, STEPS / HOSTS, 0, {0}};
        if (pthread_create(&t[started], NULL, host_main, &many[started]) != 0)
            break;
    }
    for (int i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    const double t_many = now() - t1;
    int same = started == HOSTS && !one.failed;
    for (int i = 0; i < started; i++)
        same &= !many[i].failed && !memcmp(many[i].out, one.out, sizeof one.out);
    kvz_cache_destroy(c);
    if (json)
        printf("{\"name\":\"host_threads\",\"steps\":%d,\"hosts\":%d,\"one_host_s\":%.4f,\"four_hosts_s\":%.4f,"
               "\"ratio\":%.3f,\"same_answers\":%s,\"threads\":%d,\"isa\":\"%s\",\"read_plan\":\"%s\"}\n",
               STEPS, HOSTS, t_one, t_many, t_many / t_one, same ? "true" : "false", kvz_num_threads(),
               kvz_isa_name(kvz_isa_active()), kvz_read_plan_name(kvz_read_plan_active()));
    else
        printf(
            "%d decode steps over one shared cache (one layer, %d KV heads, G = %d, d = %d, %d tokens, bf16),\n"
            "library threads %d, isa %s:\n"
            "  from one host thread        %8.1f ms\n"
            "  from %d host threads at once %8.1f ms   (%.2fx; about 1 when nothing is oversubscribed)\n"
            "  every answer the same as from one thread: %s\n",
            STEPS, KVZ_CC_H, KVZ_CC_G, KVZ_CC_D, KVZ_CC_N, kvz_num_threads(), kvz_isa_name(kvz_isa_active()),
            1e3 * t_one, HOSTS, 1e3 * t_many, t_many / t_one, same ? "yes" : "NO");
    return same ? 0 : 1;
}
