"""Training curves from a History to a PNG (or any format matplotlib writes), one panel per
quantity with its validation twin beside it. matplotlib is an optional extra."""
import os

__all__ = ["plot_history"]


def _matplotlib():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plot_history needs matplotlib: pip install matplotlib (or "
                          "pip install pyfront[plot])") from None
    return Figure, FigureCanvasAgg


def plot_history(history, path, metrics=None, title=None, dpi=100):
    """Write one panel per logged quantity (loss, accuracy, lr, ...; `metrics` picks them),
    training and val_ curves together, against the epoch. Returns the path written.

    history: a History from fit, or its .history dict. Uses matplotlib's object API with the
    Agg canvas, so no GUI backend and no global pyplot state are touched."""
    curves = getattr(history, "history", history)
    if not isinstance(curves, dict) or not curves:
        raise ValueError("plot_history needs a History or a non-empty dict of per-epoch lists")
    epochs = list(getattr(history, "epoch", []) or range(len(next(iter(curves.values())))))
    names = metrics or [k for k in curves if not k.startswith("val_")]
    names = [k for k in names if _numbers(curves.get(k)) or _numbers(curves.get("val_" + k))]
    if not names:
        raise ValueError("plot_history: nothing numeric to plot among %s" % sorted(curves))
    Figure, Canvas = _matplotlib()
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    fig = Figure(figsize=(4.2 * cols, 3.2 * rows), dpi=dpi)
    Canvas(fig)
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, i + 1)
        drawn = 0
        for key, label, style in ((name, "train", "-"), ("val_" + name, "validation", "--")):
            values = curves.get(key)
            if _numbers(values):
                xs = [e + 1 for e in epochs[:len(values)]]
                ax.plot(xs, values, style, marker="o", markersize=3, label=label)
                drawn += 1
        ax.set_title(name)
        ax.set_xlabel("epoch")
        if name in ("lr", "learning_rate"):
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        if drawn > 1:
            ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fig.savefig(path)
    return path


def _numbers(values):
    if not values:
        return False
    try:
        return all(isinstance(float(v), float) for v in values)
    except (TypeError, ValueError):
        return False
