"""SearchSpace and SubnetConfig: round trips, validation, sampling."""
from __future__ import annotations

import json
import random

import pytest

from adaptive_rt.model.presets import get_space, list_spaces
from adaptive_rt.model.space import ConfigError, SearchSpace, SpaceError, StageSpec, SubnetConfig, make_divisible

SPACES = list_spaces()


def test_presets_exist():
    assert {"mbv3-tiny28", "mbv3-224"} <= set(SPACES)
    assert get_space("mbv3-tiny28").input_size == 28
    assert get_space("mbv3-224").input_size == 224 and get_space("mbv3-224").in_channels == 3


@pytest.mark.parametrize("name", SPACES)
def test_space_json_round_trip(name):
    sp = get_space(name)
    back = SearchSpace.from_json(sp.to_json())
    assert back == sp and hash(back) == hash(sp)


@pytest.mark.parametrize("name", SPACES)
def test_config_id_and_json_round_trip(name):
    sp = get_space(name)
    rng = random.Random(0)
    for cfg in [sp.min_config(), sp.max_config()] + [sp.sample(rng) for _ in range(200)]:
        cfg.validate(sp)
        assert SubnetConfig.from_id(cfg.id) == cfg
        assert SubnetConfig.from_id(cfg.id).id == cfg.id
        assert SubnetConfig.from_json(cfg.to_json()) == cfg
        assert SubnetConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
        assert hash(SubnetConfig.from_id(cfg.id)) == hash(cfg)


def test_config_is_frozen_and_hashable(tiny_space):
    cfg = tiny_space.max_config()
    with pytest.raises(AttributeError):
        cfg.resolution = 20  # type: ignore[misc]
    assert len({cfg, SubnetConfig.from_id(cfg.id), tiny_space.min_config()}) == 2
    # ints and floats that are equal give equal configs
    assert cfg.replace(widths=tuple(int(w) if w == 1 else w for w in cfg.widths)) == cfg


def test_id_example():
    cfg = SubnetConfig(28, (1.0, 0.75), ((3, 5), (7,)), ((4.0, 6.0), (3.0,)))
    assert cfg.id == "r28-1:3x4_5x6-0.75:7x3"
    assert cfg.depths == (2, 1)


def test_sampling_is_seeded_and_covers_choices(tiny_space):
    a = [tiny_space.sample(random.Random(7)) for _ in range(3)]
    b = [tiny_space.sample(random.Random(7)) for _ in range(3)]
    assert a == b
    rng = random.Random(1)
    seen_k, seen_d, seen_r = set(), set(), set()
    for _ in range(300):
        c = tiny_space.sample(rng)
        seen_r.add(c.resolution)
        seen_d.add(c.depths[1])
        seen_k.update(c.kernels[1])
    assert seen_r == set(tiny_space.resolutions)
    assert seen_d == set(tiny_space.stages[1].depths)
    assert seen_k == set(tiny_space.stages[1].kernel_sizes)


def test_min_max(tiny_space):
    lo, hi = tiny_space.min_config(), tiny_space.max_config()
    assert lo.resolution == min(tiny_space.resolutions) and hi.resolution == max(tiny_space.resolutions)
    for s, st in enumerate(tiny_space.stages):
        assert lo.depths[s] == min(st.depths) and hi.depths[s] == max(st.depths)
        assert set(hi.kernels[s]) == {max(st.kernel_sizes)} and set(lo.expands[s]) == {min(st.expand_ratios)}


@pytest.mark.parametrize("mutation, field", [
    (lambda c: c.replace(resolution=30), "resolution=30"),
    (lambda c: c.replace(widths=(0.5,) + c.widths[1:]), "widths[0]=0.5"),
    (lambda c: c.replace(widths=c.widths[:-1]), "widths has 3 stages"),
    (lambda c: c.replace(kernels=(c.kernels[0], (3, 4)) + c.kernels[2:],
                         expands=(c.expands[0], (3.0, 3.0)) + c.expands[2:]), "kernels[1][1]=4"),
    (lambda c: c.replace(expands=(c.expands[0], (5.0,) * len(c.kernels[1])) + c.expands[2:]), "expands[1][0]=5"),
    (lambda c: c.replace(kernels=(c.kernels[0], (3, 3, 3, 3)) + c.kernels[2:],
                         expands=(c.expands[0], (3.0,) * 4) + c.expands[2:]), "depth of stage 1"),
    (lambda c: c.replace(expands=(c.expands[0], (3.0,)) + c.expands[2:]), "expands[1] has 1 blocks"),
])
def test_invalid_config_names_field(tiny_space, mutation, field):
    cfg = tiny_space.max_config()
    bad = mutation(cfg)
    with pytest.raises(ConfigError) as ei:
        bad.validate(tiny_space)
    assert field in str(ei.value)


