"""The embedded tasks of the demo and the criteria comparison.

A :class:`Task` bundles data from :mod:`kcp.datasets`, a model from
:mod:`kcp.models`, a training recipe for :class:`kcp.FineTune`, and the
metrics the results are reported in. Two dense-labeling tasks, and
classification for comparison:

- ``segmentation``: texture mosaics, the U-Net; mean IoU over the classes
  present in prediction or truth, and pixel accuracy.
- ``stereo``: stereo pairs of textured slanted planes and one of
  :data:`STEREO_MODELS`: the correlation stereo network (trained on
  half-resolution disparities, as it predicts; predictions are brought to
  full resolution, nearest neighbour, doubled), PSMNet or GwcNet (full
  resolution); scored on the visible pixels as KITTI does: end-point error
  and the bad-3px rate, the fraction of pixels more than 3 px off.
- ``classification``: texture patches of the 8 embedded images, a CIFAR
  ResNet-20; accuracy.
"""

from dataclasses import dataclass

import numpy as np

from .. import datasets, models
from ..finetuning import FineTune, PruneSchedule
from ..plans import plan

DENSE_TASKS = ("segmentation", "stereo")
TASK_NAMES = (*DENSE_TASKS, "classification")
CLASSES = 4  # segmentation
MAX_DISPARITY = 16
#: The stereo task's networks and the factor their output's resolution is below the images'.
STEREO_MODELS = {"stereo_net": 2, "psmnet": 1, "gwcnet": 1}
#: The stereo networks with a 3-D cost volume at a quarter of the image's size.
VOLUMETRIC_STEREO_MODELS = ("psmnet", "gwcnet")
# How the main job prunes while it fine-tunes: softly from the dense network, or
# once with compensation before fine-tuning the compact network.
PRUNING_RECIPES = ("soft", "compensated")


def checked_recipe(recipe):
    """``recipe`` if it is one of :data:`PRUNING_RECIPES`, else a ValueError naming it."""
    if recipe not in PRUNING_RECIPES:
        raise ValueError(f"recipe: must be one of {', '.join(PRUNING_RECIPES)}, got {recipe!r}")
    return recipe


@dataclass(frozen=True)
class Split:
    """Samples of a task: ``inputs`` (one array per network input) and the
    ``targets``/``mask`` fine-tuning sees; ``truth``/``valid`` are what the
    metrics compare against (the targets, or full-resolution disparities)."""

    inputs: list
    targets: np.ndarray
    mask: np.ndarray | None
    truth: np.ndarray
    valid: np.ndarray | None

    @property
    def data(self):
        """The ``(inputs, targets[, mask])`` tuple :class:`kcp.FineTune` takes."""
        return (self.inputs, self.targets) if self.mask is None else (self.inputs, self.targets, self.mask)

    def head(self, samples):
        """The first ``samples`` samples."""
        cut = (lambda a: None if a is None else a[:samples])
        return Split([x[:samples] for x in self.inputs], self.targets[:samples], cut(self.mask),
                     self.truth[:samples], cut(self.valid))


