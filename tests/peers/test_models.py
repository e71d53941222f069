"""neurenix.models' backbones give the outputs and gradients of the same networks written in PyTorch (Conv-4 as
nn.Sequential; ResNet-12 as MetaOptNet's ResNet12_embedding; WRN as the reference port S2M2 uses; the text
encoder from torch.nn's layers), in float64 with PyTorch's weights copied in: the state_dict keys, their order
and shapes match too, and after a training step the BatchNorm running statistics agree."""

from __future__ import annotations

import numpy as np
import pytest

import neurenix as nx
from neurenix.models import WRN28_10, Conv4, ResNet12, TransformerEncoderClassifier, WideResNet


def _torch_conv4(torch, c, hidden, ways):
    nn, layers = torch.nn, []
    for i in range(4):
        layers += [nn.Conv2d(c if i == 0 else hidden, hidden, 3, padding=1), nn.BatchNorm2d(hidden), nn.ReLU(),
                   nn.MaxPool2d(2)]
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(hidden, ways))


def _torch_resnet12(torch, channels, avg_pool=True):
    """MetaOptNet's ResNet-12 (models/ResNet12_embedding.py, without dropout): its layout and names."""
    nn = torch.nn

    class BasicBlock(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.relu = nn.LeakyReLU(0.1)
            self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.conv3 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
            self.bn3 = nn.BatchNorm2d(cout)
            self.maxpool = nn.MaxPool2d(2)
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out)) + self.downsample(x)
            return self.maxpool(self.relu(out))

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            cin = 3
            for i, c in enumerate(channels):
                setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(cin, c)))
                cin = c
            self.avgpool = nn.AvgPool2d(5, stride=1)

        def forward(self, x):
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return (self.avgpool(x) if avg_pool else x).flatten(1)

    return ResNet()


