"""Builds pyfront-bridge.jar from the bridge's Java sources, with the JDK's javac and jar
against the py4j jar that the py4j wheel ships. No Maven, no network.

setup.py runs it when the wheel is built, which ships the jar (and the sources) inside
pyfront.jvm; `python -m pyfront.jvm jar` compiles on first use only where no jar was shipped
(no JDK at build time, or an editable install, which reads the checkout's jvm-bridge/src).
It also runs stand-alone (`python3 jvm-bridge/python/build.py --out DIR/pyfront-bridge.jar`), so
it imports nothing from pyfront.
"""
import argparse
import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

JAVA_RELEASE = "17"  # java.net.UnixDomainSocketAddress needs 16+; 17 is the LTS we test
JAR_NAME = "pyfront-bridge.jar"
PACKAGE_DIR = os.path.dirname(os.path.realpath(__file__))  # through symlinked installs too
# built with the wheel, beside this module
SHIPPED_JAR = os.path.join(PACKAGE_DIR, JAR_NAME)
# an installed package carries the sources in java/; a checkout has Maven's layout beside it
SOURCE_DIR = next((d for d in (os.path.join(PACKAGE_DIR, "java"),
                               os.path.join(os.path.dirname(PACKAGE_DIR), "src", "main", "java"))
                   if os.path.isdir(d)), os.path.join(PACKAGE_DIR, "java"))


class BuildError(RuntimeError):
    pass


def py4j_jar():
    """The py4j jar: $PY4J_JAR if set, else the one the py4j wheel installed. Where py4j is
    not importable (an isolated wheel build), the wheel's jar is looked for under this
    interpreter's prefixes (share/py4j), where pip puts it."""
    path = os.environ.get("PY4J_JAR")
    if path:
        if not os.path.isfile(path):
            raise BuildError("$PY4J_JAR names %s, which is not a file" % path)
        return path
    try:
        from py4j.java_gateway import find_jar_path
    except ImportError:
        found = sorted(jar for prefix in {sys.prefix, sys.base_prefix}
                       for jar in glob.glob(os.path.join(prefix, "share", "py4j", "py4j*.jar")))
        if found:
            return found[-1]
        raise BuildError("py4j is not installed: pip install py4j (or pyfront's jvm extra), "
                         "or set $PY4J_JAR") from None
    path = find_jar_path()
    if not path or not os.path.isfile(path):
        raise BuildError("the py4j wheel's jar was not found (py4j.java_gateway.find_jar_path() "
                         "returned %r)" % (path,))
    return path


def jdk_tool(name):
    """javac / jar / java from $JAVA_HOME, else from the PATH."""
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = os.path.join(home, "bin", name)
        if os.path.isfile(candidate):
            return candidate
    found = shutil.which(name)
    if not found:
        raise BuildError("%s not found: install a JDK (%s or newer) and put it on the PATH or "
                         "set JAVA_HOME" % (name, JAVA_RELEASE))
    return found


def java_sources(root=SOURCE_DIR):
    out = []
    for folder, _, files in os.walk(root):
        out += [os.path.join(folder, f) for f in files if f.endswith(".java")]
    if not out:
        raise BuildError("no Java sources under %s" % root)
    return sorted(out)


def _fingerprint(sources, classpath):
    h = hashlib.sha256(JAVA_RELEASE.encode())
    for path in sources:
        h.update(os.path.relpath(path, SOURCE_DIR).encode())
        with open(path, "rb") as f:
            h.update(f.read())
    h.update(os.path.basename(classpath).encode())
    return h.hexdigest()[:16]


def cache_dir():
    base = os.environ.get("PYFRONT_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "pyfront")
    return os.path.join(base, "jvm")


def compile_classes(out_dir, sources=None, classpath=None, release=JAVA_RELEASE):
    """javac the sources into out_dir; BuildError with javac's messages on failure."""
    sources = sources or java_sources()
    classpath = classpath or py4j_jar()
    cmd = [jdk_tool("javac"), "--release", release, "-encoding", "UTF-8", "-Xlint:all",
           "-Xlint:-options", "-Xlint:-serial", "-d", out_dir, "-cp", classpath] + sources
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise BuildError("javac failed:\n%s%s" % (done.stdout, done.stderr))
    return out_dir


def _write_jar(classes, jar_path, version):
    manifest = ("Manifest-Version: 1.0\nImplementation-Title: pyfront-bridge\n"
                "Implementation-Version: %s\nAutomatic-Module-Name: org.pyfront\n" % version)
    try:
        tool = jdk_tool("jar")
    except BuildError:
        tool = None
    if tool:
        with tempfile.NamedTemporaryFile("w", suffix=".mf", delete=False) as mf:
            mf.write(manifest)
        try:
            done = subprocess.run([tool, "--create", "--file", jar_path, "--manifest", mf.name,
                                   "-C", classes, "."], capture_output=True, text=True)
        finally:
            os.unlink(mf.name)
        if done.returncode != 0:
            raise BuildError("jar failed:\n%s%s" % (done.stdout, done.stderr))
        return
    with zipfile.ZipFile(jar_path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("META-INF/MANIFEST.MF", manifest)
        for folder, _, files in os.walk(classes):
            for f in sorted(files):
                full = os.path.join(folder, f)
                z.write(full, os.path.relpath(full, classes))


def build_jar(out=None, force=False):
    """Path of an up-to-date pyfront-bridge.jar: out if given (built there), else the jar
    shipped with the package, else one in the user cache named by a hash of the sources (so an
    upgrade never runs stale classes), built on first use. Built atomically."""
    if out is None and not force and os.path.isfile(SHIPPED_JAR):
        return SHIPPED_JAR
    sources = java_sources()
    classpath = py4j_jar()
    fingerprint = _fingerprint(sources, classpath)
    if out is None:
        out = os.path.join(cache_dir(), "pyfront-bridge-%s.jar" % fingerprint)
        if os.path.isfile(out) and not force:
            return out
    out = os.path.abspath(out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pyfront-javac-") as tmp:
        classes = compile_classes(os.path.join(tmp, "classes"), sources, classpath)
        partial = os.path.join(os.path.dirname(out), ".%s.%d.tmp" % (os.path.basename(out),
                                                                      os.getpid()))
        try:
            _write_jar(classes, partial, fingerprint)
            os.replace(partial, out)
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
    return out


def classpath(jar=None):
    """The classpath a Java program needs: the bridge jar, then py4j's."""
    return os.pathsep.join([jar or build_jar(), py4j_jar()])


def main(argv=None):
    parser = argparse.ArgumentParser(description="Build pyfront-bridge.jar (javac + jar).")
    parser.add_argument("--out", help="where to write the jar (default: the user cache)")
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    args = parser.parse_args(argv)
    try:
        print(build_jar(args.out, args.force))
    except BuildError as e:
        print("pyfront-bridge: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
