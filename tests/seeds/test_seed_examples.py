"""Every example of the three seed documents, run as written (only the ``[...]`` filled in).

Each function holds one example, copied from the seed with its indentation restored (seed 001 lost it)
and with the placeholders filled by generated tasks. Seed 004's examples are PyTorch code explaining
the algorithms; they are run here translated line by line to neurenix. Runs on the default device.
"""

import numpy as np
import pytest

import neurenix as nx
from neurenix.meta import generate_classification_tasks


def _tasks(num_tasks, input_dim, ways=5, per_class=2, seed=0):
    """N-way tasks of ``input_dim`` features, one-hot labels, per_class // 2 shots per class."""
    return generate_classification_tasks(num_tasks, ways, per_class, input_dim, seed=seed)


def _images(num_tasks, shape, ways=5, per_class=2, seed=0):
    """The same tasks with inputs shaped as images (rows, C, H, W), for the tutorials' CNNs."""
    dim = int(np.prod(shape))
    return [(sx.reshape(-1, *shape), sy, qx.reshape(-1, *shape), qy)
            for sx, sy, qx, qy in _tasks(num_tasks, dim, ways, per_class, seed)]


def _arrays(task):
    """A task as NumPy arrays, for the seeds' ``neurenix.Tensor(...)`` placeholders."""
    return tuple(t.numpy() for t in task)


@pytest.fixture(autouse=True)
def _seeded():
    nx.manual_seed(0)
    device = nx.default_device()
    yield
    nx.set_default_device(device)  # the seed 001 examples call nx.init


# -- seed 000 (Meta-Learning Documentation) ---------------------------------------------------------


def test_000_maml_example():
    fill_support_x, fill_support_y, fill_query_x, _ = _arrays(_tasks(1, 28 * 28, seed=1)[0])
    import neurenix
    from neurenix.meta import MAML
    from neurenix.nn import Linear, ReLU, Sequential
    from neurenix.optim import Adam

    # Create a base model
    base_model = Sequential(
        Linear(28*28, 256),
        ReLU(),
        Linear(256, 128),
        ReLU(),
        Linear(128, 5)  # 5-way classification
    )

    # Create a MAML model
    maml = MAML(
        model=base_model,
        inner_lr=0.01,
        meta_lr=0.001,
        first_order=True,
        inner_steps=5
    )

    # Create a meta-optimizer
    meta_optimizer = Adam(maml.parameters(), lr=0.001)

    # Meta-train the model
    tasks = _tasks(4, 28 * 28)  # List of (support_x, support_y, query_x, query_y) tuples
    history = maml.meta_learn(
        tasks=tasks,
        meta_optimizer=meta_optimizer,
        epochs=50,
        tasks_per_batch=4
    )

    # Adapt to a new task
    support_x = neurenix.Tensor(fill_support_x)  # Support set inputs
    support_y = neurenix.Tensor(fill_support_y)  # Support set labels
    adapted_model = maml.adapt_to_task(support_x, support_y)

    # Make predictions
    query_x = neurenix.Tensor(fill_query_x)  # Query set inputs
    predictions = adapted_model(query_x)

    assert predictions.shape == (5, 5) and len(history["loss"]) == 50
    assert history["loss"][-1] < history["loss"][0]


def test_000_reptile_example():
    fill_support_x, fill_support_y, fill_query_x, _ = _arrays(_tasks(1, 28 * 28, seed=1)[0])
    import neurenix
    from neurenix.meta import Reptile
    from neurenix.nn import Linear, ReLU, Sequential

    # Create a base model
    base_model = Sequential(
        Linear(28*28, 256),
        ReLU(),
        Linear(256, 128),
        ReLU(),
        Linear(128, 5)  # 5-way classification
    )

    # Create a Reptile model
    reptile = Reptile(
        model=base_model,
        inner_lr=0.05,
        meta_lr=0.001,
        inner_steps=10
    )

    # Meta-train the model
    tasks = _tasks(4, 28 * 28)  # List of (support_x, support_y, query_x, query_y) tuples
    history = reptile.meta_learn(
        tasks=tasks,
        epochs=50,
        tasks_per_batch=4
    )

    # Adapt to a new task
    support_x = neurenix.Tensor(fill_support_x)  # Support set inputs
    support_y = neurenix.Tensor(fill_support_y)  # Support set labels
    adapted_model = reptile.adapt_to_task(support_x, support_y)

    # Make predictions
    query_x = neurenix.Tensor(fill_query_x)  # Query set inputs
    predictions = adapted_model(query_x)

    assert predictions.shape == (5, 5) and len(history["loss"]) == 50


