// Operators, one per file (XNNPACK-style): each operator type has
//   validate  when the op is added: shapes and weight buffers against each
//             other (throws std::invalid_argument naming the op);
//   macs      its cost;
//   prepare   once, when the plan is finalized (after fusion): kernel choice,
//             precomputed tables, the scratch it needs (Step::scratch_floats);
//   run       per image, on the kernels of kernels/ only.
// op_impl(kind) is the one table of them (ops/registry.cc).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "../plan/passes.h"
#include "../plan/plan.h"
#include "../threadpool.h"

namespace art {

constexpr int64_t kParallelMacs = 200000;     // below this an op runs on one thread

// What an op's run step sees.
struct RunCtx {
  const Plan& plan;
  const KernelTable& kt;
  ThreadPool& pool;
  int threads;
  const float* x;     // the plan's input image
  float* y;           // the plan's output
  float* arena;
  const float* in(int v) const { return plan.in_ptr(v, x, arena); }
  float* out(int v) const { return plan.out_ptr(v, y, arena); }
  float* scratch(const Step& s) const { return arena + s.scratch_off; }
  // A GEMM, split over the threads (by rows, or by columns when there are
  // few) when it is large enough to pay for it.
  void gemm(const GemmArgs& a, int64_t macs) const;
};

// What an op's prepare step sees.
struct PrepareCtx {
  const std::vector<Shape3>& shapes;
  const KernelTable& kt;
  int max_threads;
};

struct OpImpl {
  const char* name;
  void (*validate)(OpDesc& op, const std::vector<Shape3>& shapes);
  int64_t (*macs)(const OpDesc& op, const Shape3& si, const Shape3& so);
  void (*prepare)(Step& s, const PrepareCtx& c);
  void (*run)(const Step& s, const RunCtx& c);
};

const OpImpl& op_impl(OpKind kind);

// shared checks and helpers (ops/common.cc)
[[noreturn]] void fail(const OpDesc& op, const std::string& msg);
// The stored tensor must be rank need.size(), non-null and at least `need`
// in every dimension (the prefix view the op reads).
void check_buffer(const OpDesc& op, const char* what, const Buffer& b, std::vector<int64_t> need);
void check_vec(const OpDesc& op, const char* what, const std::vector<float>& v, int c);
int conv_out(int n, int k, int s);
void check_conv_shape(const OpDesc& op, const Shape3& si, const Shape3& so);
void check_same_hw(const OpDesc& op, const Shape3& si, const Shape3& so);
// "f32-<op>-<tile>-<isa>"
std::string kernel_name(const KernelTable& kt, const std::string& op, const std::string& tile);
// The name of the GEMM kernel a product of m rows runs on (the GEMV one for m = 1).
std::string gemm_kernel_name(const KernelTable& kt, int64_t m);
int64_t default_macs(const OpDesc& op, const Shape3& si, const Shape3& so);
void no_prepare(Step& s, const PrepareCtx& c);

}  // namespace art
