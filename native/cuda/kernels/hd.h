// PATHO_HD marks per-element math shared by the CUDA kernels and the host self-test
// (test/cuda/selftest.cc), so the formulas the GPU runs are checked on any machine.
#pragma once
#include <math.h>

#ifdef __CUDACC__
#define PATHO_HD __host__ __device__
#else
#define PATHO_HD
#endif
