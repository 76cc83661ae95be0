// Backend choice per kernel family: our hand-written kernels ("ours", the default) or a
// vendor library as the baseline they are measured against ("cublas" for gemm, "cudnn" for
// conv, attention and rnn). Read once from BIGMODEL_<FAMILY> (e.g. BIGMODEL_CONV=cudnn),
// changed with set_backend; Python exposes it as bm.backends.<family>. Thread-safe.
#pragma once
#include <string>
#include <vector>

namespace bigmodel {

// The families and the names each accepts (the first is the default).
const std::vector<std::string>& backend_families();
const std::vector<std::string>& backend_choices(const std::string& family);

// The current choice of `family`; unknown families raise ValueError naming the known ones.
std::string backend(const std::string& family);
// Sets it; an unknown family or name raises ValueError listing what is accepted.
void set_backend(const std::string& family, const std::string& name);
// True when `family` currently uses the vendor baseline (not "ours").
bool uses_vendor_backend(const std::string& family);

}  // namespace bigmodel
