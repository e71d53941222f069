#!/usr/bin/env python3
# neurenix: learn2learn's code style is kept as it was, for a line-for-line port
# ruff: noqa: UP032, SIM113, B007

"""
neurenix: ported from learn2learn's examples/vision/protonet_miniimagenet.py (MIT license, learnables/learn2learn).
Every change is marked with a "neurenix:" comment. miniImageNet is not downloaded: a synthetic stand-in of the same
shape (3x84x84 images by default) replaces l2l's datasets, task transforms and DataLoader, and CNN4Backbone is
written out below. `python examples/protonet_miniimagenet.py --quick` runs one short epoch on small images.
"""

import argparse

import numpy as np

import neurenix as torch  # neurenix: was `import torch`; the calls below are the same names
import neurenix.nn as nn  # neurenix: was `import torch.nn as nn`
import neurenix.nn.functional as F  # neurenix: was `import torch.nn.functional as F`


class SyntheticTasks:  # neurenix: stands in for l2l.data.Taskset(MiniImagenet, [NWays, KShots, LoadData, RemapLabels])
    """Tasks of ``ways`` classes (random colour templates), ``samples`` noisy images each, in shuffled order."""

    def __init__(self, ways, samples, classes, image_size, num_tasks, seed):
        self.ways, self.samples, self.num_tasks = ways, samples, num_tasks
        self.rng = np.random.default_rng(seed)
        self.templates = self.rng.random((classes, 3, image_size, image_size)).astype(np.float32)

    def __iter__(self):  # neurenix: what DataLoader(taskset, shuffle=True) yields: a batch of one task
        for _ in range(self.num_tasks):
            chosen = self.rng.choice(len(self.templates), self.ways, replace=False)
            labels = np.repeat(np.arange(self.ways), self.samples)
            order = self.rng.permutation(len(labels))
            data = self.templates[chosen][labels[order]]
            data = (data + 0.5 * self.rng.standard_normal(data.shape)).astype(np.float32)
            yield torch.from_numpy(data[None]), torch.from_numpy(labels[order][None])


def ConvBlock(in_channels, out_channels):  # noqa: N802  (neurenix: l2l.vision.models' block, written out)
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels),
                         nn.ReLU(), nn.MaxPool2d(2))


def CNN4Backbone(hidden_size=64, channels=3, max_pool=True):  # noqa: N802  (neurenix: l2l.vision.models', written out)
    return nn.Sequential(ConvBlock(channels, hidden_size), *(ConvBlock(hidden_size, hidden_size) for _ in range(3)))


def pairwise_distances_logits(a, b):
    n = a.shape[0]
    m = b.shape[0]
    logits = -((a.unsqueeze(1).expand(n, m, -1) -
                b.unsqueeze(0).expand(n, m, -1))**2).sum(dim=2)
    return logits


def accuracy(predictions, targets):
    predictions = predictions.argmax(dim=1).view(targets.shape)
    return (predictions == targets).sum().float() / targets.size(0)


class Convnet(nn.Module):

    def __init__(self, x_dim=3, hid_dim=64, z_dim=64):
        super().__init__()
        self.encoder = CNN4Backbone(  # neurenix: was l2l.vision.models.CNN4Backbone
            hidden_size=hid_dim,
            channels=x_dim,
            max_pool=True,
        )
        self.out_channels = 1600

    def forward(self, x):
        x = self.encoder(x)
        return x.view(x.size(0), -1)


def fast_adapt(model, batch, ways, shot, query_num, metric=None, device=None):
    if metric is None:
        metric = pairwise_distances_logits
    if device is None:
        device = model.device()
    data, labels = batch
    data = data.to(device)
    labels = labels.to(device)
    n_items = shot * ways  # noqa: F841  (neurenix: unused, as in learn2learn's script)

    # Sort data samples by labels
    # TODO: Can this be replaced by ConsecutiveLabels ?
    sort = torch.sort(labels)
    data = data.squeeze(0)[sort.indices].squeeze(0)
    labels = labels.squeeze(0)[sort.indices].squeeze(0)

    # Compute support and query embeddings
    embeddings = model(data)
    support_indices = np.zeros(data.size(0), dtype=bool)
    selection = np.arange(ways) * (shot + query_num)
    for offset in range(shot):
        support_indices[selection + offset] = True
    query_indices = torch.from_numpy(~support_indices)
    support_indices = torch.from_numpy(support_indices)
    support = embeddings[support_indices]
    support = support.reshape(ways, shot, -1).mean(dim=1)
    query = embeddings[query_indices]
    labels = labels[query_indices].long()

    logits = pairwise_distances_logits(query, support)
    loss = F.cross_entropy(logits, labels)
    acc = accuracy(logits, labels)
    return loss, acc


