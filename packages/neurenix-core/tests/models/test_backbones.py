"""neurenix.models' backbones: shapes, parameter counts and names, a forward/backward pass at small widths, and
the task axis (``batched_call`` with per-task weights equals a loop of ``functional_call``, values and gradients)."""

import numpy as np
import pytest

import neurenix as nx
from neurenix import nn
from neurenix.func import batched_call
from neurenix.models import WRN28_10, Conv4, ResNet12, TransformerEncoderClassifier, WideResNet, sinusoidal_positions
from task_helpers import looped, task_params

T = 2


def _count(model) -> int:
    return sum(p.numel() for p in model.parameters())


# (backbone at test size, input rows (tasks, rows, ...) as a function of T, output features)
TINY = {
    "conv4": (lambda: Conv4(2, 4, 3, image_size=16), lambda: nx.randn(T, 3, 2, 16, 16, dtype=nx.float64), 3),
    "conv4-embedding": (lambda: Conv4(1, 3, blocks=2, image_size=8), lambda: nx.randn(T, 3, 1, 8, 8,
                                                                                       dtype=nx.float64), 12),
    "resnet12": (lambda: ResNet12(3, (2, 3, 3, 4)), lambda: nx.randn(T, 3, 3, 16, 16, dtype=nx.float64), 4),
    "resnet12-head": (lambda: ResNet12(1, (2, 2, 3, 3), out_features=5), lambda: nx.randn(T, 2, 1, 16, 16,
                                                                                          dtype=nx.float64), 5),
    "wrn": (lambda: WideResNet(10, 1, out_features=3), lambda: nx.randn(T, 3, 3, 8, 8, dtype=nx.float64), 3),
    "transformer": (lambda: TransformerEncoderClassifier(11, 8, 2, 2, 16, dropout=0.0),
                    lambda: nx.tensor([[[1, 2, 3, 0], [4, 5, 0, 0], [6, 7, 8, 9]]] * T), 8),
}


def _setup(name: str, per_task: bool):
    nx.manual_seed(0)
    make, inputs, _ = TINY[name]
    model = make().double()
    x = inputs()
    if name == "transformer":  # distinct sequences per task
        x = (x + nx.arange(T).reshape(T, 1, 1) * (x > 0).long()) % 11
    return model, task_params(model, T if per_task else None), x


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("per_task", [True, False], ids=["per-task", "shared"])
@pytest.mark.parametrize("name", TINY)
def test_batched_call_equals_looped_functional_call(name, per_task, train):
    model, params, x = _setup(name, per_task)
    model.train(train)
    out = batched_call(model, params, x)
    assert out.shape == (T, x.shape[1], TINY[name][2])
    np.testing.assert_allclose(out.numpy(), looped(model, params, x, per_task=per_task).numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", TINY)
def test_batched_gradients_of_per_task_weights_equal_looped(name):
    """What MAML's meta-gradient needs: per-task weights in every conv, norm and linear layer get the loop's."""
    model, params, x = _setup(name, per_task=True)
    names = list(params)
    leaves = [params[n].detach().requires_grad_() for n in names]
    got = nx.autograd.grad((batched_call(model, dict(zip(names, leaves)), x) ** 2).sum(), leaves)
    want = nx.autograd.grad((looped(model, dict(zip(names, leaves)), x, per_task=True) ** 2).sum(), leaves)
    for n, a, b in zip(names, got, want):
        assert np.abs(b.numpy()).max() > 0 or n.endswith("bias") or "embedding" in n, n
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9, atol=1e-11, err_msg=n)


@pytest.mark.parametrize("name", TINY)
def test_forward_backward_reaches_every_parameter(name):
    model, _, x = _setup(name, per_task=False)
    out = model(x[0])
    assert out.shape == (x.shape[1], model.out_features) and np.isfinite(out.numpy()).all()
    (out ** 2).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not np.abs(p.grad.numpy()).any()]
    assert not missing, missing


