"""Load article files and folders into `Article` records (formats: formats.py; records: records.py).

A file's article id is its path relative to the articles folder, or its absolute path when it lies
outside that folder: the same file gets the same id however it arrives (a folder build, `qa add`, an
upload), and two files never share one.
"""
from __future__ import annotations

import json
import logging
import os
import uuid
from pathlib import Path
from typing import Iterable

from ..schema import Article
from .formats import BY_SUFFIX, SUPPORTED_SUFFIXES, read_file
from .records import ArticleError, Limits, LoadResult

log = logging.getLogger(__name__)


def place_file(folder: Path, dest: Path, write) -> None:
    """Write a file beside its destination, then rename it there: a reader never sees half of it."""
    tmp = Path(folder) / f".incoming-{uuid.uuid4().hex}{dest.suffix}"
    try:
        write(tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def file_id(path: Path, articles_dir: Path | None) -> str:
    """A file's stable id: relative to the articles folder when inside it, else its absolute path."""
    resolved = Path(path).resolve()
    if articles_dir is not None:
        try:
            return resolved.relative_to(Path(articles_dir).resolve()).as_posix()
        except ValueError:
            pass
    return resolved.as_posix()


def load_file(path: Path, ident: str, limits: Limits) -> LoadResult:
    """Load one file as article(s) with id `ident` (see `file_id`); problems become messages, never exceptions.

    Messages and sources name the file by `ident`, so a server never shows its own absolute paths
    for files inside the articles folder.
    """
    result = LoadResult()
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        kind = BY_SUFFIX.get(suffix)
        if kind is None:
            raise ArticleError(f"unsupported file type {suffix or '(none)'}; use one of {', '.join(SUPPORTED_SUFFIXES)}")
        data = read_file(path, kind, limits, result, ident)
        if not data.strip():
            raise ArticleError("is empty")
        dates: list[str] = []
        kind.read(data, path, ident, result, dates, limits)
        result.warnings += [f"{ident}: {line}" for line in dates]
    except json.JSONDecodeError as err:
        result.errors.append(f"{ident}: invalid JSON at line {err.lineno}: {err.msg}")
    except RecursionError:  # 200,000 nested brackets: one message, and the other files go on
        result.errors.append(f"{ident}: nested too deeply to read (JSON or markup nesting past Python's limit)")
    except ArticleError as err:
        result.errors.append(f"{ident}: {err}")
    except OSError as err:
        result.errors.append(f"{ident}: cannot read ({err.strerror or err})")
    return result


def iter_files(paths: Iterable[Path], result: LoadResult) -> Iterable[Path]:
    """Files, and the article files of folders (recursively); missing paths become errors."""
    for path in map(Path, paths):
        if path.is_dir():
            entries = sorted(path.rglob("*"))
            articles = [f for f in entries if f.is_file() and f.suffix.lower() in SUPPORTED_SUFFIXES
                        and not f.name.startswith(OWN_TEMP)]
            if not articles:
                result.errors.append(f"{path}: no article files ({', '.join(SUPPORTED_SUFFIXES)}) in this folder")
            for link in (e for e in entries if e.is_symlink() and e.is_dir()):  # not followed: say so if it leads out
                inside(link, path, result)
            yield from (f for f in articles if inside(f, path, result))
        elif path.is_file():
            yield path
        else:
            result.errors.append(f"{path}: no such file or folder")


OWN_TEMP = ".incoming-"  # `place_file`'s half-written files: never articles


def inside(file: Path, folder: Path, result: LoadResult) -> bool:
    """Whether a file found in a folder may be read: not a link leading out of the folder, not hidden."""
    try:
        file.resolve().relative_to(folder.resolve())
    except ValueError:
        result.errors.append(f"{file}: a link to {file.resolve()}, outside {folder}; skipped (move or copy it "
                             f"into the folder to index it)")
        return False
    if file.name.startswith("."):
        result.warnings.append(f"{file}: skipped, a hidden file (its name starts with a dot); rename it to index it")
        return False
    return True


def load_paths(paths: Iterable[Path | str], articles_dir: Path | None, limits: Limits) -> LoadResult:
    """Load files and folders (ids per `file_id`); duplicate ids in one batch keep the first and report the rest."""
    result = LoadResult()
    for file, ident in article_files(paths, articles_dir, result):
        result.extend(load_file(file, ident, limits))
    return first_per_id(result)


def article_files(paths: Iterable[Path | str], articles_dir: Path | None, result: LoadResult) -> list[tuple[Path, str]]:
    """Each article file once (the same file named twice, "col" and "col/a.txt", loads once), with its id."""
    seen_files: set[Path] = set()
    out: list[tuple[Path, str]] = []
    for file in iter_files(paths, result):
        if file.resolve() not in seen_files:
            seen_files.add(file.resolve())
            out.append((file, file_id(file, articles_dir)))
    return out


def first_per_id(result: LoadResult) -> LoadResult:
    """Keep the first article of each id, with one error per dropped duplicate."""
    result.articles, dropped = one_per_id(result.articles, keep_last=False)
    result.errors += [f"duplicate article id {d.id!r} in this batch ({d.source}); kept the first ({k.source})"
                      for d, k in dropped]
    return result


def one_per_id(articles: list[Article], keep_last: bool) -> tuple[list[Article], list[tuple[Article, Article]]]:
    """One article per id, the first or the last of each; also (dropped, kept) pairs for the messages."""
    kept: dict[str, Article] = {}
    dropped: list[tuple[Article, Article]] = []
    for article in articles:
        if article.id in kept:
            old = kept[article.id]
            dropped.append((old, article) if keep_last else (article, old))
            if not keep_last:
                continue
        kept[article.id] = article
    return list(kept.values()), dropped
