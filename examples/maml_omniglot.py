#!/usr/bin/env python3

"""
Demonstrates how to:
    * use the MAML wrapper for fast-adaptation,
    * use the benchmark interface to load Omniglot, and
    * sample tasks and split them in adaptation and evaluation sets.

neurenix: ported from learn2learn's examples/vision/maml_omniglot.py (MIT license, learnables/learn2learn). Every
change is marked with a "neurenix:" comment. Omniglot itself is not downloaded: a synthetic stand-in of the same
shape (1x28x28 images, 2*shots samples per class, classes sorted) replaces l2l.vision.benchmarks, and OmniglotFC
is written out below. `python examples/maml_omniglot.py --quick` runs 2 iterations of 4 tasks.
"""

import argparse  # neurenix: a command line, so that CI can run a few iterations (--quick)
import random

import numpy as np

import neurenix as torch  # neurenix: was `import torch`; the calls below are the same names
from neurenix import nn, optim  # neurenix: was `from torch import nn, optim`
from neurenix.meta import MAML  # neurenix: was `import learn2learn as l2l` (l2l.algorithms.MAML)


class SyntheticOmniglot:  # neurenix: stands in for one of get_tasksets('omniglot')'s splits (no download)
    """Tasks of ``ways`` classes drawn from ``classes`` random stroke templates, 2*shots noisy samples each."""

    def __init__(self, ways, samples, classes, seed):
        self.ways, self.samples = ways, samples
        self.rng = np.random.default_rng(seed)
        self.templates = (self.rng.random((classes, 1, 28, 28)) < 0.15).astype(np.float32)

    def sample(self):
        chosen = self.rng.choice(len(self.templates), self.ways, replace=False)
        data = np.repeat(self.templates[chosen], self.samples, axis=0)
        data = np.clip(data + 0.3 * self.rng.standard_normal(data.shape), 0, 1).astype(np.float32)
        labels = np.repeat(np.arange(self.ways), self.samples)
        return torch.from_numpy(data), torch.from_numpy(labels)


class Tasksets:  # neurenix: stands in for l2l.vision.benchmarks.get_tasksets's result (train, validation, test)
    def __init__(self, ways, samples):
        self.train = SyntheticOmniglot(ways, samples, 64, seed=1)
        self.validation = SyntheticOmniglot(ways, samples, 16, seed=2)
        self.test = SyntheticOmniglot(ways, samples, 20, seed=3)


def LinearBlock(input_size, output_size):  # noqa: N802  (neurenix: l2l.vision.models' block, written out)
    return nn.Sequential(nn.Linear(input_size, output_size), nn.BatchNorm1d(output_size, momentum=0.999), nn.ReLU())


class OmniglotFC(nn.Module):  # neurenix: l2l.vision.models.OmniglotFC, written out (same layers)
    def __init__(self, input_size, output_size, sizes=(256, 128, 64, 64)):
        super().__init__()
        blocks = [LinearBlock(a, b) for a, b in zip((input_size, *sizes[:-1]), sizes)]
        self.features = nn.Sequential(nn.Flatten(), nn.Sequential(*blocks))
        self.classifier = nn.Linear(sizes[-1], output_size)

    def forward(self, x):
        return self.classifier(self.features(x))


def accuracy(predictions, targets):
    predictions = predictions.argmax(dim=1).view(targets.shape)
    return (predictions == targets).sum().float() / targets.size(0)


def fast_adapt(batch, learner, loss, adaptation_steps, shots, ways, device):
    data, labels = batch
    data, labels = data.to(device), labels.to(device)

    # Separate data into adaptation/evalutation sets
    adaptation_indices = np.zeros(data.size(0), dtype=bool)
    adaptation_indices[np.arange(shots*ways) * 2] = True
    evaluation_indices = torch.from_numpy(~adaptation_indices)
    adaptation_indices = torch.from_numpy(adaptation_indices)
    adaptation_data, adaptation_labels = data[adaptation_indices], labels[adaptation_indices]
    evaluation_data, evaluation_labels = data[evaluation_indices], labels[evaluation_indices]

    # Adapt the model
    for step in range(adaptation_steps):  # noqa: B007  (neurenix: learn2learn's unused loop variable, kept)
        train_error = loss(learner(adaptation_data), adaptation_labels)
        learner.adapt(train_error)

    # Evaluate the adapted model
    predictions = learner(evaluation_data)
    valid_error = loss(predictions, evaluation_labels)
    valid_accuracy = accuracy(predictions, evaluation_labels)
    return valid_error, valid_accuracy


