#ifndef FEEGATE_FUZZ_H
#define FEEGATE_FUZZ_H
/* Each fuzz target defines LLVMFuzzerTestOneInput. libFuzzer drives it under `make fuzz`;
 * replay.c runs it over the committed corpus under `make test`, with any compiler. */
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* data as a NUL-terminated copy (malloc'ed). */
char *fuzz_cstr(const uint8_t *data, size_t size);

#endif