def test_000_prototypical_networks_example():
    fill_support_x, fill_support_y, fill_query_x, _ = _arrays(_tasks(1, 28 * 28, seed=1)[0])
    import neurenix
    from neurenix.meta import PrototypicalNetworks
    from neurenix.nn import Linear, ReLU, Sequential
    from neurenix.optim import Adam

    # Create an embedding model
    embedding_model = Sequential(
        Linear(28*28, 256),
        ReLU(),
        Linear(256, 128),
        ReLU(),
        Linear(128, 64)  # Embedding dimension
    )

    # Create a Prototypical Networks model
    proto_net = PrototypicalNetworks(
        embedding_model=embedding_model,
        distance_metric='euclidean',
        meta_lr=0.001
    )

    # Create a meta-optimizer
    meta_optimizer = Adam(proto_net.parameters(), lr=0.001)

    # Meta-train the model
    tasks = _tasks(4, 28 * 28)  # List of (support_x, support_y, query_x, query_y) tuples
    history = proto_net.meta_learn(
        tasks=tasks,
        meta_optimizer=meta_optimizer,
        epochs=50,
        tasks_per_batch=4
    )

    # Make predictions for a new task
    support_x = neurenix.Tensor(fill_support_x)  # Support set inputs
    support_y = neurenix.Tensor(fill_support_y)  # Support set labels (one-hot)
    query_x = neurenix.Tensor(fill_query_x)  # Query set inputs
    logits = proto_net(query_x, support_x, support_y)
    predictions = logits.argmax(dim=1)

    assert predictions.shape == (5,) and history["accuracy"][-1] > history["accuracy"][0]


def test_000_choosing_the_algorithm():
    from neurenix.meta import MAML, PrototypicalNetworks, Reptile
    from neurenix.nn import Linear, ReLU, Sequential

    # Create a base model
    base_model = Sequential(
        Linear(28*28, 256),
        ReLU(),
        Linear(256, 128),
        ReLU(),
        Linear(128, 5)  # 5-way classification
    )

    # For tasks requiring significant adaptation
    maml = MAML(
        model=base_model,
        inner_lr=0.01,
        meta_lr=0.001,
        first_order=False  # Use second-order derivatives for better performance
    )

    # For computationally constrained environments
    reptile = Reptile(
        model=base_model,
        inner_lr=0.05,
        meta_lr=0.001,
        inner_steps=10
    )

    # For few-shot classification tasks
    embedding_model = Sequential(
        Linear(28*28, 256),
        ReLU(),
        Linear(256, 128),
        ReLU(),
        Linear(128, 64)  # Embedding dimension
    )
    proto_net = PrototypicalNetworks(
        embedding_model=embedding_model,
        distance_metric='euclidean'
    )

    assert maml.inner_steps == 5 and reptile.inner_steps == 10 and proto_net.distance_metric == "euclidean"


def test_000_tutorial_maml_cnn(capsys):
    import neurenix
    from neurenix.meta import MAML
    from neurenix.nn import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential
    from neurenix.optim import Adam

    # Step 1: Create a convolutional neural network for image classification
    def create_cnn():
        return Sequential(
            Conv2d(3, 32, kernel_size=3, padding=1),
            ReLU(),
            MaxPool2d(2),
            Conv2d(32, 32, kernel_size=3, padding=1),
            ReLU(),
            MaxPool2d(2),
            Conv2d(32, 32, kernel_size=3, padding=1),
            ReLU(),
            MaxPool2d(2),
            Flatten(),
            Linear(32 * 4 * 4, 256),
            ReLU(),
            Linear(256, 5)  # 5-way classification
        )

    # Step 2: Create a MAML model
    base_model = create_cnn()
    maml = MAML(
        model=base_model,
        inner_lr=0.01,
        meta_lr=0.001,
        first_order=True,
        inner_steps=5
    )

    # Step 3: Create a meta-optimizer
    meta_optimizer = Adam(maml.parameters(), lr=0.001)

    # Step 4: Create meta-learning tasks
    # (Simplified for brevity)
    train_tasks = _images(2, (3, 32, 32))  # List of (support_x, support_y, query_x, query_y) tuples
    test_tasks = _images(1, (3, 32, 32), seed=1)   # List of (support_x, support_y, query_x, query_y) tuples

    # Step 5: Meta-train the model
    history = maml.meta_learn(
        tasks=train_tasks,
        meta_optimizer=meta_optimizer,
        epochs=50,
        tasks_per_batch=4
    )

    # Step 6: Evaluate on test tasks
    total_accuracy = 0.0
    for support_x, support_y, query_x, query_y in test_tasks:
        # Adapt to the task
        adapted_model = maml.adapt_to_task(support_x, support_y)

        # Make predictions
        with neurenix.no_grad():
            logits = adapted_model(query_x)
            predictions = logits.argmax(dim=1)

            # Convert one-hot labels to indices
            query_y_indices = query_y.argmax(dim=1)

            # Compute accuracy
            accuracy = (predictions == query_y_indices).float().mean().item()
            total_accuracy += accuracy

    # Compute average accuracy
    average_accuracy = total_accuracy / len(test_tasks)
    print(f"Average 5-way 1-shot accuracy: {average_accuracy:.4f}")

    assert capsys.readouterr().out.startswith("Average 5-way 1-shot accuracy: ")
    assert history["loss"][-1] < history["loss"][0]


