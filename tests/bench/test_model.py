from __future__ import annotations

import torch

from tx2setup.bench import model as z2


def test_z2color_shapes_and_parameter_count():
    m = z2.build_z2color(seed=0)
    # conv1 139,488 + conv2 (groups 2) 117,760 + ip1 1,311,232 + ip2 10,260
    assert z2.param_count(m) == 1_578_740
    raw = torch.randint(0, 256, (2, 12, 376, 672), dtype=torch.uint8)
    x = z2.preprocess(raw)
    assert x.shape == (2, 12, 94, 168)
    assert float(x.min()) >= -0.5 and float(x.max()) <= 0.5
    out = m(x, z2.metadata(2))
    assert out.shape == (2, 20)
    feats = m.conv1_pool(torch.relu(m.conv1(x)))
    assert feats.shape == (2, 96, 13, 26)


def test_seeded_weights_are_deterministic_and_seed_dependent():
    a, b, c = z2.build_z2color(seed=0), z2.build_z2color(seed=0), z2.build_z2color(seed=1)
    assert torch.equal(a.ip1.weight, b.ip1.weight)
    assert not torch.equal(a.ip1.weight, c.ip1.weight)


def test_weights_file_is_loaded(tmp_path):
    src = z2.build_z2color(seed=7)
    path = tmp_path / "w.pt"
    torch.save(src.state_dict(), path)
    loaded = z2.build_z2color(seed=0, weights=path)
    assert torch.equal(loaded.conv2.weight, src.conv2.weight)


def test_incremental_preprocessing_equals_pooling_the_full_stack():
    gen = torch.Generator().manual_seed(3)
    prev = torch.randint(0, 256, (2, 376, 672, 3), generator=gen, dtype=torch.uint8)
    cur = torch.randint(0, 256, (2, 376, 672, 3), generator=gen, dtype=torch.uint8)
    want = z2.preprocess(z2.stack_hwc(prev, cur))
    x = torch.full((1, 12, 94, 168), float("nan"))
    slots = z2.input_slots(x)
    z2.preprocess_pair_into(prev, slots)
    z2.shift_frames(slots)
    z2.preprocess_pair_into(cur, slots)
    assert torch.allclose(x, want, atol=1e-6)
    # channel order [L(t-1), L(t), R(t-1), R(t)]
    assert torch.allclose(x[0, 3:6], z2.preprocess(cur[0].permute(2, 0, 1)[None])[0], atol=1e-6)


def test_postprocess_maps_outputs_to_percent_commands():
    out = torch.zeros(1, 20)
    out[0, 9], out[0, 19] = 0.2, -0.7
    assert z2.postprocess(out.numpy()) == (70, 0)