def _torch_wrn(torch, depth, k, ways):
    """The reference port's WideResNet (xternalz/WideResNet-pytorch, as S2M2's), global average pooling."""
    nn, F = torch.nn, torch.nn.functional

    class BasicBlock(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.bn1, self.relu1 = nn.BatchNorm2d(cin), nn.ReLU()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
            self.bn2, self.relu2 = nn.BatchNorm2d(cout), nn.ReLU()
            self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
            self.equal = cin == cout
            self.convShortcut = None if self.equal else nn.Conv2d(cin, cout, 1, stride=stride, bias=False)

        def forward(self, x):
            if not self.equal:
                x = self.relu1(self.bn1(x))
                out = x
            else:
                out = self.relu1(self.bn1(x))
            out = self.conv2(self.relu2(self.bn2(self.conv1(out))))
            return (x if self.equal else self.convShortcut(x)) + out

    class NetworkBlock(nn.Module):
        def __init__(self, n, cin, cout, stride):
            super().__init__()
            self.layer = nn.Sequential(*(BasicBlock(cin if i == 0 else cout, cout, stride if i == 0 else 1)
                                         for i in range(n)))

        def forward(self, x):
            return self.layer(x)

    class WideResNet(nn.Module):
        def __init__(self):
            super().__init__()
            n, w = (depth - 4) // 6, [16, 16 * k, 32 * k, 64 * k]
            self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
            self.block1, self.block2 = NetworkBlock(n, w[0], w[1], 1), NetworkBlock(n, w[1], w[2], 2)
            self.block3 = NetworkBlock(n, w[2], w[3], 2)
            self.bn1, self.relu = nn.BatchNorm2d(w[3]), nn.ReLU()
            self.fc = nn.Linear(w[3], ways)

        def forward(self, x):
            out = self.relu(self.bn1(self.block3(self.block2(self.block1(self.conv1(x))))))
            return self.fc(F.avg_pool2d(out, out.shape[2:]).flatten(1))

    return WideResNet()


def _torch_text(torch, vocab, d, heads, layers, ff, ways):
    """Embedding, sinusoidal positions, nn.TransformerEncoder, the mean over tokens that are not padding (0)."""
    nn = torch.nn

    class Text(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(vocab, d, padding_idx=0)
            layer = nn.TransformerEncoderLayer(d, heads, ff, dropout=0.0, batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
            self.fc = nn.Linear(d, ways)

        def forward(self, tokens):
            pos = np.arange(tokens.shape[1])[:, None] * np.exp(-np.log(1e4) * np.arange(0, d, 2) / d)
            enc = torch.zeros(tokens.shape[1], d, dtype=torch.float64)
            enc[:, 0::2], enc[:, 1::2] = torch.tensor(np.sin(pos)), torch.tensor(np.cos(pos))
            pad = tokens == 0
            h = self.encoder(self.embedding(tokens) + enc, src_key_padding_mask=pad)
            keep = (~pad).double().unsqueeze(-1)
            return self.fc((h * keep).sum(1) / keep.sum(1))

    return Text()


RNG = np.random.default_rng(0)
TOKENS = np.array([[5, 3, 9, 1, 0, 0], [2, 2, 7, 4, 8, 6], [11, 0, 0, 0, 0, 0]])
# (id, ours, theirs over torch, input)
CASES = [
    ("conv4", lambda: Conv4(2, 4, 3, image_size=28), lambda t: _torch_conv4(t, 2, 4, 3),
     RNG.standard_normal((3, 2, 28, 28))),
    ("resnet12-84x84", lambda: ResNet12(3, (2, 3, 4, 5)), lambda t: _torch_resnet12(t, (2, 3, 4, 5)),
     RNG.standard_normal((2, 3, 84, 84))),
    ("resnet12-flat", lambda: ResNet12(3, (2, 2, 3, 3), avg_pool=False),
     lambda t: _torch_resnet12(t, (2, 2, 3, 3), avg_pool=False), RNG.standard_normal((2, 3, 32, 32))),
    ("wrn-16-2", lambda: WideResNet(16, 2, out_features=3), lambda t: _torch_wrn(t, 16, 2, 3),
     RNG.standard_normal((2, 3, 12, 12))),
    ("transformer", lambda: TransformerEncoderClassifier(12, 8, 2, 2, 16, dropout=0.0, out_features=3),
     lambda t: _torch_text(t, 12, 8, 2, 2, 16, 3), TOKENS),
]


def _run(lib, model, array):
    x = lib.tensor(array, requires_grad=array.dtype.kind == "f")
    out = model(x)
    loss = (out * lib.tensor(np.random.default_rng(1).standard_normal(tuple(out.shape)))).sum()
    loss.backward()
    return (out.detach().numpy(), None if x.grad is None else x.grad.numpy(),
            {n: p.grad.numpy() for n, p in model.named_parameters()})


@pytest.mark.parametrize("name, make, make_torch, array", CASES, ids=[c[0] for c in CASES])
def test_backbone_matches_pytorch(torch, name, make, make_torch, array):
    theirs, ours = make_torch(torch).double(), make().double()
    state = theirs.state_dict()
    assert list(ours.state_dict()) == list(state)
    ours.load_state_dict({k: nx.tensor(v.numpy()) for k, v in state.items()})
    got, want = _run(nx, ours, array), _run(torch, theirs, array)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-8, atol=1e-10, err_msg="output")
    if want[1] is not None:
        np.testing.assert_allclose(got[1], want[1], rtol=1e-8, atol=1e-10, err_msg="input grad")
    assert got[2].keys() == want[2].keys()
    for n in want[2]:
        np.testing.assert_allclose(got[2][n], want[2][n], rtol=1e-7, atol=1e-10, err_msg=f"grad of {n}")
    # the training pass moved the running statistics alike; in eval mode the outputs agree with them
    for k, v in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[k].numpy(), v.numpy(), rtol=1e-10, atol=1e-12, err_msg=k)
    ours.eval(), theirs.eval()
    x = array[:2]
    with torch.no_grad():
        want_eval = theirs(torch.tensor(x)).numpy()
    np.testing.assert_allclose(ours(nx.tensor(x)).detach().numpy(), want_eval, rtol=1e-8, atol=1e-10)


def test_full_size_parameters_as_the_references(torch):
    """At the papers' widths the references hold our parameter names, shapes and counts (12.4M, 36.5M)."""
    for ours, theirs in ((ResNet12(), _torch_resnet12(torch, (64, 160, 320, 640))),
                         (WRN28_10(out_features=64), _torch_wrn(torch, 28, 10, 64))):
        shapes = {n: tuple(p.shape) for n, p in theirs.named_parameters()}
        assert {n: tuple(p.shape) for n, p in ours.named_parameters()} == shapes
        assert sum(p.numel() for p in theirs.parameters()) == sum(p.numel() for p in ours.parameters())
