"""Stand-ins for the third-party data and model libraries the ported scripts in examples/ import.

The ports change only their import lines: where an original imports torchmeta, learn2learn's ``vision``/``data``
packages or torchvision, the port imports the same names from here instead. Nothing here is downloaded:

* torchmeta: ``Sinusoid`` and ``BatchMetaDataLoader`` (sine-wave regression tasks, torchmeta's distribution:
  amplitude in [0.1, 5], phase in [0, pi], inputs in [-5, 5]).
* learn2learn: ``learn2learn`` is a namespace whose ``algorithms`` is ``neurenix.meta.algorithms`` itself (neurenix's
  MAML and MetaSGD); its ``vision`` (``benchmarks.get_tasksets('omniglot')``, ``models.OmniglotFC``,
  ``models.CNN4Backbone``, ``datasets.MiniImagenet``) and ``data`` (``MetaDataset``, ``Taskset``) and the task
  transforms ``NWays``, ``KShots``, ``LoadData`` and ``RemapLabels`` are stand-ins here. miniImageNet is read from
  learn2learn's pickles (``<root>/mini-imagenet-cache-<mode>.pkl``) when they are there; Omniglot is synthetic.
* torchvision: ``datasets.MNIST`` (torchvision's raw files under ``<root>/MNIST/raw`` when they are there) and
  ``transforms.Compose/ToTensor/Normalize``.

Where a real set is absent, synthetic data of the same shapes stands in. With the environment variable
``NEURENIX_EXAMPLES_QUICK=1`` (set by tests/examples), the sets are small, so that a script runs in seconds with
its own command line: MNIST has 256 training and 200 test images, miniImageNet's images are 16x16 and a fixed-size
taskset has at most 2 tasks.
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from types import SimpleNamespace

import numpy as np

import neurenix as nx
import neurenix.meta as meta
from neurenix import nn

QUICK = os.environ.get("NEURENIX_EXAMPLES_QUICK", "") not in ("", "0")


# --- torchmeta ---------------------------------------------------------------------------------------------------


class Sinusoid:
    """torchmeta.toy.Sinusoid's tasks: ``num_tasks`` sine waves, ``num_samples_per_task`` (x, y) pairs each."""

    def __init__(self, num_samples_per_task, num_tasks=1000000, seed=0):
        self.num_samples_per_task, self.num_tasks = num_samples_per_task, num_tasks
        self.rng = np.random.default_rng(seed)

    def __len__(self):
        return self.num_tasks

    def sample(self, n):
        amplitude = self.rng.uniform(0.1, 5.0, size=(n, 1, 1))
        phase = self.rng.uniform(0, np.pi, size=(n, 1, 1))
        x = self.rng.uniform(-5.0, 5.0, size=(n, self.num_samples_per_task, 1))
        return [nx.tensor(x), nx.tensor(amplitude * np.sin(x - phase))]


def BatchMetaDataLoader(dataset, batch_size):  # noqa: N802  (torchmeta's name)
    """Batches of ``batch_size`` tasks: ``[inputs, targets]``, each ``(tasks, samples, 1)``."""
    for start in range(0, len(dataset), batch_size):
        yield dataset.sample(min(batch_size, len(dataset) - start))


# --- learn2learn: models -----------------------------------------------------------------------------------------


def LinearBlock(input_size, output_size):  # noqa: N802  (learn2learn's name)
    return nn.Sequential(nn.Linear(input_size, output_size), nn.BatchNorm1d(output_size, momentum=0.999), nn.ReLU())


class OmniglotFC(nn.Module):
    """learn2learn.vision.models.OmniglotFC: the same layers (256-128-64-64 linear blocks, then a classifier)."""

    def __init__(self, input_size, output_size, sizes=None):
        super().__init__()
        sizes = list(sizes or (256, 128, 64, 64))
        blocks = [LinearBlock(a, b) for a, b in zip([input_size, *sizes[:-1]], sizes)]
        self.features = nn.Sequential(nn.Flatten(), nn.Sequential(*blocks))
        self.classifier = nn.Linear(sizes[-1], output_size)

    def forward(self, x):
        return self.classifier(self.features(x))


