"""Validation of the plain Python arguments of kcp's public functions.

Each check raises TypeError or ValueError naming the argument; arrays are
checked by the engine itself.
"""

import math
import numbers
import operator
import warnings

import numpy as np


def choice(value, name, options):
    """The engine code of `value`, one of the keys of `options`."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name}: must be one of {', '.join(map(repr, options))}, got {value!r}")
    return options[value]


def integer(value, name, minimum=None, maximum=None):
    """`value` as an int (bool and float refused) within [minimum, maximum]."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: must be an integer, got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name}: must be an integer, got {type(value).__name__} {value!r}") from None
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name}: must be at most {maximum}, got {value}")
    return value


def seed(value):
    """A seed: an integer in [0, 2**64)."""
    return integer(value, "seed", 0, 2**64 - 1)


def ratio(value):
    """A pruning ratio: a real number in [0, 1)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"ratio: must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not (0.0 <= value < 1.0) or math.isnan(value):
        raise ValueError(f"ratio: must be in [0, 1), got {value}")
    return value


def macs_reduction(value):
    """A MACs reduction target: a real number in (0, 1)."""
    value = finite(value, "macs_reduction")
    if not 0.0 < value < 1.0:
        raise ValueError(f"macs_reduction: must be in (0, 1), got {value}")
    return value


def max_ratio(value):
    """The most a global ranking prunes of one space: a real number in [0, 1)."""
    value = finite(value, "max_ratio")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"max_ratio: must be in [0, 1), got {value}")
    return value


def deprecated_global(global_pruning, global_):
    """``global_pruning``, or the value of its old name ``global_`` (with a DeprecationWarning)."""
    if global_ is None:
        return bool(global_pruning)
    warnings.warn("global_ is deprecated; use global_pruning", DeprecationWarning, stacklevel=3)
    return bool(global_)


def finite(value, name):
    """A finite real number, as a float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: must be a real number, got {type(value).__name__} {value!r}")
    try:
        value = float(value)
    except OverflowError:
        raise ValueError(f"{name}: must be a finite number, got {value}") from None
    if not math.isfinite(value):
        raise ValueError(f"{name}: must be a finite number, got {value}")
    return value


def non_negative(value, name):
    """A finite real number >= 0, as a float."""
    value = finite(value, name)
    if value < 0.0:
        raise ValueError(f"{name}: must be a finite number >= 0, got {value}")
    return value


INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


def array(value, name):
    """`value` as an ndarray (no copy for an ndarray), naming `name` if it cannot be one."""
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{name}: cannot be read as an array ({error})") from None


def keep_mask(keep, length, name):
    """A boolean mask of `length` entries from a mask or strictly increasing indices."""
    array = np.asarray(keep)
    if array.ndim != 1:
        raise ValueError(f"{name}: must be 1-D, got shape {array.shape}")
    if array.dtype == np.bool_:
        if array.shape[0] != length:
            raise ValueError(f"{name}: has {array.shape[0]} entries, the axis has {length}")
        return np.ascontiguousarray(array)
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name}: must be a boolean mask or integer indices, got dtype {array.dtype}")
    indices = array.astype(np.int64)
    if indices.size and (indices.min() < -length or indices.max() >= length):
        raise ValueError(f"{name}: indices must be in [{-length}, {length}), got {indices.min()}..{indices.max()}")
    indices = np.where(indices < 0, indices + length, indices)
    if np.any(np.diff(indices) <= 0):
        raise ValueError(f"{name}: indices must be strictly increasing (kept channels stay in order)")
    mask = np.zeros(length, dtype=bool)
    mask[indices] = True
    return mask


def attributes(op, values, names):
    """An op's attributes as floats (``names`` from the op table, None for a
    variable list), refusing numbers no float holds."""
    result = []
    for i, value in enumerate(values):
        try:
            result.append(float(value))
        except OverflowError:
            name = names[i] if names is not None and i < len(names) else str(i)
            raise ValueError(f"attributes: {op} attribute {name} is out of range, got {value}") from None
    return result
