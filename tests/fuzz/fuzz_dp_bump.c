/* fuzz_dp_bump: libFuzzer harness for the dispatcher's bump parser. The first byte picks
 * the path limit; a parsed bump must hold a path that wm_path_check accepts under that
 * limit, and a refusal must name its kind. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dp_bump.h"
#include "wm_path.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dp_bump b = {0};
    enum dp_bad_kind kind = DP_BAD_N;
    const char *why = NULL;
    size_t max_path;
    char *copy;
    int rc;

    if (size < 1)
        return 0;
    max_path = data[0] < 128 ? 0 : (size_t)(data[0] - 127);   /* 0 = default, or 1..128 */
    data++;
    size--;
    /* An exact-size heap copy, so ASan sees any read past the end. */
    copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    rc = dp_bump_parse(copy, size, max_path, &b, &kind, &why);
    if (rc == 0) {
        size_t len = strlen(b.path);
        if (wm_path_check(b.path, len, max_path, NULL) != 0)
            __builtin_trap();
        if (b.match != WM_MATCH_EXACT && b.match != WM_MATCH_PREFIX)
            __builtin_trap();
    } else {
        if (kind >= DP_BAD_N || !why || b.path)
            __builtin_trap();
        (void)dp_bad_kind_name(kind);
    }
    dp_bump_clear(&b);
    free(copy);
    return 0;
}
