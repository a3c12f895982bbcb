/* gw_broker: who is subscribed to what, with which token and Accept. Bumps become at
 * most one fetch in flight and one pending per (topic, token, accept) group; each page
 * is wrapped once in a gw_event and handed to every member of the group, unless it is
 * the page the group was last pushed (same hash, or a 304 to a conditional GET). */
#include "gw_broker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <uthash.h>
#include <utlist.h>
#include <xxhash.h>

#include "wm_buf.h"
#include "wm_log.h"
#include "wm_random.h"
#include "gw_wamp.h"

struct gw_base;
struct gw_group;

/* One distinct topic string; its subscription id is shared by every session on it. */
struct gw_topic {
    char *name;                  /* owned, hash key */
    uint64_t sub_id;
    struct gw_group *groups;     /* by key (uthash hh), see group_key */
    struct gw_base *base;        /* index entry of the part before '?' */
    struct gw_topic *bprev, *bnext;   /* in base->topics */
    UT_hash_handle hh;           /* b->topics */
};

/* Topics sharing a path before '?', so a plain-path bump finds its query variants. */
struct gw_base {
    char *path;                  /* owned, hash key */
    struct gw_topic *topics;     /* utlist DL via bprev/bnext */
    UT_hash_handle hh;
};

struct gw_member;

/* (topic, token, accept): the sessions that see the same page and share one fetch. */
struct gw_group {
    struct gw_topic *topic;
    char *key;                   /* owned, hash key; token and accept point into it */
    size_t key_len;
    const char *token;           /* NULL = anonymous */
    const char *accept;          /* never NULL: the Accept header of its fetches */
    struct gw_member *members;   /* utlist DL via gprev/gnext */
    size_t n_members;
    size_t n_snap_pending;       /* members with snap_pending */
    struct gw_job *job;          /* in flight (owned by the pool), NULL when idle */
    bool job_bump;               /* that job's page goes to every member */
    bool pending_bump;           /* a bump came in while the job was in flight */
    bool delivering;             /* members are being walked: do not free the group */
    bool has_hash;               /* page_hash is set */
    uint64_t page_hash;          /* status, content-type, body of the last page pushed */
    char *etag, *last_modified;  /* owned validators of that page (2xx), or NULL */
    struct gw_event *last_ev;    /* that page, kept while it has a validator: a 304 to a
                                    fetch that serves a snapshot is answered from it */
    UT_hash_handle hh;           /* topic->groups */
};

/* One session's subscription to one topic. */
struct gw_member {
    struct gw_client *client;
    struct gw_group *group;
    uint64_t sub_id;             /* hash key in client->members */
    bool snap_pending;           /* asked for a snapshot; the next job covers it */
    bool snap_in_flight;         /* the group's job in flight covers its snapshot */
    bool has_page;               /* was handed the group's last pushed page (page_hash) */
    struct gw_member *gprev, *gnext;
    UT_hash_handle hh;
};

struct gw_client {
    void *session;
    char *token;                 /* owned; NULL = anonymous */
    struct gw_member *members;   /* by sub_id */
    struct gw_client *prev, *next;   /* b->clients */
};

struct gw_broker {
    struct gw_broker_config cfg;
    char *backend_url;           /* owned copy */
    struct gw_pool *pool;
    gw_deliver_fn deliver;
    struct gw_stats *stats;
    struct gw_topic *topics;     /* by name */
    struct gw_base *bases;       /* by base path */
    struct gw_client *clients;
    uint64_t next_sub_id;
    struct gw_member *cursor;    /* next member of the group being delivered to */
};

/* Ids live in [1, 2^53] (WAMP): wrap before leaving it. */
static uint64_t next_id(uint64_t *counter)
{
    uint64_t id = *counter;
    *counter = id >= (uint64_t)WAMP_ID_MAX ? 1 : id + 1;
    return id;
}

#define DEFAULT_ACCEPT "*/*"

