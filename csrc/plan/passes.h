// The passes Plan::finalize runs, in this order, each a named function over
// the step list (so each can be read, tested and switched off on its own):
//   fuse_residual_add      pwconv -> add           : the add in the conv's epilogue
//   fuse_expand_dwconv     expand pwconv -> dwconv : expanded rows streamed through a ring
//   fuse_dwconv_project    dwconv -> project pwconv: each depthwise row projected at once
//   fuse_stem_dwconv       direct conv -> dwconv   : the stem's rows streamed through the ring
//   fuse_se_gate           SE -> pwconv            : the gate scales the conv's weight rows
//   prepare_ops            each op's prepare step  : kernels, tables, scratch sizes
//   pull_rows              fused dwconv -> fused dwconv: the second makes the first's rows as it needs them
//   plan_arena             lifetimes -> offsets    : greedy first fit, largest first
//   lockstep_from          weights vs activations  : where a batch switches to step-by-step (plan/batch.cc)
#pragma once
#include <cstdint>
#include <vector>

#include "plan.h"

namespace art {

constexpr int64_t kAlignFloats = 16;              // 64-byte aligned activations
constexpr int64_t kFuseExpandBytes = 256 << 10;   // expand outputs this large are streamed by rows
constexpr int64_t kFuseProjectBytes = 128 << 10;  // depthwise outputs this large are projected row by row
constexpr int kDirectTaps = 64;                    // a conv with k*k*Cin taps this few runs the direct kernel

inline int64_t round_up(int64_t v, int64_t a) { return (v + a - 1) / a * a; }

// How many steps read each value (the graph's output may be read by none).
std::vector<int> count_uses(const std::vector<Step>& steps, int num_values);

void fuse_residual_add(std::vector<Step>& steps, std::vector<int>& producer, const std::vector<int>& uses);
// ART_FUSE=0 in the environment turns this pass off (profiles, comparisons).
void fuse_expand_dwconv(std::vector<Step>& steps, const std::vector<Shape3>& shapes, const std::vector<int>& uses,
                        int output);
// The depthwise output is never stored whole: a row at a time it feeds the
// project conv (ART_FUSE=0 turns this off with the expand fusion).
void fuse_dwconv_project(std::vector<Step>& steps, const std::vector<Shape3>& shapes, const std::vector<int>& uses,
                         std::vector<int>& producer, int output);
void fuse_stem_dwconv(std::vector<Step>& steps, const std::vector<Shape3>& shapes, const std::vector<int>& uses,
                      int output);
void fuse_se_gate(std::vector<Step>& steps, const std::vector<Shape3>& shapes, const std::vector<int>& uses,
                  int output);
// q8: the int8 table (an int8 plan's ops), or null
void prepare_ops(std::vector<Step>& steps, const std::vector<Shape3>& shapes, const KernelTable& kt, int max_threads,
                 const Q8Table* q8 = nullptr, PackCache* packs = nullptr);

// After prepare_ops: a dwconv step with its project fused whose output only
// the next step's fused expand conv reads, and is large (MobileNet's first
// block into the second at 224x224: 112x112x16, 0.8 MB) is run by that step, an output row
// each time its expand needs an input row: the value is never stored, the
// first step runs nothing, and the second's scratch holds a thread's ring
// and row buffer of the first and one of its output rows. ART_FUSE=0 turns
// this off with the other fusions.
void pull_rows(std::vector<Step>& steps, const std::vector<Shape3>& shapes, const std::vector<int>& uses, int output,
               int max_threads);

// Sets every step's scratch_off/gate_off; returns value -> offset (-1: not in
// the arena) and the arena's size in floats. value_floats: each value's size
// in floats (a uint8 value of n bytes takes ceil(n / 4)).
std::vector<int64_t> plan_arena(std::vector<Step>& steps, const std::vector<int64_t>& value_floats, int output,
                                int64_t* arena_floats);

// Bytes of weights one run of the step reads (its fused expand/project included).
int64_t step_weight_bytes(const Step& s, const std::vector<Shape3>& shapes, bool q8);
// The first step a batch of images runs in lockstep (every image through a
// step before the next step), or steps.size() for none: the suffix of steps
// whose weight bytes exceed the bytes of the activations they read and write
// the most. value_bytes: each value's size in bytes.
size_t lockstep_from(const std::vector<Step>& steps, const std::vector<Shape3>& shapes,
                     const std::vector<int64_t>& value_bytes, bool q8);

}  // namespace art
