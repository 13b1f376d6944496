"""The site filter end to end: `answer(site=…)`, `qa ask/search --site`, and administration that loads no
model (`qa remove`, `qa compact`, `qa list`)."""
import json

import pytest

from qa.ingest.records import make_article
from qa.surfaces.cli import main

pytestmark = pytest.mark.integration

QUESTION = "Who is the keeper of the Skerry lighthouse?"
PAGES = [("https://www.reuters.com/world/skerry-light", "The keeper of the Skerry lighthouse is Ines Vale, "
          "the harbour board said on Monday.", "2026-11-02"),
         ("https://apnews.com/article/skerry", "The keeper of the Skerry lighthouse is Tomas Berg, according to "
          "the island council.", "2026-11-03"),
         ("notes/skerry.txt", "The keeper of the Skerry lighthouse is Ola Lind, my neighbour says.", None)]


@pytest.fixture
def sites(fresh):
    fresh.library.add([make_article(text, id=source, source=source, published=published, title=source)
                       for source, text, published in PAGES])
    return fresh


def test_an_answer_comes_only_from_the_sites_asked_for(sites):
    everywhere = sites.answer(QUESTION)
    assert everywhere.found and {p.source.site for p in everywhere.passages} == {"reuters.com", "apnews.com", ""}
    reuters = sites.answer(QUESTION, site="reuters.com")
    assert reuters.text == "Ines Vale" and reuters.source.site == "reuters.com"
    assert reuters.source.url == "https://www.reuters.com/world/skerry-light"
    assert {p.source.site for p in reuters.passages} == {"reuters.com"} and reuters.query.filter.sites == ("reuters.com",)
    ap = sites.answer(QUESTION, site=["https://apnews.com/", "bbc.co.uk"])
    assert ap.text == "Tomas Berg" and all(o.articles[0].source.site == "apnews.com" for o in ap.other_articles)
    both = sites.answer(QUESTION, site="reuters.com, apnews.com", since="2026-11-03")
    assert both.text == "Tomas Berg" and both.undated_excluded == 0
    nowhere = sites.answer(QUESTION, site="bbc.co.uk")
    assert not nowhere.found and nowhere.passages == ()
    assert [p.article.host for p in sites.search(QUESTION, 3, site="apnews.com")] == ["apnews.com"]
    assert sites.library.sites() == [("apnews.com", 1), ("reuters.com", 1)]


def test_the_cli_takes_site_on_ask_and_search(sites, capsys):
    index = str(sites.config.index_dir)
    assert main(["ask", QUESTION, "--site", "reuters.com", "--index", index, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["schema"] == 2 and data["text"] == "Ines Vale" and data["query"]["sites"] == ["reuters.com"]
    assert data["source"]["site"] == "reuters.com"
    assert main(["search", QUESTION, "--site", "apnews.com", "--site", "reuters.com", "--index", index]) == 0
    out = capsys.readouterr().out
    assert "apnews.com/article/skerry" in out and "reuters.com/world" in out and "notes/skerry.txt" not in out
    assert main(["search", QUESTION, "--site", "bbc.co.uk", "--index", index]) == 0
    assert capsys.readouterr().out.strip() == "No passages: no article is from bbc.co.uk."
    assert main(["ask", QUESTION, "--site", "not a host", "--index", index]) == 2
    assert capsys.readouterr().err.strip() == "error: site 'not a host' is not a host name; write it as reuters.com"


def test_remove_compact_and_list_load_no_model(sites, monkeypatch, capsys):
    """Administration goes through the Library: only a write that embeds loads the embedder."""
    from qa.runtime import embedding, models

    def no_model(*args, **kwargs):
        raise AssertionError("the embedding model was loaded")

    index = str(sites.config.index_dir)
    models.forget()
    monkeypatch.setattr(embedding.Embedder, "__init__", no_model)
    assert main(["list", "--index", index]) == 0
    assert main(["remove", "notes/skerry.txt", "--index", index]) == 0
    assert main(["compact", "--index", index]) == 0
    out = capsys.readouterr().out
    assert "3 articles" in out and "1 removed" in out and "compacted" in out
    monkeypatch.undo()
    models.forget()