def ConvBlock(in_channels, out_channels, max_pool=True):  # noqa: N802  (learn2learn's name)
    layers = [nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels), nn.ReLU()]
    return nn.Sequential(*layers, nn.MaxPool2d(2)) if max_pool else nn.Sequential(*layers)


def CNN4Backbone(hidden_size=64, layers=4, channels=3, max_pool=True):  # noqa: N802  (learn2learn's name)
    """learn2learn.vision.models.CNN4Backbone: four 3x3 conv blocks (batch norm, ReLU, 2x2 max pooling)."""
    return nn.Sequential(ConvBlock(channels, hidden_size, max_pool),
                         *(ConvBlock(hidden_size, hidden_size, max_pool) for _ in range(layers - 1)))


# --- learn2learn: data -------------------------------------------------------------------------------------------


class SyntheticOmniglot:
    """Tasks of ``ways`` classes drawn from ``classes`` random stroke templates, ``samples`` noisy 1x28x28 images
    each, labels 0..ways-1 in class order (as get_tasksets' tasks come)."""

    def __init__(self, ways, samples, classes, seed):
        self.ways, self.samples = ways, samples
        self.rng = np.random.default_rng(seed)
        self.templates = (self.rng.random((classes, 1, 28, 28)) < 0.15).astype(np.float32)

    def sample(self):
        chosen = self.rng.choice(len(self.templates), self.ways, replace=False)
        data = np.repeat(self.templates[chosen], self.samples, axis=0)
        data = np.clip(data + 0.3 * self.rng.standard_normal(data.shape), 0, 1).astype(np.float32)
        labels = np.repeat(np.arange(self.ways), self.samples)
        return nx.from_numpy(data), nx.from_numpy(labels)


def get_tasksets(name, train_ways=5, train_samples=10, test_ways=5, test_samples=10, num_tasks=-1, root='~/data',
                 **kwargs):
    """learn2learn.vision.benchmarks.get_tasksets, for 'omniglot' only: ``.train``, ``.validation`` and ``.test``,
    each with ``.sample()`` giving ``(data, labels)``. Omniglot's splits have 1100/100/423 classes; the synthetic
    stand-in has 64/16/20."""
    if name != 'omniglot':
        raise ValueError(f"the stand-in get_tasksets has 'omniglot' only, not {name!r}")
    return SimpleNamespace(train=SyntheticOmniglot(train_ways, train_samples, 64, seed=1),
                           validation=SyntheticOmniglot(test_ways, test_samples, 16, seed=2),
                           test=SyntheticOmniglot(test_ways, test_samples, 20, seed=3))