def main(
        ways=5,
        shots=1,
        meta_lr=0.003,
        fast_lr=0.5,
        meta_batch_size=32,
        adaptation_steps=1,
        num_iterations=60000,
        cuda=False,  # neurenix: was True; CI machines have no GPU (pass --cuda with neurenix-backend-cuda)
        seed=42,
):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    device = torch.Device('cpu')  # neurenix: was torch.device('cpu')
    if cuda:
        device = torch.Device('cuda')  # neurenix: was torch.cuda.manual_seed(seed); torch.device('cuda')

    # Load train/validation/test tasksets using the benchmark interface
    tasksets = Tasksets(ways, 2*shots)  # neurenix: was l2l.vision.benchmarks.get_tasksets('omniglot', ...)

    # Create model
    model = OmniglotFC(28 ** 2, ways)  # neurenix: was l2l.vision.models.OmniglotFC
    model.to(device)
    maml = MAML(model, lr=fast_lr, first_order=False)  # neurenix: was l2l.algorithms.MAML
    opt = optim.Adam(maml.parameters(), meta_lr)
    loss = nn.CrossEntropyLoss(reduction='mean')

    for iteration in range(num_iterations):
        opt.zero_grad()
        meta_train_error = 0.0
        meta_train_accuracy = 0.0
        meta_valid_error = 0.0
        meta_valid_accuracy = 0.0
        for task in range(meta_batch_size):  # noqa: B007
            # Compute meta-training loss
            learner = maml.clone()
            batch = tasksets.train.sample()
            evaluation_error, evaluation_accuracy = fast_adapt(batch,
                                                               learner,
                                                               loss,
                                                               adaptation_steps,
                                                               shots,
                                                               ways,
                                                               device)
            evaluation_error.backward()
            meta_train_error += evaluation_error.item()
            meta_train_accuracy += evaluation_accuracy.item()

            # Compute meta-validation loss
            learner = maml.clone()
            batch = tasksets.validation.sample()
            evaluation_error, evaluation_accuracy = fast_adapt(batch,
                                                               learner,
                                                               loss,
                                                               adaptation_steps,
                                                               shots,
                                                               ways,
                                                               device)
            meta_valid_error += evaluation_error.item()
            meta_valid_accuracy += evaluation_accuracy.item()

        # Print some metrics
        print('\n')
        print('Iteration', iteration)
        print('Meta Train Error', meta_train_error / meta_batch_size)
        print('Meta Train Accuracy', meta_train_accuracy / meta_batch_size)
        print('Meta Valid Error', meta_valid_error / meta_batch_size)
        print('Meta Valid Accuracy', meta_valid_accuracy / meta_batch_size)

        # Average the accumulated gradients and optimize
        for p in maml.parameters():
            p.grad.data.mul_(1.0 / meta_batch_size)
        opt.step()

    meta_test_error = 0.0
    meta_test_accuracy = 0.0
    for task in range(meta_batch_size):  # noqa: B007
        # Compute meta-testing loss
        learner = maml.clone()
        batch = tasksets.test.sample()
        evaluation_error, evaluation_accuracy = fast_adapt(batch,
                                                           learner,
                                                           loss,
                                                           adaptation_steps,
                                                           shots,
                                                           ways,
                                                           device)
        meta_test_error += evaluation_error.item()
        meta_test_accuracy += evaluation_accuracy.item()
    print('Meta Test Error', meta_test_error / meta_batch_size)
    print('Meta Test Accuracy', meta_test_accuracy / meta_batch_size)


if __name__ == '__main__':
    # neurenix: --quick (2 iterations of 4 tasks) for CI, --cuda; without them, learn2learn's settings on the CPU
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='2 iterations of 4 tasks (seconds)')
    parser.add_argument('--cuda', action='store_true', help='run on neurenix device "cuda"')
    args = parser.parse_args()
    main(meta_batch_size=4, num_iterations=2, cuda=args.cuda) if args.quick else main(cuda=args.cuda)
