"""Train a pyfront network on scikit-learn's digits across Spark executors, then score and
evaluate the test set on the cluster.

    spark-submit --master local[2] examples/spark_train_digits.py
    spark-submit --master spark://127.0.0.1:7077 examples/spark_train_digits.py \\
        --strategy average --frequency 8 --model cnn

pyfront must be importable by the driver and by every executor (installed on the nodes, or on
PYTHONPATH; see spark/README.md). Exits non-zero below the target test accuracy.
"""
import argparse
import sys
import time

import numpy as np

import pyfront as pf
from pyfront.spark import ParameterAveraging, SparkTrainer, SyncSGD, evaluate, predict


def make_model(kind):
    if kind == "cnn":
        return pf.nn.Sequential([
            pf.nn.Conv2D(32, 3, padding="same", activation="relu"), pf.nn.MaxPool2D(2),
            pf.nn.Conv2D(64, 3, padding="same", activation="relu"), pf.nn.MaxPool2D(2),
            pf.nn.Flatten(), pf.nn.Dense(128, activation="relu"), pf.nn.Dense(10)])
    return pf.nn.Sequential([pf.nn.Dense(128, activation="relu"),
                             pf.nn.Dense(64, activation="relu"), pf.nn.Dense(10)])


def digits_frames(spark, seed):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)                 # pixels are 0..16
    parts = train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y)
    x_train, x_test, y_train, y_test = parts
    frame = lambda xs, ys: spark.createDataFrame(  # noqa: E731
        [(i, r.tolist(), int(t)) for i, (r, t) in enumerate(zip(xs, ys))],
        "id long, features array<float>, label long")
    return frame(x_train, y_train), frame(x_test, y_test)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("mlp", "cnn"), default="mlp")
    parser.add_argument("--strategy", choices=("sync", "average"), default="average")
    parser.add_argument("--frequency", type=int, default=8,
                        help="local steps between averages (--strategy average)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--workers", type=int, default=None,
                        help="default: the cluster's cores")
    parser.add_argument("--batch-size", type=int, default=32, help="rows per step per worker")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint-dir", help="local or Hadoop-compatible folder")
    parser.add_argument("--out", help="save the trained model here (pyfront format)")
    parser.add_argument("--target", type=float, default=0.95)
    parser.add_argument("--verbose", type=int, default=1)
    args = parser.parse_args(argv)

    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName("pyfront digits").getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    print("Spark %s, master %s, %d cores" % (spark.version, spark.sparkContext.master,
                                             spark.sparkContext.defaultParallelism), flush=True)
    train_df, test_df = digits_frames(spark, args.seed)

    pf.random.seed(args.seed)
    model = make_model(args.model)
    model.compile(optimizer=pf.optim.Adam(lr=args.lr), loss="cross_entropy",
                  metrics=["accuracy"])
    strategy = SyncSGD() if args.strategy == "sync" else ParameterAveraging(args.frequency)
    trainer = SparkTrainer(model, strategy, num_workers=args.workers,
                           batch_size_per_worker=args.batch_size, seed=args.seed,
                           input_shape=(1, 8, 8) if args.model == "cnn" else None,
                           checkpoint_dir=args.checkpoint_dir,
                           checkpoint_every=10 if args.checkpoint_dir else None,
                           verbose=args.verbose)
    start = time.perf_counter()
    history = trainer.fit(train_df, epochs=args.epochs, validation_data=test_df)
    print("trained %s with %s in %.1f s; validation accuracy by epoch: %s"
          % (args.model, strategy, time.perf_counter() - start,
             " ".join("%.3f" % a for a in history["val_accuracy"])), flush=True)

    # score on the cluster: one row per test image, the model shipped once per executor
    scored = predict(model, test_df, input_col="features", output_col="digit", output="class")
    correct = scored.where("digit = label").count()
    accuracy = correct / test_df.count()
    result = evaluate(model, test_df)
    print("test accuracy %.4f (predict), %.4f (evaluate), test loss %.4f"
          % (accuracy, result["accuracy"], result["loss"]), flush=True)
    if args.out:
        pf.save(model, args.out)
        print("saved to", args.out)
    spark.stop()
    ok = accuracy >= args.target
    print("OK" if ok else "FAILED: test accuracy below %.2f" % args.target, flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
