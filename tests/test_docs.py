"""Every ```python block of README.md, spark/README.md and jvm-bridge/README.md runs, so the
docs cannot drift from the code.

The blocks of one file run in order in one namespace (a block may use what an earlier one
defined), in a temporary working directory of that file, with pyfront's generator seeded. A
test per block; a block's test runs the blocks before it first when they have not run yet.

Names a block reads without defining are supplied from small data (see SUPPLIED):
  x_train, y_train, x_val, y_val, x_test, y_test   scikit-learn's digits as images
                                                    (N, 1, 8, 8) in [0, 1], int64 labels
  X, Y                                             digits as rows (64, 64), labels
  spark                                            a local[2] SparkSession whose executors
                                                    import this pyfront
  df, train_df, test_df, pixel_columns             DataFrames of digits with the columns
                                                    features (array<float>), label (long),
                                                    pixel_0..pixel_63 (double), digit (long)

An HTML comment on the line before a block's fence (blank lines between are allowed) gives
options, separated by ";":
  <!-- test: needs=dot -->            skip, naming what is missing, unless these programs
                                       are on the PATH
  <!-- test: assert acc > 0.95 -->    after the block, this expression must hold in its
                                       namespace
"""
import ast
import functools
import os
import re
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import pytest

import pyfront as pf

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", "spark/README.md", "jvm-bridge/README.md"]
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
OPTIONS = re.compile(r"^\s*<!--\s*test:(.*?)-->\s*$")


class Block:
    def __init__(self, doc, line, code, options):
        self.doc, self.line, self.code = doc, line, code     # line: the opening fence's
        self.needs, self.asserts = [], []
        for option in filter(None, (o.strip() for o in options.split(";"))):
            if option.startswith("needs="):
                self.needs += [n.strip() for n in option[len("needs="):].split(",")]
            elif option.startswith("assert "):
                self.asserts.append(option[len("assert "):].strip())
            else:
                raise ValueError("%s:%d: unknown test option %r (known: needs=..., assert ...)"
                                 % (doc, line, option))

    @property
    def where(self):
        return "%s:%d" % (self.doc, self.line)


def extract_blocks(doc, root=ROOT):
    """The ```python blocks of root/doc, in order, with the options of the comment before
    each. Fences may be indented (inside a list); the indent is removed from the code."""
    lines = (root / doc).read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        indent, lang = fence.groups()
        end = i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        if end == len(lines):
            raise ValueError("%s:%d: a ``` fence that is never closed" % (doc, i + 1))
        if lang == "python":
            before = i - 1
            while before >= 0 and not lines[before].strip():
                before -= 1
            options = OPTIONS.match(lines[before]) if before >= 0 else None
            code = "\n".join(ln[len(indent):] if ln.startswith(indent) else ln
                             for ln in lines[i + 1:end])
            blocks.append(Block(doc, i + 1, code, options.group(1) if options else ""))
        i = end + 1
    return blocks


# ---- the data blocks may use ----

@functools.lru_cache(maxsize=None)
def _digits():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return (x / 16.0).astype(np.float32), y.astype(np.int64)


def _digit_images(request):
    from sklearn.model_selection import train_test_split

    x, y = _digits()
    x = x.reshape(-1, 1, 8, 8)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0,
                                                        stratify=y)
    x_train, x_val, y_train, y_val = train_test_split(x_train, y_train, test_size=0.2,
                                                      random_state=0, stratify=y_train)
    return {"x_train": x_train, "y_train": y_train, "x_val": x_val, "y_val": y_val,
            "x_test": x_test, "y_test": y_test}


def _digit_rows(request):
    x, y = _digits()
    return {"X": x[:64], "Y": y[:64]}       # as many rows as the Spark frames


def _spark(request):
    return {"spark": request.getfixturevalue("docs_spark")}


def _spark_frames(request):
    """Small frames (a Spark job costs 0.3 s or more): 64 rows to train on (one round an
    epoch for two workers of 32-row batches), 64 to test."""
    spark = request.getfixturevalue("docs_spark")
    x, y = _digits()
    pixel_columns = ["pixel_%d" % j for j in range(64)]
    schema = ("features array<float>, label long, %s, digit long"
              % ", ".join("%s double" % c for c in pixel_columns))

    def frame(rows):
        return spark.createDataFrame([(x[i].tolist(), int(y[i]), *map(float, x[i]), int(y[i]))
                                      for i in rows], schema)

    train = frame(range(64))
    return {"df": train, "train_df": train, "test_df": frame(range(64, 128)),
            "pixel_columns": pixel_columns}


SUPPLIED = {}
for _supply, _names in [(_digit_images, "x_train y_train x_val y_val x_test y_test"),
                        (_digit_rows, "X Y"), (_spark, "spark"),
                        (_spark_frames, "df train_df test_df pixel_columns")]:
    SUPPLIED.update(dict.fromkeys(_names.split(), _supply))


@pytest.fixture(scope="session")
def docs_spark():
    sys.path.insert(0, str(ROOT / "tests" / "spark"))
    try:
        from spark_support import REASON, session_builder, spark_env
    finally:
        sys.path.pop(0)
    if REASON is not None:
        pytest.skip(REASON)
    from pyspark.sql import SparkSession

    os.environ.update({k: v for k, v in spark_env().items()
                       if k in ("SPARK_LOCAL_IP", "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON",
                                "PYTHONPATH")})
    shared = SparkSession.getActiveSession()     # the Spark tests' session, when it runs
    session = shared or session_builder("local[2,2]").getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    if shared is None:
        session.stop()


def _free_names(code):
    """The names a block reads but never assigns."""
    names = [n for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Name)]
    return ({n.id for n in names if isinstance(n.ctx, ast.Load)}
            - {n.id for n in names if isinstance(n.ctx, ast.Store)})


