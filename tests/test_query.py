"""One `Query` with a `Filter`: parsing what people type, the SQL a filter becomes, and the site filter
resolved to chunk ids in the store (no model: vectors are random, written through the store's writer)."""
import sqlite3

import numpy as np
import pytest

from qa import Config
from qa.dates import DateRange
from qa.index.manifest import Manifest, read_manifest
from qa.index.store import META, Snapshot, connect
from qa.index.writing import Transaction, clean_up, write_lock
from qa.ingest.records import make_article
from qa.query import Filter, Query, QuestionError, host_of, site_of, sites_of
from qa.schema import Chunk


@pytest.mark.parametrize("typed,host", [("reuters.com", "reuters.com"), ("WWW.Reuters.com", "reuters.com"),
                                        ("https://www.reuters.com/world/x?y=1", "reuters.com"),
                                        (" uk.reuters.com. ", "uk.reuters.com"), ("localhost:8080", "localhost"),
                                        ("東京新聞.jp", "東京新聞.jp")])
def test_a_site_is_read_as_the_host_the_index_stores(typed, host):
    assert site_of(typed) == host


@pytest.mark.parametrize("typed", ["   ", "reuters com", "a_b.com", "-bad.com", "x" * 300, 42, "/etc/passwd"])
def test_a_site_that_is_no_host_is_refused_in_one_line(typed):
    with pytest.raises(QuestionError, match="not a host name"):
        site_of(typed)
    if not (isinstance(typed, str) and not typed.strip()):  # (a blank entry of a list is skipped)
        with pytest.raises(QuestionError, match="not a host name"):
            sites_of([typed, "reuters.com"])


def test_sites_come_once_each_from_a_list_or_one_line():
    assert sites_of("reuters.com, bbc.co.uk,reuters.com") == ("reuters.com", "bbc.co.uk")
    assert sites_of(["", "reuters.com", " "]) == ("reuters.com",)  # a blank entry of a list is no site
    assert sites_of(["https://www.bbc.co.uk/news", "bbc.co.uk"]) == ("bbc.co.uk",)
    assert sites_of(None) == sites_of("") == sites_of([]) == ()
    with pytest.raises(QuestionError, match="limit is 50"):
        sites_of([f"s{i}.example" for i in range(51)])


def test_host_of_files_is_empty_and_of_addresses_is_the_bare_host():
    assert host_of("seeds/ferry.txt") == "" and host_of("uploads/a.md") == ""
    assert host_of("https://user@WWW.Example.COM:8443/a#b") == "example.com"
    assert host_of("http://[::1]:8000/x") == "::1"


def test_a_query_is_validated_once_and_round_trips_as_json():
    config = Config()
    q = Query.of("  Who   is the keeper? ", config, k=5.0, context="The lighthouse. Who is the keeper?",
                 since="1 Nov 2026", site=["www.reuters.com"])
    assert q == Query("Who is the keeper?", 5, "The lighthouse. Who is the keeper?",
                      Filter(DateRange("2026-11-01", None), ("reuters.com",)))
    assert Query.from_dict(q.to_dict()) == q and q.search == q.context
    assert Query.of("Who?", config, context="Who?").context is None  # the same text is no context
    assert Query.of("Who?", config).k == config.k and Query.of("Who?", config).filter.empty
    for bad in (dict(k=0), dict(since="03/04/2026"), dict(site="not a host")):
        with pytest.raises(QuestionError):
            Query.of("Who?", config, **bad)


def test_a_filter_says_what_it_keeps():
    f = Filter.of("2026-11-01", "2026-11-30", "reuters.com")
    assert f.describe() == "published 2026-11-01 to 2026-11-30; from reuters.com"
    where, args = f.sql("a.published", "a.host")
    assert "a.host = :site0" in where and args["sub0"] == "%.reuters.com" and args["since"] == "2026-11-01"


ARTICLES = {"https://www.reuters.com/world/a": "2026-11-02", "https://uk.reuters.com/b": "2026-11-20",
            "https://notreuters.com/c": "2026-11-02", "https://apnews.com/d": None, "seeds/e.txt": "2026-11-02"}


def write_articles(index_dir):
    rng = np.random.default_rng(1)
    with write_lock(index_dir):
        base = read_manifest(index_dir) or Manifest("test/model", 8, 128, 1)
        clean_up(index_dir, base)
        txn = Transaction(index_dir, base)
        for source, published in ARTICLES.items():
            text = f"Story from {source}. It is news."
            article = make_article(text, id=source, source=source, published=published)
            txn.put_article(article, [Chunk(source, 0, 0, len(text), text)])
        vectors = rng.standard_normal((len(ARTICLES), 8)).astype(np.float32)
        txn.commit(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), 1000, sq8=False)


def allowed_articles(snap, f):
    return sorted(snap.chunks(list(snap.allowed(f)))[c][0].article_id for c in snap.allowed(f))


def test_the_site_filter_keeps_a_site_and_its_subdomains_only(tmp_path):
    write_articles(tmp_path)
    snap = Snapshot.open(tmp_path)
    assert allowed_articles(snap, Filter(sites=("reuters.com",))) == ["https://uk.reuters.com/b",
                                                                      "https://www.reuters.com/world/a"]
    assert allowed_articles(snap, Filter(sites=("uk.reuters.com", "apnews.com"))) == ["https://apnews.com/d",
                                                                                     "https://uk.reuters.com/b"]
    both = Filter(DateRange("2026-11-01", "2026-11-10"), ("reuters.com",))
    assert allowed_articles(snap, both) == ["https://www.reuters.com/world/a"]
    assert snap.undated_articles(Filter(DateRange("2026-11-01"), ("apnews.com",))) == 1
    assert snap.undated_articles(Filter(DateRange("2026-11-01"), ("reuters.com",))) == 0
    assert snap.sites() == [("reuters.com", 1), ("uk.reuters.com", 1), ("apnews.com", 1), ("notreuters.com", 1)] or \
        sorted(snap.sites()) == sorted([("reuters.com", 1), ("uk.reuters.com", 1), ("apnews.com", 1),
                                        ("notreuters.com", 1)])
    passage = snap.chunks([int(snap.allowed(Filter(sites=("apnews.com",)))[0])])
    assert next(iter(passage.values()))[1].host == "apnews.com"


def test_an_index_written_before_the_host_column_is_filtered_too_and_then_filled_in(tmp_path):
    write_articles(tmp_path)
    db = sqlite3.connect(tmp_path / META)
    db.executescript("DROP INDEX articles_host; ALTER TABLE articles DROP COLUMN host;")
    db.commit()
    db.close()
    snap = Snapshot.open(tmp_path)  # readers never write: the host is read from the source address
    assert snap.host != "a.host"
    assert len(allowed_articles(snap, Filter(sites=("reuters.com",)))) == 2
    connect(tmp_path, readonly=False).close()  # the next writer adds the column and fills it in
    again = Snapshot.open(tmp_path)
    assert again.host == "a.host" and len(allowed_articles(again, Filter(sites=("reuters.com",)))) == 2
