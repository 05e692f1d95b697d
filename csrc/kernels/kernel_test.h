// One test of every kernel family of a kernel table against a plain
// double-precision reference, over shapes with every kind of tail (rows,
// columns, channels not a multiple of the vector width; prefix views of
// wider weights; every activation) — in the spirit of ggml's
// test-backend-ops. Run for every table this CPU has by tests/test_kernels.py
// (through the extension), by scripts/sanitize.sh under ASan/UBSan and by
// csrc/tests/kernel_selftest.cc under qemu for aarch64.
#pragma once
#include <string>
#include <vector>

#include "kernels.h"

namespace art {

struct KernelTestReport {
  int checks = 0;                       // (kernel, shape, activation) cases compared
  std::vector<std::string> failures;    // one line per case out of tolerance
};

// Relative tolerance: max |got - want| <= tol * max(|want|, 1e-6) per case.
KernelTestReport test_kernel_table(const KernelTable& t, double tol = 1e-5);

// Every kernel of an int8 table against an integer reference, exactly
// (kernels/q8_kernel_test.cc).
struct Q8Table;
KernelTestReport test_q8_kernel_table(const Q8Table& t);

}  // namespace art
