/* gw_session: the WAMP router state machine of one session. Input is validated
 * message by message (arity, types, ids in [1, 2^53], state); anything malformed ends
 * the session with ABORT wamp.error.protocol_violation, nothing is asserted. */
#include "gw_session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gw_outq.h"
#include "wm_chars.h"
#include "wm_log.h"
#include "wm_path.h"
#include "wm_proto.h"
#include "wm_random.h"
#include "wm_time.h"

#define AUTHID_MAX 256
#define ACCEPT_MAX 256   /* longest Accept header a subscription may ask for */

struct gw_session {
    const struct gw_session_env *env;   /* borrowed */
    void *transport;                    /* borrowed */
    enum gw_ser ser;
    enum gw_session_state state;
    enum gw_close_kind close;
    bool goodbye_sent;                  /* we said GOODBYE first: a reply closes */
    uint64_t id;
    char *authid;                       /* from HELLO details, owned, may be NULL */
    char peer[64];
    struct gw_client *client;           /* owned by the broker, NULL when not joined */
    struct gw_outq *q;
};

/* Bad client input is logged once a minute per kind, process-wide: the limiters live
 * in the shared gw_stats beside the counters they go with. */
static void log_limited(struct wm_ratelimit *rl, const char *msg, const struct gw_session *s,
                        const char *reason)
{
    uint64_t suppressed = 0;
    char v[160];

    if (!wm_ratelimit_allow(rl, wm_now_ms(), WM_RATELIMIT_LOG_MS, &suppressed))
        return;
    wm_warn(msg, "peer=%s session=%llu reason=%s suppressed=%llu", s->peer,
            (unsigned long long)s->id, wm_log_value(v, sizeof v, reason),
            (unsigned long long)suppressed);
}

struct gw_session *gw_session_new(const struct gw_session_env *env, enum gw_ser ser,
                                  void *transport, const char *peer)
{
    struct gw_session *s = wm_calloc(1, sizeof *s);

    s->env = env;
    s->transport = transport;
    s->ser = ser;
    s->q = gw_outq_new();
    snprintf(s->peer, sizeof s->peer, "%s", peer ? peer : "?");
    env->stats->sessions++;
    env->stats->sessions_opened++;
    return s;
}

static void leave_broker(struct gw_session *s)
{
    if (s->client)
        gw_broker_client_free(s->env->broker, &s->client);
}

void gw_session_free(struct gw_session **sp)
{
    struct gw_session *s;

    if (!sp || !*sp)
        return;
    s = *sp;
    leave_broker(s);
    s->env->stats->events_dropped += gw_outq_clear(s->q);
    gw_outq_free(&s->q);
    if (s->env->stats->sessions > 0)
        s->env->stats->sessions--;
    free(s->authid);
    free(s);
    *sp = NULL;
}

static void set_close(struct gw_session *s, enum gw_close_kind kind)
{
    if (s->close == GW_CLOSE_NOW)
        return;
    s->close = kind;
    s->state = GW_SESSION_CLOSING;
    if (kind == GW_CLOSE_NOW) {
        s->env->stats->events_dropped += gw_outq_clear(s->q);
        s->env->io.kill(s->transport);
    } else {
        s->env->io.want_write(s->transport);
    }
}

/* Queues a message we built (takes the reference on msg). The last message of a
 * session (ABORT, GOODBYE) is always queued; anything else is refused once the
 * session is closing, and too many queued control frames (a client that sends but
 * never reads) end the session. */
