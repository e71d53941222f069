"""Meta-learning for Neurenix: few-shot learning and fast adaptation to new tasks.

Meta-learners (one ``MetaLearningModel`` API): ``MAML`` (second and first order, with MAML++'s options and
a checkpointed inner loop), ``ANIL``, ``MetaSGD``, ``iMAML`` (implicit gradients), ``Reptile``,
``PrototypicalNetworks``, ``RelationNetworks`` and ``R2D2``; task generators ``generate_regression_tasks`` and
``generate_classification_tasks``. A task is ``(support_x, support_y, query_x, query_y)``.
"""

__version__ = "0.1.0"

from . import algorithms
from .anil import ANIL
from .base import MetaLearningModel
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .data import EpisodeSampler, TaskSampler, load_image_folder, rotate_classes, split_classes
from .evaluation import Evaluation, evaluate
from .generators import generate_classification_tasks, generate_regression_tasks
from .imaml import iMAML
from .learner import ClonedLearner, clone_module
from .maml import MAML, multi_step_weights
from .metasgd import MetaSGD
from .metric import FewShotClassifier
from .protonets import PrototypicalNetworks
from .r2d2 import R2D2
from .relation import RelationNetworks
from .reptile import Reptile
from .tasks import Task

__all__ = [
    "ANIL", "MAML", "R2D2", "FewShotClassifier", "MetaLearningModel", "MetaSGD", "PrototypicalNetworks",
    "RelationNetworks", "Reptile", "Task", "generate_classification_tasks", "generate_regression_tasks", "iMAML",
    "multi_step_weights",
]
# real data, evaluation and checkpoints (the ``neurenix`` command line is ``neurenix.meta.cli``)
__all__ += ["CheckpointError", "Evaluation", "TaskSampler", "evaluate", "load_checkpoint", "load_image_folder",
            "rotate_classes", "save_checkpoint", "split_classes"]
# episodes of varying ways and shots (Meta-Dataset's sampler)
__all__ += ["EpisodeSampler"]
# learn2learn's functional style (``maml.clone()``, ``learner.adapt(loss)``), and its ``l2l.algorithms`` namespace
__all__ += ["ClonedLearner", "algorithms", "clone_module"]
