"""A small CNN (two convolution layers + a dense head) on scikit-learn's 8x8 digits, trained
with the Keras-style API as a compiled graph; or on MNIST from IDX files when given a folder.

    python examples/cnn_digits.py [--epochs 15] [--mnist DIR] [--out cnn.pf]

Exits non-zero below the target test accuracy (97%).
"""
import argparse
import sys

import numpy as np

import pyfront as pf


def load(args):
    if args.mnist:
        (x_train, y_train), (x_test, y_test) = pf.data.load_mnist(args.mnist)
        scale = 255.0
    else:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        x, y = load_digits(return_X_y=True)
        x = x.reshape(-1, 8, 8)
        x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2,
                                                            random_state=args.seed, stratify=y)
        scale = 16.0
    prep = lambda a: (np.asarray(a, np.float32) / scale)[:, None, :, :]   # (N, 1, H, W)
    return prep(x_train), np.asarray(y_train, np.int64), prep(x_test), np.asarray(y_test,
                                                                                  np.int64)


def make_cnn():
    return pf.nn.Sequential([
        pf.nn.Conv2D(32, 3, padding="same", activation="relu"), pf.nn.MaxPool2D(2),
        pf.nn.Conv2D(64, 3, padding="same", activation="relu"), pf.nn.MaxPool2D(2),
        pf.nn.Flatten(), pf.nn.Dense(128, activation="relu"), pf.nn.Dense(10)])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--mnist", help="folder with MNIST's four IDX files (optional)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", type=float, default=0.97)
    parser.add_argument("--out", help="save the trained model here")
    parser.add_argument("--verbose", type=int, default=2)
    args = parser.parse_args(argv)

    x_train, y_train, x_test, y_test = load(args)
    print("training on %d images of %s, testing on %d" % (len(x_train), x_train.shape[1:],
                                                          len(x_test)))
    pf.random.seed(args.seed)
    cnn = make_cnn().hybridize()          # fit runs one compiled native call per batch
    cnn.compile(optimizer=pf.optim.SGD(lr=0.05, momentum=0.9), loss="cross_entropy",
                metrics=["accuracy"])
    # the learning rate follows half a cosine down to zero over the run
    schedule = pf.train.callbacks.LearningRateScheduler(
        pf.optim.schedules.CosineDecay(0.05, args.epochs))
    cnn.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs,
            validation_split=0.1, seed=args.seed, verbose=args.verbose, callbacks=[schedule])
    loss, acc = cnn.evaluate(x_test, y_test)
    print("test loss %.4f, test accuracy %.4f (target %.2f)" % (loss, acc, args.target))
    if args.out:
        pf.save(cnn, args.out)
        print("saved to", args.out)
    return 0 if acc >= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