static void queue_msg(struct gw_session *s, json_t *msg, bool final)
{
    struct gw_frame *f = NULL;

    if (s->close == GW_CLOSE_NOW || (!final && s->state == GW_SESSION_CLOSING))
        goto out;
    if (!final && gw_outq_controls(s->q) >= GW_SESSION_MAX_CONTROL) {
        s->env->stats->protocol_violations++;
        s->env->stats->sessions_aborted++;
        log_limited(&s->env->stats->log_violation, "protocol violation", s,
                    "too many unread replies");
        json_decref(msg);
        msg = json_pack("[i{ss}s]", WAMP_ABORT, "message", "too many unread replies",
                        "wamp.error.protocol_violation");
        final = true;
        leave_broker(s);
        s->close = GW_CLOSE_AFTER_FLUSH;
        s->state = GW_SESSION_CLOSING;
    }
    f = msg ? gw_frame_from_json(s->ser, msg) : NULL;
    if (!f) {
        /* Our own messages always encode; if one does not, the session is unusable. */
        wm_error("cannot encode a WAMP message", "session=%llu", (unsigned long long)s->id);
        set_close(s, GW_CLOSE_NOW);
        goto out;
    }
    gw_outq_put(s->q, f, 0, false);
    s->env->io.want_write(s->transport);
out:
    gw_frame_unref(&f);
    json_decref(msg);
}

static void send_abort(struct gw_session *s, const char *message, const char *reason)
{
    s->env->stats->sessions_aborted++;
    leave_broker(s);
    queue_msg(s, json_pack("[i{ss}s]", WAMP_ABORT, "message", message, reason), true);
    set_close(s, GW_CLOSE_AFTER_FLUSH);
}

static void violation(struct gw_session *s, const char *why)
{
    s->env->stats->protocol_violations++;
    log_limited(&s->env->stats->log_violation, "protocol violation", s, why);
    send_abort(s, why, "wamp.error.protocol_violation");
}

static void send_error(struct gw_session *s, int req_type, uint64_t req, const char *uri,
                       const char *arg)
{
    json_t *m = arg ? json_pack("[iiI{}s[s]]", WAMP_ERROR, req_type, (json_int_t)req, uri, arg)
                    : json_pack("[iiI{}s]", WAMP_ERROR, req_type, (json_int_t)req, uri);
    queue_msg(s, m, false);
}

/* An id field: an integer in [1, 2^53]. */
static bool get_id(const json_t *msg, size_t i, uint64_t *out)
{
    const json_t *v = json_array_get(msg, i);
    json_int_t n;

    if (!json_is_integer(v))
        return false;
    n = json_integer_value(v);
    if (n < 1 || n > WAMP_ID_MAX)
        return false;
    *out = (uint64_t)n;
    return true;
}

/* v's bytes when it is a string of 1 to max bytes (length in *len), else NULL. */
static const char *bounded_str(const json_t *v, size_t max, size_t *len)
{
    if (!json_is_string(v))
        return NULL;
    *len = json_string_length(v);
    return *len >= 1 && *len <= max ? json_string_value(v) : NULL;
}

/* A token goes into an HTTP header: non-empty, bounded, no control characters
 * (which also rules out an embedded NUL and header injection). */
static bool token_ok(const json_t *t)
{
    size_t len;
    const char *p = bounded_str(t, GW_TICKET_MAX, &len);

    return p && !wm_has_ctl(p, len);
}

/* The SUBSCRIBE option that sets the Accept header of the subscription's fetches:
 * `_accept` (a WAMP custom attribute, which clients such as wampy insist on) or
 * `accept`. *out stays NULL when absent (the broker's default). It goes into an HTTP
 * header, so only printable ASCII: no line break, no NUL. Returns false with *why. */
static bool accept_option(const json_t *opts, const char **out, const char **why)
{
    const json_t *a = json_object_get(opts, "_accept");
    const char *p;
    size_t len;

    *out = NULL;
    if (!a)
        a = json_object_get(opts, "accept");
    if (!a)
        return true;
    if (!json_is_string(a)) {
        *why = "accept must be a string";
        return false;
    }
    p = bounded_str(a, ACCEPT_MAX, &len);
    if (!p) {
        *why = "accept must be 1 to 256 bytes";
        return false;
    }
    if (!wm_all_printable(p, len)) {
        *why = "accept must be printable ASCII";
        return false;
    }
    *out = p;
    return true;
}

