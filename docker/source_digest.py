#!/usr/bin/env python3
"""One SHA-256 over a MicroPython source tree, the same for a git checkout and for the
checksum-pinned Debian orig tarball (tools/epx/source.py) of the same release: the Docker
image's git clone is checked equal to the tarball the host builds use.

The digest covers every regular file and symlink by its path below the tree's top, minus
what the Debian repack leaves out: submodule contents (+ds empties every lib/ submodule)
and its Files-Excluded. Standard library only (it runs in ESP-IDF's image).

    source_digest.py DIR          a checkout (its .git is skipped)
    source_digest.py TARBALL      an orig tarball (its top folder is stripped)
"""

import hashlib
import os
import sys
import tarfile

# debian/copyright's Files-Excluded of micropython 1.25.0+ds-1.
EXCLUDED = ("ports/cc3200/bootmgr/relocator/relocator.bin",)


def digest(entries):
    """entries: (path, b"f" + content or b"l" + link target); order does not matter."""
    total = hashlib.sha256()
    for path, data in sorted(entries):
        if path in EXCLUDED:
            continue
        total.update(f"{hashlib.sha256(data).hexdigest()}  {path}\n".encode())
    return total.hexdigest()


def submodules(root):
    """The submodule paths .gitmodules names (their contents are not in the +ds tarball)."""
    paths = []
    try:
        with open(os.path.join(root, ".gitmodules")) as f:
            for line in f:
                key, _, value = line.partition("=")
                if key.strip() == "path":
                    paths.append(value.strip())
    except FileNotFoundError:
        pass
    return paths


def tree_entries(root):
    skip = set(submodules(root))
    for folder, dirs, files in os.walk(root):
        rel = os.path.relpath(folder, root)
        rel = "" if rel == "." else rel + "/"
        dirs[:] = [d for d in dirs if d != ".git" and rel + d not in skip]
        for name in dirs + files:
            path = os.path.join(folder, name)
            if os.path.islink(path):
                yield rel + name, b"l" + os.readlink(path).encode()
            elif name in files and name != ".git":
                with open(path, "rb") as f:
                    yield rel + name, b"f" + f.read()


def tarball_entries(path):
    with tarfile.open(path) as tar:
        for member in tar:
            rel = member.name.split("/", 1)[1] if "/" in member.name else ""
            if member.issym():
                yield rel, b"l" + member.linkname.encode()
            elif member.isfile():
                yield rel, b"f" + tar.extractfile(member).read()


def main(argv):
    if len(argv) != 1:
        sys.exit("usage: source_digest.py DIR|TARBALL")
    where = argv[0]
    print(digest(tree_entries(where) if os.path.isdir(where) else tarball_entries(where)))


if __name__ == "__main__":
    main(sys.argv[1:])
