# neurenix: PyTorch's code style is kept as it was, for a line-for-line port
# ruff: noqa: UP008, UP032

# neurenix: ported from pytorch/examples' mnist/main.py (BSD 3-Clause License), the version with Adadelta, StepLR,
# --no-cuda and --no-mps. Every change is marked with a "neurenix:" comment. The original's license:
#
# Copyright (c) 2017 Pytorch contributors,
# All rights reserved.
#
# Redistribution and use in source and binary forms, with or without modification, are permitted provided that
# the following conditions are met:
# * Redistributions of source code must retain the above copyright notice, this list of conditions and the
#   following disclaimer.
# * Redistributions in binary form must reproduce the above copyright notice, this list of conditions and the
#   following disclaimer in the documentation and/or other materials provided with the distribution.
# * Neither the name of the copyright holder nor the names of its contributors may be used to endorse or promote
#   products derived from this software without specific prior written permission.
#
# THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS" AND ANY EXPRESS OR IMPLIED
# WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR
# PURPOSE ARE DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE FOR ANY DIRECT, INDIRECT,
# INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE
# GOODS OR SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER CAUSED AND ON ANY THEORY OF
# LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY, OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY
# OUT OF THE USE OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.
"""
neurenix: MNIST is read from torchvision's raw files under ../data/MNIST/raw when they are there (nothing is
downloaded); otherwise a synthetic set of the same shape (28x28 grey digits-like images, 10 classes) stands in.
`python examples/mnist_main.py --quick` trains one epoch on a small synthetic set in seconds; with --save-model
the state dict is saved with neurenix.save, loaded into a new Net with neurenix.load, and must score the same.
"""

import argparse
import gzip  # neurenix: to read MNIST's raw files without torchvision
import os  # neurenix: as above
import struct  # neurenix: as above

import numpy as np  # neurenix: for the synthetic stand-in below

import neurenix as torch  # neurenix: was `import torch`; the calls below are the same names
import neurenix.nn as nn  # neurenix: was `import torch.nn as nn`
import neurenix.nn.functional as F  # neurenix: was `import torch.nn.functional as F`
import neurenix.optim as optim  # neurenix: was `import torch.optim as optim`
from neurenix.optim.lr_scheduler import StepLR  # neurenix: was torch.optim.lr_scheduler

# neurenix: `from torchvision import datasets, transforms` is replaced by MNIST and transform below


def _read_idx(path):  # neurenix: torchvision's MNIST reads these files (the IDX format) the same way
    with (gzip.open if path.endswith('.gz') else open)(path, 'rb') as f:
        data = f.read()
    ndim = data[3]
    shape = struct.unpack('>' + 'I' * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _synthetic_mnist(train, size):  # neurenix: MNIST-shaped data where the real set is absent
    """10 random smooth 28x28 templates, one per class; each image is its class's template plus noise, as uint8."""
    templates = np.random.default_rng(0).random((10, 7, 7)).repeat(4, axis=1).repeat(4, axis=2)
    rng = np.random.default_rng(1 if train else 2)
    targets = rng.integers(0, 10, size)
    images = templates[targets] + 0.3 * rng.standard_normal((size, 28, 28))
    return (np.clip(images, 0, 1) * 255).astype(np.uint8), targets


class MNIST:  # neurenix: stands in for torchvision.datasets.MNIST (no download)
    """Images (uint8, 28x28) and targets; ``dataset[i]`` is ``(transform(image), target)`` as in torchvision."""

    def __init__(self, root, train=True, transform=None, synthetic_size=None):
        split = 'train' if train else 't10k'
        raw = os.path.join(root, 'MNIST', 'raw', split + '-{}-idx{}-ubyte')
        files = [raw.format('images', 3), raw.format('labels', 1)]
        files = [p if os.path.exists(p) else p + '.gz' for p in files]
        if synthetic_size is None and all(os.path.exists(p) for p in files):
            self.data, self.targets = _read_idx(files[0]), _read_idx(files[1]).astype(np.int64)
        else:
            self.data, self.targets = _synthetic_mnist(train, synthetic_size or (60000 if train else 10000))
        self.transform = transform

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, index):
        return self.transform(self.data[index]), int(self.targets[index])


def transform(image):  # neurenix: transforms.Compose([ToTensor(), Normalize((0.1307,), (0.3081,))])
    return torch.from_numpy(((image[None].astype(np.float32) / 255) - 0.1307) / 0.3081)


class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(x)
        x = self.conv2(x)
        x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.dropout2(x)
        x = self.fc2(x)
        output = F.log_softmax(x, dim=1)
        return output


