"""Native fine-tuning with KCP soft pruning.

The engine trains: the network and the data are handed over once, shuffling,
batching, forward, backward and the optimizer run in Swift with the GIL
released, and the masks of KCP soft pruning (He et al.'s SFP schedule with
KCP's channel classes) are recomputed from the current weights every
``every`` epochs. Python sees a progress bar and, a few times per second, a
callback; Ctrl-C stops at the next step boundary and leaves the network and
the history as they were after the last completed step::

    tuner = kcp.FineTune(net, train=(images, labels), val=(val_images, val_labels),
                         task="classification", epochs=10, lr=0.05,
                         prune=kcp.PruneSchedule(macs_reduction=0.5, ramp_epochs=3))
    history = tuner.run()
    small = tuner.compact()          # the pruned channels removed
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Union

import numpy as np
from numpy.typing import ArrayLike

from . import _arguments, _native, _progress
from .layer import CENTERS, CRITERIA
from .network import Network

#: ``(inputs, targets)`` or ``(inputs, targets, mask)``; inputs an array, or a list of arrays (one per network
#: input).
Data = Union[tuple[Any, ArrayLike], tuple[Any, ArrayLike, Union[ArrayLike, None]]]
#: ``callback(step, steps, loss)``.
Callback = Callable[[int, int, float], object]
PathLike = Union[str, os.PathLike]

TASKS = {"classification": 0, "segmentation": 1, "disparity": 2, "regression": 3}
OPTIMIZERS = {"sgd": 0, "adamw": 1}
SCHEDULES = {"constant": 0, "step": 1, "cosine": 2}
PRUNE_MODES = {"soft": 1, "hard": 2}


@dataclass(frozen=True)
class PruneSchedule:
    """How much to prune while fine-tuning, and when.

    Exactly one of ``ratio`` and ``macs_reduction`` (see :func:`kcp.plan`).
    ``mode="soft"`` zeroes the pruned weights at each re-mask and lets them
    regrow in between (SFP); ``"hard"`` keeps them, their gradients and their
    optimizer state at zero. Masks are recomputed after every ``every``
    epochs; the target rises linearly from 0 over the first ``ramp_epochs``.
    ``global_`` is the deprecated name of ``global_pruning``.
    """

    ratio: float | None = None
    macs_reduction: float | None = None
    criterion: Literal["kcp", "l1", "l2", "fpgm", "random"] = "kcp"
    center: Literal["mean", "median"] = "mean"
    mode: Literal["soft", "hard"] = "soft"
    every: int = 1
    ramp_epochs: int = 0
    global_pruning: bool = False
    max_ratio: float = 0.9
    round_to: int = 1
    global_: bool | None = None

    def __post_init__(self):
        if self.global_ is not None:
            object.__setattr__(self, "global_pruning", _arguments.deprecated_global(False, self.global_))
            object.__setattr__(self, "global_", None)

    def settings(self) -> dict[str, Any]:
        """The pruning fields of the engine's settings (``kcp_finetune_settings``)."""
        if (self.ratio is None) == (self.macs_reduction is None):
            raise ValueError("prune: give exactly one of ratio and macs_reduction")
        amount = (_arguments.ratio(self.ratio) if self.ratio is not None
                  else _arguments.macs_reduction(self.macs_reduction))
        return dict(prune=_arguments.choice(self.mode, "mode", PRUNE_MODES), prune_amount_kind=int(self.ratio is None),
                    prune_amount=amount, prune_global=int(bool(self.global_pruning)),
                    prune_max_ratio=_arguments.max_ratio(self.max_ratio),
                    prune_criterion=_arguments.choice(self.criterion, "criterion", CRITERIA),
                    prune_center=_arguments.choice(self.center, "center", CENTERS),
                    prune_round_to=_arguments.integer(self.round_to, "round_to", 1, _arguments.INT32_MAX),
                    prune_every=_arguments.integer(self.every, "every", 1, _arguments.INT64_MAX),
                    prune_ramp_epochs=_arguments.integer(self.ramp_epochs, "ramp_epochs", 0, _arguments.INT64_MAX))


_NO_PRUNING = dict(prune=0, prune_amount_kind=0, prune_amount=0.0, prune_global=0, prune_max_ratio=0.0,
                   prune_criterion=0, prune_center=0, prune_round_to=1, prune_every=1, prune_ramp_epochs=0)


def _real_array(value, name):
    """``value`` as a float32 array, refusing what float32 cannot hold (complex, objects, strings)."""
    array = _arguments.array(value, name)
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_) or np.iscomplexobj(array):
        raise TypeError(f"{name}: must hold real numbers, got dtype {array.dtype}")
    return np.ascontiguousarray(array, dtype=np.float32)