def test_000_tutorial_prototypical_networks_cnn(capsys):
    import neurenix
    from neurenix.meta import PrototypicalNetworks
    from neurenix.nn import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential
    from neurenix.optim import Adam

    # Step 1: Create an embedding network for images
    def create_embedding_network():
        return Sequential(
            Conv2d(1, 64, kernel_size=3, padding=1),
            ReLU(),
            MaxPool2d(2),
            Conv2d(64, 64, kernel_size=3, padding=1),
            ReLU(),
            MaxPool2d(2),
            Conv2d(64, 64, kernel_size=3, padding=1),
            ReLU(),
            MaxPool2d(2),
            Flatten(),
            Linear(64 * 3 * 3, 256),
            ReLU(),
            Linear(256, 64)  # Embedding dimension
        )

    # Step 2: Create a Prototypical Networks model
    embedding_model = create_embedding_network()
    proto_net = PrototypicalNetworks(
        embedding_model=embedding_model,
        distance_metric='euclidean',
        meta_lr=0.001
    )

    # Step 3: Create a meta-optimizer
    meta_optimizer = Adam(proto_net.parameters(), lr=0.001)

    # Step 4: Meta-train the model
    # (Simplified for brevity)
    train_tasks = _images(2, (1, 28, 28), per_class=4)  # List of (support_x, support_y, query_x, query_y) tuples
    test_tasks = _images(1, (1, 28, 28), per_class=4, seed=1)  # List of (support_x, support_y, query_x, query_y) tuples

    history = proto_net.meta_learn(
        tasks=train_tasks,
        meta_optimizer=meta_optimizer,
        epochs=50,
        tasks_per_batch=4
    )

    # Step 5: Evaluate on test tasks
    total_accuracy = 0.0
    for support_x, support_y, query_x, query_y in test_tasks:
        # Make predictions
        with neurenix.no_grad():
            logits = proto_net(query_x, support_x, support_y)
            predictions = logits.argmax(dim=1)

            # Convert one-hot labels to indices
            query_y_indices = query_y.argmax(dim=1)

            # Compute accuracy
            accuracy = (predictions == query_y_indices).float().mean().item()
            total_accuracy += accuracy

    # Compute average accuracy
    average_accuracy = total_accuracy / len(test_tasks)
    print(f"Average accuracy: {average_accuracy:.4f}")

    assert capsys.readouterr().out.startswith("Average accuracy: ")
    assert history["loss"][-1] < history["loss"][0]


# -- seed 001 (Meta-Learning API) -----------------------------------------------------------------------


