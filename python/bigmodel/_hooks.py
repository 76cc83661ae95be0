"""The handle register_hook returns: handle.remove() turns the hook off (also as a context
manager), as torch.utils.hooks.RemovableHandle does."""


class RemovableHookHandle:
    def __init__(self, remove_fn):
        self._remove_fn = remove_fn

    def remove(self):
        if self._remove_fn is not None:
            self._remove_fn()
            self._remove_fn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False
