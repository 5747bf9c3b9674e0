"""The experiments kcp ships: dense-labeling tasks on embedded data
(:mod:`~kcp.experiments.tasks`), the main job (:mod:`~kcp.experiments.demo`),
the criteria comparison (:mod:`~kcp.experiments.compare`) and their plots
(:mod:`~kcp.experiments.plots`, needs matplotlib).
"""
