"""Command line of pyfront.jvm: `serve` runs a worker, `jar` / `classpath` locate the Java side."""
import argparse
import sys

from . import build


def _model_spec(text):
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError("expected NAME=PATH, got %r" % text)
    return name, path


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pyfront.jvm",
                                     description="The Python side of pyfront's JVM bridge.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve", help="serve models to Java over Py4J control and a Unix-socket data channel",
        description="Serve models to a JVM. Binds 127.0.0.1 on a free port, prints a "
        "PYFRONT_WORKER_READY line with it, requires the token (stdin's first line with "
        "--token-stdin, else $PYFRONT_JVM_TOKEN), and exits when standard input closes.")
    serve.add_argument("--model", action="append", type=_model_spec, required=True,
                       metavar="NAME=PATH", help="a model file written by pf.save (repeatable)")
    serve.add_argument("--threads", type=int, help="native threads for inference")
    serve.add_argument("--max-frame-mb", type=int, default=512,
                       help="largest request body accepted, in MiB (default 512)")
    serve.add_argument("--socket-dir", help="folder for the data socket (default: $TMPDIR)")
    serve.add_argument("--token-stdin", action="store_true",
                       help="read the auth token from the first line of standard input (unlike "
                       "the environment, no other process can read it there)")
    serve.add_argument("--auth-timeout", type=float, default=5.0, metavar="SECONDS",
                       help="a connection that has not shown the token by then is closed "
                       "(default 5)")
    serve.add_argument("--max-connections", type=int, default=64,
                       help="authenticated connections at most, on each of the control and "
                       "data channels (default 64)")
    serve.add_argument("--spin-us", type=int, default=1000, metavar="MICROSECONDS",
                       help="how long a connection spins for its next request before blocking "
                       "(default 1000; 0: never): a blocked thread's wake-up costs tens of us "
                       "on a VM")
    serve.add_argument("--no-stdin-watch", action="store_true",
                       help="keep running when stdin closes (for a service manager that "
                       "stops the worker itself)")
    jar = sub.add_parser("jar", help="print the path of pyfront-bridge.jar, building it if needed")
    jar.add_argument("--rebuild", action="store_true")
    sub.add_parser("classpath", help="print the classpath for java -cp (bridge jar and py4j)")
    args = parser.parse_args(argv)

    if args.command == "serve":
        from .worker import serve as run

        models = dict(args.model)
        if len(models) != len(args.model):
            parser.error("a model name is given twice")
        return run(models, threads=args.threads, max_frame_bytes=args.max_frame_mb << 20,
                   watch_stdin=not args.no_stdin_watch, socket_dir=args.socket_dir,
                   token_stdin=args.token_stdin, auth_timeout=args.auth_timeout,
                   max_connections=args.max_connections, spin_us=args.spin_us)
    try:
        if args.command == "jar":
            print(build.build_jar(force=args.rebuild))
        else:
            print(build.classpath())
    except build.BuildError as e:
        print("pyfront.jvm: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
