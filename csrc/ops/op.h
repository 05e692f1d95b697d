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
  // a lockstep group (Step::run_batch): `images` images, image i's input at
  // x + i * (input size), output at y + i * (output size), arena at arena + i * stride
  int images = 1;
  int64_t stride = 0;
  const float* in(int v) const { return plan.in_ptr(v, x, arena); }
  // floats from one image's value v to the next image's in a group
  int64_t image_ld(int v) const {
    return v == 0 ? plan.input_shape().size() : v == plan.output() ? plan.output_shape().size() : stride;
  }
  float* out(int v) const { return plan.out_ptr(v, y, arena); }
  // int8 plans: the uint8 values (the arena is byte-addressed through them)
  const uint8_t* in8(int v) const { return reinterpret_cast<const uint8_t*>(plan.in_ptr(v, x, arena)); }
  uint8_t* out8(int v) const { return reinterpret_cast<uint8_t*>(plan.out_ptr(v, y, arena)); }
  const Q8Table& q8() const { return *plan.q8_kernels(); }
  float* scratch(const Step& s) const { return arena + s.scratch_off; }
  // A GEMM, split over the threads (by rows, or by columns when there are
  // few) when it is large enough to pay for it.
  void gemm(const GemmArgs& a, int64_t macs) const;
  GemmArgs task_args(const GemmArgs& a, int t) const;   // task t's share of a's scratch (bpack)
};

// What an op's prepare step sees.
struct PrepareCtx {
  const std::vector<Shape3>& shapes;
  const KernelTable& kt;
  int max_threads;
  const Q8Table* q8;   // int8 plans
  PackCache* packs;    // the engine's packed weights (may be null: kernels over the stored layout)
};

struct OpImpl {
  const char* name;
  void (*validate)(OpDesc& op, const std::vector<Shape3>& shapes);
  int64_t (*macs)(const OpDesc& op, const Shape3& si, const Shape3& so);
  void (*prepare)(Step& s, const PrepareCtx& c);
  void (*run)(const Step& s, const RunCtx& c);
};

// The float32 operators, or with q8 the int8 ones (ops/q8_*.cc).
const OpImpl& op_impl(OpKind kind, bool q8 = false);

// shared checks and helpers (ops/common.cc)
[[noreturn]] void fail(const OpDesc& op, const std::string& msg);
// The stored tensor must be rank need.size(), non-null and at least `need`
// in every dimension (the prefix view the op reads).
void check_buffer(const OpDesc& op, const char* what, const Buffer& b, std::vector<int64_t> need);
void check_vec(const OpDesc& op, const char* what, const std::vector<float>& v, int c);
int conv_out(int n, int k, int s);
void check_conv_shape(const OpDesc& op, const Shape3& si, const Shape3& so);
void check_same_hw(const OpDesc& op, const Shape3& si, const Shape3& so);
// A depthwise conv: kernel/stride/sizes, the same channels in and out, a
// [k, k, >= C] weight (the float or the int8 one, as a Buffer view).
void check_depthwise(const OpDesc& op, const Shape3& si, const Shape3& so, const char* what, const Buffer& w);
// A squeeze-excite: the same shape in and out, a bottleneck, an SE gate.
void check_se(const OpDesc& op, const Shape3& si, const Shape3& so);
// "f32-<op>-<tile>-<isa>"
std::string kernel_name(const KernelTable& kt, const std::string& op, const std::string& tile);
// The name of the GEMM kernel a product of m rows runs on (the GEMV one for m = 1).
std::string gemm_kernel_name(const KernelTable& kt, int64_t m);
// Floats of one thread's gated copy of a K x N B (GemmArgs::bpack), aligned.
int64_t gemm_pack_floats(int K, int N);
int64_t default_macs(const OpDesc& op, const Shape3& si, const Shape3& so);
void no_prepare(Step& s, const PrepareCtx& c);
// The source rows/columns and weights of a bilinear resize (half-pixel
// centres, clamped; adaptive_rt.model.reference.resize_bilinear), per output
// row and column, and per element of an output row (rxe0, rxe1, rfxe);
// with vec_w > 0 also the windows of each vec_w elements (rxwin, rxp0, rxp1).
void resize_tables(Step& s, const Shape3& si, const Shape3& so, int vec_w = 0);

}  // namespace art
