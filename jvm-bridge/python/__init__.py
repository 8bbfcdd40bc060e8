"""pyfront.jvm: the Python side of the JVM bridge. Java and Scala services load trained pyfront
models through org.pyfront.Model, which starts and supervises `python -m pyfront.jvm serve`.

    python -m pyfront.jvm jar         # the path of pyfront-bridge.jar
    python -m pyfront.jvm classpath   # the bridge jar and py4j's, for java -cp
    PYFRONT_JVM_TOKEN=... python -m pyfront.jvm serve --model digits=digits.pf

The jar is built with the wheel and ships inside this package, with its Java sources (java/);
where it was not built (no JDK then, or an editable install) the sources are compiled on first
use with the local JDK against the py4j wheel's jar.
"""
from .build import BuildError, build_jar, classpath, py4j_jar

__all__ = ["build_jar", "classpath", "py4j_jar", "BuildError", "serve"]


def serve(*args, **kwargs):
    """Run a worker in this process (see pyfront.jvm.worker.serve)."""
    from .worker import serve as _serve

    return _serve(*args, **kwargs)