class MiniImagenet:
    """learn2learn.vision.datasets.MiniImagenet: ``dataset[i]`` is ``(image 3x84x84 float, label)``. Read from
    learn2learn's pickle ``<root>/mini-imagenet-cache-<mode>.pkl`` when it is there (nothing is downloaded);
    otherwise 64/16/20 classes (train/validation/test) of 600 synthetic images each (colour templates plus noise,
    made when read), 16x16 under NEURENIX_EXAMPLES_QUICK."""

    CLASSES = {'train': 64, 'validation': 16, 'test': 20}  # noqa: RUF012

    def __init__(self, root, mode='train', transform=None, target_transform=None, download=False):
        path = os.path.join(os.path.expanduser(root), f'mini-imagenet-cache-{mode}.pkl')
        self.transform, self.target_transform = transform, target_transform
        self.images = None
        if os.path.exists(path):
            with open(path, 'rb') as f:
                cache = pickle.load(f)
            self.images = cache['image_data']  # (N, 84, 84, 3) uint8
            self.labels = np.zeros(len(self.images), dtype=np.int64)
            for label, indices in enumerate(cache['class_dict'].values()):
                self.labels[indices] = label
        else:
            size, per_class = (16, 40) if QUICK else (84, 600)
            classes = self.CLASSES[mode]
            self.templates = np.random.default_rng(len(mode)).random((classes, 3, size, size)).astype(np.float32)
            self.labels = np.repeat(np.arange(classes), per_class)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        if self.images is not None:
            image = self.images[index].transpose(2, 0, 1).astype(np.float32)
        else:
            noise = np.random.default_rng(index).standard_normal(self.templates.shape[1:])
            image = (self.templates[self.labels[index]] + 0.5 * noise).astype(np.float32)
        image, label = nx.from_numpy(image), int(self.labels[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return image, label


class MetaDataset:
    """learn2learn.data.MetaDataset: a dataset with its labels indexed (``labels_to_indices``, ``labels``)."""

    def __init__(self, dataset):
        self.dataset = dataset
        labels = getattr(dataset, 'labels', None)
        if labels is None:
            labels = [dataset[i][1] for i in range(len(dataset))]
        self.labels_to_indices = {}
        for index, label in enumerate(np.asarray(labels).tolist()):
            self.labels_to_indices.setdefault(label, []).append(index)
        self.labels = list(self.labels_to_indices)

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        return self.dataset[index]


class NWays:
    """A task transform: the task keeps the samples of ``n`` classes drawn at random."""

    def __init__(self, dataset, n=2):
        self.dataset, self.n = dataset, n

    def __call__(self, description, rng):
        if description is None:
            description = range(len(self.dataset))
        by_label = {}
        for index in description:
            by_label.setdefault(self._label(index), []).append(index)
        chosen = rng.choice(len(by_label), self.n, replace=False)
        labels = list(by_label)
        return [i for c in chosen for i in by_label[labels[c]]]

    def _label(self, index):
        if not hasattr(self, '_labels'):
            self._labels = {i: label for label, ids in self.dataset.labels_to_indices.items() for i in ids}
        return self._labels[index]


class KShots(NWays):
    """A task transform: ``k`` samples of each class in the task (without replacement where there are enough)."""

    def __init__(self, dataset, k=1, replacement=False):
        self.dataset, self.k, self.replacement = dataset, k, replacement

    def __call__(self, description, rng):
        if description is None:
            description = range(len(self.dataset))
        by_label = {}
        for index in description:
            by_label.setdefault(self._label(index), []).append(index)
        return [i for ids in by_label.values()
                for i in rng.choice(ids, self.k, replace=self.replacement or len(ids) < self.k).tolist()]


class LoadData:
    """A task transform: the task's indices become its ``(data, label)`` samples."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __call__(self, description, rng):
        return [self.dataset[i] for i in description]


class RemapLabels:
    """A task transform: the task's labels become 0..ways-1, in the order they first appear."""

    def __init__(self, dataset, shuffle=True):
        self.dataset = dataset

    def __call__(self, samples, rng):
        mapping = {}
        for _, label in samples:
            mapping.setdefault(label, len(mapping))
        return [(data, mapping[label]) for data, label in samples]


class Taskset:
    """learn2learn.data.Taskset: ``taskset[i]`` is task i, ``[data (samples, ...), labels (samples,)]``, made by
    ``task_transforms`` in turn. With ``num_tasks`` tasks, task i is always the same; with ``num_tasks=-1``, each
    read draws a new task (and ``len`` is 1, so that ``next(iter(DataLoader(taskset)))`` draws one task)."""

    def __init__(self, dataset, task_transforms=None, num_tasks=-1, task_collate=None):
        self.dataset, self.task_transforms = dataset, list(task_transforms or [])
        self.num_tasks = min(num_tasks, 2) if QUICK and num_tasks > 0 else num_tasks
        self.rng = np.random.default_rng(0)

    def __len__(self):
        return self.num_tasks if self.num_tasks > 0 else 1

    def __getitem__(self, index):
        rng = np.random.default_rng(index) if self.num_tasks > 0 else self.rng
        task = None
        for transform in self.task_transforms:
            task = transform(task, rng)
        return [nx.stack([data for data, _ in task], 0), nx.tensor([label for _, label in task])]


learn2learn = SimpleNamespace(  # what the ports take as `l2l`
    algorithms=meta.algorithms,  # neurenix.meta.algorithms: MAML, MetaSGD
    vision=SimpleNamespace(benchmarks=SimpleNamespace(get_tasksets=get_tasksets),
                           models=SimpleNamespace(OmniglotFC=OmniglotFC, CNN4Backbone=CNN4Backbone),
                           datasets=SimpleNamespace(MiniImagenet=MiniImagenet)),
    data=SimpleNamespace(MetaDataset=MetaDataset, Taskset=Taskset),
)


# --- torchvision -------------------------------------------------------------------------------------------------


def _read_idx(path):  # torchvision's MNIST reads these files (the IDX format) the same way
    with (gzip.open if path.endswith('.gz') else open)(path, 'rb') as f:
        data = f.read()
    ndim = data[3]
    shape = struct.unpack('>' + 'I' * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _synthetic_mnist(train, size):
    """10 random smooth 28x28 templates, one per class; each image is its class's template plus noise, as uint8."""
    templates = np.random.default_rng(0).random((10, 7, 7)).repeat(4, axis=1).repeat(4, axis=2)
    rng = np.random.default_rng(1 if train else 2)
    targets = rng.integers(0, 10, size)
    images = templates[targets] + 0.3 * rng.standard_normal((size, 28, 28))
    return (np.clip(images, 0, 1) * 255).astype(np.uint8), targets


class MNIST:
    """torchvision.datasets.MNIST: ``dataset[i]`` is ``(transform(image), target)``, images uint8 28x28. Read from
    torchvision's raw files under ``<root>/MNIST/raw`` when they are there (``download`` is not done); otherwise a
    synthetic set of the same shape (60000/10000 images; 256/200 under NEURENIX_EXAMPLES_QUICK)."""

    def __init__(self, root, train=True, transform=None, target_transform=None, download=False):
        split = 'train' if train else 't10k'
        raw = os.path.join(root, 'MNIST', 'raw', split + '-{}-idx{}-ubyte')
        files = [raw.format('images', 3), raw.format('labels', 1)]
        files = [p if os.path.exists(p) else p + '.gz' for p in files]
        size = (256 if train else 200) if QUICK else None
        if all(os.path.exists(p) for p in files):
            self.data, self.targets = _read_idx(files[0])[:size], _read_idx(files[1]).astype(np.int64)[:size]
        else:
            self.data, self.targets = _synthetic_mnist(train, size or (60000 if train else 10000))
        self.transform, self.target_transform = transform, target_transform

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, index):
        image, target = self.data[index], int(self.targets[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target


class Compose:
    def __init__(self, transforms):
        self.transforms = transforms

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x


class ToTensor:
    """An HxW or HxWxC uint8 image to a CxHxW float32 tensor in [0, 1]."""

    def __call__(self, image):
        image = np.asarray(image)
        image = image[None] if image.ndim == 2 else image.transpose(2, 0, 1)
        return nx.from_numpy(np.ascontiguousarray(image, dtype=np.float32) / 255)


class Normalize:
    """(x - mean) / std, channel by channel."""

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, dtype=np.float32).reshape(-1, 1, 1)
        self.std = np.asarray(std, dtype=np.float32).reshape(-1, 1, 1)

    def __call__(self, x):
        return nx.from_numpy(((x.numpy() - self.mean) / self.std).astype(np.float32))


datasets = SimpleNamespace(MNIST=MNIST)  # torchvision.datasets
transforms = SimpleNamespace(Compose=Compose, ToTensor=ToTensor, Normalize=Normalize)  # torchvision.transforms
