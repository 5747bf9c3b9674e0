"""A tqdm bar (terminal or notebook) fed by an engine call's progress callback."""

import contextlib


@contextlib.contextmanager
def progress_bar(progress, label, unit):
    """Yields the callback ``(step, steps, loss)`` to hand to the engine:
    with a true ``progress`` it moves a bar labelled ``progress`` (if a
    string) or ``label``, counting ``unit``s; otherwise it is None (the
    engine then only checks for Ctrl-C)."""
    if not progress:
        yield None
        return
    from tqdm.auto import tqdm

    bar = tqdm(unit=unit, desc=progress if isinstance(progress, str) else label)

    def report(step, steps, loss):
        if bar.total != steps:
            bar.total = steps
        bar.update(step - bar.n)

    try:
        yield report
    finally:
        bar.close()