# ---- running the blocks of one file in order ----

class DocRun:
    """The blocks of one file, run in order in one namespace and one working directory."""

    def __init__(self, doc, blocks, workdir, root=ROOT):
        self.doc, self.blocks, self.workdir, self.root = doc, blocks, workdir, root
        self.namespace = {"__name__": "__doc_block__"}
        self.outcomes = []          # per block run so far: None, ("skip", why), ("fail", text)

    def run_through(self, index, request):
        while len(self.outcomes) <= index:
            self.outcomes.append(self._run(self.blocks[len(self.outcomes)], request))
        return self.outcomes[index]

    def _run(self, block, request):
        missing = [n for n in block.needs if shutil.which(n) is None]
        if missing:
            return ("skip", "%s needs %s, not on the PATH" % (block.where, ", ".join(missing)))
        # line numbers in tracebacks are the document's
        code = compile("\n" * block.line + block.code, str(self.root / block.doc), "exec")
        cwd = os.getcwd()
        start = time.perf_counter()
        try:
            for name in sorted(_free_names(block.code)):
                if name in SUPPLIED and name not in self.namespace:
                    self.namespace.update(SUPPLIED[name](request))
            os.chdir(self.workdir)
            exec(code, self.namespace)
            for expression in block.asserts:
                value = eval(expression, self.namespace)
                assert value, "%s: `%s` does not hold after the block" % (block.where,
                                                                         expression)
        except pytest.skip.Exception as e:         # Spark missing: the supplier skipped
            return ("skip", "%s: %s" % (block.where, e))
        except Exception as e:
            text = "".join(traceback.format_exception(type(e), e, e.__traceback__))
            return ("fail", "%s: the ```python block failed after %.1f s:\n%s"
                    % (block.where, time.perf_counter() - start, text))
        finally:
            os.chdir(cwd)
        return None


_RUNS = {}


def doc_run(doc, tmp_path_factory):
    if doc not in _RUNS:
        pf.random.seed(0)
        _RUNS[doc] = DocRun(doc, extract_blocks(doc),
                            tmp_path_factory.mktemp(doc.replace("/", "_").replace(".", "_")))
    return _RUNS[doc]


CASES = [(doc, i, block.where) for doc in DOCS for i, block in enumerate(extract_blocks(doc))]


@pytest.mark.parametrize("doc,index", [c[:2] for c in CASES], ids=[c[2] for c in CASES])
def test_doc_block(doc, index, request, tmp_path_factory):
    run = doc_run(doc, tmp_path_factory)
    outcome = run.run_through(index, request)
    if outcome is None:
        return
    kind, text = outcome
    if kind == "skip":
        pytest.skip(text)
    earlier = ["%s (%s)" % (b.where, {"fail": "failed", "skip": "skipped"}[o[0]])
               for b, o in zip(run.blocks[:index], run.outcomes) if o is not None]
    if earlier:
        text += "\n(this block may depend on earlier ones that did not run through: %s)" \
            % ", ".join(earlier)
    pytest.fail(text, pytrace=False)


def test_what_the_blocks_wrote_is_git_ignored():
    """A reader runs the snippets in the checkout: what they write must not show up in git
    status. Checks the files the blocks that ran in this session wrote."""
    written = sorted({str(p.relative_to(run.workdir)) for run in _RUNS.values()
                      for p in run.workdir.rglob("*") if p.is_file()})
    if not written:
        pytest.skip("no doc block that writes files ran in this session")
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout, or no git")
    proc = subprocess.run(["git", "check-ignore", "--no-index", "--stdin"], cwd=ROOT,
                          input="\n".join(written), capture_output=True, text=True)
    assert sorted(set(written) - set(proc.stdout.split())) == []


# ---- the harness itself ----

def test_every_doc_has_its_python_blocks_found():
    counts = {doc: len(extract_blocks(doc)) for doc in DOCS}
    text = {doc: (ROOT / doc).read_text() for doc in DOCS}
    for doc in DOCS:
        assert counts[doc] == len(re.findall(r"^\s*```python\s*$", text[doc], re.M)), doc


def test_a_broken_block_fails_naming_its_file_and_line(tmp_path, request):
    doc = tmp_path / "DOC.md"
    doc.write_text("# title\n\n```python\nvalue = 41\n```\n\ntext\n\n"
                   "<!-- test: assert value == 42 -->\n```python\nvalue += 1\n```\n\n"
                   "```python\nimport pyfront as pf\n\npf.tensor([1.0, 2.0]) @ pf.tensor([[1.0]])\n"
                   "```\n\n<!-- test: needs=no-such-program-here -->\n```python\nboom\n```\n")
    blocks = extract_blocks("DOC.md", root=tmp_path)
    assert [b.line for b in blocks] == [3, 10, 14, 21]
    assert blocks[1].asserts == ["value == 42"] and blocks[3].needs == ["no-such-program-here"]
    run = DocRun("DOC.md", blocks, tmp_path, root=tmp_path)
    assert run.run_through(1, request) is None and run.namespace["value"] == 42
    kind, text = run.run_through(2, request)
    assert kind == "fail"
    assert text.startswith("DOC.md:14: the ```python block failed")
    assert 'line 17' in text and "ShapeError" in text      # the document's own line
    assert run.run_through(3, request) == (
        "skip", "DOC.md:21 needs no-such-program-here, not on the PATH")
    doc.write_text("<!-- test: assert value == 0 -->\n```python\nvalue = 1\n```\n")
    kind, text = DocRun("DOC.md", extract_blocks("DOC.md", root=tmp_path), tmp_path,
                        root=tmp_path).run_through(0, request)
    assert kind == "fail" and "DOC.md:2: `value == 0` does not hold after the block" in text