@dataclass(frozen=True)
class Task:
    """A dense-labeling task at a given size and training budget.

    Args:
        name: ``"segmentation"``, ``"stereo"`` or ``"classification"``.
        size: image height (stereo images are twice as wide).
        train, val: sample counts (validation data uses another seed).
        epochs: training epochs of each phase (dense training, pruning).
        batch_size: samples per step.
        architecture: the stereo task's network, one of :data:`STEREO_MODELS`
            (``None``: ``"stereo_net"``); other tasks have one network.
    """

    name: str
    size: int = 48
    train: int = 256
    val: int = 64
    epochs: int = 12
    batch_size: int = 16
    architecture: str | None = None

    def __post_init__(self):
        if self.name not in TASK_NAMES:
            raise ValueError(f"task: must be one of {', '.join(TASK_NAMES)}, got {self.name!r}")
        if self.size < 16 or self.size % 8:
            raise ValueError(f"size: must be a multiple of 8 and at least 16, got {self.size}")
        if self.architecture is not None and (self.name != "stereo" or self.architecture not in STEREO_MODELS):
            raise ValueError(f"model: the stereo task takes one of {', '.join(STEREO_MODELS)}, got "
                             f"{self.architecture!r} for task {self.name!r}")
        if self.architecture in VOLUMETRIC_STEREO_MODELS and self.size % 16:
            raise ValueError(f"size: {self.architecture} needs a multiple of 16, got {self.size}")

    @property
    def output_stride(self):
        """How many image pixels one output pixel spans (the stereo network's 2, else 1)."""
        return STEREO_MODELS[self.architecture or "stereo_net"] if self.name == "stereo" else 1

    @property
    def metric(self):
        """The headline metric's name."""
        return {"segmentation": "mIoU", "stereo": "bad-3px", "classification": "accuracy"}[self.name]

    @property
    def higher_is_better(self):
        return self.name != "stereo"

    def split(self, which):
        """``"train"`` (seed 0) or ``"val"`` (seed 1) samples."""
        samples, seed = (self.train, 0) if which == "train" else (self.val, 1)
        if self.name == "segmentation":
            images, labels = datasets.texture_mosaics(samples, size=self.size, classes=CLASSES, seed=seed)
            return Split([images], labels, None, labels, None)
        if self.name == "classification":
            images, labels = datasets.texture_patches(samples, size=self.size, seed=seed)
            return Split([images], labels, None, labels, None)
        left, right, disparity, valid = datasets.stereo_pairs(samples, height=self.size, width=2 * self.size,
                                                              max_disparity=MAX_DISPARITY, seed=seed)
        stride = self.output_stride
        sampled = (slice(None), slice(None), slice(None, None, stride), slice(None, None, stride))
        return Split([left, right], disparity[sampled] / stride, valid[sampled], disparity, valid)

    def model(self, seed=0):
        """A freshly initialised network for the task."""
        if self.name == "segmentation":
            return models.unet(classes=CLASSES, image_size=self.size, channels=1, seed=seed)
        if self.name == "classification":
            return models.resnet(20, classes=len(datasets.TEXTURES), image_size=self.size, channels=1, seed=seed)
        shape = dict(height=self.size, width=2 * self.size, channels=1, seed=seed)
        if self.architecture in VOLUMETRIC_STEREO_MODELS:
            return getattr(models, self.architecture)(max_disparity=MAX_DISPARITY, **shape)
        return models.stereo_net(max_disparity=MAX_DISPARITY // 2, **shape)

    def training_run(self, net, train, val, *, seed=0):
        """A :class:`kcp.FineTune` run that trains ``net`` from scratch with
        the task's recipe: SGD with momentum and flips for segmentation and
        classification, AdamW for stereo, cosine schedules."""
        return self._run(net, train, val, 1.0, None, seed)

    def fine_tuning_run(self, net, train, val, *, prune=None, seed=0):
        """A :class:`kcp.FineTune` run that continues training a trained
        ``net`` at half the learning rate, pruning it by ``prune`` (a
        :class:`kcp.PruneSchedule`) if given."""
        return self._run(net, train, val, 0.5, prune, seed)

    def pruning(self, macs_reduction, criterion="kcp"):
        """Soft pruning to ``macs_reduction`` fewer MACs, the target rising
        over the first half of a fine-tuning run's epochs."""
        return PruneSchedule(macs_reduction=macs_reduction, criterion=criterion, ramp_epochs=max(1, self.epochs // 2))

    def pruning_run(self, dense, train, val, macs_reduction, criterion="kcp", *, recipe="soft", compensated=None,
                    seed=0):
        """A fine-tuning run that prunes the trained ``dense`` network to
        ``macs_reduction`` fewer MACs by one of :data:`PRUNING_RECIPES`; its
        ``compact()`` is the pruned network. ``"soft"`` prunes softly while
        fine-tuning (:meth:`pruning`); ``"compensated"`` fine-tunes the
        network pruned once and compensated on ``train``'s inputs
        (``compensated``, if already made)."""
        if checked_recipe(recipe) == "soft":
            return self.fine_tuning_run(dense, train, val, prune=self.pruning(macs_reduction, criterion), seed=seed)
        if compensated is None:
            chosen = plan(dense, macs_reduction=macs_reduction, criterion=criterion)
            compensated = chosen.compensate(dense, train.inputs, progress=False)
        return self.fine_tuning_run(compensated, train, val, seed=seed)

    def _run(self, net, train, val, lr_scale, prune, seed):
        if self.name != "stereo":
            recipe = dict(task=self.name, optimizer="sgd", lr=0.05 * lr_scale, momentum=0.9, weight_decay=5e-4,
                          flip=True)
        else:
            recipe = dict(task="disparity", optimizer="adamw", lr=1e-3 * lr_scale, weight_decay=1e-4)
        return FineTune(net, train.data, val.data, epochs=self.epochs, batch_size=self.batch_size,
                        schedule="cosine", prune=prune, seed=seed, **recipe)

    def predict(self, net, split, batch=32):
        """The network's outputs on ``split``, in batches: classes ``[S]``,
        class maps ``[S, H, W]`` or full-resolution disparities ``[S, 1, H, W]``."""
        outputs = np.concatenate([net(*(x[i:i + batch] for x in split.inputs))[0]
                                  for i in range(0, len(split.truth), batch)])
        if self.name != "stereo":
            return outputs.argmax(axis=1)
        stride = self.output_stride
        return stride * outputs.repeat(stride, axis=2).repeat(stride, axis=3)

    def evaluate(self, net, split):
        """The task's metrics of ``net`` on ``split``, as fractions (the
        headline metric under :attr:`metric`)."""
        predicted = self.predict(net, split)
        if self.name == "segmentation":
            return segmentation_scores(predicted, split.truth, CLASSES)
        if self.name == "classification":
            return {"accuracy": float(np.mean(predicted == split.truth))}
        return disparity_scores(predicted, split.truth, split.valid)


def segmentation_scores(predicted, truth, classes):
    """``mIoU``: mean over the classes present in either map of
    ``|P_k & T_k| / |P_k | T_k|``; ``pixel_accuracy``: fraction of pixels right."""
    ious = []
    for k in range(classes):
        union = np.count_nonzero((predicted == k) | (truth == k))
        if union:
            ious.append(np.count_nonzero((predicted == k) & (truth == k)) / union)
    return {"mIoU": float(np.mean(ious)), "pixel_accuracy": float(np.mean(predicted == truth))}


def disparity_scores(predicted, truth, valid):
    """``EPE``: mean ``|d - d*|`` over the valid pixels; ``bad-3px``: the
    fraction of them with ``|d - d*| > 3``."""
    error = np.abs(predicted - truth)[valid]
    return {"bad-3px": float(np.mean(error > 3)), "EPE": float(np.mean(error))}
