"""A small news site served on 127.0.0.1 for the tests: one developing story in three versions, an RSS
feed, a sitemap and a page full of clutter. Pages are addressed as http://news.localhost:PORT/…
(names under .localhost are loopback, RFC 6761), because trafilatura keeps only links on a domain name."""
from __future__ import annotations

import hashlib
import http.server
import json
import threading
import time
from dataclasses import dataclass

STORY = [  # (path, published, how the page states its date, title, the sentence with the figure)
    ("/news/riverton-floods-12-killed.html", "2026-11-02", "json-ld",
     "At least 12 killed as floods sweep through Riverton",
     "At least 12 people were killed when flash floods swept through Riverton on Sunday night, emergency "
     "services said."),
    ("/news/riverton-flood-toll-19.html", "2026-11-03", "meta",
     "Riverton flood toll rises to 19",
     "The death toll from the Riverton floods rose to 19 on Monday as rescuers reached villages cut off by the "
     "water."),
    ("/news/riverton-floods-23-dead.html", "2026-11-05", "meta-name",
     "Officials confirm 23 dead in Riverton floods",
     "Officials confirmed 23 dead in the Riverton floods on Wednesday, the highest toll in the region in fifty "
     "years."),
]
CLUTTER_PATH = "/news/riverton-bridge-vote.html"
CLUTTER_WORDS = ["We use cookies", "Accept all cookies", "Home | World | Sport", "Great article, thanks",
                 "Related: Ten best walks", "Subscribe to our newsletter"]
BODY = ("The river burst its banks after three days of heavy rain, and the water rose faster than forecasters "
        "had expected. Schools across the district stayed closed, and the regional government opened shelters "
        "in sports halls for families whose homes were flooded.\n\nVolunteers from neighbouring towns brought "
        "boats, food and blankets, and the army sent trucks to move people from the lowest streets to higher "
        "ground. Power was cut to several thousand homes while engineers checked the substations.")


def story_page(base: str, path: str, published: str, how: str, title: str, figure: str) -> str:
    dated = {
        "json-ld": '<script type="application/ld+json">' + json.dumps(
            {"@context": "https://schema.org", "@type": "NewsArticle", "headline": title,
             "datePublished": f"{published}T08:30:00+00:00", "author": {"@type": "Person", "name": "Ana Ruiz"},
             "publisher": {"@type": "Organization", "name": "Riverton Herald"}}) + "</script>",
        "meta": f'<meta property="article:published_time" content="{published}T09:15:00Z">',
        "meta-name": f'<meta name="date" content="{published}">',
    }[how]
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title} | Riverton Herald</title>
<link rel="canonical" href="{base}{path}">{dated}
<meta property="og:site_name" content="Riverton Herald"><meta name="author" content="Ana Ruiz"></head>
<body><nav><a href="/">Home</a> | <a href="/world">World</a> | <a href="/sport">Sport</a></nav>
<article><h1>{title}</h1><p>{figure}</p>{''.join(f'<p>{p}</p>' for p in BODY.split(chr(10) * 2))}</article>
<footer>© 2019 Riverton Herald</footer></body></html>"""


def clutter_page(base: str) -> str:
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>Council approves Riverton bridge</title>
<link rel="canonical" href="{base}{CLUTTER_PATH}"><meta property="article:published_time" content="2026-11-04"></head>
<body><div id="cookie-banner" class="cookie-consent"><p>We use cookies to improve your experience on our site and
to show you relevant advertising. Accept all cookies or manage your choices.</p><button>Accept all cookies</button></div>
<header><nav><ul><li><a href="/">Home | World | Sport</a></li><li><a href="/news">News</a></li></ul></nav></header>
<main><article><h1>Council approves Riverton bridge</h1>
<p>The Riverton council voted on Tuesday to build a new bridge over the river, replacing the crossing that the
floods damaged, and the work is expected to take two years to finish.</p>
<p>The bridge will carry a footpath and a cycle lane, and the council said the design raises the deck above the
highest water level recorded this month.</p></article>
<section class="comments" id="comments"><h2>Comments</h2><div class="comment"><p>Great article, thanks for
keeping us informed about the bridge and everything else going on in town this week.</p></div></section>
<aside class="related"><h3>Related</h3><ul><li><a href="/a">Related: Ten best walks</a></li>
<li><a href="/b">Subscribe to our newsletter</a></li></ul></aside></main></body></html>"""


def feed(base: str) -> str:
    items = "".join(f"<item><title>{title}</title><link>{base}{path}</link><guid>{base}{path}</guid>"
                    f"<pubDate>{published}</pubDate></item>" for path, published, _, title, _ in STORY)
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Riverton Herald</title>'
            f"<link>{base}/</link><description>News</description>{items}</channel></rss>")


