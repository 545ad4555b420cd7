/* Links against an installed tern and checks the header and library agree. */
#include <stdio.h>
#include <string.h>

#include "tern.h"

int main(void) {
    if (tern_abi_version() != TERN_ABI_VERSION) {
        fprintf(stderr, "ABI mismatch: library %u, header %d\n", tern_abi_version(), TERN_ABI_VERSION);
        return 1;
    }
    tern_model *model = (tern_model *)1;
    if (tern_model_load(NULL, NULL, &model) != TERN_ERR_INVALID_ARGUMENT || model != NULL) {
        fprintf(stderr, "a NULL path must be refused\n");
        return 1;
    }
    printf("consumer OK: tern %s, last error: %s\n", tern_version(), tern_last_error());
    return strlen(tern_last_error()) > 0 ? 0 : 1;
}