def test_parameter_counts_of_the_papers_backbones():
    """The published sizes: ResNet-12 (64, 160, 320, 640) about 12.4M, WRN-28-10 about 36.5M (36.48M without a
    classifier), Conv-4 of 64 channels 113,088 on RGB (MAML's miniImageNet network has 32)."""
    assert _count(ResNet12()) == 12_424_320
    assert _count(WRN28_10()) == _count(WideResNet()) == 36_472_784
    assert _count(WRN28_10(out_features=64)) == 36_472_784 + 640 * 64 + 64
    assert _count(Conv4()) == 113_088
    assert _count(Conv4(3, 32, 5)) == 3 * 32 * 9 + 3 * 32 * 32 * 9 + 4 * 32 * 3 + 32 * 25 * 5 + 5
    assert ResNet12().out_features == 640 and WRN28_10().out_features == 640 and Conv4().out_features == 1600
    assert ResNet12(avg_pool=False).out_features is None


def test_conv4_is_the_benchmarks_flat_sequential():
    """Same layers, order, names and initial values under one seed as the Sequential bench/ and PyTorch build."""
    def by_hand(c, hidden, ways):
        layers = []
        for i in range(4):
            layers += [nn.Conv2d(c if i == 0 else hidden, hidden, 3, padding=1), nn.BatchNorm2d(hidden), nn.ReLU(),
                       nn.MaxPool2d(2)]
        return nn.Sequential(*layers, nn.Flatten(), nn.Linear(hidden, ways))

    nx.manual_seed(3)
    ours = Conv4(1, 8, 5, image_size=28)
    nx.manual_seed(3)
    theirs = by_hand(1, 8, 5)
    assert [type(m) for m in ours] == [type(m) for m in theirs]
    a, b = ours.state_dict(), theirs.state_dict()
    assert list(a) == list(b) and "17.weight" in a
    for k in a:
        np.testing.assert_array_equal(a[k].numpy(), b[k].numpy(), err_msg=k)
    x = nx.randn(4, 1, 28, 28)
    np.testing.assert_array_equal(ours(x).numpy(), theirs(x).numpy())


def test_resnet12_names_and_regularisers_as_metaoptnet():
    model = ResNet12(channels=(2, 3, 4, 5), drop_rate=0.1, dropblock_size=3)
    names = [n for n, _ in model.named_parameters()][:9]
    assert names == ["layer1.0.conv1.weight", "layer1.0.bn1.weight", "layer1.0.bn1.bias", "layer1.0.conv2.weight",
                     "layer1.0.bn2.weight", "layer1.0.bn2.bias", "layer1.0.conv3.weight", "layer1.0.bn3.weight",
                     "layer1.0.bn3.bias"]
    assert "layer4.0.downsample.0.weight" in dict(model.named_parameters())
    drops = [layer[0].drop for layer in (model.layer1, model.layer2, model.layer3, model.layer4)]
    assert [type(d).__name__ for d in drops] == ["Dropout", "Dropout", "DropBlock2d", "DropBlock2d"]
    assert drops[3].block_size == 3 and drops[0].p == 0.1
    assert type(ResNet12().layer1[0].drop) is nn.Identity
    # MetaOptNet's initialisation: Kaiming normal, fan out, gain sqrt(2) (slope 0)
    w = ResNet12(channels=(64, 160, 320, 640)).layer3[0].conv2.weight.numpy()
    assert np.std(w) == pytest.approx(np.sqrt(2 / (320 * 9)), rel=0.01)


def test_resnet12_flattened_map_and_dropblock_in_training():
    nx.manual_seed(0)
    model = ResNet12(1, (2, 2, 2, 3), avg_pool=False)
    assert model(nx.randn(2, 1, 32, 32)).shape == (2, 3 * 2 * 2)
    drop = ResNet12(1, (2, 2, 2, 3), drop_rate=0.5, dropblock_size=2)
    x = nx.randn(2, 1, 32, 32)
    a, b = drop(x), drop(x)  # a new DropBlock mask per call in training; none in eval
    assert not np.allclose(a.numpy(), b.numpy())
    drop.eval()
    np.testing.assert_array_equal(drop(x).numpy(), drop(x).numpy())