def sitemap(base: str) -> str:
    urls = "".join(f"<url><loc>{base}{path}</loc><lastmod>{published}</lastmod></url>"
                   for path, published, *_ in STORY)
    return ('<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"{urls}</urlset>")


LIGHTHOUSE = "/news/lighthouse-keeper.html"
KEEPER = "Mara Quint"
JAPANESE = ("東京都心で記録的な大雨が降り、多くの住民が近くの学校や公民館に避難した。"
            "気象庁によると、一時間に百ミリを超える雨が観測され、川の水位が急に上がった。")


def plain_page(title: str, body: str, canonical: str = "", charset: str = "utf-8", lang: str = "en") -> str:
    link = f'<link rel="canonical" href="{canonical}"><meta property="og:url" content="{canonical}">' if canonical else ""
    return (f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="{charset}"><title>{title}</title>{link}</head>'
            f"<body><article><h1>{title}</h1><p>{body}</p></article></body></html>")


def hostile_pages(base: str) -> dict[str, tuple[str, bytes]]:
    """A real article, a page that claims its canonical URL, one that claims a foreign site's, a feed of
    intranet links, and a Japanese article in UTF-8 and in Shift_JIS."""
    real = (f"The lighthouse keeper is {KEEPER}, who has kept the light on Gull Point for eleven years and "
            "logs every ship that passes the headland.")
    fake = ("The lighthouse keeper is Bad Actor, who says the light on Gull Point belongs to him now and that "
            "every ship that passes must pay a toll.")
    port = base.rsplit(":", 1)[1]
    intranet = "".join(f"<item><title>{n}</title><link>{link}</link></item>" for n, link in (
        ("keeper", f"http://cms:{port}{LIGHTHOUSE}"), ("flood", f"http://127.0.0.1:{port}{STORY[0][0]}")))
    html = "text/html; charset=utf-8"
    return {
        LIGHTHOUSE: (html, plain_page("Gull Point keeper", real, base + LIGHTHOUSE).encode()),
        "/hostile/claims-the-keeper.html": (html, plain_page("Gull Point keeper", fake, base + LIGHTHOUSE).encode()),
        "/hostile/claims-reuters.html": (html, plain_page("Gull Point keeper (wire)", fake,
                                                          "https://www.reuters.com/world/gull-point-2026-11-30/").encode()),
        "/intranet.xml": ("application/rss+xml", (f'<?xml version="1.0"?><rss version="2.0"><channel><title>CMS'
                                                  f"</title>{intranet}</channel></rss>").encode()),
        "/ja/utf8.html": (html, plain_page("東京で大雨", JAPANESE, lang="ja").encode()),
        "/ja/sjis.html": ("text/html; charset=shift_jis",
                          plain_page("東京で大雨（続報）", JAPANESE, charset="shift_jis", lang="ja").encode("shift_jis")),
    }


@dataclass
class NewsSite:
    """The running server: `base` is http://news.localhost:PORT; `pages` maps paths to (type, body)."""

    server: http.server.ThreadingHTTPServer
    base: str
    pages: dict
    requests: list
    conditional: list  # paths answered "304 Not Modified" to a conditional GET
    settings: dict  # "slow": seconds each /slow/… request takes; "retry_after": what /busy/… asks for

    def url(self, path: str) -> str:
        return self.base + path

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve() -> NewsSite:
    pages: dict[str, tuple[str, bytes]] = {}
    requests: list[str] = []
    conditional: list[str] = []
    settings = {"slow": 1.0, "retry_after": "120", "busy": set()}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            requests.append(self.path)
            if self.path == "/moved":
                self.send_response(302)
                self.send_header("Location", STORY[0][0])
                self.end_headers()
                return
            if self.path.startswith("/to-private"):
                self.send_response(302)
                self.send_header("Location", "http://10.0.0.7/secret")
                self.end_headers()
                return
            if self.path.startswith("/busy") or self.path in settings["busy"]:  # overloaded: come back later
                self.send_response(503)
                self.send_header("Retry-After", settings["retry_after"])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.path.startswith("/slow"):
                time.sleep(settings["slow"])
            ctype, body = pages.get(self.path, ("text/plain", b""))
            etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
            if self.path in pages and self.headers.get("If-None-Match") == etag:
                conditional.append(self.path)
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            self.send_response(200 if self.path in pages else 404)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", etag)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"http://news.localhost:{server.server_address[1]}"
    for path, published, how, title, figure in STORY:
        pages[path] = ("text/html; charset=utf-8", story_page(base, path, published, how, title, figure).encode())
    pages[CLUTTER_PATH] = ("text/html; charset=utf-8", clutter_page(base).encode())
    pages["/feed.xml"] = ("application/rss+xml", feed(base).encode())
    pages["/sitemap.xml"] = ("application/xml", sitemap(base).encode())
    pages["/big.html"] = ("text/html", b"<p>" + b"x" * 4096 + b"</p>")
    pages["/photo.jpg"] = ("image/jpeg", b"\xff\xd8\xff\xe0" + b"\x00" * 64)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return NewsSite(server, base, pages, requests, conditional, settings)
