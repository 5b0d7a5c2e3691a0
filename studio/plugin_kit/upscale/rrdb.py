"""RRDBNet, the ESRGAN / Real-ESRGAN generator, written for Studio (imports torch).

Used when spandrel (the kept library for upscaler architectures) cannot be imported: spandrel imports
torchvision, which has no build matching the CPU torch this project installs.  Reads the two state-dict
layouts these files come in: the original ESRGAN one (``model.0.weight``, ``model.1.sub.N.RDB1...``)
and the BasicSR / Real-ESRGAN one (``conv_first``, ``body.N.rdb1...``); Real-ESRGAN's x2 / x1 models
(pixel-unshuffled input, 12 / 48 input channels) too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional


class DenseBlock(nn.Module):  # type: ignore[misc]  # torch is read as Any under mypy (pyproject: follow_imports skip)
    """Five 3x3 convs, each seeing every earlier output (growth ``grow`` channels per conv)."""

    def __init__(self, feats: int, grow: int) -> None:
        super().__init__()
        for i in range(1, 5):
            setattr(self, f"conv{i}", nn.Conv2d(feats + (i - 1) * grow, grow, 3, 1, 1))
        self.conv5 = nn.Conv2d(feats + 4 * grow, feats, 3, 1, 1)
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seen = [x]
        for i in range(1, 5):
            seen.append(self.act(getattr(self, f"conv{i}")(torch.cat(seen, 1))))
        return x + 0.2 * self.conv5(torch.cat(seen, 1))


class RRDB(nn.Module):  # type: ignore[misc]  # torch is read as Any under mypy (pyproject: follow_imports skip)
    def __init__(self, feats: int, grow: int) -> None:
        super().__init__()
        self.rdb1, self.rdb2, self.rdb3 = (DenseBlock(feats, grow) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.2 * self.rdb3(self.rdb2(self.rdb1(x)))


@dataclass(frozen=True)
class Shape:
    in_channels: int
    out_channels: int
    feats: int
    grow: int
    blocks: int
    doublings: int  # nearest-neighbour x2 stages
    unshuffle: int  # pixel-unshuffle factor of the input (Real-ESRGAN x2: 2, x1: 4)

    @property
    def scale(self) -> int:
        return int(2**self.doublings) // self.unshuffle


class RRDBNet(nn.Module):  # type: ignore[misc]  # torch is read as Any under mypy (pyproject: follow_imports skip)
    def __init__(self, shape: Shape) -> None:
        super().__init__()
        self.shape = shape
        f = shape.feats
        self.conv_first = nn.Conv2d(shape.in_channels, f, 3, 1, 1)
        self.body = nn.Sequential(*(RRDB(f, shape.grow) for _ in range(shape.blocks)))
        self.conv_body = nn.Conv2d(f, f, 3, 1, 1)
        for i in range(1, shape.doublings + 1):
            setattr(self, f"conv_up{i}", nn.Conv2d(f, f, 3, 1, 1))
        self.conv_hr = nn.Conv2d(f, f, 3, 1, 1)
        self.conv_last = nn.Conv2d(f, shape.out_channels, 3, 1, 1)
        self.act = nn.LeakyReLU(0.2, inplace=True)

    @property
    def scale(self) -> int:
        return int(self.shape.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.shape.unshuffle > 1:
            x = functional.pixel_unshuffle(x, self.shape.unshuffle)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        for i in range(1, self.shape.doublings + 1):
            doubled = functional.interpolate(feat, scale_factor=2, mode="nearest")
            feat = self.act(getattr(self, f"conv_up{i}")(doubled))
        return self.conv_last(self.act(self.conv_hr(feat)))


_OLD_RDB = re.compile(r"^model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)$")
_OLD_TRUNK = re.compile(r"^model\.1\.sub\.(\d+)\.(weight|bias)$")
_OLD_TOP = re.compile(r"^model\.(\d+)\.(weight|bias)$")


def to_new_layout(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The original ESRGAN key names -> the BasicSR names this module uses (others unchanged)."""
    if "model.0.weight" not in state:
        return dict(state)
    out: dict[str, torch.Tensor] = {}
    tops = sorted({int(m.group(1)) for k in state if (m := _OLD_TOP.match(k))})
    # model.0 = first conv; after the trunk (model.1): the x2 convs, then HR conv and last conv
    names = {tops[0]: "conv_first", tops[-1]: "conv_last", tops[-2]: "conv_hr"}
    for i, index in enumerate(tops[1:-2], start=1):
        names[index] = f"conv_up{i}"
    for key, value in state.items():
        if m := _OLD_RDB.match(key):
            out[f"body.{m.group(1)}.rdb{m.group(2)}.conv{m.group(3)}.{m.group(4)}"] = value
        elif m := _OLD_TRUNK.match(key):
            out[f"conv_body.{m.group(2)}"] = value
        elif (m := _OLD_TOP.match(key)) and int(m.group(1)) in names:
            out[f"{names[int(m.group(1))]}.{m.group(2)}"] = value
        else:
            raise ValueError(f"unexpected key {key!r} in an ESRGAN state dict")
    return out


def is_rrdb(state: Mapping[str, torch.Tensor]) -> bool:
    return "model.0.weight" in state and any(_OLD_RDB.match(k) for k in state) or (
        "conv_first.weight" in state and "body.0.rdb1.conv1.weight" in state)


def shape_of(state: Mapping[str, torch.Tensor]) -> Shape:
    """The network's shape read off a BasicSR-layout state dict."""
    first = state["conv_first.weight"]
    blocks = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("body."))
    doublings = sum(1 for k in state if re.fullmatch(r"conv_up\d+\.weight", k))
    in_channels = int(first.shape[1])
    out_channels = int(state["conv_last.weight"].shape[0])
    unshuffle = {out_channels: 1, out_channels * 4: 2, out_channels * 16: 4}.get(in_channels, 1)
    return Shape(in_channels=in_channels, out_channels=out_channels, feats=int(first.shape[0]),
                 grow=int(state["body.0.rdb1.conv1.weight"].shape[0]), blocks=blocks, doublings=doublings,
                 unshuffle=unshuffle)


def from_state_dict(state: Mapping[str, torch.Tensor]) -> RRDBNet:
    new = to_new_layout(state)
    net = RRDBNet(shape_of(new))
    net.load_state_dict(new, strict=True)
    net.eval()
    return net


__all__ = ["RRDBNet", "Shape", "from_state_dict", "is_rrdb", "shape_of", "to_new_layout"]