def test_001_maml_api_example():
    from neurenix.meta import generate_regression_tasks
    train_tasks = generate_regression_tasks(8, 20)
    support_x, support_y, query_x, _ = generate_regression_tasks(1, 20)[0]

    import neurenix as nx
    from neurenix.meta import MAML
    from neurenix.nn import Linear, ReLU, Sequential
    from neurenix.optim import Adam
    # Create a model for meta-learning
    model = Sequential([
        Linear(1, 40),
        ReLU(),
        Linear(40, 40),
        ReLU(),
        Linear(40, 1),
    ])
    # Create MAML meta-learner
    meta_model = MAML(
        model=model,
        inner_lr=0.01,
        meta_lr=0.001,
        first_order=False,
        inner_steps=5,
    )
    # Create optimizer
    meta_optimizer = Adam(meta_model.parameters(), lr=meta_model.meta_lr)
    # Meta-train the model
    history = meta_model.meta_learn(
        tasks=train_tasks,
        meta_optimizer=meta_optimizer,
        epochs=10,
        tasks_per_batch=4,
    )
    # Adapt to a new task
    adapted_model = meta_model.adapt_to_task(support_x, support_y)
    predictions = adapted_model(query_x)

    assert predictions.shape == query_x.shape and len(history["loss"]) == 10 and nx.__name__ == "neurenix"


def test_001_best_practices():
    import neurenix
    from neurenix.meta import MAML
    from neurenix.nn import Linear, ReLU, Sequential
    from neurenix.optim import Adam
    input_dim, output_dim, embedding_dim = 1, 1, 16

    # Generate related regression tasks with different amplitude and phase
    tasks = neurenix.meta.generate_regression_tasks(
        num_tasks=100,
        num_samples_per_task=20
    )
    # Split into train and test tasks
    train_tasks = tasks[:80]
    test_tasks = tasks[80:]

    # For MAML and Reptile, use standard architectures
    model = Sequential([
        Linear(input_dim, 64),
        ReLU(),
        Linear(64, 64),
        ReLU(),
        Linear(64, output_dim),
    ])
    # For Prototypical Networks, focus on good embeddings
    embedding_model = Sequential([
        Linear(input_dim, 64),
        ReLU(),
        Linear(64, 64),
        ReLU(),
        Linear(64, embedding_dim),
    ])

    meta_model = MAML(model, inner_steps=1)
    meta_optimizer = Adam(meta_model.parameters(), lr=meta_model.meta_lr)
    # For complex tasks, use smaller batch sizes
    history = meta_model.meta_learn(
        tasks=train_tasks,
        meta_optimizer=meta_optimizer,
        epochs=10,
        tasks_per_batch=4  # Start with 4-8 tasks per batch
    )

    assert len(train_tasks) == 80 and len(test_tasks) == 20 and len(history["loss"]) == 10
    assert embedding_model(train_tasks[0][0]).shape == (10, embedding_dim)


def test_001_prototypical_networks_example(capsys):
    import neurenix as nx
    from neurenix.meta import PrototypicalNetworks, generate_classification_tasks
    from neurenix.nn import Linear, ReLU, Sequential
    from neurenix.optim import Adam
    # Initialize Neurenix
    nx.init({"device": "cuda:0" if nx.get_device_count(nx.DeviceType.CUDA) > 0 else "cpu"})
    # Create embedding model
    embedding_model = Sequential([
        Linear(20, 64),
        ReLU(),
        Linear(64, 64),
        ReLU(),
        Linear(64, 32),  # Embedding dimension
    ])
    # Create Prototypical Networks meta-learner
    meta_model = PrototypicalNetworks(
        embedding_model=embedding_model,
        distance_metric="euclidean",
        meta_lr=0.001,
    )
    # Generate tasks (5-way, 10-shot)
    tasks = generate_classification_tasks(
        num_tasks=100,
        num_classes=5,
        num_samples_per_class=10,
        input_dim=20,
    )
    # Split into train and test
    train_tasks = tasks[:80]
    test_tasks = tasks[80:]
    # Create optimizer
    meta_optimizer = Adam(meta_model.parameters(), lr=meta_model.meta_lr)
    # Meta-train the model
    history = meta_model.meta_learn(
        tasks=train_tasks,
        meta_optimizer=meta_optimizer,
        epochs=10,
        tasks_per_batch=4,
    )
    # Evaluate on test tasks
    test_accuracies = []
    for support_x, support_y, query_x, query_y in test_tasks:
        # Adapt to the task
        adapted_model = meta_model.adapt_to_task(support_x, support_y)
        # Evaluate on query set
        predictions = adapted_model(query_x)
        pred_classes = predictions.argmax(dim=1)
        true_classes = query_y.argmax(dim=1)
        accuracy = (pred_classes == true_classes).float().mean().item()
        test_accuracies.append(accuracy)
    # Print results
    avg_accuracy = sum(test_accuracies) / len(test_accuracies)
    print(f"Average test accuracy: {avg_accuracy:.4f}")

    assert capsys.readouterr().out.startswith("Average test accuracy: ")
    assert avg_accuracy > 0.6 and history["accuracy"][-1] > history["accuracy"][0]  # chance is 0.2