static bool same_token(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static size_t topic_count(const struct gw_broker *b)
{
    return HASH_COUNT(b->topics);
}

/* --- jobs ---------------------------------------------------------------------- */

static void set_header(struct wm_header *h, const char *name, char *value_owned)
{
    h->name = wm_strdup(name);
    h->value = value_owned;
}

static struct gw_job *job_build(struct gw_broker *b, struct gw_group *g)
{
    struct gw_job *j = wm_calloc(1, sizeof *j);
    size_t ulen = strlen(b->backend_url), tlen = strlen(g->topic->name);
    j->url = wm_malloc(ulen + tlen + 1);
    memcpy(j->url, b->backend_url, ulen);
    memcpy(j->url + ulen, g->topic->name, tlen + 1);
    j->headers = wm_calloc(5, sizeof *j->headers);
    if (g->token && b->cfg.auth && b->cfg.auth->name)
        set_header(&j->headers[j->n_headers++], b->cfg.auth->name,
                   wm_auth_header_value(b->cfg.auth, g->token));
    set_header(&j->headers[j->n_headers++], "X-Waymark", wm_strdup("1"));
    set_header(&j->headers[j->n_headers++], "Accept", wm_strdup(g->accept));
    /* Only with the page kept: a 304 must be able to serve the snapshots it covers. */
    if (g->last_ev) {
        if (g->etag)
            set_header(&j->headers[j->n_headers++], "If-None-Match", wm_strdup(g->etag));
        if (g->last_modified)
            set_header(&j->headers[j->n_headers++], "If-Modified-Since",
                       wm_strdup(g->last_modified));
    }
    j->timeout_ms = b->cfg.fetch_timeout_ms;
    j->max_body = b->cfg.max_page_bytes;
    j->owner = g;
    return j;
}

/* Starts the group's next fetch if it needs one and none is in flight. The members
 * whose snapshot was pending are covered by this job from now on. */
static void group_kick(struct gw_broker *b, struct gw_group *g)
{
    struct gw_member *m;
    if (g->job || (!g->pending_bump && g->n_snap_pending == 0))
        return;
    g->job_bump = g->pending_bump;
    g->pending_bump = false;
    if (g->n_snap_pending) {
        DL_FOREACH2(g->members, m, gnext) {
            if (m->snap_pending) {
                m->snap_pending = false;
                m->snap_in_flight = true;
            }
        }
        g->n_snap_pending = 0;
    }
    g->job = job_build(b, g);
    gw_pool_submit(b->pool, g->job);
}

static void group_bump(struct gw_broker *b, struct gw_group *g)
{
    if (g->job || g->pending_bump)
        b->stats->fetches_coalesced++;
    g->pending_bump = true;
    group_kick(b, g);
}

static void member_want_snapshot(struct gw_group *g, struct gw_member *m)
{
    if (!m->snap_pending) {
        m->snap_pending = true;
        g->n_snap_pending++;
    }
}

/* --- topics and groups ------------------------------------------------------- */

static struct gw_topic *topic_get(struct gw_broker *b, const char *name)
{
    struct gw_topic *t = NULL;
    HASH_FIND_STR(b->topics, name, t);
    if (t)
        return t;
    t = wm_calloc(1, sizeof *t);
    t->name = wm_strdup(name);
    t->sub_id = next_id(&b->next_sub_id);
    HASH_ADD_KEYPTR(hh, b->topics, t->name, strlen(t->name), t);

    size_t blen = strcspn(name, "?");
    struct gw_base *base = NULL;
    HASH_FIND(hh, b->bases, name, blen, base);
    if (!base) {
        base = wm_calloc(1, sizeof *base);
        base->path = wm_strndup(name, blen);
        HASH_ADD_KEYPTR(hh, b->bases, base->path, blen, base);
    }
    t->base = base;
    DL_APPEND2(base->topics, t, bprev, bnext);
    b->stats->topics = topic_count(b);
    return t;
}

static void topic_release(struct gw_broker *b, struct gw_topic *t)
{
    if (t->groups)
        return;
    struct gw_base *base = t->base;
    DL_DELETE2(base->topics, t, bprev, bnext);
    if (!base->topics) {
        HASH_DEL(b->bases, base);
        free(base->path);
        free(base);
    }
    HASH_DEL(b->topics, t);
    b->stats->topics = topic_count(b);
    free(t->name);
    free(t);
}

/* One byte buffer names the group: '-' (anonymous) or 't' + token, NUL, accept, NUL.
 * Neither part holds a NUL (both are checked before they get here), so the key is
 * unambiguous. */
static char *group_key(const char *token, const char *accept, size_t *len)
{
    size_t tlen = token ? strlen(token) : 0, alen = strlen(accept);
    char *k = wm_malloc(1 + tlen + 1 + alen + 1);
    k[0] = token ? 't' : '-';
    if (token)
        memcpy(k + 1, token, tlen);
    k[1 + tlen] = '\0';
    memcpy(k + 2 + tlen, accept, alen + 1);
    *len = 1 + tlen + 1 + alen;
    return k;
}

/* accept NULL means the default; asking for the default explicitly shares its group. */
static struct gw_group *group_get(struct gw_broker *b, struct gw_topic *t, const char *token,
                                  const char *accept)
{
    struct gw_group *g = NULL;
    size_t len;
    char *key = group_key(token, accept ? accept : DEFAULT_ACCEPT, &len);
    HASH_FIND(hh, t->groups, key, len, g);
    if (g) {
        free(key);
        return g;
    }
    g = wm_calloc(1, sizeof *g);
    g->topic = t;
    g->key = key;
    g->key_len = len;
    g->token = token ? key + 1 : NULL;
    g->accept = key + strlen(key) + 1;
    HASH_ADD_KEYPTR(hh, t->groups, g->key, g->key_len, g);
    b->stats->groups++;
    return g;
}

static void group_forget_page(struct gw_group *g)
{
    free(g->etag);
    free(g->last_modified);
    g->etag = g->last_modified = NULL;
    gw_event_unref(&g->last_ev);
}

/* Frees a group that has no members left (cancelling its fetch), then its topic if
 * that was the last group. Not while its members are being walked. */
static void group_release(struct gw_broker *b, struct gw_group *g)
{
    if (g->members || g->delivering)
        return;
    struct gw_topic *t = g->topic;
    if (g->job) {
        gw_pool_cancel(b->pool, g->job);
        g->job = NULL;
    }
    HASH_DEL(t->groups, g);
    b->stats->groups--;
    group_forget_page(g);
    free(g->key);
    free(g);
    topic_release(b, t);
}

static void group_add(struct gw_group *g, struct gw_member *m)
{
    m->group = g;
    m->has_page = false;   /* new here: an unchanged page is still news to it */
    DL_APPEND2(g->members, m, gprev, gnext);
    g->n_members++;
}

/* Takes m out of its group's list; the group itself is left for group_release. */
static void group_remove(struct gw_broker *b, struct gw_member *m)
{
    struct gw_group *g = m->group;
    if (b->cursor == m)
        b->cursor = m->gnext;
    if (m->snap_pending)
        g->n_snap_pending--;
    m->snap_pending = false;
    m->snap_in_flight = false;
    DL_DELETE2(g->members, m, gprev, gnext);
    g->n_members--;
    m->group = NULL;
}

/* Moves m to group g (same topic, another token or accept). What the member was still
 * owed from the old group (a page fetched after the last bump, a snapshot) must now
 * come from g; nothing else is fetched just because the member moved. */
static void member_move(struct gw_broker *b, struct gw_member *m, struct gw_group *g)
{
    struct gw_group *old = m->group;
    if (g == old)
        return;
    bool owed_bump = (old->job && old->job_bump) || old->pending_bump;
    bool owed_snap = m->snap_pending || m->snap_in_flight;
    group_remove(b, m);
    group_add(g, m);
    if (owed_snap)
        member_want_snapshot(g, m);
    if (owed_bump)
        group_bump(b, g);
    else
        group_kick(b, g);
    group_release(b, old);
}

static void member_free(struct gw_broker *b, struct gw_member *m)
{
    struct gw_group *g = m->group;
    HASH_DEL(m->client->members, m);
    group_remove(b, m);
    b->stats->subscriptions--;
    free(m);
    group_release(b, g);
}

/* --- public API -------------------------------------------------------------- */

struct gw_broker *gw_broker_new(const struct gw_broker_config *cfg, struct gw_pool *pool,
                                gw_deliver_fn deliver, struct gw_stats *stats)
{
    struct gw_broker *b = wm_calloc(1, sizeof *b);
    b->cfg = *cfg;
    b->backend_url = wm_strdup(cfg->backend_url ? cfg->backend_url : "");
    b->cfg.backend_url = b->backend_url;
    b->pool = pool;
    b->deliver = deliver;
    b->stats = stats;
    b->next_sub_id = 1;
    return b;
}

void gw_broker_free(struct gw_broker **bp)
{
    if (!bp || !*bp)
        return;
    struct gw_broker *b = *bp;
    struct gw_client *c, *ct;
    DL_FOREACH_SAFE(b->clients, c, ct) {
        struct gw_client *tmp = c;
        gw_broker_client_free(b, &tmp);
    }
    free(b->backend_url);
    free(b);
    *bp = NULL;
}

struct gw_client *gw_broker_client_new(struct gw_broker *b, void *session, const char *token)
{
    struct gw_client *c = wm_calloc(1, sizeof *c);
    c->session = session;
    c->token = token ? wm_strdup(token) : NULL;
    DL_APPEND(b->clients, c);
    return c;
}

void gw_broker_client_free(struct gw_broker *b, struct gw_client **cp)
{
    if (!cp || !*cp)
        return;
    struct gw_client *c = *cp;
    struct gw_member *m, *mt;
    HASH_ITER(hh, c->members, m, mt)
        member_free(b, m);
    DL_DELETE(b->clients, c);
    free(c->token);
    free(c);
    *cp = NULL;
}

void gw_broker_client_set_token(struct gw_broker *b, struct gw_client *c, const char *token)
{
    struct gw_member *m, *mt;
    if (same_token(c->token, token))
        return;
    free(c->token);
    c->token = token ? wm_strdup(token) : NULL;
    HASH_ITER(hh, c->members, m, mt)
        member_move(b, m, group_get(b, m->group->topic, token, m->group->accept));
}

int gw_broker_subscribe(struct gw_broker *b, struct gw_client *c, const char *topic,
                        const char *accept, bool retained, uint64_t *sub_id)
{
    struct gw_topic *t = NULL;
    struct gw_member *m = NULL;
    HASH_FIND_STR(b->topics, topic, t);
    if (t)
        HASH_FIND(hh, c->members, &t->sub_id, sizeof t->sub_id, m);
    if (!m) {
        if (b->cfg.max_subscriptions && HASH_COUNT(c->members) >= b->cfg.max_subscriptions) {
            b->stats->subscribe_refused++;
            return -ENOSPC;
        }
        t = topic_get(b, topic);
        m = wm_calloc(1, sizeof *m);
        m->client = c;
        m->sub_id = t->sub_id;
        HASH_ADD(hh, c->members, sub_id, sizeof m->sub_id, m);
        group_add(group_get(b, t, c->token, accept), m);
        b->stats->subscriptions++;
    } else {
        /* One member per (session, topic): the latest SUBSCRIBE says which Accept. */
        member_move(b, m, group_get(b, t, c->token, accept));
    }
    *sub_id = m->sub_id;
    if (retained) {
        member_want_snapshot(m->group, m);
        group_kick(b, m->group);
    }
    return 0;
}

int gw_broker_unsubscribe(struct gw_broker *b, struct gw_client *c, uint64_t sub_id)
{
    struct gw_member *m = NULL;
    HASH_FIND(hh, c->members, &sub_id, sizeof sub_id, m);
    if (!m)
        return -ENOENT;
    member_free(b, m);
    return 0;
}

static void topic_bump(struct gw_broker *b, struct gw_topic *t)
{
    struct gw_group *g, *gt;
    HASH_ITER(hh, t->groups, g, gt)
        group_bump(b, g);
}

size_t gw_broker_bump(struct gw_broker *b, const char *path, enum wm_match match)
{
    struct gw_topic *t = NULL, *tt;
    size_t n = 0;
    if (!path)
        return 0;
    if (match == WM_MATCH_PREFIX) {
        size_t len = strlen(path);
        HASH_ITER(hh, b->topics, t, tt) {
            if (strncmp(t->name, path, len) == 0) {
                topic_bump(b, t);
                n++;
            }
        }
    } else if (strchr(path, '?')) {
        HASH_FIND_STR(b->topics, path, t);
        if (t) {
            topic_bump(b, t);
            n++;
        }
    } else {
        struct gw_base *base = NULL;
        HASH_FIND_STR(b->bases, path, base);
        if (base) {
            DL_FOREACH2(base->topics, t, bnext) {
                topic_bump(b, t);
                n++;
            }
        }
    }
    return n;
}

void gw_broker_refresh_all(struct gw_broker *b)
{
    struct gw_topic *t, *tt;
    HASH_ITER(hh, b->topics, t, tt)
        topic_bump(b, t);
}

static const char *result_header(const struct wm_msg *r, const char *name)
{
    for (size_t i = 0; i < r->u.result.n_headers; i++) {
        if (strcmp(r->u.result.headers[i].name, name) == 0)
            return r->u.result.headers[i].value;
    }
    return NULL;
}

/* What makes a page news to a client: status, content-type and body; other headers, a
 * new Date above all, do not. An absent content-type hashes apart from an empty one. */
static uint64_t page_hash(const struct wm_msg *r)
{
    const char *ct = result_header(r, "content-type");
    uint64_t h = XXH3_64bits_withSeed(r->u.result.body, r->u.result.body_len,
                                      (uint64_t)r->u.result.status);
    return XXH3_64bits_withSeed(ct ? ct : "", ct ? strlen(ct) + 1 : 0, h);
}

/* Replaces *slot with a copy of the value of the result's header `name`, if it has one. */
static void take_validator(const struct wm_msg *r, const char *name, char **slot)
{
    const char *v = result_header(r, name);
    if (v) {
        free(*slot);
        *slot = wm_strdup(v);
    }
}

/* Makes the group's page state follow a fresh result (not a 304) and wraps it in an
 * event. Sets *changed when it differs from the last page pushed to the group. */
static struct gw_event *group_new_page(struct gw_broker *b, struct gw_group *g,
                                       struct wm_msg *result, bool *changed)
{
    *changed = true;
    if (b->cfg.push_unchanged)
        return gw_event_new(g->topic->sub_id, wm_random_id(), g->topic->name, result,
                            b->cfg.max_message_bytes);
    group_forget_page(g);
    if (result->u.result.error) {
        /* A failed fetch (the fetcher's 502/504) is no page: pushed every time, and the
         * page after it is news whatever it is. */
        g->has_hash = false;
    } else {
        uint64_t h = page_hash(result);
        *changed = !g->has_hash || h != g->page_hash;
        g->has_hash = true;
        g->page_hash = h;
    }
    int status = result->u.result.status;
    if (status >= 200 && status <= 299) {
        take_validator(result, "etag", &g->etag);
        take_validator(result, "last-modified", &g->last_modified);
    }
    /* Publication ids are global scope in WAMP: random, so two gateways never collide. */
    struct gw_event *ev = gw_event_new(g->topic->sub_id, wm_random_id(), g->topic->name,
                                       result, b->cfg.max_message_bytes);
    if (ev && (g->etag || g->last_modified))
        g->last_ev = gw_event_ref(ev);
    else
        group_forget_page(g);
    return ev;
}

void gw_broker_on_result(void *broker, struct gw_job *job, struct wm_msg *result)
{
    struct gw_broker *b = broker;
    struct gw_group *g = job->owner;
    struct gw_event *ev = NULL;
    struct gw_member *m;
    bool changed;

    if (!g || g->job != job) {   /* cancelled: the pool should not get here */
        gw_job_free(&job);
        return;
    }
    g->job = NULL;
    gw_job_free(&job);
    if (result->u.result.status == 304 && g->last_ev && !b->cfg.push_unchanged) {
        /* Our conditional GET: the kept page is still the page (a 304 may carry fresh
         * validators). Members that have it get nothing; snapshots get it again. */
        b->stats->fetches_not_modified++;
        take_validator(result, "etag", &g->etag);
        take_validator(result, "last-modified", &g->last_modified);
        ev = gw_event_ref(g->last_ev);
        changed = false;
    } else {
        ev = group_new_page(b, g, result, &changed);
    }
    bool bump = g->job_bump;
    g->job_bump = false;

    /* deliver may re-enter the broker (a session closing, unsubscribing, changing its
     * token): b->cursor skips members removed meanwhile, delivering keeps g alive, and
     * m is not touched after deliver (it may be gone). */
    g->delivering = true;
    struct gw_member *saved = b->cursor;
    b->cursor = g->members;
    while ((m = b->cursor)) {
        b->cursor = m->gnext;
        bool snap = m->snap_in_flight;
        m->snap_in_flight = false;
        if (!ev)
            continue;
        if (snap || (bump && (changed || !m->has_page))) {
            m->has_page = true;
            b->deliver(m->client->session, m->sub_id, ev, snap);
        } else if (changed) {
            m->has_page = false;     /* a snapshot-only page it did not get: news later */
        } else if (bump) {
            b->stats->events_skipped_unchanged++;
        }
    }
    b->cursor = saved;
    g->delivering = false;
    gw_event_unref(&ev);

    if (!g->members)
        group_release(b, g);
    else
        group_kick(b, g);
}
