"""Training checkpoints of a Spark run (model, optimizer state, epoch and round, RNG, history)
in pyfront's checkpoint format, on a local or Hadoop-compatible path, written atomically."""
import json
import os
import re
import warnings

from .. import errors
from ..io.model import load_checkpoint_bytes, save_checkpoint_bytes
from . import storage

__all__ = ["save", "load", "latest", "checkpoint_name"]

_NAME = re.compile(r"^checkpoint-e(\d{5})-r(\d{7})\.pfc$")


def checkpoint_name(epoch, next_round):
    """The file for the state before round `next_round` of epoch `epoch`."""
    return "checkpoint-e%05d-r%07d.pfc" % (epoch, next_round)


def save(folder, model, optimizer, epoch, next_round, extra, keep=2):
    data = save_checkpoint_bytes(model, optimizer, epoch=epoch, step=next_round,
                                 extra=json.loads(json.dumps(extra)))
    path = storage.join(folder, checkpoint_name(epoch, next_round))
    storage.write_bytes(path, data)
    if keep:
        names = _checkpoints(folder)
        for old in names[:-keep]:
            storage.remove(storage.join(folder, old))
    return path


def _checkpoints(folder):
    """Checkpoint file names in folder, oldest first."""
    return [n for n in storage.list_names(folder) if _NAME.match(n)]


def latest(folder):
    """The newest checkpoint in folder, or None."""
    names = _checkpoints(folder)
    return storage.join(folder, names[-1]) if names else None


def _restore(path, model, optimizer):
    position = load_checkpoint_bytes(storage.read_bytes(path), model, optimizer, name=path)
    position["path"] = path
    return position


def load(path, model, optimizer):
    """Restore model and optimizer in place from a checkpoint file, or from the newest one in
    a folder that restores; returns the position {"epoch", "step" (the next round), "extra",
    "path"}. A damaged checkpoint in a folder is skipped with a warning naming it (a restore
    checks everything before changing anything, so a failed one leaves the model as it was)."""
    path = os.fspath(path)
    if _NAME.match(path.rstrip("/").rsplit("/", 1)[-1]):
        return _restore(path, model, optimizer)
    names = _checkpoints(path)
    if not names:
        raise errors.PyfrontError("resume_from=%r: no checkpoint file there (names like %s)"
                                  % (path, checkpoint_name(0, 0)))
    failures = []
    for name in reversed(names):
        candidate = storage.join(path, name)
        try:
            return _restore(candidate, model, optimizer)
        except errors.ModelFormatError as e:
            failures.append(str(e))
            warnings.warn("resume_from=%r: skipping checkpoint %s, which cannot be restored: %s"
                          % (path, candidate, e), RuntimeWarning, stacklevel=2)
    raise errors.ModelFormatError("resume_from=%r: none of its %d checkpoints can be restored:\n"
                                  "%s" % (path, len(names), "\n".join(failures)))