def test_wide_resnet_blocks_and_names_as_the_reference():
    model = WideResNet(16, 2)  # n = 2 blocks per group, widths 32, 64, 128
    groups = [model.block1.layer, model.block2.layer, model.block3.layer]
    assert [len(g) for g in groups] == [2, 2, 2]
    assert [g[0].convShortcut is not None for g in groups] == [True, True, True]
    assert all(g[1].convShortcut is None for g in groups)
    assert [g[0].conv1.stride for g in groups] == [(1, 1), (2, 2), (2, 2)]
    names = list(dict(model.named_parameters()))
    assert names[:4] == ["conv1.weight", "block1.layer.0.bn1.weight", "block1.layer.0.bn1.bias",
                         "block1.layer.0.conv1.weight"]
    assert names[-2:] == ["bn1.weight", "bn1.bias"] and "block2.layer.0.convShortcut.weight" in names
    assert model(nx.randn(2, 3, 12, 12)).shape == (2, 128)
    with pytest.raises(ValueError, match="6n \\+ 4"):
        WideResNet(20)


def test_transformer_pools_over_tokens_that_are_not_padding():
    nx.manual_seed(0)
    model = TransformerEncoderClassifier(10, 8, 2, 1, 16, dropout=0.0).double().eval()
    short, padded = nx.tensor([[3, 4, 5]]), nx.tensor([[3, 4, 5, 0, 0]])
    np.testing.assert_allclose(model(short).numpy(), model(padded).numpy(), rtol=1e-10, atol=1e-12)
    first = TransformerEncoderClassifier(10, 8, 2, 1, 16, dropout=0.0, pooling="first", padding_idx=None).eval()
    assert first(nx.tensor([[1, 2], [3, 4]])).shape == (2, 8)
    pos = sinusoidal_positions(6, 5)
    assert pos.shape == (6, 5) and pos[0, 1] == 1.0 and pos[1, 0] == pytest.approx(np.sin(1.0))
    assert list(model.state_dict()) == list(dict(model.named_parameters()))  # positions are no state
    with pytest.raises(nx.ShapeError, match=r"\(N, S\)"):
        model(nx.tensor([1, 2, 3]))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="four widths"):
        ResNet12(channels=(64, 160, 320))
    with pytest.raises(ValueError, match="needs avg_pool=True"):
        ResNet12(avg_pool=False, out_features=5)
    with pytest.raises(ValueError, match="halve a 8 image to nothing"):
        Conv4(1, 4, 5, image_size=8)
    with pytest.raises(ValueError, match="pooling"):
        TransformerEncoderClassifier(10, pooling="max")


@pytest.mark.parametrize("name", ["resnet12-dropblock", "transformer-dropout"])
def test_compiled_training_step_replays_eager_values(name):
    """Under neurenix.compile, DropBlock's and dropout's masks are drawn afresh at every replay, in eager's order,
    and the text encoder's positions follow the input: a compiled step gives eager's losses."""
    def losses(compiled: bool) -> list[float]:
        nx.manual_seed(0)
        if name == "resnet12-dropblock":
            model, x = ResNet12(1, (2, 2, 3, 3), drop_rate=0.3, dropblock_size=2), nx.randn(4, 1, 32, 32)
        else:
            model, x = TransformerEncoderClassifier(20, 8, 2, 1, 16, dropout=0.3), nx.randint(1, 20, (4, 6))
        optimizer = nx.optim.SGD(model.parameters(), lr=0.1)

        def step(model, optimizer, x):
            optimizer.zero_grad()
            loss = (model(x) ** 2).mean()
            loss.backward()
            optimizer.step()
            return loss.detach()

        run = nx.compile(step) if compiled else step
        out = [run(model, optimizer, x).item() for _ in range(4)]
        assert not compiled or run.stats["replays"] >= 2
        return out

    assert losses(True) == losses(False)
