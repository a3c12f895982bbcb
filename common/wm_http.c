/* wm_http: HTTP status classes and their metric labels. */
#include "wm_http.h"

const char *const wm_status_class_names[WM_STATUS_CLASSES] = {
    "other", "1xx", "2xx", "3xx", "4xx", "5xx",
};

int wm_status_class(int status)
{
    return (status >= 100 && status <= 599) ? status / 100 : WM_STATUS_OTHER;
}