def _split(net, data, name):
    """``(inputs, targets, mask)`` float32/bool arrays from ``(inputs..., targets[, mask])``:
    training and validation data alike. Target values (finite, labels integer
    classes of the output or ``ignore_label``) are checked by the engine, for
    both, in one place."""
    if data is None:
        return None, None, None
    if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
        raise TypeError(f"{name}: expected (inputs, targets) or (inputs, targets, mask)")
    inputs = data[0] if isinstance(data[0], (tuple, list)) else [data[0]]
    if len(inputs) != len(net.inputs):
        raise ValueError(f"{name}: the network has {len(net.inputs)} inputs, got {len(inputs)} arrays")
    inputs = [_real_array(x, name) for x in inputs]
    targets = _real_array(data[1], f"{name} targets")
    if targets.ndim == 0:
        raise ValueError(f"{name} targets: need one entry per sample, got a scalar")
    for x, value in zip(inputs, net.inputs):
        if x.shape[1:] != value.shape[1:] or x.shape[0] != targets.shape[0]:
            raise ValueError(f"{name}: inputs must be [{targets.shape[0]}] + {list(value.shape[1:])}, got {list(x.shape)}")
    mask = None if len(data) < 3 or data[2] is None else np.ascontiguousarray(data[2], dtype=bool)
    if mask is not None and mask.shape != targets.shape:
        raise ValueError(f"{name}: mask must be shaped like the targets {targets.shape}, got {mask.shape}")
    return inputs, targets, mask


