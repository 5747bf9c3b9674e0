"""Progress bars from tqdm (terminal or notebook) when it is installed; when it
is not, none, silently: the core needs numpy alone."""

import contextlib


def bar(progress, label, **settings):
    """A tqdm bar labelled ``progress`` (if a string) or ``label``, with tqdm's
    ``settings`` (``total``, ``unit``...); None if ``progress`` is false or
    tqdm is not installed."""
    if not progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(desc=progress if isinstance(progress, str) else label, **settings)


@contextlib.contextmanager
def progress_bar(progress, label, unit):
    """Yields the callback ``(step, steps, loss)`` to hand to the engine: it
    moves the :func:`bar` of ``progress`` and ``label``, counting ``unit``s;
    without a bar it is None (the engine then only checks for Ctrl-C)."""
    shown = bar(progress, label, unit=unit)
    if shown is None:
        yield None
        return

    def report(step, steps, loss):
        if shown.total != steps:
            shown.total = steps
        shown.update(step - shown.n)

    try:
        yield report
    finally:
        shown.close()
