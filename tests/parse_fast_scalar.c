/*
 * parse_fast_scalar.c — src/parse_fast.c built without SIMD as
 * parse_fast_scalar(), so the tests hold the path of non-x86 hosts to the
 * same contract on this one.
 */
#define PARSE_FAST_SCALAR 1
#include "../src/load/parse_fast.c"