if __name__ == '__main__':
    parser = argparse.ArgumentParser()
    parser.add_argument('--max-epoch', type=int, default=250)
    parser.add_argument('--shot', type=int, default=1)
    parser.add_argument('--test-way', type=int, default=5)
    parser.add_argument('--test-shot', type=int, default=1)
    parser.add_argument('--test-query', type=int, default=30)
    parser.add_argument('--train-query', type=int, default=15)
    parser.add_argument('--train-way', type=int, default=30)
    parser.add_argument('--gpu', default=0)
    # neurenix: the sizes of the synthetic data and of an epoch, and --quick (all small) for CI
    parser.add_argument('--image-size', type=int, default=84)
    parser.add_argument('--episodes', type=int, default=100, help='training tasks per epoch')
    parser.add_argument('--valid-tasks', type=int, default=200)
    parser.add_argument('--test-tasks', type=int, default=2000)
    parser.add_argument('--quick', action='store_true', help='one epoch of 2 small tasks (seconds)')
    args = parser.parse_args()
    if args.quick:  # neurenix: sizes for CI
        args.max_epoch, args.episodes, args.valid_tasks, args.test_tasks, args.image_size = 1, 2, 2, 2, 16
        args.train_way, args.train_query, args.test_query = 5, 2, 2
    print(args)

    device = torch.device('cpu')
    if args.gpu and torch.cuda.device_count():
        print("Using gpu")
        torch.cuda.manual_seed(43)
        device = torch.device('cuda')

    model = Convnet()
    model.to(device)

    # neurenix: the three splits of synthetic miniImageNet-shaped data replace l2l's MiniImagenet datasets,
    # MetaDataset, Taskset with NWays/KShots/LoadData/RemapLabels, and DataLoader
    train_loader = SyntheticTasks(args.train_way, args.train_query + args.shot, 64, args.image_size,
                                  num_tasks=1, seed=1)
    valid_loader = SyntheticTasks(args.test_way, args.test_query + args.test_shot, 16, args.image_size,
                                  num_tasks=args.valid_tasks, seed=2)
    test_loader = SyntheticTasks(args.test_way, args.test_query + args.test_shot, 20, args.image_size,
                                 num_tasks=args.test_tasks, seed=3)

    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    lr_scheduler = torch.optim.lr_scheduler.StepLR(
        optimizer, step_size=20, gamma=0.5)

    for epoch in range(1, args.max_epoch + 1):
        model.train()

        loss_ctr = 0
        n_loss = 0
        n_acc = 0

        for i in range(args.episodes):  # neurenix: was range(100)
            batch = next(iter(train_loader))

            loss, acc = fast_adapt(model,
                                   batch,
                                   args.train_way,
                                   args.shot,
                                   args.train_query,
                                   metric=pairwise_distances_logits,
                                   device=device)

            loss_ctr += 1
            n_loss += loss.item()
            n_acc += acc

            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        lr_scheduler.step()

        print('epoch {}, train, loss={:.4f} acc={:.4f}'.format(
            epoch, n_loss/loss_ctr, n_acc/loss_ctr))

        model.eval()

        loss_ctr = 0
        n_loss = 0
        n_acc = 0
        for i, batch in enumerate(valid_loader):
            loss, acc = fast_adapt(model,
                                   batch,
                                   args.test_way,
                                   args.test_shot,
                                   args.test_query,
                                   metric=pairwise_distances_logits,
                                   device=device)

            loss_ctr += 1
            n_loss += loss.item()
            n_acc += acc

        print('epoch {}, val, loss={:.4f} acc={:.4f}'.format(
            epoch, n_loss/loss_ctr, n_acc/loss_ctr))

    loss_ctr = 0
    n_acc = 0

    for i, batch in enumerate(test_loader, 1):
        loss, acc = fast_adapt(model,
                               batch,
                               args.test_way,
                               args.test_shot,
                               args.test_query,
                               metric=pairwise_distances_logits,
                               device=device)
        loss_ctr += 1
        n_acc += acc
        print('batch {}: {:.2f}({:.2f})'.format(
            i, n_acc/loss_ctr * 100, acc * 100))