static char *authid_from(const json_t *details)
{
    size_t len;
    const char *p = bounded_str(json_object_get(details, "authid"), AUTHID_MAX, &len);

    if (!p || !gw_utf8_valid((const uint8_t *)p, len) || wm_has_ctl(p, len))
        return NULL;
    return wm_strndup(p, len);
}

static void send_welcome(struct gw_session *s, const char *authmethod)
{
    bool anon = strcmp(authmethod, "anonymous") == 0;
    const char *authid = s->authid ? s->authid : anon ? "anonymous" : "client";

    s->id = wm_random_id();
    s->state = GW_SESSION_ESTABLISHED;
    /* event_retention: SUBSCRIBE's get_retained is honoured (the snapshot fetch). */
    queue_msg(s, json_pack("[iI{ss ss ss ss s{s{s{sb}} s{s{}}}}]", WAMP_WELCOME,
                           (json_int_t)s->id, "authid", authid,
                           "authrole", anon ? "anonymous" : "user",
                           "authmethod", authmethod, "authprovider", "waymark",
                           "roles", "broker", "features", "event_retention", 1,
                           "dealer", "features"),
              false);
    wm_debug("session welcome", "session=%llu peer=%s authmethod=%s",
             (unsigned long long)s->id, s->peer, authmethod);
}

static void on_hello(struct gw_session *s, const json_t *msg)
{
    const json_t *realm = json_array_get(msg, 1), *details = json_array_get(msg, 2);
    const json_t *methods, *m;
    bool ticket = false, anonymous = false;
    size_t i;

    if (json_array_size(msg) != 3 || !json_is_string(realm) || !json_is_object(details)) {
        violation(s, "HELLO must be [1, realm, details]");
        return;
    }
    if (strcmp(json_string_value(realm), s->env->realm) != 0) {
        send_abort(s, "no such realm", "wamp.error.no_such_realm");
        return;
    }
    methods = json_object_get(details, "authmethods");
    if (json_is_array(methods)) {
        json_array_foreach(methods, i, m) {
            if (!json_is_string(m))
                continue;
            if (strcmp(json_string_value(m), "ticket") == 0)
                ticket = true;
            else if (strcmp(json_string_value(m), "anonymous") == 0)
                anonymous = true;
        }
    } else {
        anonymous = true;   /* WAMP: no authmethods means anonymous */
    }
    s->authid = authid_from(details);
    if (ticket) {
        s->state = GW_SESSION_CHALLENGED;
        queue_msg(s, json_pack("[is{}]", WAMP_CHALLENGE, "ticket"), false);
        return;
    }
    if (anonymous && s->env->allow_anonymous) {
        s->client = gw_broker_client_new(s->env->broker, s, NULL);
        if (!s->client) {
            send_abort(s, "cannot join", "wamp.error.not_authorized");
            return;
        }
        send_welcome(s, "anonymous");
        return;
    }
    s->env->stats->auth_failed++;
    send_abort(s, "authentication required (ticket)", "wamp.error.not_authorized");
}

static void on_authenticate(struct gw_session *s, const json_t *msg)
{
    const json_t *ticket = json_array_get(msg, 1);

    if (json_array_size(msg) > 3) {
        violation(s, "AUTHENTICATE must be [5, signature, extra]");
        return;
    }
    if (!token_ok(ticket)) {
        s->env->stats->auth_failed++;
        send_abort(s, "invalid ticket", "wamp.error.authentication_failed");
        return;
    }
    /* The token lives only in the broker client from here on. */
    s->client = gw_broker_client_new(s->env->broker, s, json_string_value(ticket));
    if (!s->client) {
        send_abort(s, "cannot join", "wamp.error.authentication_failed");
        return;
    }
    send_welcome(s, "ticket");
}

