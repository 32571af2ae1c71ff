#!/usr/bin/env python3
"""Deterministic benchmark corpora for `make bench`.

    gen_corpus.py home DIR     ~400 MB tree that looks like a home directory
    gen_corpus.py tiny DIR     200,000 tiny files in nested directories
    gen_corpus.py dirs DIR     288,000 directories, one small file in each of the 3,600 parents
    gen_corpus.py mutate DIR   change 1% of the files of a `home` tree (append a line, new mtime)
    gen_corpus.py restore DIR  undo `mutate` exactly (truncate, old mtime)

Every file's content comes from an RNG seeded by its path, and every mtime is fixed, so two
runs produce byte-identical trees and so byte-identical archives. The mix is what makes a
backup hard: source trees (compressible text, many small files), binaries (skewed bytes with
string tables), tens of thousands of small config/mail files, photos (incompressible) and a few
large files of alternating random, text and zero segments (half compressible).
A `.stamp` file records the generator version; a tree with the right stamp is reused.
"""

import hashlib
import os
import random
import sys

VERSION = "5"
BASE_MTIME = 1_600_000_000

WORDS = (
    "the of and to in is for on with as by at from this that be are was it an or not but "
    "if else return while for let mut fn struct impl pub use self int char void static "
    "const unsigned long size_t uint8_t buffer length count index value result error file "
    "path name data table entry node list map key next prev head tail open close read write "
    "init free alloc copy move swap sort find insert remove update check parse print format "
    "config option default user group time date start stop begin end state mode flag type "
    "class def import module package test assert true false none null self this new delete "
    "http https server client request response header body json yaml toml html div span "
    "width height color style margin padding border font text image link script function"
).split()
PUNCT = ["(", ")", "{", "}", ";", ",", ".", " = ", " == ", " + ", " - ", "->", "::", "[", "]"]


def rng_for(path):
    return random.Random(hashlib.sha256(path.encode()).digest())


def zipf_words(r, n):
    # Zipf-like: low indexes far more often, like real vocabularies.
    weights = [1.0 / (i + 1) for i in range(len(WORDS))]
    return r.choices(WORDS, weights=weights, k=n)


def make_line_pool(r, n):
    pool = []
    for _ in range(n):
        indent = "    " * r.randrange(0, 4)
        words = zipf_words(r, r.randrange(2, 12))
        parts = []
        for w in words:
            parts.append(w)
            if r.random() < 0.3:
                parts.append(r.choice(PUNCT))
            else:
                parts.append(" ")
        if r.random() < 0.2:
            parts.append(str(r.randrange(0, 100000)))
        pool.append(indent + "".join(parts).rstrip())
    return pool


def text_from_pool(r, pool, size):
    out = []
    total = 0
    while total < size:
        lines = r.choices(pool, k=64)
        chunk = "\n".join(lines) + "\n"
        out.append(chunk)
        total += len(chunk)
    return "".join(out).encode()[:size]


# Byte table skewing uniform random bytes towards the distribution of machine code.
_SKEW = bytes(
    (0x00 if b < 70 else 0xFF if b < 85 else 0x48 if b < 97 else 0x8B if b < 107 else 0x89 if b < 115
     else 0xE8 if b < 120 else 0x0F if b < 126 else (b * 7) & 0xFF)
    for b in range(256)
)