class FineTune:
    """A fine-tuning run held by the engine (see the module docstring).

    Args:
        net: the :class:`kcp.Network` to train (it is copied; one output).
        train, val: ``(inputs, targets)`` or ``(inputs, targets, mask)``; inputs an
            array (or a list, one per network input) of ``[S] + input shape``.
            Targets: class labels ``[S]`` (classification), per-pixel labels
            ``[S, H, W]`` (segmentation), disparities ``[S, 1, H, W]`` with a
            validity mask (disparity), or arrays shaped like the output (regression).
        task: ``"classification"`` (cross-entropy, accuracy), ``"segmentation"``
            (per-pixel cross-entropy skipping ``ignore_label``, mean IoU),
            ``"disparity"`` (smooth-L1, end-point error) or ``"regression"`` (MSE).
        optimizer: ``"sgd"`` (``momentum``, ``nesterov``, ``weight_decay``) or
            ``"adamw"`` (``betas``, ``eps``, ``weight_decay``), PyTorch's rules.
        schedule: ``"cosine"`` (to ``min_lr``), ``"step"`` (``step_every`` steps,
            ``step_gamma``) or ``"constant"``, after ``warmup`` linear warm-up steps.
        prune: a :class:`PruneSchedule`, or None to fine-tune without pruning.
        seed: seeds shuffling, augmentation and the ``"random"`` criterion.
        flip, shift: augmentation of image tasks (classification, segmentation):
            random horizontal flips, and shifts by up to ``shift`` pixels (zero
            padding; segmentation needs ``ignore_label`` for the shifted-in pixels).
    """

    def __init__(self, net: Network, train: Data, val: Data | None = None, *,
                 task: Literal["classification", "segmentation", "disparity", "regression"],
                 ignore_label: int | None = None, epochs: int = 10, batch_size: int = 32,
                 optimizer: Literal["sgd", "adamw"] = "sgd", lr: float = 0.05, momentum: float = 0.9,
                 nesterov: bool = False, weight_decay: float = 5e-4, betas: Sequence[float] = (0.9, 0.999),
                 eps: float = 1e-8, schedule: Literal["constant", "step", "cosine"] = "cosine", step_every: int = 1000,
                 step_gamma: float = 0.1, min_lr: float = 0.0, warmup: int = 0, prune: PruneSchedule | None = None,
                 seed: int = 0, flip: bool = False, shift: int = 0) -> None:
        big = _arguments.INT64_MAX
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas: expected a pair, got {betas!r}")
        settings = dict(
            epochs=_arguments.integer(epochs, "epochs", 0, big),
            batch_size=_arguments.integer(batch_size, "batch_size", 1, big), seed=_arguments.seed(seed),
            task=_arguments.choice(task, "task", TASKS),
            ignore_label=-1 if ignore_label is None else _arguments.integer(ignore_label, "ignore_label", 0,
                                                                            _arguments.INT32_MAX),
            optimizer=_arguments.choice(optimizer, "optimizer", OPTIMIZERS), momentum=_arguments.finite(momentum, "momentum"),
            nesterov=int(bool(nesterov)), weight_decay=_arguments.finite(weight_decay, "weight_decay"),
            beta1=_arguments.finite(betas[0], "betas"), beta2=_arguments.finite(betas[1], "betas"),
            epsilon=_arguments.finite(eps, "eps"), learning_rate=_arguments.finite(lr, "lr"),
            schedule=_arguments.choice(schedule, "schedule", SCHEDULES),
            step_every=_arguments.integer(step_every, "step_every", 1, big),
            step_gamma=_arguments.finite(step_gamma, "step_gamma"), minimum_rate=_arguments.finite(min_lr, "min_lr"),
            warmup_steps=_arguments.integer(warmup, "warmup", 0, big),
            **(prune.settings() if prune is not None else _NO_PRUNING),
            flip=int(bool(flip)), shift=_arguments.integer(shift, "shift", 0, _arguments.INT32_MAX))
        inputs, targets, mask = _split(net, train, "train")
        val_inputs, val_targets, val_mask = _split(net, val, "val")
        self._net = net
        self._steps = -(-targets.shape[0] // batch_size)
        self.epochs = epochs
        self._handle = _native.finetune_create(net._handle, settings, inputs, targets, mask,
                                               val_inputs, val_targets, val_mask)

    def run(self, *, progress: bool | str = True, callback: Callback | None = None,
            checkpoint: PathLike | None = None) -> list[dict[str, Any]]:
        """Runs the remaining epochs; returns the history (one dict per epoch:
        ``epoch``, ``loss``, ``metric``, ``macs``, ``lr``).

        ``callback(step, steps, loss)`` is called a few times per second at
        most; it may not use this run (that raises ValueError: in use).
        ``progress`` shows a tqdm bar (terminal or notebook) when tqdm is
        installed; a string labels it.
        ``checkpoint``: a path written (atomically) after every epoch.
        """
        epochs = [len(self.history)]  # completed epochs: the callback may not ask the run, which is busy
        bar = _progress.bar(progress, "fine-tune", total=(self.epochs - epochs[0]) * self._steps, unit="step")
        done = [0]

        def on_step(step, steps, loss):
            if bar is not None:
                bar.update(epochs[0] * steps + step - done[0] - bar.initial)
                done[0] = epochs[0] * steps + step - bar.initial
                bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            if callback is not None:
                callback(step, steps, loss)

        try:
            while epochs[0] < self.epochs:
                record = _native.finetune_run_epoch(self._handle, on_step)
                if record is None:
                    break
                epochs[0] = int(record[0])
                if checkpoint is not None:
                    self.save(checkpoint)
                if bar is not None:
                    _, loss, metric, macs, _ = record
                    bar.set_postfix(loss=f"{loss:.4f}", metric=f"{metric:.4f}", MACs=f"{int(macs):,}")
        finally:
            if bar is not None:
                bar.close()
        return self.history

    @property
    def history(self) -> list[dict[str, Any]]:
        """One dict per completed epoch: ``epoch``, ``loss`` (mean training
        loss), ``metric`` (validation; NaN without ``val``), ``macs`` (per
        sample, as pruned after the epoch), ``lr`` (the epoch's last)."""
        return [{"epoch": int(e), "loss": loss, "metric": metric, "macs": int(macs), "lr": lr}
                for e, loss, metric, macs, lr in _native.finetune_history(self._handle).tolist()]

    def save(self, path: PathLike) -> None:
        """Writes a checkpoint (weights, optimizer and shuffling state, step,
        history, masks) to ``path`` atomically: a crash during the write
        leaves the previous file intact."""
        data = _native.finetune_checkpoint(self._handle)
        folder = os.path.dirname(os.path.abspath(path))
        descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=".kcp-checkpoint-")
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise

    def load(self, path: PathLike) -> None:
        """Continues from a checkpoint written by :meth:`save` for the same
        network, settings and data; on failure nothing changes."""
        with open(path, "rb") as file:
            _native.finetune_restore(self._handle, file.read())

    @property
    def network(self) -> Network:
        """The network as trained so far (pruned weights zeroed, shapes unchanged)."""
        return self._net._derived(_native.finetune_network(self._handle, 0))

    def compact(self) -> Network:
        """The network with the pruned channels removed."""
        return self._net._derived(_native.finetune_network(self._handle, 1))


def finetune(net: Network, train: Data, val: Data | None = None, *, progress: bool | str = True,
             callback: Callback | None = None, checkpoint: PathLike | None = None,
             **settings: Any) -> tuple[list[dict[str, Any]], Network]:
    """Fine-tunes ``net`` natively (see :class:`FineTune` for the settings);
    returns ``(history, compact network)``. With ``checkpoint``, a path: an
    existing checkpoint there is resumed, and one is written after every epoch."""
    tuner = FineTune(net, train, val, **settings)
    if checkpoint is not None and os.path.exists(checkpoint):
        tuner.load(checkpoint)
    history = tuner.run(progress=progress, callback=callback, checkpoint=checkpoint)
    return history, tuner.compact()