static void on_subscribe(struct gw_session *s, const json_t *msg)
{
    const json_t *opts = json_array_get(msg, 2), *topic = json_array_get(msg, 3), *match;
    const char *why = NULL, *accept = NULL;
    uint64_t req, sub_id = 0;
    bool retained;
    int rc;

    if (json_array_size(msg) != 4 || !get_id(msg, 1, &req) || !json_is_object(opts) ||
        !json_is_string(topic)) {
        violation(s, "SUBSCRIBE must be [32, request, options, topic]");
        return;
    }
    match = json_object_get(opts, "match");
    if (match && !(json_is_string(match) && strcmp(json_string_value(match), "exact") == 0)) {
        s->env->stats->subscribe_refused++;
        send_error(s, WAMP_SUBSCRIBE, req, "wamp.error.invalid_argument",
                   "only exact matching is supported");
        return;
    }
    if (wm_path_check(json_string_value(topic), json_string_length(topic), s->env->max_path,
                      &why) != 0) {
        s->env->stats->subscribe_refused++;
        send_error(s, WAMP_SUBSCRIBE, req, "wamp.error.invalid_uri", why);
        return;
    }
    if (!accept_option(opts, &accept, &why)) {
        s->env->stats->subscribe_refused++;
        send_error(s, WAMP_SUBSCRIBE, req, "wamp.error.invalid_argument", why);
        return;
    }
    retained = json_is_true(json_object_get(opts, "get_retained"));
    /* The broker never delivers an EVENT from inside subscribe (gw_broker.h), so
     * SUBSCRIBED is queued before any EVENT of the subscription, as clients need. */
    rc = gw_broker_subscribe(s->env->broker, s->client, json_string_value(topic), accept,
                             retained, &sub_id);
    if (rc == -ENOSPC) {
        send_error(s, WAMP_SUBSCRIBE, req, "waymark.error.too_many_subscriptions",
                   "too many subscriptions on this session");
        return;
    }
    if (rc < 0 || sub_id == 0) {
        send_error(s, WAMP_SUBSCRIBE, req, "wamp.error.invalid_argument", NULL);
        return;
    }
    queue_msg(s, json_pack("[iII]", WAMP_SUBSCRIBED, (json_int_t)req, (json_int_t)sub_id),
              false);
}

static void on_unsubscribe(struct gw_session *s, const json_t *msg)
{
    uint64_t req, sub;

    if (json_array_size(msg) != 3 || !get_id(msg, 1, &req) || !get_id(msg, 2, &sub)) {
        violation(s, "UNSUBSCRIBE must be [34, request, subscription]");
        return;
    }
    if (gw_broker_unsubscribe(s->env->broker, s->client, sub) != 0) {
        send_error(s, WAMP_UNSUBSCRIBE, req, "wamp.error.no_such_subscription", NULL);
        return;
    }
    /* No EVENT may follow UNSUBSCRIBED: drop the undelivered one. */
    s->env->stats->events_dropped += gw_outq_drop_key(s->q, sub);
    queue_msg(s, json_pack("[iI]", WAMP_UNSUBSCRIBED, (json_int_t)req), false);
}

static void on_publish(struct gw_session *s, const json_t *msg)
{
    const json_t *opts = json_array_get(msg, 2);
    size_t n = json_array_size(msg);
    uint64_t req;

    if (n < 4 || n > 6 || !get_id(msg, 1, &req) || !json_is_object(opts) ||
        !json_is_string(json_array_get(msg, 3))) {
        violation(s, "PUBLISH must be [16, request, options, topic, ...]");
        return;
    }
    s->env->stats->publishes_refused++;
    /* Clients read, backends bump. An unacknowledged PUBLISH gets no answer at all:
     * real clients drop the session on an ERROR they did not ask for. */
    if (json_is_true(json_object_get(opts, "acknowledge")))
        send_error(s, WAMP_PUBLISH, req, "wamp.error.not_authorized",
                   "clients cannot publish");
}