def test_001_maml_example(capsys):
    import neurenix as nx
    from neurenix.meta import MAML, generate_regression_tasks
    from neurenix.nn import Linear, ReLU, Sequential
    from neurenix.optim import Adam
    # Initialize Neurenix
    nx.init({"device": "cuda:0" if nx.get_device_count(nx.DeviceType.CUDA) > 0 else "cpu"})
    # Create model
    model = Sequential([
        Linear(1, 40),
        ReLU(),
        Linear(40, 40),
        ReLU(),
        Linear(40, 1),
    ])
    # Create MAML meta-learner
    meta_model = MAML(
        model=model,
        inner_lr=0.01,
        meta_lr=0.001,
        first_order=False,
        inner_steps=5,
    )
    # Generate sine wave tasks
    tasks = generate_regression_tasks(
        num_tasks=100,
        num_samples_per_task=20,
    )
    # Split into train and test
    train_tasks = tasks[:80]
    test_tasks = tasks[80:]
    # Create optimizer
    meta_optimizer = Adam(meta_model.parameters(), lr=meta_model.meta_lr)
    # Meta-train the model
    history = meta_model.meta_learn(
        tasks=train_tasks,
        meta_optimizer=meta_optimizer,
        epochs=10,
        tasks_per_batch=4,
    )
    # Evaluate on test tasks
    test_losses = []
    for support_x, support_y, query_x, query_y in test_tasks:
        # Adapt to the task
        adapted_model = meta_model.adapt_to_task(support_x, support_y)
        # Evaluate on query set
        predictions = adapted_model(query_x)
        mse = ((predictions - query_y) ** 2).mean().item()
        test_losses.append(mse)
    # Print results
    avg_mse = sum(test_losses) / len(test_losses)
    print(f"Average test MSE: {avg_mse:.6f}")

    assert capsys.readouterr().out.startswith("Average test MSE: ")
    assert history["loss"][-1] < history["loss"][0] and np.isfinite(avg_mse)


# -- seed 004 (Meta-Learning for Computer Vision): the PyTorch examples, in neurenix ----------------------


def test_004_maml_step_in_neurenix():
    import neurenix
    import neurenix.nn as nn

    def maml_step(model, loss_fn, x_spt, y_spt, x_qry, y_qry, alpha=0.01, beta=0.001):
        # Inner loop
        fast_weights = list(model.parameters())
        y_pred = model(x_spt)
        loss = loss_fn(y_pred, y_spt)
        grads = neurenix.autograd.grad(loss, fast_weights, create_graph=True)
        fast_weights = [w - alpha * g for w, g in zip(fast_weights, grads)]
        # Outer loop
        y_pred_q = model(x_qry)
        meta_loss = loss_fn(y_pred_q, y_qry)
        meta_loss.backward()
        # (optimizer.step() outside)
        return fast_weights

    model = nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, 1))
    sx, sy, qx, qy = neurenix.meta.generate_regression_tasks(1, 20)[0]
    fast = maml_step(model, nn.functional.mse_loss, sx, sy, qx, qy)
    assert all(p.grad is not None for p in model.parameters()) and all(w.requires_grad for w in fast)


def test_004_relation_network_in_neurenix():
    import neurenix
    import neurenix.nn as nn

    class RelationNetwork(nn.Module):
        def __init__(self, feat_dim):
            super().__init__()
            self.g = nn.Sequential(
                nn.Linear(2 * feat_dim, 128), nn.ReLU(),
                nn.Linear(128, 1)
            )

        def forward(self, x_q, x_s):
            # x_q: [B, D], x_s: [N, D]
            B, D = x_q.size()
            N = x_s.size(0)
            x_q_exp = x_q.unsqueeze(1).expand(B, N, D)
            x_s_exp = x_s.unsqueeze(0).expand(B, N, D)
            pair = neurenix.cat([x_q_exp, x_s_exp], dim=2)
            rel = self.g(pair).squeeze(-1)  # [B, N]
            return rel

    rel = RelationNetwork(16)(neurenix.randn(6, 16), neurenix.randn(10, 16))
    assert rel.shape == (6, 10)
