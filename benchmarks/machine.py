"""The line every benchmark prints first: the machine it ran on and what the engine chose for it."""

import kcp


def describe():
    """``CPU: <name>; engine kernels: <isa> (of <supported>); OpenBLAS <kernels>; <n> engine threads``."""
    info = kcp.info()
    return (f"CPU: {info['cpu']}; engine kernels: {info['isa']} (of {', '.join(info['supported'])}); "
            f"OpenBLAS {info['blas']}; {info['threads']} engine threads")
