// The arena planner (plan/passes.h): every value the plan keeps in the arena
// and every step's scratch gets an offset; items whose lifetimes (in steps)
// overlap never share bytes. Greedy first fit, largest first, as TFLite's
// arena planner.
#include <algorithm>
#include <utility>

#include "passes.h"

namespace art {

std::vector<int64_t> plan_arena(std::vector<Step>& steps, const std::vector<int64_t>& value_floats, int output,
                                int64_t* arena_floats) {
  const int nv = static_cast<int>(value_floats.size());
  struct Item { int64_t size, first, last, off; int value; int step; };   // value -1: scratch, -2: SE gate
  std::vector<Item> items;
  std::vector<int64_t> first(nv, -1), last(nv, -1);
  for (size_t i = 0; i < steps.size(); ++i) {
    const Step& s = steps[i];
    if (!s.gate_only && !s.rows_pulled) first[s.out] = static_cast<int64_t>(i);   // a pulled value is never stored
    // what a step whose rows are pulled reads, the next step reads
    const int64_t at = static_cast<int64_t>(i) + (s.rows_pulled ? 1 : 0);
    for (int v : {s.op.in0, s.op.kind == OpKind::Add ? s.op.in1 : -1, s.res})
      if (v >= 0) last[v] = std::max<int64_t>(last[v], at);
  }
  for (int v = 1; v < nv; ++v) {
    if (v == output || first[v] < 0) continue;
    items.push_back({round_up(value_floats[v], kAlignFloats), first[v], std::max(first[v], last[v]), -1, v, -1});
  }
  for (size_t i = 0; i < steps.size(); ++i) {
    const Step& s = steps[i];
    if (s.scratch_floats)
      items.push_back({round_up(s.scratch_floats, kAlignFloats), int64_t(i), int64_t(i), -1, -1, int(i)});
    if (s.gate_only)   // the gate lives from the SE step to the conv after it
      items.push_back({round_up(steps[i].gate_c, kAlignFloats), int64_t(i), int64_t(i) + 1, -1, -2, int(i)});
  }
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return items[a].size > items[b].size; });
  std::vector<size_t> placed;
  int64_t total = 0;
  for (size_t idx : order) {
    Item& it = items[idx];
    std::vector<std::pair<int64_t, int64_t>> busy;
    for (size_t p : placed) {
      const Item& o = items[p];
      if (o.first <= it.last && it.first <= o.last) busy.emplace_back(o.off, o.off + o.size);
    }
    std::sort(busy.begin(), busy.end());
    int64_t off = 0;
    for (auto& b : busy) {
      if (off + it.size <= b.first) break;
      off = std::max(off, b.second);
    }
    it.off = off;
    placed.push_back(idx);
    total = std::max(total, off + it.size);
  }
  std::vector<int64_t> offset(nv, -1);
  for (const Item& it : items) {
    if (it.value >= 0) offset[it.value] = it.off;
    else if (it.value == -2) steps[it.step].gate_off = it.off;
    else steps[it.step].scratch_off = it.off;
  }
  *arena_floats = total;
  return offset;
}

}  // namespace art
