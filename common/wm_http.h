/* wm_http: HTTP facts shared by the gateway (results it delivers) and the fetcher
 * (responses it gets): the status classes both count in their metrics. */
#ifndef WM_HTTP_H
#define WM_HTTP_H

/* Status class index: WM_STATUS_OTHER (0) for anything outside 100..599, else
 * status / 100 (1 for 1xx .. 5 for 5xx). Index wm_status_class_names with it. */
#define WM_STATUS_OTHER   0
#define WM_STATUS_CLASSES 6
int wm_status_class(int status);

/* "other", "1xx" .. "5xx": the `class` label values, in index order. */
extern const char *const wm_status_class_names[WM_STATUS_CLASSES];

#endif