def train(args, model, device, train_loader, optimizer, epoch):
    model.train()
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        if batch_idx % args.log_interval == 0:
            print('Train Epoch: {} [{}/{} ({:.0f}%)]\tLoss: {:.6f}'.format(
                epoch, batch_idx * len(data), len(train_loader.dataset),
                100. * batch_idx / len(train_loader), loss.item()))
            if args.dry_run:
                break


def test(model, device, test_loader):
    model.eval()
    test_loss = 0
    correct = 0
    with torch.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction='sum').item()  # sum up batch loss
            pred = output.argmax(dim=1, keepdim=True)  # get the index of the max log-probability
            correct += pred.eq(target.view_as(pred)).sum().item()

    test_loss /= len(test_loader.dataset)

    print('\nTest set: Average loss: {:.4f}, Accuracy: {}/{} ({:.0f}%)\n'.format(
        test_loss, correct, len(test_loader.dataset),
        100. * correct / len(test_loader.dataset)))
    return correct  # neurenix: returned, to compare the reloaded model's score


def main():
    # Training settings
    parser = argparse.ArgumentParser(description='PyTorch MNIST Example')
    parser.add_argument('--batch-size', type=int, default=64, metavar='N',
                        help='input batch size for training (default: 64)')
    parser.add_argument('--test-batch-size', type=int, default=1000, metavar='N',
                        help='input batch size for testing (default: 1000)')
    parser.add_argument('--epochs', type=int, default=14, metavar='N',
                        help='number of epochs to train (default: 14)')
    parser.add_argument('--lr', type=float, default=1.0, metavar='LR',
                        help='learning rate (default: 1.0)')
    parser.add_argument('--gamma', type=float, default=0.7, metavar='M',
                        help='Learning rate step gamma (default: 0.7)')
    parser.add_argument('--no-cuda', action='store_true', default=False,
                        help='disables CUDA training')
    parser.add_argument('--no-mps', action='store_true', default=False,
                        help='disables macOS GPU training')
    parser.add_argument('--dry-run', action='store_true', default=False,
                        help='quickly check a single pass')
    parser.add_argument('--seed', type=int, default=1, metavar='S',
                        help='random seed (default: 1)')
    parser.add_argument('--log-interval', type=int, default=10, metavar='N',
                        help='how many batches to wait before logging training status')
    parser.add_argument('--save-model', action='store_true', default=False,
                        help='For Saving the current Model')
    parser.add_argument('--quick', action='store_true', default=False,  # neurenix: for CI
                        help='one epoch on 256 synthetic training and 200 test images (seconds)')
    args = parser.parse_args()
    use_cuda = not args.no_cuda and torch.cuda.is_available()
    use_mps = False  # neurenix: no Apple GPU backend; was `not args.no_mps and torch.backends.mps.is_available()`

    torch.manual_seed(args.seed)

    if use_cuda:
        device = torch.device("cuda")
    elif use_mps:
        device = torch.device("mps")
    else:
        device = torch.device("cpu")

    train_kwargs = {'batch_size': args.batch_size}
    test_kwargs = {'batch_size': args.test_batch_size}
    if use_cuda:
        cuda_kwargs = {'num_workers': 1,
                       'pin_memory': True,
                       'shuffle': True}
        train_kwargs.update(cuda_kwargs)
        test_kwargs.update(cuda_kwargs)

    sizes = (256, 200) if args.quick else (None, None)  # neurenix: --quick: small synthetic sets, one epoch
    if args.quick:  # neurenix: as above
        args.epochs, test_kwargs['batch_size'], args.log_interval = 1, 100, 1
    dataset1 = MNIST('../data', train=True,  # neurenix: was datasets.MNIST(..., download=True, ...)
                     transform=transform, synthetic_size=sizes[0])
    dataset2 = MNIST('../data', train=False,  # neurenix: was datasets.MNIST
                     transform=transform, synthetic_size=sizes[1])
    train_loader = torch.utils.data.DataLoader(dataset1,**train_kwargs)
    test_loader = torch.utils.data.DataLoader(dataset2, **test_kwargs)

    model = Net().to(device)
    optimizer = optim.Adadelta(model.parameters(), lr=args.lr)

    scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)
    for epoch in range(1, args.epochs + 1):
        train(args, model, device, train_loader, optimizer, epoch)
        correct = test(model, device, test_loader)  # neurenix: the score is kept, see below
        scheduler.step()

    if args.save_model:
        torch.save(model.state_dict(), "mnist_cnn.pt")
        # neurenix: load the file into a new Net, which must score exactly the same on the test set
        reloaded = Net().to(device)
        reloaded.load_state_dict(torch.load("mnist_cnn.pt"))
        if test(reloaded, device, test_loader) != correct:
            raise SystemExit("the reloaded model scores differently")
        print("Reloaded mnist_cnn.pt: same test accuracy")


if __name__ == '__main__':
    main()
