"""The spark and test extras pin pandas to what PySpark supports: PySpark 4 requires 2.2 or
later and warns on every run with pandas 3 ("PySpark does not yet fully support pandas >=
3.0.0")."""
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def test_the_spark_and_test_extras_admit_only_the_pandas_pyspark_supports():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    for extra in ("spark", "test"):
        pandas = [Requirement(r) for r in extras[extra] if Requirement(r).name == "pandas"]
        assert len(pandas) == 1, extra
        spec = pandas[0].specifier
        assert "2.2.0" in spec and "2.3.3" in spec, (extra, str(spec))
        assert "2.1.4" not in spec and "3.0.0" not in spec and "3.1.1" not in spec, \
            (extra, str(spec))
