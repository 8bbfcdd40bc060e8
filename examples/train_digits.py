"""Train an MLP on scikit-learn's bundled digits, eagerly and as a compiled graph; save the
model, reload it and check the reloaded model predicts exactly the same.

    python examples/train_digits.py [--epochs 30] [--out digits.pf]

Exits non-zero if either mode misses 95% test accuracy or the reloaded predictions differ.
"""
import argparse
import sys
import time

import numpy as np

import pyfront as pf


def load_data(seed):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)          # pixels are 0..16
    return train_test_split(x, y.astype(np.int64), test_size=0.2, random_state=seed,
                            stratify=y)


def make_model():
    return pf.nn.Sequential([
        pf.nn.Dense(128, activation="relu"),
        pf.nn.Dense(64, activation="relu"),
        pf.nn.Dense(10),
    ])


def accuracy(model, x, y):
    with pf.no_grad():
        logits = model(pf.tensor(x)).numpy()
    return float((logits.argmax(1) == y).mean())


def train(mode, x_train, y_train, x_test, y_test, epochs, batch_size, seed):
    pf.random.seed(seed)
    model = make_model()
    optimizer = pf.optim.Adam(model.parameters(), lr=2e-3)
    if mode == "compiled":
        # forward, loss, backward and the Adam update as one native call per batch
        step = pf.train.CompiledTrainStep(model, pf.losses.cross_entropy, optimizer)
    else:
        def step(xb, yb):
            optimizer.zero_grad()
            loss = pf.losses.cross_entropy(model(pf.tensor(xb)), pf.tensor(yb))
            loss.backward()
            optimizer.step()
            return float(loss.item()), None
    rng = np.random.default_rng(seed)
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(x_train))
        start, losses = time.perf_counter(), []
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            loss, _ = step(x_train[idx], y_train[idx])
            losses.append(loss)
        rate = len(order) / (time.perf_counter() - start)
        if epoch == 1 or epoch % 5 == 0 or epoch == epochs:
            print("  [%s] epoch %2d/%d  loss %.4f  test accuracy %.4f  %7.0f samples/s"
                  % (mode, epoch, epochs, np.mean(losses), accuracy(model, x_test, y_test),
                     rate), flush=True)
    return model, accuracy(model, x_test, y_test)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="digits.pf", help="where to save the trained model")
    args = parser.parse_args(argv)

    x_train, x_test, y_train, y_test = load_data(args.seed)
    print("digits: %d training and %d test images of 8x8 pixels; %s"
          % (len(x_train), len(x_test), pf.blas_info().split(" (")[0]))
    results = {}
    for mode in ("eager", "compiled"):
        model, acc = train(mode, x_train, y_train, x_test, y_test, args.epochs,
                           args.batch_size, args.seed)
        results[mode] = (model, acc)
        print("%s mode: test accuracy %.4f" % (mode, acc))

    model = results["compiled"][0]
    pf.save(model, args.out)
    again = pf.load(args.out)
    with pf.no_grad():
        same = np.array_equal(again(pf.tensor(x_test)).numpy(), model(pf.tensor(x_test)).numpy())
    print("saved to %s; reloaded model predicts %s" % (args.out, "identically" if same else
                                                      "DIFFERENTLY"))
    ok = same and all(acc >= 0.95 for _, acc in results.values())
    print("OK" if ok else "FAILED: accuracy below 95% or reload mismatch")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
