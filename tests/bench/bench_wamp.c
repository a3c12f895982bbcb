/* bench_wamp: median ns per EVENT encode (gw_wamp_encode_event) for 1 KB and 100 KB
 * bodies in both serializers, beside the same EVENT built as a jansson tree and dumped,
 * the cost the hand-written encoder avoids. Usage: bench_wamp [runs] */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../gateway/gw_wamp.h"

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* A JSON-looking text body with quotes, backslashes, newlines and some UTF-8. */
static uint8_t *make_body(size_t len, bool binary)
{
    static const char chunk[] = "{\"id\":1234,\"name\":\"Zo\xc3\xab \\\"the\\\" admin\","
                                "\"bio\":\"line one\\nline two\","
                                "\"tags\":[\"a\",\"b\"]}\n";
    uint8_t *b = malloc(len);
    for (size_t i = 0; i < len; i++)
        b[i] = binary ? (uint8_t)(i * 2654435761u >> 13)
                      : (uint8_t)chunk[i % (sizeof chunk - 1)];
    /* A text body must not end inside a multi-byte sequence. */
    for (size_t i = len; !binary && i > 0 && !gw_utf8_valid(b, len); i--)
        b[i - 1] = ' ';
    return b;
}

static const struct wm_header headers[] = {
    {"content-type", "application/json; charset=utf-8"},
    {"etag", "\"5d8c72a5edda8d6a\""},
    {"cache-control", "private, max-age=0"},
    {"date", "Sat, 28 Nov 2026 18:00:00 GMT"},
};

/* The alternative: build the EVENT as a jansson tree and dump it (text bodies only). */
static void via_jansson(enum gw_ser ser, const struct gw_page *p, struct wm_buf *out)
{
    json_t *h = json_object();
    for (size_t i = 0; i < p->n_headers; i++)
        json_object_set_new(h, p->headers[i].name, json_string(p->headers[i].value));
    json_t *kw = json_object();
    json_object_set_new(kw, "status", json_integer(p->status));
    json_object_set_new(kw, "headers", h);
    json_object_set_new(kw, "body", json_stringn((const char *)p->body, p->body_len));
    json_t *msg = json_pack("[iII{ss}[]o]", 36, (json_int_t)713,
                            (json_int_t)9007199254740992LL, "topic", "/users/1", kw);
    if (!msg || gw_wamp_encode(ser, msg, out) < 0) {
        fprintf(stderr, "jansson baseline failed\n");
        exit(1);
    }
    json_decref(msg);
}

static int64_t median_ns(enum gw_ser ser, const struct gw_page *p, bool jansson, int runs,
                         int iters, size_t *out_len)
{
    int64_t *per = malloc(sizeof *per * (size_t)runs);
    struct wm_buf b = WM_BUF_INIT;

    for (int r = 0; r < runs; r++) {
        int64_t t0 = now_ns();
        for (int i = 0; i < iters; i++) {
            wm_buf_reset(&b);
            if (jansson)
                via_jansson(ser, p, &b);
            else if (gw_wamp_encode_event(ser, 713, 9007199254740992ULL, "/users/1",
                                          false, p, &b) < 0) {
                fprintf(stderr, "encode failed\n");
                exit(1);
            }
        }
        per[r] = (now_ns() - t0) / iters;
    }
    *out_len = b.len;
    qsort(per, (size_t)runs, sizeof *per, cmp_i64);
    int64_t med = per[runs / 2];
    free(per);
    wm_buf_free(&b);
    return med;
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 31;
    static const size_t sizes[] = {1024, 100 * 1024};
    static const char *const ser_name[] = {"json", "msgpack"};

    if (runs < 1)
        runs = 1;
    printf("%-8s %-7s %-7s %-9s %12s %10s\n", "ser", "body", "kind", "encoder",
           "median_ns", "bytes");
    for (size_t s = 0; s < 2; s++)
        for (int binary = 0; binary < 2; binary++) {
            uint8_t *body = make_body(sizes[s], binary);
            struct gw_page p = {.status = 200, .headers = headers, .n_headers = 4,
                                .body = body, .body_len = sizes[s]};
            int iters = sizes[s] > 4096 ? 200 : 20000;
            for (int ser = 0; ser < 2; ser++)
                for (int jansson = 0; jansson <= !binary; jansson++) {
                    size_t len = 0;
                    int64_t ns = median_ns(ser, &p, jansson, runs, iters, &len);
                    printf("%-8s %-7s %-7s %-9s %12lld %10zu\n", ser_name[ser],
                           s ? "100KB" : "1KB", binary ? "binary" : "text",
                           jansson ? "jansson" : "gw_wamp", (long long)ns, len);
                }
            free(body);
        }
    return 0;
}
