/* wm_proto: the timing constants of the internal protocol, in one place
 * (heartbeats, liveness, reconnect backoff), as in the ZeroMQ guide's ppworker. */
#ifndef WM_PROTO_H
#define WM_PROTO_H

#define WM_VERSION "0.1.0"

#define WM_HEARTBEAT_MS        1000  /* every peer sends a HEARTBEAT this often */
#define WM_HEARTBEAT_LIVENESS  3     /* silent for this many heartbeats = presumed dead */
#define WM_RECONNECT_MIN_MS    100   /* first reconnect delay (Redis, fetcher sockets) */
#define WM_RECONNECT_MAX_MS    5000  /* backoff cap */

/* High-water marks. Bumps are small (~60 bytes): 100k of them is ~6 MiB. A drop is
 * still detected by the sequence numbers and repaired with a full refresh. */
#define WM_BUMP_HWM            100000
#define WM_FETCH_HWM           100000

#define WM_RATELIMIT_LOG_MS    60000 /* bad input of one kind is logged once a minute */

#endif
