// Kernel and engine self-test without Python: every kernel of every kernel
// table this CPU has against a plain double-precision reference
// (kernels/kernel_test.cc), then a small plan on every table at 1 and 2
// threads against the scalar table. Built and run by
// scripts/cross_aarch64.sh under qemu for the NEON table (and runnable
// natively). Exit code 0 on success; prints the first mismatch otherwise.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "cpu.h"
#include "engine.h"
#include "kernels/kernel_test.h"

using namespace art;

namespace {

uint64_t rng_state = 88172645463325252ull;
float frand() {   // xorshift, uniform in [-1, 1)
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return static_cast<float>((rng_state >> 11) * (1.0 / 9007199254740992.0)) * 2.f - 1.f;
}
std::vector<float> rand_vec(size_t n) {
  std::vector<float> v(n);
  for (auto& x : v) x = frand();
  return v;
}

int failures = 0;
bool close(const std::vector<float>& got, const std::vector<double>& want, const std::string& what) {
  double mx = 1e-6, err = 0;
  for (double w : want) mx = std::fmax(mx, std::fabs(w));
  for (size_t i = 0; i < want.size(); ++i) err = std::fmax(err, std::fabs(got[i] - want[i]));
  if (err > 1e-5 * mx) {
    std::printf("FAIL %s: max abs error %g (max %g)\n", what.c_str(), err, mx);
    ++failures;
    return false;
  }
  return true;
}

// stem conv -> expand -> dw (+ fused expand) -> SE -> project (+ residual) -> head -> gap -> linear
std::vector<float> run_plan(const KernelTable* t, int threads, const std::vector<std::vector<float>>& wts,
                            const std::vector<float>& x) {
  Engine eng(2, t);
  std::vector<Shape3> shapes = {{24, 24, 3}, {24, 24, 16}, {24, 24, 96}, {24, 24, 96}, {24, 24, 96}, {24, 24, 16},
                                {24, 24, 16}, {24, 24, 32}, {1, 1, 32}, {1, 1, 10}};
  Plan plan(shapes, 9);
  auto buf = [&](int i, std::vector<int64_t> shape) { Buffer b; b.data = wts[i].data(); b.shape = shape; return b; };
  auto vec = [&](int i, int n) { return std::vector<float>(wts[i].begin(), wts[i].begin() + n); };
  OpDesc o;
  o = {}; o.kind = OpKind::Conv; o.name = "stem"; o.in0 = 0; o.out = 1; o.k = 3; o.act = Act::HSwish;
  o.w = buf(0, {27, 16}); o.scale = vec(1, 16); o.shift = vec(2, 16); plan.add(o);
  o = {}; o.kind = OpKind::PwConv; o.name = "expand"; o.in0 = 1; o.out = 2; o.act = Act::Relu;
  o.w = buf(3, {16, 128}); o.scale = vec(1, 96); o.shift = vec(2, 96); plan.add(o);
  o = {}; o.kind = OpKind::DwConv; o.name = "dw"; o.in0 = 2; o.out = 3; o.k = 5; o.act = Act::Relu;
  o.w = buf(4, {5, 5, 128}); o.scale = vec(1, 96); o.shift = vec(2, 96); plan.add(o);
  o = {}; o.kind = OpKind::SE; o.name = "se"; o.in0 = 3; o.out = 4; o.se_r = 24;
  o.se_w1 = buf(5, {96, 32}); o.se_b1 = buf(6, {32}); o.se_w2 = buf(7, {32, 96}); o.se_b2 = buf(8, {96}); plan.add(o);
  o = {}; o.kind = OpKind::PwConv; o.name = "project"; o.in0 = 4; o.out = 5;
  o.w = buf(9, {96, 16}); o.scale = vec(1, 16); o.shift = vec(2, 16); plan.add(o);
  o = {}; o.kind = OpKind::Add; o.name = "add"; o.in0 = 5; o.in1 = 1; o.out = 6; plan.add(o);
  o = {}; o.kind = OpKind::PwConv; o.name = "head"; o.in0 = 6; o.out = 7; o.act = Act::HSwish;
  o.w = buf(10, {16, 32}); o.scale = vec(1, 32); o.shift = vec(2, 32); plan.add(o);
  o = {}; o.kind = OpKind::GAP; o.name = "pool"; o.in0 = 7; o.out = 8; plan.add(o);
  o = {}; o.kind = OpKind::Linear; o.name = "fc"; o.in0 = 8; o.out = 9; o.w = buf(11, {32, 10}); o.shift = vec(2, 10);
  plan.add(o);
  eng.finalize(plan);
  std::vector<float> y(20);
  eng.run(plan, x.data(), 2, y.data(), threads);
  return y;
}

}  // namespace

int main() {
  std::vector<const KernelTable*> tables;
  for (const char* n : {"scalar", "avx2", "avx512", "neon"})
    if (const KernelTable* t = table_by_name(n)) tables.push_back(t);
  int checks = 0;
  for (const KernelTable* t : tables) {   // every kernel of every table (csrc/kernels/kernel_test.cc)
    const KernelTestReport r = test_kernel_table(*t);
    checks += r.checks;
    for (const std::string& f : r.failures) std::printf("FAIL %s\n", f.c_str());
    failures += static_cast<int>(r.failures.size());
  }
  std::vector<const Q8Table*> q8tables;
  for (const char* n : {"scalar", "avx2", "avxvnni", "avx512vnni", "neon", "neondot"})
    if (const Q8Table* t = q8_table_by_name(n)) q8tables.push_back(t);
  for (const Q8Table* t : q8tables) {   // every int8 kernel, exactly (csrc/kernels/q8_kernel_test.cc)
    const KernelTestReport r = test_q8_kernel_table(*t);
    checks += r.checks;
    for (const std::string& f : r.failures) std::printf("FAIL %s\n", f.c_str());
    failures += static_cast<int>(r.failures.size());
  }
  const std::vector<size_t> sizes = {27 * 16, 128, 128, 16 * 128, 25 * 128, 96 * 32, 32, 32 * 96, 96, 96 * 16, 16 * 32, 32 * 10};
  std::vector<std::vector<float>> wts;
  for (size_t n : sizes) wts.push_back(rand_vec(n));
  for (float& v : wts[1]) v = 0.5f + 0.25f * v;   // positive BN scales
  auto x = rand_vec(2 * 24 * 24 * 3);
  std::vector<float> ref = run_plan(table_by_name("scalar"), 1, wts, x);
  std::vector<double> refd(ref.begin(), ref.end());
  for (const KernelTable* t : tables) {
    std::vector<float> y1 = run_plan(t, 1, wts, x), y2 = run_plan(t, 2, wts, x);
    close(y1, refd, std::string(t->name) + " plan t1");
    if (y1 != y2) { std::printf("FAIL %s: plan results differ between 1 and 2 threads\n", t->name); ++failures; }
  }
  std::printf("kernel_selftest: %d kernel cases over %zu kernel tables (", checks, tables.size());
  for (size_t i = 0; i < tables.size(); ++i) std::printf("%s%s", i ? ", " : "", tables[i]->name);
  std::printf(") and %zu int8 tables (", q8tables.size());
  for (size_t i = 0; i < q8tables.size(); ++i) std::printf("%s%s", i ? ", " : "", q8tables[i]->name);
  std::printf("), %d failures\n", failures);
  return failures ? 1 : 0;
}