def binary_content(r, size, strings):
    out = bytearray()
    while len(out) < size:
        kind = r.random()
        n = r.randrange(4096, 65536)
        if kind < 0.55:
            out += r.randbytes(n).translate(_SKEW)  # code
        elif kind < 0.75:
            out += b"\0".join(s.encode() for s in r.choices(strings, k=n // 12))  # symbols
        elif kind < 0.85:
            out += bytes(n)  # padding
        else:
            out += r.randbytes(n)  # compressed resources
    return bytes(out[:size])


def half_compressible(r, size, pool):
    out = bytearray()
    while len(out) < size:
        n = r.randrange(32 * 1024, 256 * 1024)
        kind = r.random()
        if kind < 0.5:
            out += r.randbytes(n)
        elif kind < 0.8:
            out += text_from_pool(r, pool, n)
        elif kind < 0.9:
            out += bytes(n)
        else:
            out += r.randbytes(n).translate(_SKEW)
    return bytes(out[:size])


class Tree:
    def __init__(self, root):
        self.root = root
        self.count = 0

    def write(self, rel, data, mode=0o644):
        path = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, mode)
        self.count += 1
        t = BASE_MTIME + self.count * 37
        os.utime(path, (t, t))

    def finish(self):
        # Directory times last: creating entries changes them.
        dirs = []
        for dirpath, _, _ in os.walk(self.root):
            dirs.append(dirpath)
        for i, d in enumerate(sorted(dirs, key=lambda p: -p.count(os.sep))):
            os.utime(d, (BASE_MTIME + i, BASE_MTIME + i))


def gen_home(root):
    t = Tree(os.path.join(root, "home"))
    # Source trees: ~100 MB of text in ~12,000 files, nested up to 4 levels.
    projects = ["kernel-mod", "webapp", "compiler", "game-engine", "scripts", "dotnet-app",
                "ml-pipeline", "docs-site"]
    exts = [".c", ".h", ".rs", ".py", ".js", ".md", ".toml", ".html"]
    for p in projects:
        r = rng_for("project/" + p)
        pool = make_line_pool(r, 4000)
        for i in range(1500):
            depth = r.randrange(0, 4)
            dirs = "/".join("d%d" % r.randrange(0, 6) for _ in range(depth))
            name = "%s/src/%s/file%04d%s" % (p, dirs, i, r.choice(exts))
            fr = rng_for(name)
            size = int(min(200_000, fr.lognormvariate(8.4, 1.0)))
            t.write("src/" + name, text_from_pool(fr, pool, size))
        # A build directory with objects.
        for i in range(30):
            name = "%s/build/obj%03d.o" % (p, i)
            fr = rng_for(name)
            t.write("src/" + name, binary_content(fr, fr.randrange(20_000, 150_000), pool[:200]))
    # Small files: ~30,000 configs, cache entries, mails, notes (50 B .. 4 KB).
    r = rng_for("small")
    pool = make_line_pool(r, 3000)
    for area, n in [(".config", 6000), (".cache/thumbs", 8000), ("Mail/inbox", 9000),
                    ("notes", 4000), (".local/share/app", 3000)]:
        for i in range(n):
            name = "%s/%02d/%02d/item%05d" % (area, i % 23, (i // 23) % 17, i)
            fr = rng_for(name)
            size = fr.randrange(50, 4096)
            if area.startswith(".cache"):
                data = fr.randbytes(size)  # thumbnails: already compressed
            else:
                data = text_from_pool(fr, pool, size)
            t.write(name, data)
    # Binaries: ~70 MB.
    strings = make_line_pool(rng_for("strings"), 2000)
    for i in range(60):
        name = "bin/tool%02d" % i if i < 30 else ".local/lib/lib%02d.so" % i
        fr = rng_for(name)
        t.write(name, binary_content(fr, fr.randrange(100_000, 2_300_000), strings), 0o755)
    # Photos: ~60 MB incompressible.
    for i in range(25):
        name = "Pictures/2023/IMG_%04d.jpg" % i
        fr = rng_for(name)
        t.write(name, b"\xff\xd8\xff\xe0" + fr.randbytes(fr.randrange(1_500_000, 3_300_000)))
    # A few large half-compressible files: ~120 MB.
    text_pool = make_line_pool(rng_for("large"), 5000)
    for name, size in [("vm/disk.img", 40_000_000), ("data/dataset.bin", 30_000_000),
                       ("Downloads/archive.dat", 20_000_000)]:
        t.write(name, half_compressible(rng_for(name), size, text_pool))
    # Logs: ~15 MB, very compressible.
    for i in range(6):
        name = "logs/app.log.%d" % i
        fr = rng_for(name)
        lines = []
        total = 0
        while total < 2_500_000:
            line = "2024-01-%02d %02d:%02d:%02d INFO worker-%d request %s took %d ms\n" % (
                fr.randrange(1, 29), fr.randrange(24), fr.randrange(60), fr.randrange(60),
                fr.randrange(8), fr.choice(WORDS), fr.randrange(1, 900))
            lines.append(line)
            total += len(line)
        t.write(name, "".join(lines).encode())
    # Links and empties.
    os.symlink("../bin/tool00", os.path.join(t.root, "logs/tool-link"))
    os.link(os.path.join(t.root, "bin/tool01"), os.path.join(t.root, "bin/tool01-hardlink"))
    os.makedirs(os.path.join(t.root, "empty/dir"), exist_ok=True)
    t.write("empty/file", b"")
    t.finish()


def gen_tiny(root):
    t = Tree(os.path.join(root, "tiny"))
    pool = make_line_pool(rng_for("tiny"), 500)
    for a in range(20):
        for b in range(100):
            for c in range(100):
                name = "a%02d/b%03d/f%03d" % (a, b, c)
                fr = random.Random(a * 1_000_000 + b * 1000 + c)
                t.write(name, text_from_pool(fr, pool, fr.randrange(0, 200)))
    t.finish()


def gen_dirs(root):
    # Many directories and few files: what an incremental level costs in memory per directory.
    t = Tree(os.path.join(root, "dirs"))
    for a in range(60):
        for b in range(60):
            for c in range(80):
                os.makedirs(os.path.join(t.root, "a%02d/b%02d/c%02d" % (a, b, c)), exist_ok=True)
            t.write("a%02d/b%02d/note" % (a, b), b"note\n")
    t.finish()


def mutated_files(root):
    files = []
    for dirpath, dirnames, filenames in os.walk(os.path.join(root, "home")):
        dirnames.sort()
        for f in sorted(filenames):
            files.append(os.path.join(dirpath, f))
    r = random.Random(42)
    return [f for f in files if r.random() < 0.01 and not os.path.islink(f)]


MARK = b"# changed for the incremental benchmark\n"


def mutate(root, undo):
    for f in mutated_files(root):
        st = os.stat(f)
        with open(f, "rb+") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - len(MARK)))
            marked = fh.read() == MARK
            if undo and marked:
                fh.truncate(size - len(MARK))
            elif not undo and not marked:
                fh.write(MARK)
        if undo:
            os.utime(f, (st.st_atime, st.st_mtime - 1000 if marked else st.st_mtime))
        else:
            os.utime(f, (st.st_atime, st.st_mtime + 1000 if not marked else st.st_mtime))


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("home", "tiny", "dirs", "mutate", "restore"):
        sys.exit(__doc__)
    what, root = sys.argv[1], sys.argv[2]
    if what in ("mutate", "restore"):
        mutate(root, undo=(what == "restore"))
        return
    stamp = os.path.join(root, ".stamp-" + what)
    if os.path.exists(stamp) and open(stamp).read() == VERSION:
        return
    target = os.path.join(root, what)
    if os.path.exists(target):
        os.system("rm -rf '%s'" % target)
    os.makedirs(root, exist_ok=True)
    {"home": gen_home, "tiny": gen_tiny, "dirs": gen_dirs}[what](root)
    with open(stamp, "w") as f:
        f.write(VERSION)


if __name__ == "__main__":
    main()
