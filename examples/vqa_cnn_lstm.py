"""Visual question answering on a generated task: a two-input functional model — a CNN over
the image, an LSTM over the question, merged into an answer classifier (Deeplearning4j's
ComputationGraph / Keras functional case).

Images (3x16x16) hold one shape (square, cross or diamond) in one colour (red, green or blue) in
one quadrant; questions ask "what shape ...", "what colour ..." or "where ...". Ten answers in
all, so guessing gets about 10%; the model must read the question to know what to look for.

    python examples/vqa_cnn_lstm.py [--samples 6000] [--epochs 12]
"""
import argparse
import sys

import numpy as np

import pyfront as pf

SHAPES, COLOURS = ["square", "cross", "diamond"], ["red", "green", "blue"]
PLACES = ["top-left", "top-right", "bottom-left", "bottom-right"]
ANSWERS = SHAPES + COLOURS + PLACES
WORDS = ["<pad>", "what", "shape", "colour", "where", "is", "the", "object", "which", "?"]
QUESTIONS = {"shape": ["what", "shape", "is", "the", "object", "?"],
             "colour": ["which", "colour", "is", "the", "object", "?"],
             "place": ["where", "is", "the", "object", "?"]}
LENGTH = 6


def draw(shape, colour, place, rng):
    img = rng.normal(0, 0.1, (3, 16, 16)).astype(np.float32)
    cy, cx = (4 if place < 2 else 11), (4 if place % 2 == 0 else 11)
    cy, cx = cy + rng.integers(-1, 2), cx + rng.integers(-1, 2)
    yy, xx = np.mgrid[0:16, 0:16]
    dy, dx = np.abs(yy - cy), np.abs(xx - cx)
    mask = {"square": (dy <= 2) & (dx <= 2),
            "cross": ((dy <= 3) & (dx == 0)) | ((dx <= 3) & (dy == 0)),
            "diamond": dy + dx <= 3}[SHAPES[shape]]
    img[colour][mask] += 1.0
    return img


def generate(n, seed):
    rng = np.random.default_rng(seed)
    images = np.empty((n, 3, 16, 16), np.float32)
    questions = np.zeros((n, LENGTH), np.int64)
    answers = np.empty(n, np.int64)
    kinds = list(QUESTIONS)
    for i in range(n):
        shape, colour, place = rng.integers(3), rng.integers(3), rng.integers(4)
        images[i] = draw(shape, colour, place, rng)
        kind = kinds[rng.integers(3)]
        words = QUESTIONS[kind]
        questions[i, :len(words)] = [WORDS.index(w) for w in words]
        answers[i] = {"shape": shape, "colour": 3 + colour, "place": 6 + place}[kind]
    return images, questions, answers


def make_model():
    image = pf.nn.Input((3, 16, 16), name="image")
    question = pf.nn.Input((LENGTH,), dtype="int64", name="question")
    v = pf.nn.Conv2D(16, 3, padding="same", activation="relu")(image)
    v = pf.nn.MaxPool2D(2)(v)
    v = pf.nn.Conv2D(32, 3, padding="same", activation="relu")(v)
    v = pf.nn.MaxPool2D(2)(v)
    v = pf.nn.Flatten()(v)
    v = pf.nn.Dense(64, activation="relu")(v)
    q = pf.nn.Embedding(len(WORDS), 16)(question)
    q = pf.nn.LSTM(32)(q)
    h = pf.nn.Concatenate()(v, q)
    h = pf.nn.Dense(64, activation="relu")(h)
    answer = pf.nn.Dense(len(ANSWERS))(h)
    return pf.nn.Model(inputs=[image, question], outputs=answer, name="vqa")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=6000)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", type=float, default=0.85)
    parser.add_argument("--verbose", type=int, default=2)
    args = parser.parse_args(argv)

    images, questions, answers = generate(args.samples, args.seed)
    cut = int(0.8 * args.samples)
    pf.random.seed(args.seed)
    model = make_model().hybridize()
    model.compile(optimizer=pf.optim.Adam(lr=3e-3), loss="cross_entropy", metrics=["accuracy"])
    model.fit([images[:cut], questions[:cut]], answers[:cut], batch_size=64,
              epochs=args.epochs, validation_split=0.1, seed=args.seed, verbose=args.verbose)
    loss, acc = model.evaluate([images[cut:], questions[cut:]], answers[cut:])
    chance = np.bincount(answers[:cut]).max() / cut
    print("held-out accuracy %.4f (majority-answer guess %.4f; target %.2f)"
          % (acc, chance, args.target))
    return 0 if acc >= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
