"""Issue 7's workloads, written once for neurenix and once for PyTorch, on the same data and weights.

``workloads`` describes each workload and draws its data and initial weights with NumPy alone, so a
process that measures one framework never imports the other. ``ours`` builds the neurenix side through
the public API (the meta-learners of ``neurenix.meta``); ``pytorch`` builds PyTorch with a per-task loop
(what learn2learn and higher do) and with ``torch.func`` (``grad`` inside ``vmap`` over tasks). Every
builder returns a ``Runner``: ``step()`` runs one timed unit (a meta-iteration or an episode, ending
with its one host read) and ``state()`` gives the values the equivalence test compares (loss, gradients,
weights after the update).
"""
