"""Z2Color (Zipser 2017, PyTorch port of nets/z2_color.py), its preprocessing and postprocessing.

Layout of the raw input (design.md section 6): 2 time frames x 2 ZED cameras x RGB =
12 uint8 channels of 376x672. Channel order is [left t-1, left t, right t-1, right t],
RGB inside each. The metadata are 6 planes of 13x26, each all 0 or all 1 (racing, caffe,
follow, direct, play, furtive).

The metadata go FIRST in the concatenation before conv2, as in the reference port
(``torch.cat((metadata, x), 1)``): conv2 has groups=2, so its first group sees the 6
metadata planes plus conv1 channels 0..44 and its second group conv1 channels 45..95.
The order changes the function, and weights trained with the port only fit this order.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

FRAME_H, FRAME_W = 376, 672  # ZED VGA
RAW_CHANNELS = 12
NET_H, NET_W = 94, 168  # after two average pools (3, 2, 1)
META_PLANES, META_H, META_W = 6, 13, 26
OUTPUTS = 20  # 10 future steering values, then 10 future motor values
META_NAMES = ("racing", "caffe", "follow", "direct", "play", "furtive")


class Z2Color(nn.Module):
    """The exact 2017 architecture; about 1.58 M parameters."""

    def __init__(self):
        super(Z2Color, self).__init__()
        self.conv1 = nn.Conv2d(RAW_CHANNELS, 96, kernel_size=11, stride=3)
        self.conv1_pool = nn.MaxPool2d(kernel_size=3, stride=2)
        self.conv2 = nn.Conv2d(96 + META_PLANES, 256, kernel_size=3, stride=2, groups=2)
        self.conv2_pool = nn.MaxPool2d(kernel_size=3, stride=2)
        self.ip1 = nn.Linear(2560, 512)
        self.ip2 = nn.Linear(512, OUTPUTS)

    def forward(self, x, meta):
        # x: (B, 12, 94, 168) float in [-0.5, 0.5]; meta: (B, 6, 13, 26) of 0/1
        x = self.conv1_pool(F.relu(self.conv1(x)))
        x = torch.cat((meta, x), 1)  # metadata first, as the port: see the module docstring
        x = self.conv2_pool(F.relu(self.conv2(x)))
        x = x.reshape(x.size(0), -1)
        x = F.relu(self.ip1(x))
        return self.ip2(x)


def build_z2color(seed=0, weights=None):
    # type: (int, object) -> Z2Color
    """Deterministic seeded weights, or a state dict loaded from ``weights`` (a path).

    Accepted files: a bare state dict, ``{'state_dict': sd}``, or the port's checkpoints
    ``{'net': sd}`` (its scripts/train_to_infer.py saves ``newweights['net']``).
    """
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    model = Z2Color()
    torch.random.set_rng_state(gen_state)
    if weights is not None:
        state = torch.load(str(weights), map_location="cpu")
        if isinstance(state, dict):
            for key in ("state_dict", "net"):
                if isinstance(state.get(key), dict):
                    state = state[key]
                    break
        model.load_state_dict(state)
    return model.eval()


def param_count(model):
    # type: (nn.Module) -> int
    return sum(p.numel() for p in model.parameters())


def preprocess(raw):
    # type: (torch.Tensor) -> torch.Tensor
    """uint8 (B, 12, 376, 672) -> float (B, 12, 94, 168): average-pool twice, scale to [-0.5, 0.5].

    Runs in the dtype of the float conversion chosen by the caller's device: the pools
    are done in float32 so that fp16 backends see the same pooled values as fp32.
    """
    x = raw.float()
    x = F.avg_pool2d(x, kernel_size=3, stride=2, padding=1)
    x = F.avg_pool2d(x, kernel_size=3, stride=2, padding=1)
    return x * (1.0 / 255.0) - 0.5


def input_slots(x):
    # type: (torch.Tensor) -> torch.Tensor
    """The net input (1, 12, 94, 168) viewed as (1, camera, time, RGB, 94, 168)."""
    return x.view(x.shape[0], 2, 2, 3, x.shape[2], x.shape[3])


def shift_frames(slots):
    # type: (torch.Tensor) -> None
    """Stacking at network resolution: frame t's preprocessed pair becomes frame t-1's."""
    slots[:, :, 0].copy_(slots[:, :, 1])


def pool_twice_weight(device="cpu"):
    # type: (object) -> torch.Tensor
    """Both average pools (3, 2, 1; zero padding counted) and the /255 as ONE depthwise conv.

    Per dimension, pooling twice sums the inputs at offsets -3..3 around 4j with weights
    1,1,2,1,2,1,1 (over 3 x 3); the padding of either pool only ever meets the zero padding
    of the input, so a 7x7 kernel, stride 4, padding 3 gives the same 94x168 values (up to
    float32 rounding). Weight shape (3, 1, 7, 7): one plane per RGB channel (groups=3).
    """
    k = torch.tensor([1.0, 1.0, 2.0, 1.0, 2.0, 1.0, 1.0])
    w = torch.ger(k, k) / (81.0 * 255.0)
    return w.expand(3, 1, 7, 7).contiguous().to(device)


def preprocess_pair_into(pair_hwc, slots, pool_weight=None):
    # type: (torch.Tensor, torch.Tensor, object) -> None
    """Preprocess only the new stereo pair (2, H, W, 3) uint8 into the time-t slots.

    Pooling is per channel, so pooling the new pair and reusing the last one equals pooling
    the stacked 12 channels (what ``preprocess`` does), at half the work and with no
    full-resolution stacking. The second pool's divisor folds in the /255. With
    ``pool_weight`` (from ``pool_twice_weight``) both pools run as one conv: one GPU kernel
    fewer per frame.
    """
    x = pair_hwc.permute(0, 3, 1, 2).float()
    if pool_weight is not None:
        x = F.conv2d(x, pool_weight, stride=4, padding=3, groups=3)
        torch.sub(x.unsqueeze(0), 0.5, out=slots[:, :, 1])
        return
    x = F.avg_pool2d(x, kernel_size=3, stride=2, padding=1)
    x = F.avg_pool2d(x, kernel_size=3, stride=2, padding=1, divisor_override=9 * 255)
    torch.sub(x.unsqueeze(0), 0.5, out=slots[:, :, 1])


def stack_hwc(prev_pair, cur_pair):
    # type: (torch.Tensor, torch.Tensor) -> torch.Tensor
    """Two stereo pairs of HWC uint8 frames (2, H, W, 3) -> (1, 12, H, W) uint8 in the channel order above."""
    # [L(t-1), L(t), R(t-1), R(t)], each HWC -> CHW
    frames = torch.stack((prev_pair[0], cur_pair[0], prev_pair[1], cur_pair[1]), 0)  # (4, H, W, 3)
    return frames.permute(0, 3, 1, 2).reshape(1, RAW_CHANNELS, frames.shape[1], frames.shape[2])


def metadata(batch=1, mode="direct", device="cpu", dtype=torch.float32):
    # type: (int, str, object, torch.dtype) -> torch.Tensor
    """The 6 metadata planes with one behavioural mode set (all ones), the rest zero."""
    meta = torch.zeros(batch, META_PLANES, META_H, META_W, device=device, dtype=dtype)
    meta[:, META_NAMES.index(mode)] = 1.0
    return meta


def random_meta(batch, generator, device="cpu", dtype=torch.float32):
    # type: (int, torch.Generator, object, torch.dtype) -> torch.Tensor
    """Random all-0/all-1 planes, as the car's modes would give."""
    bits = torch.randint(0, 2, (batch, META_PLANES, 1, 1), generator=generator).to(dtype)
    return bits.expand(batch, META_PLANES, META_H, META_W).contiguous().to(device)


def postprocess(out):
    # type: (object) -> tuple
    """Steer and motor commands (0..99, 49 = straight / stop, as the car's Arduino takes them).

    The net predicts 10 future values of each; the car drove on the latest prediction step
    (index 9 of steering, 19 of motor), offset by 0.5 and scaled to percent.
    """
    return _command(float(out[0][9])), _command(float(out[0][19]))


def _command(value):
    # type: (float) -> int
    if value != value or value in (float("inf"), float("-inf")):
        return 49  # a NaN/inf prediction: straight and stopped (the correctness check fails the backend)
    return min(99, max(0, round((value + 0.5) * 100.0)))
