"""Graph IR: op structure, tensor naming, and the cost model against hand counts."""
from __future__ import annotations

import pytest

from adaptive_rt.model.graph import OP_KINDS, build_graph
from adaptive_rt.model.layout import running_stat_specs, tensor_specs
from adaptive_rt.model.space import SearchSpace, SubnetConfig
from adaptive_rt.model.presets import get_space, list_spaces


def hand_space() -> SearchSpace:
    """One stage, small enough to count by hand (channel divisor 4)."""
    return SearchSpace.from_dict({
        "name": "hand", "in_channels": 1, "num_classes": 10, "input_size": 8, "resolutions": [8],
        "stem_channels": 4, "stem_kernel": 3, "stem_stride": 1, "stem_act": "relu",
        "stages": [{"channels": 8, "stride": 2, "depths": [1, 2], "kernel_sizes": [3],
                    "expand_ratios": [2], "width_mults": [1.0], "act": "relu", "se": True}],
        "head_channels": 16, "head_act": "relu", "channel_divisor": 4})


def test_cost_by_hand():
    sp = hand_space()
    g = build_graph(sp, SubnetConfig(8, (1.0,), ((3, 3),), ((2.0, 2.0),)))
    assert [op.kind for op in g.ops] == ["conv", "pwconv", "dwconv", "se", "pwconv",
                                         "pwconv", "dwconv", "se", "pwconv", "add",
                                         "pwconv", "gap", "linear"]
    cost = g.cost()
    macs = (8 * 8 * 4 * 9 * 1      # stem 3x3, 1 -> 4, 8x8 output
            + 8 * 8 * 8 * 4        # b0 expand 4 -> 8 at 8x8
            + 4 * 4 * 8 * 9        # b0 dw 3x3 stride 2 -> 4x4
            + 8 * 4 + 4 * 8        # b0 SE 8 -> 4 -> 8
            + 4 * 4 * 8 * 8        # b0 project 8 -> 8
            + 4 * 4 * 16 * 8       # b1 expand 8 -> 16
            + 4 * 4 * 16 * 9       # b1 dw
            + 16 * 4 + 4 * 16      # b1 SE 16 -> 4 -> 16
            + 4 * 4 * 8 * 16       # b1 project 16 -> 8
            + 4 * 4 * 16 * 8       # head 8 -> 16
            + 16 * 10)             # classifier
    assert cost.macs == macs == 15328
    params = ((9 * 4 + 2 * 4)                       # stem weight + BN gamma/beta
              + (4 * 8 + 16) + (9 * 8 + 16) + (8 * 4 + 4 + 4 * 8 + 8) + (8 * 8 + 16)
              + (8 * 16 + 32) + (9 * 16 + 32) + (16 * 4 + 4 + 4 * 16 + 16) + (16 * 8 + 16)
              + (8 * 16 + 32)                       # head
              + (16 * 10 + 10))                     # classifier weight + bias
    assert cost.params == params == 1294
    # largest live set: the b0 expand reads the stem output (8x8x4) and writes 8x8x8
    assert cost.peak_activation_bytes == 4 * (8 * 8 * 4 + 8 * 8 * 8) == 3072
    assert cost.mflops == pytest.approx(0.015328)


def test_depth_one_has_no_second_block():
    g = build_graph(hand_space(), SubnetConfig(8, (1.0,), ((3,),), ((2.0,),)))
    assert not any(op.name.startswith("s0.b1") for op in g.ops)
    assert not any(op.kind == "add" for op in g.ops)


def test_resize_emitted_only_when_needed(tiny_space):
    cfg = tiny_space.max_config()
    assert build_graph(tiny_space, cfg).ops[0].kind == "conv"
    g = build_graph(tiny_space, cfg.replace(resolution=20))
    assert g.ops[0].kind == "resize" and g.ops[0].out_shape == (20, 20, 1)
    g = build_graph(tiny_space, cfg, input_hw=(8, 8))
    assert g.ops[0].kind == "resize" and g.input_shape == (8, 8, 1)


@pytest.mark.parametrize("name", list_spaces())
def test_every_weight_ref_is_a_prefix_of_a_stored_tensor(name):
    sp = get_space(name)
    specs = tensor_specs(sp)
    used = set()
    for cfg in [sp.min_config(), sp.max_config()] + [sp.sample(i) for i in range(300)]:
        g = build_graph(sp, cfg)
        for op in g.ops:
            assert op.kind in OP_KINDS
            for w in op.weight_refs():
                assert specs[w.name] == w.shape
                assert all(0 < a <= s for a, s in zip(w.active, w.shape)), (w.name, w.active, w.shape)
                used.add(w.name)
            if op.bn is not None:
                assert specs[op.bn.gamma][0] == op.bn.max_channels >= op.bn.channels
                used.update({op.bn.gamma, op.bn.beta})
        # shapes chain: each op's input shape is its producer's output shape
        for op in g.ops:
            assert op.in_shape == g.shapes[op.inputs[0]]
    # the max config together with the kernel variants touches every stored tensor
    unused = set(specs) - used
    assert not unused, sorted(unused)[:5]
    assert set(running_stat_specs(sp)) == {n[:-len(".weight")] + s for n in specs if n.endswith(".bn.weight")
                                           for s in (".mean", ".var")}


def test_cost_monotone_in_width_and_depth(tiny_space):
    lo, hi = tiny_space.min_config(), tiny_space.max_config()
    c_lo, c_hi = build_graph(tiny_space, lo).cost(), build_graph(tiny_space, hi).cost()
    assert c_lo.macs < c_hi.macs and c_lo.params < c_hi.params
    assert c_lo.peak_activation_bytes < c_hi.peak_activation_bytes


def test_cached_graph_is_one_entry_for_the_default_input_size():
    """A pool's load asks for its entries' graphs without an input size, its
    plans with None: both, and the space's own size, are the one graph built
    once; another size is another graph (with a resize first)."""
    from adaptive_rt.model.graph import cached_graph
    from adaptive_rt.model.presets import get_space
    space = get_space("mbv3-tiny28")
    cfg = space.max_config()
    g = cached_graph(space, cfg)
    s = space.input_size
    assert cached_graph(space, cfg, None) is g and cached_graph(space, cfg, (s, s)) is g and cached_graph(space, cfg, [s, s]) is g
    other = cached_graph(space, cfg, (s + 4, s))
    assert other is not g and other.ops[0].kind == "resize" and g.ops[0].kind != "resize"
