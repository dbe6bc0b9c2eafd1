// ops/cpu/immintrin_quiet.h — <immintrin.h> for the AVX-512 files. GCC 12 warns that the
// _mm512_undefined_* placeholders inside several intrinsics (unpack, extract, widening
// loads) are uninitialized (GCC bug 105593, fixed in 13); the warning is about the
// header, not our code, so it is silenced for the header only.
#pragma once
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
