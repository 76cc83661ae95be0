"""bm.cuda: CUDA availability and device queries (the runtime arrives with the CUDA issue)."""
from ._C import cuda as _cuda


def is_available():
    """True when bigmodel was built with CUDA and a GPU is visible."""
    return _cuda.is_available()


def device_count():
    """How many CUDA devices are visible (0 without a driver)."""
    return _cuda.device_count()


def built_with_cuda():
    return _cuda.built_with_cuda()
