/* fuzz_wm_path: libFuzzer harness for the topic check. The first byte picks the length
 * limit; an accepted path must satisfy the properties wm_path.h promises. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wm_path.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *why = NULL;
    size_t max_len, base;
    char *s;

    if (size < 1)
        return 0;
    max_len = data[0] < 128 ? 0 : (size_t)(data[0] - 127);
    data++;
    size--;
    s = malloc(size ? size : 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    base = wm_path_base_len(s, size);
    if (base > size)
        __builtin_trap();
    if (wm_path_check(s, size, max_len, &why) == 0) {
        if (size == 0 || s[0] != '/' || (size > 1 && s[1] == '/'))
            __builtin_trap();
        if (size > (max_len ? max_len : WM_PATH_MAX_DEFAULT))
            __builtin_trap();
        for (size_t i = 0; i < size; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c <= 0x20 || c >= 0x7f || c == '#' || c == '\\')
                __builtin_trap();
        }
        /* No "." or ".." segment in the path part. */
        for (size_t i = 0; i < base; i++) {
            if (s[i] != '/')
                continue;
            size_t j = i + 1;
            while (j < base && s[j] == '.')
                j++;
            if ((j - i - 1 == 1 || j - i - 1 == 2) && (j == base || s[j] == '/' || s[j] == ';'))
                __builtin_trap();
        }
    } else if (!why) {
        __builtin_trap();
    }
    free(s);
    return 0;
}
