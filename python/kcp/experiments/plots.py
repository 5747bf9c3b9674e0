"""Figures of the demo and the criteria comparison (matplotlib).

Each function returns a :class:`matplotlib.figure.Figure` built without
pyplot, so scripts need no display and notebooks show it when it is the
cell's value; ``fig.savefig(path)`` writes it.
"""

import numpy as np
from matplotlib.figure import Figure

from .tasks import MAX_DISPARITY


def training_curves(task, dense, pruning, phase="KCP soft pruning"):
    """Validation metric and MACs per epoch of a dense training run and the
    pruning run after it (:meth:`kcp.FineTune.run` histories); ``phase``
    labels the second."""
    history = dense + pruning
    epochs = np.arange(1, len(history) + 1)
    figure = Figure(figsize=(8, 3.5), layout="constrained")
    metric_axis = figure.subplots()
    label = {"segmentation": "validation mIoU", "stereo": "validation EPE (px at the output's resolution)",
             "classification": "validation accuracy"}[task]
    metric_axis.plot(epochs, [r["metric"] for r in history], "o-", color="tab:blue", label=label)
    metric_axis.set(xlabel="epoch", ylabel=label)
    metric_axis.axvline(len(dense) + 0.5, color="gray", ls="--", lw=0.8)
    metric_axis.text(len(dense) + 0.6, metric_axis.get_ylim()[1], f" {phase}", va="top", color="gray")
    macs_axis = metric_axis.twinx()
    macs_axis.step(epochs, [r["macs"] / 1e6 for r in history], where="mid", color="tab:red")
    macs_axis.set_ylabel("MMACs per sample", color="tab:red")
    macs_axis.set_ylim(0, None)
    metric_axis.set_title(f"{task}: dense training, then pruning to "
                          f"{1 - pruning[-1]['macs'] / dense[-1]['macs']:.0%} fewer MACs")
    return figure


def layer_widths(dense, pruned):
    """Output channels of every conv and linear layer of two networks."""
    before, after = dense.layer_widths(), pruned.layer_widths()
    names = list(before)
    figure = Figure(figsize=(8, 0.3 * len(names) + 1.2), layout="constrained")
    axis = figure.subplots()
    rows = np.arange(len(names))
    axis.barh(rows, [before[n] for n in names], color="lightgray", label="dense")
    axis.barh(rows, [after[n] for n in names], color="tab:blue", label="pruned")
    axis.set_yticks(rows, names)
    axis.invert_yaxis()
    axis.set(xlabel="output channels", title="layer widths")
    axis.legend(loc="lower right")
    return figure


def predictions(task, split, dense, pruned, samples=3):
    """Inputs, ground truth and the dense and pruned networks' outputs on
    the first ``samples`` samples of ``split`` (a dense-labeling task)."""
    split = split.head(samples)
    columns = [("input", split.inputs[0][:, 0]), ("ground truth", split.truth),
               ("dense", task.predict(dense, split)), ("pruned", task.predict(pruned, split))]
    if task.name == "segmentation":
        style = {"cmap": "tab10", "vmin": 0, "vmax": 9, "interpolation": "nearest"}
    else:
        style = {"cmap": "magma", "vmin": 0, "vmax": MAX_DISPARITY}
        columns[1] = ("ground truth", np.where(split.valid, split.truth, np.nan))
    figure = Figure(figsize=(2.6 * len(columns), 2.2 * samples), layout="constrained")
    axes = figure.subplots(samples, len(columns), squeeze=False)
    for column, (title, images) in enumerate(columns):
        for row in range(samples):
            image = images[row].reshape(images[row].shape[-2:])
            axes[row, column].imshow(image, **({"cmap": "gray"} if column == 0 else style))
            axes[row, column].set_axis_off()
        axes[0, column].set_title(title)
    return figure


def comparison(summary):
    """The headline metric against the MACs reduction, one line per
    criterion with the spread over seeds, one panel per task."""
    tasks = list(summary["tasks"])
    figure = Figure(figsize=(5 * len(tasks), 3.8), layout="constrained")
    axes = figure.subplots(1, len(tasks), squeeze=False)[0]
    for axis, task in zip(axes, tasks):
        entry = summary["tasks"][task]
        axis.axhline(entry["unpruned"]["mean"] * 100, color="black", lw=0.8, ls="--", label="unpruned")
        for criterion, rows in entry["pruned"].items():
            reductions = [r["macs_reduction"] * 100 for r in rows]
            axis.errorbar(reductions, [r["mean"] * 100 for r in rows], yerr=[r["std"] * 100 for r in rows],
                          marker="o", capsize=3, label=criterion)
        axis.set(xlabel="MACs reduction (%)", ylabel=f"{entry['metric']} (%)", title=task)
    axes[0].legend()
    return figure
