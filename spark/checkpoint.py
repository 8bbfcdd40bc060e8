"""Training checkpoints of a Spark run (model, optimizer state, epoch and round, RNG, history)
in pyfront's checkpoint format, on a local or Hadoop-compatible path, written atomically."""
import json
import os
import re
import tempfile

from .. import errors
from . import storage

__all__ = ["save", "load", "latest", "checkpoint_name"]

_NAME = re.compile(r"^checkpoint-e(\d{5})-r(\d{7})\.pfc$")


def checkpoint_name(epoch, next_round):
    """The file for the state before round `next_round` of epoch `epoch`."""
    return "checkpoint-e%05d-r%07d.pfc" % (epoch, next_round)


def save(folder, model, optimizer, epoch, next_round, extra, keep=2):
    import pyfront as pf

    fd, tmp = tempfile.mkstemp(prefix="pyfront-ckpt-", suffix=".pfc")
    os.close(fd)
    try:
        pf.save_checkpoint(tmp, model, optimizer, epoch=epoch, step=next_round,
                           extra=json.loads(json.dumps(extra)))
        with open(tmp, "rb") as f:
            data = f.read()
    finally:
        os.unlink(tmp)
    path = storage.join(folder, checkpoint_name(epoch, next_round))
    storage.write_bytes(path, data)
    if keep:
        names = [n for n in storage.list_names(folder) if _NAME.match(n)]
        for old in names[:-keep]:
            storage.remove(storage.join(folder, old))
    return path


def latest(folder):
    """The newest checkpoint in folder, or None."""
    names = [n for n in storage.list_names(folder) if _NAME.match(n)]
    return storage.join(folder, names[-1]) if names else None


def load(path, model, optimizer):
    """Restore model and optimizer in place from a checkpoint file, or from the newest one in
    a folder; returns the position {"epoch", "step" (the next round), "extra"}."""
    import pyfront as pf

    path = os.fspath(path)
    name = path.rstrip("/").rsplit("/", 1)[-1]
    if not _NAME.match(name):
        found = latest(path)
        if found is None:
            raise errors.PyfrontError("resume_from=%r: no checkpoint file there (names like %s)"
                                      % (path, checkpoint_name(0, 0)))
        path = found
    data = storage.read_bytes(path)
    fd, tmp = tempfile.mkstemp(prefix="pyfront-ckpt-", suffix=".pfc")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        position = pf.load_checkpoint(tmp, model, optimizer)
    finally:
        os.unlink(tmp)
    position["path"] = path
    return position
