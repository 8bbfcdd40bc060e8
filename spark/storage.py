"""Files on a local or Hadoop-compatible path (hdfs://, s3://, gs://, file://...) through
pyarrow.fs, written atomically: to a temporary name beside the target, then renamed."""
import os
import uuid

__all__ = ["is_local", "write_bytes", "read_bytes", "list_names", "remove", "join"]


def is_local(path):
    path = os.fspath(path)
    return "://" not in path


def _fs(path):
    from pyarrow import fs

    filesystem, inner = fs.FileSystem.from_uri(path)
    return filesystem, inner


def join(folder, name):
    folder = os.fspath(folder)
    if is_local(folder):
        return os.path.join(folder, name)
    return folder.rstrip("/") + "/" + name


def write_bytes(path, data):
    """Write data to path so that readers see the old file or the whole new one."""
    path = os.fspath(path)
    if is_local(path):
        from ..io.format import atomic_write

        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        atomic_write(path, [data])
        return path
    filesystem, inner = _fs(path)
    folder = inner.rsplit("/", 1)[0] if "/" in inner else ""
    if folder:
        filesystem.create_dir(folder, recursive=True)
    tmp = "%s/.%s.%s.tmp" % (folder, inner.rsplit("/", 1)[-1], uuid.uuid4().hex) if folder \
        else ".%s.%s.tmp" % (inner, uuid.uuid4().hex)
    with filesystem.open_output_stream(tmp) as out:
        out.write(data)
    filesystem.move(tmp, inner)
    return path


def read_bytes(path):
    path = os.fspath(path)
    if is_local(path):
        with open(path, "rb") as f:
            return f.read()
    filesystem, inner = _fs(path)
    with filesystem.open_input_stream(inner) as f:
        return f.read()


def list_names(folder):
    """File names in folder ([] when it does not exist)."""
    folder = os.fspath(folder)
    if is_local(folder):
        return sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    from pyarrow import fs

    filesystem, inner = _fs(folder)
    infos = filesystem.get_file_info(fs.FileSelector(inner, allow_not_found=True))
    return sorted(i.base_name for i in infos if i.type == fs.FileType.File)


def remove(path):
    path = os.fspath(path)
    if is_local(path):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        return
    filesystem, inner = _fs(path)
    filesystem.delete_file(inner)