static void on_call(struct gw_session *s, const json_t *msg)
{
    const json_t *opts = json_array_get(msg, 2), *proc = json_array_get(msg, 3);
    const json_t *args = json_array_get(msg, 4), *kwargs = json_array_get(msg, 5);
    size_t n = json_array_size(msg);
    uint64_t req;

    if (n < 4 || n > 6 || !get_id(msg, 1, &req) || !json_is_object(opts) ||
        !json_is_string(proc) || (n >= 5 && !json_is_array(args)) ||
        (n == 6 && !json_is_object(kwargs))) {
        violation(s, "CALL must be [48, request, options, procedure, args?, kwargs?]");
        return;
    }
    if (strcmp(json_string_value(proc), "waymark.auth.refresh") != 0) {
        send_error(s, WAMP_CALL, req, "wamp.error.no_such_procedure", NULL);
        return;
    }
    if (!token_ok(json_array_get(args, 0))) {
        send_error(s, WAMP_CALL, req, "wamp.error.invalid_argument",
                   "expected [token]");
        return;
    }
    gw_broker_client_set_token(s->env->broker, s->client, json_string_value(json_array_get(args, 0)));
    queue_msg(s, json_pack("[iI{}]", WAMP_RESULT, (json_int_t)req), false);
}

static void on_goodbye(struct gw_session *s, const json_t *msg)
{
    if (json_array_size(msg) != 3 || !json_is_object(json_array_get(msg, 1)) ||
        !json_is_string(json_array_get(msg, 2))) {
        violation(s, "GOODBYE must be [6, details, reason]");
        return;
    }
    leave_broker(s);
    queue_msg(s, json_pack("[i{}s]", WAMP_GOODBYE, "wamp.close.goodbye_and_out"), true);
    set_close(s, GW_CLOSE_AFTER_FLUSH);
}

static void on_established(struct gw_session *s, int code, const json_t *msg)
{
    uint64_t req;

    switch (code) {
    case WAMP_SUBSCRIBE:   on_subscribe(s, msg); break;
    case WAMP_UNSUBSCRIBE: on_unsubscribe(s, msg); break;
    case WAMP_PUBLISH:     on_publish(s, msg); break;
    case WAMP_CALL:        on_call(s, msg); break;
    case WAMP_GOODBYE:     on_goodbye(s, msg); break;
    case WAMP_REGISTER:
        if (json_array_size(msg) != 4 || !get_id(msg, 1, &req)) {
            violation(s, "REGISTER must be [64, request, options, procedure]");
            return;
        }
        send_error(s, WAMP_REGISTER, req, "wamp.error.not_authorized", "clients cannot register");
        break;
    case WAMP_UNREGISTER:
        if (json_array_size(msg) != 3 || !get_id(msg, 1, &req)) {
            violation(s, "UNREGISTER must be [66, request, registration]");
            return;
        }
        send_error(s, WAMP_UNREGISTER, req, "wamp.error.no_such_registration", NULL);
        break;
    case WAMP_CANCEL:      /* calls answer at once: nothing is ever in progress */
    case WAMP_YIELD:       /* we never send INVOCATION: nothing to answer */
        break;
    case WAMP_ERROR:       /* a client may only send ERROR for an INVOCATION, never sent */
        violation(s, "ERROR from a client answers no request of the router");
        return;
    default:
        violation(s, "unexpected message in an established session");
    }
}

