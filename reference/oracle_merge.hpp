// The fp64 oracle for merging attention states, written from the definition:
// a state (v, lse) stands for exp(lse) units of softmax mass centred on v, so
// the merged state is the mass-weighted mean and the log of the total mass.
#pragma once

#include <cstdint>
#include <vector>

namespace kvserve::oracle {

// v [rows, n, dim] and lse [rows, n] -> out [rows, dim], out_lse [rows]. States
// with lse -inf carry no mass and are ignored (their v is never read); a row
// with no mass gets zeros and -inf. Meant for |lse| below ~700 (plain exp).
void merge_states(const std::vector<double>& v, const std::vector<double>& lse, std::int64_t rows, std::int64_t n,
                  int dim, std::vector<double>* out, std::vector<double>* out_lse);

}  // namespace kvserve::oracle
