"""Write the digits that examples/train_digits.py held out for testing as CSV for the Java and
Scala examples: 64 raw pixel values (0..16) then the true label, one image per line.

    python examples/java/export_digits.py [--out digits_test.csv] [--seed 0]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from train_digits import load_data  # noqa: E402  (the same split the model was tested on)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="digits_test.csv")
    parser.add_argument("--seed", type=int, default=0, help="the seed train_digits.py used")
    args = parser.parse_args(argv)
    _, x_test, _, y_test = load_data(args.seed)
    pixels = np.rint(x_test * 16).astype(np.int64)  # train_digits scaled the pixels by 1/16
    with open(args.out, "w") as f:
        for row, label in zip(pixels, y_test):
            f.write(",".join(str(int(v)) for v in row) + ",%d\n" % label)
    print("wrote %d test digits to %s" % (len(y_test), args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
