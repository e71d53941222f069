#!/usr/bin/env python3

"""
Trains a 3 layer MLP with MAML on Sine Wave Regression Dataset.
We use the Sine Wave dataloader from the torchmeta package.

Torchmeta: https://github.com/tristandeleu/pytorch-meta

neurenix: ported from learn2learn's examples/maml_sine.py (MIT license, learnables/learn2learn). Every change is
marked with a "neurenix:" comment; the rest is learn2learn's code as it was. torchmeta's Sinusoid and
BatchMetaDataLoader are replaced by a small stand-in below (same task distribution: amplitude in [0.1, 5],
phase in [0, pi], inputs in [-5, 5]). `python examples/maml_sine.py --quick` runs 4 iterations.
"""

import argparse  # neurenix: a command line, so that CI can run a few iterations (--quick)
import random  # noqa: F401  (neurenix: unused, as in learn2learn's script)

import numpy as np

import neurenix as nx  # neurenix: was `import torch` (used by the stand-in data loader below only)
from neurenix import nn, optim  # neurenix: was `from torch import nn, optim`
from neurenix.meta import MAML  # neurenix: was `import learn2learn as l2l` (l2l.algorithms.MAML)


class Sinusoid:  # neurenix: stands in for torchmeta.toy.Sinusoid (not a dependency of neurenix)
    def __init__(self, num_samples_per_task, num_tasks, seed=0):
        self.num_samples_per_task, self.num_tasks = num_samples_per_task, num_tasks
        self.rng = np.random.default_rng(seed)

    def sample(self, n):
        amplitude = self.rng.uniform(0.1, 5.0, size=(n, 1, 1))
        phase = self.rng.uniform(0, np.pi, size=(n, 1, 1))
        x = self.rng.uniform(-5.0, 5.0, size=(n, self.num_samples_per_task, 1))
        return [nx.tensor(x), nx.tensor(amplitude * np.sin(x - phase))]


def BatchMetaDataLoader(tasksets, batch_size):  # noqa: N802  (neurenix: stands in for torchmeta's loader)
    for start in range(0, tasksets.num_tasks, batch_size):
        yield tasksets.sample(min(batch_size, tasksets.num_tasks - start))


class SineModel(nn.Module):

    def __init__(self, dim):
        super().__init__()
        self.hidden1 = nn.Linear(1, dim)
        self.hidden2 = nn.Linear(dim, dim)
        self.hidden3 = nn.Linear(dim, 1)

    def forward(self, x):
        x = nn.functional.relu(self.hidden1(x))
        x = nn.functional.relu(self.hidden2(x))
        x = self.hidden3(x)
        return x


def main(
        shots=10,
        tasks_per_batch=16,
        num_tasks=160000,
        adapt_lr=0.01,
        meta_lr=0.001,
        adapt_steps=5,
        hidden_dim=32,
):
    # load the dataset
    tasksets = Sinusoid(num_samples_per_task=2*shots, num_tasks=num_tasks)
    dataloader = BatchMetaDataLoader(tasksets, batch_size=tasks_per_batch)

    # create the model
    model = SineModel(dim=hidden_dim)
    maml = MAML(model, lr=adapt_lr, first_order=False, allow_unused=True)  # neurenix: was l2l.algorithms.MAML
    opt = optim.Adam(maml.parameters(), meta_lr)
    lossfn = nn.MSELoss(reduction='mean')

    # for each iteration
    for iter, batch in enumerate(dataloader):  # num_tasks/batch_size  # noqa: A001
        meta_train_loss = 0.0

        # for each task in the batch
        effective_batch_size = batch[0].shape[0]
        for i in range(effective_batch_size):
            learner = maml.clone()

            # divide the data into support and query sets
            train_inputs, train_targets = batch[0][i].float(), batch[1][i].float()
            x_support, y_support = train_inputs[::2], train_targets[::2]
            x_query, y_query = train_inputs[1::2], train_targets[1::2]

            for _ in range(adapt_steps):  # adaptation_steps
                support_preds = learner(x_support)
                support_loss = lossfn(support_preds, y_support)
                learner.adapt(support_loss)

            query_preds = learner(x_query)
            query_loss = lossfn(query_preds, y_query)
            meta_train_loss += query_loss

        meta_train_loss = meta_train_loss / effective_batch_size

        if iter % 200 == 0:
            print('Iteration:', iter, 'Meta Train Loss', meta_train_loss.item())

        opt.zero_grad()
        meta_train_loss.backward()
        opt.step()
    return meta_train_loss.item()  # neurenix: returned, for the test that runs this script


if __name__ == '__main__':
    # neurenix: --quick (4 iterations of 4 tasks) for CI; without it, learn2learn's settings
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='4 iterations of 4 tasks (seconds)')
    args = parser.parse_args()
    main(tasks_per_batch=4, num_tasks=16) if args.quick else main()
