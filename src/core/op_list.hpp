// Every op kvserve offers, once, with the backends that serve it: the CPU
// backend serves every op (src/cpu/, the reference); `cuda` marks an op with a
// CUDA kernel (src/cuda/, its configurations in the kernel rows,
// src/cuda/registry/kernel_rows.hpp). The backends' declarations
// (core/backend_kernels.hpp) and the catalogue's CPU rows (catalogue.cpp) are
// read from this list, so adding an op, or a CUDA kernel to one, is one line
// here. In `kvserve list` order.
#pragma once

#define KVSERVE_FOR_EACH_OP(X)                                                          \
  X(BatchPagedDecode, cuda)                                                             \
  X(SingleDecode, cuda)                                                                 \
  X(SinglePrefill, cuda)                                                                \
  X(BatchRaggedPrefill, cuda)                                                           \
  X(BatchPagedPrefill, cuda)                                                            \
  X(CascadeAttention, cuda)                                                             \
  X(MergeState, cuda)                                                                   \
  X(MergeStates, cuda)                                                                  \
  X(RmsNorm, cuda)                                                                      \
  X(GdnPrefill, cuda)                                                                   \
  X(GdnDecode, cuda)                                                                    \
  X(PagedKvAppend, cuda)                                                                \
  X(PagedMlaAppend, cuda)                                                               \
  X(KvCacheAppend, cuda)                                                                \
  X(BatchPagedMlaDecode, cuda)                                                          \
  X(Sampling, cuda)                                                                     \
  X(SamplingRenorm, cuda)                                                               \
  X(ChainSpeculativeSampling, cuda)                                                     \
  X(TokenPenalty, cuda)
