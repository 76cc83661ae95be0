"""Checkpoint helpers shared by the training examples: one file holds the model, optimizer and
scheduler state dicts, the step, bigmodel's RNG state and a NumPy Generator's state (the
batch sampler), plus whatever else the example passes; bm.save writes it to a temporary file
and renames it, so a crash mid-save keeps the previous checkpoint."""
import os

import bigmodel as bm


def np_state_to(state):
    """NumPy's PCG64 state as JSON-able values (its 128-bit ints as strings) for bm.save."""
    return {"state": str(state["state"]["state"]), "inc": str(state["state"]["inc"]),
            "has_uint32": int(state["has_uint32"]), "uinteger": int(state["uinteger"])}


def np_state_from(d):
    return {"bit_generator": "PCG64", "state": {"state": int(d["state"]), "inc": int(d["inc"])},
            "has_uint32": int(d["has_uint32"]), "uinteger": int(d["uinteger"])}


def save_checkpoint(path, *, model, optimizer, scheduler, step, np_rng, **extra):
    """Saves everything a run needs to continue exactly; extra keys (losses, config, ...) go along."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    bm.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "scheduler": scheduler.state_dict(), "rng": bm.get_rng_state(),
             "np_rng": np_state_to(np_rng.bit_generator.state), "step": int(step), **extra}, path)


def load_checkpoint(path, *, model, optimizer, scheduler, np_rng):
    """Restores what save_checkpoint wrote into the given objects; returns the whole checkpoint
    dict (its "step" and the extra keys). A missing file ends the run with a clear message."""
    if not os.path.exists(path):
        raise SystemExit(f"--resume: no checkpoint at {path}")
    ckpt = bm.load(path)
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    bm.set_rng_state(ckpt["rng"])
    np_rng.bit_generator.state = np_state_from(ckpt["np_rng"])
    return ckpt
