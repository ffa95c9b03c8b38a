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


def _port_forward(m, x, meta):
    """The reference port's forward (raunakdoesdev/pytorch-neural-z2color nets/z2_color.py),
    written out with functional ops: conv1, relu, pool, then ``torch.cat((metadata, x), 1)``
    (metadata FIRST), conv2 (groups 2), relu, pool, view(-1, 2560), ip1, relu, ip2."""
    import torch.nn.functional as F

    y = F.max_pool2d(F.relu(F.conv2d(x, m.conv1.weight, m.conv1.bias, stride=3)), 3, 2)
    y = torch.cat((meta, y), 1)
    y = F.max_pool2d(F.relu(F.conv2d(y, m.conv2.weight, m.conv2.bias, stride=2, groups=2)), 3, 2)
    y = F.relu(F.linear(y.view(-1, 2560), m.ip1.weight, m.ip1.bias))
    return F.linear(y, m.ip2.weight, m.ip2.bias)


def test_forward_matches_the_ports_concat_order():
    m = z2.build_z2color(seed=4)
    gen = torch.Generator().manual_seed(9)
    x = torch.rand(2, 12, 94, 168, generator=gen) - 0.5
    meta = z2.random_meta(2, gen)
    meta[0, 0] = 1.0  # at least one plane set, so the metadata matter
    with torch.no_grad():
        assert torch.allclose(m(x, meta), _port_forward(m, x, meta), atol=1e-6)
        # the pin can fail: with groups=2 the other order is a different function
        feats = m.conv1_pool(torch.relu(m.conv1(x)))
        ours = m.conv2(torch.cat((meta, feats), 1))
        other = m.conv2(torch.cat((feats, meta), 1))
        assert not torch.allclose(ours, other, atol=1e-4)


def test_metadata_planes_feed_the_first_conv2_group_only():
    m = z2.build_z2color(seed=5)
    x = torch.rand(1, 12, 94, 168, generator=torch.Generator().manual_seed(1)) - 0.5
    captured = []
    hook = m.conv2.register_forward_hook(lambda mod, inp, out: captured.append(out.detach().clone()))
    with torch.no_grad():
        for plane in ("racing", "furtive"):  # first and last metadata plane
            captured.clear()
            m(x, z2.metadata(1, "direct"))
            m(x, z2.metadata(1, plane))
            base, moved = captured
            # conv2 output channels 0..127 are group 1 (metadata + conv1 0..44), 128..255 group 2
            assert not torch.allclose(base[:, :128], moved[:, :128])
            assert torch.equal(base[:, 128:], moved[:, 128:])
    hook.remove()


def test_port_checkpoint_with_net_key_is_loaded(tmp_path):
    src = z2.build_z2color(seed=8)
    for key in ("net", "state_dict"):
        path = tmp_path / (key + ".pt")
        torch.save({key: src.state_dict()}, path)
        loaded = z2.build_z2color(seed=0, weights=path)
        assert torch.equal(loaded.ip2.weight, src.ip2.weight), key


def test_postprocess_of_a_nan_prediction_is_straight_and_stopped():
    out = torch.full((1, 20), float("nan"))
    out[0, 19] = float("inf")
    assert z2.postprocess(out.numpy()) == (49, 49)


def test_pools_as_one_conv_equal_the_two_pools():
    # the optimized GPU pipeline preprocesses with one depthwise conv; it must be the same
    # function as the two average pools (up to float32 rounding) on any frames
    gen = torch.Generator().manual_seed(7)
    pair = torch.randint(0, 256, (2, z2.FRAME_H, z2.FRAME_W, 3), generator=gen, dtype=torch.uint8)
    pooled = torch.full((1, 12, z2.NET_H, z2.NET_W), 7.0)
    conv = pooled.clone()
    z2.preprocess_pair_into(pair, z2.input_slots(pooled))
    z2.preprocess_pair_into(pair, z2.input_slots(conv), z2.pool_twice_weight())
    assert float((conv - pooled).abs().max()) < 1e-6
    assert bool((z2.input_slots(conv)[:, :, 0] == 7.0).all())  # frame t-1 untouched
    # and against the reference preprocessing of the stacked 12 channels
    stacked = z2.preprocess(z2.stack_hwc(pair, pair))
    assert float((z2.input_slots(stacked)[:, :, 1] - z2.input_slots(conv)[:, :, 1]).abs().max()) < 1e-6