@pytest.mark.parametrize("d, field", [
    ({"resolution": "28"}, "resolution"),
    ({"widths": [True, 1, 1, 1]}, "widths value True"),
    ({"kernels": [[3.5], [3], [3], [3]]}, "kernels value 3.5"),
    ({"expands": [[float("nan")], [3], [3], [3]]}, "expands value nan"),
    ({"extra": 1}, "unknown field 'extra'"),
    ({"kernels": [3, 3, 3, 3]}, "kernels[0] must be a list"),
])
def test_invalid_config_json_names_field(tiny_space, d, field):
    base = tiny_space.min_config().to_dict()
    base.update(d)
    with pytest.raises(ConfigError) as ei:
        SubnetConfig.from_dict(base)
    assert field in str(ei.value)


def test_missing_config_field():
    with pytest.raises(ConfigError, match="missing field 'widths'"):
        SubnetConfig.from_dict({"resolution": 28, "kernels": [], "expands": []})


@pytest.mark.parametrize("text", ["", "r28", "x28-1:3x4", "r28-1:3x4-", "r28-1:3y4", "r28-1:3x4__5x6",
                                  "r28-a:3x4", "r28-1:3x4.5.5", "r" + "9" * 5000])
def test_bad_ids_rejected(text):
    with pytest.raises(ConfigError):
        SubnetConfig.from_id(text)


def _space_dict(**kw):
    d = get_space("mbv3-tiny28").to_dict()
    d.update(kw)
    return d


@pytest.mark.parametrize("kw, field", [
    ({"stem_kernel": 4}, "stem_kernel=4"),
    ({"resolutions": []}, "resolutions"),
    ({"resolutions": [28, 28]}, "duplicate"),
    ({"stem_act": "gelu"}, "stem_act='gelu'"),
    ({"in_channels": 0}, "in_channels=0"),
    ({"se_gate": "tanh"}, "se_gate"),
    ({"bogus": 1}, "unknown field 'bogus'"),
    ({"name": "a b"}, "name="),
])
def test_invalid_space_names_field(kw, field):
    with pytest.raises(SpaceError) as ei:
        SearchSpace.from_dict(_space_dict(**kw))
    assert field in str(ei.value)


@pytest.mark.parametrize("stage_kw, field", [
    ({"stride": 3}, "stages[1].stride=3"),
    ({"kernel_sizes": [3, 4]}, "even kernel size 4"),
    ({"depths": [0, 1]}, "stages[1].depths[0]=0"),
    ({"expand_ratios": [1, 3]}, "expand_ratios"),
    ({"act": "swish"}, "stages[1].act"),
    ({"se": "yes"}, "stages[1].se"),
    ({"width_mults": [0.0]}, "stages[1].width_mults[0]"),
])
def test_invalid_stage_names_field(stage_kw, field):
    d = _space_dict()
    d["stages"][1].update(stage_kw)
    with pytest.raises(SpaceError) as ei:
        SearchSpace.from_dict(d)
    assert field in str(ei.value)


def test_make_divisible():
    assert make_divisible(16 * 0.75, 8) == 16   # 12 rounds up to 16
    assert make_divisible(24 * 0.75, 8) == 24   # 18 -> 16 is >10% below 18 -> 24
    assert make_divisible(40, 8) == 40
    assert make_divisible(3, 8) == 8


def test_stage_spec_is_value():
    st = StageSpec(16, 2, (1, 2), (3,), (2.0,))
    assert st == StageSpec(16, 2, (1, 2), (3,), (2.0,)) and st.max_depth == 2 and st.has_expand


def test_unknown_space():
    with pytest.raises(SpaceError, match="unknown search space 'nope'"):
        get_space("nope")