void gw_session_on_message(struct gw_session *s, const void *data, size_t len)
{
    const char *why = "undecodable message";
    json_t *msg;
    int code;

    s->env->stats->frames_in++;
    if (s->close != GW_CLOSE_NONE && !s->goodbye_sent)
        return;   /* already closing: input no longer matters */
    msg = gw_wamp_decode(s->ser, data, len, &why);
    if (!msg) {
        if (s->state != GW_SESSION_CLOSING)
            violation(s, why);
        return;
    }
    code = (int)json_integer_value(json_array_get(msg, 0));
    if (code == WAMP_ABORT) {
        /* The client ends the session: nothing to answer. */
        leave_broker(s);
        set_close(s, GW_CLOSE_AFTER_FLUSH);
        goto out;
    }
    switch (s->state) {
    case GW_SESSION_ESTABLISHING:
        if (code == WAMP_HELLO)
            on_hello(s, msg);
        else
            violation(s, "expected HELLO");
        break;
    case GW_SESSION_CHALLENGED:
        if (code == WAMP_AUTHENTICATE)
            on_authenticate(s, msg);
        else
            violation(s, "expected AUTHENTICATE");
        break;
    case GW_SESSION_ESTABLISHED:
        on_established(s, code, msg);
        break;
    case GW_SESSION_CLOSING:
        /* We said GOODBYE first: the client's GOODBYE (any reason) completes it. */
        if (s->goodbye_sent && code == WAMP_GOODBYE) {
            s->goodbye_sent = false;
            set_close(s, GW_CLOSE_AFTER_FLUSH);
        }
        break;
    }
out:
    json_decref(msg);
}

void gw_session_deliver(void *session, uint64_t sub_id, struct gw_event *ev, bool retained)
{
    struct gw_session *s = session;
    struct gw_stats *st = s->env->stats;
    struct gw_frame *f;
    bool too_large = false;

    if (s->state != GW_SESSION_ESTABLISHED || s->close != GW_CLOSE_NONE) {
        st->events_dropped++;
        return;
    }
    /* A bump page replacing an undelivered snapshot is still that snapshot. */
    if (!retained && gw_outq_owes_retained(s->q, sub_id))
        retained = true;
    f = gw_event_frame(ev, s->ser, retained, &too_large);
    if (too_large)
        st->pages_too_large++;
    if (!f) {
        st->events_dropped++;
        return;
    }
    if (gw_outq_put(s->q, f, sub_id, retained))
        st->events_replaced++;
    if (gw_outq_bytes(s->q) > s->env->queue_bytes) {
        /* A client that does not read is cut off rather than letting memory grow.
         * Called from inside the broker: only mark and let the transport close. */
        st->slow_clients_closed++;
        log_limited(&st->log_slow, "slow client closed", s, "queue over its byte cap");
        set_close(s, GW_CLOSE_NOW);
        return;
    }
    s->env->io.want_write(s->transport);
}

struct gw_frame *gw_session_take_frame(struct gw_session *s, bool *is_event)
{
    uint64_t key = 0;
    struct gw_frame *f;

    if (s->close == GW_CLOSE_NOW)
        return NULL;
    f = gw_outq_take(s->q, &key);
    if (is_event)
        *is_event = key != 0;
    return f;
}

void gw_session_shutdown(struct gw_session *s)
{
    if (s->close != GW_CLOSE_NONE || s->state == GW_SESSION_CLOSING)
        return;
    if (s->state != GW_SESSION_ESTABLISHED) {
        leave_broker(s);
        queue_msg(s, json_pack("[i{ss}s]", WAMP_ABORT, "message", "server shutting down",
                               "wamp.close.system_shutdown"), true);
        set_close(s, GW_CLOSE_AFTER_FLUSH);
        return;
    }
    /* WAMP: the side that says GOODBYE first waits for the peer's GOODBYE. The engine
     * stops waiting at its shutdown deadline. */
    leave_broker(s);
    s->env->stats->events_dropped += gw_outq_clear(s->q);
    queue_msg(s, json_pack("[i{}s]", WAMP_GOODBYE, "wamp.close.system_shutdown"), true);
    s->state = GW_SESSION_CLOSING;
    s->goodbye_sent = true;
}

bool gw_session_has_output(const struct gw_session *s)
{
    return s->close != GW_CLOSE_NOW && !gw_outq_empty(s->q);
}

enum gw_close_kind gw_session_close_kind(const struct gw_session *s) { return s->close; }
enum gw_session_state gw_session_state(const struct gw_session *s) { return s->state; }
enum gw_ser gw_session_ser(const struct gw_session *s) { return s->ser; }
uint64_t gw_session_id(const struct gw_session *s) { return s->id; }
