"""Developing stories: does each version get its own answer ("Other articles"), what does reading them
cost, and does `Config.prefer_latest` help when a question asks for the latest figure?

A synthetic set (no SQuAD article is dated): 8 stories, each reported three times over five days with
a revised figure, plus the seed article (undated). For every story, one plain question and one that
asks for the latest ("so far", "now", "latest"). Run: python benchmarks/bench_news.py
"""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from common import write_results

from qa.ingest.records import Limits, make_article
from qa.config import Config, bundled_seeds
from qa.ingest.articles import load_paths
from qa.answering.pipeline import Assistant

DAYS = ("2026-11-02", "2026-11-03", "2026-11-06")
FILLER = ("Reporters at the scene described long queues at the emergency centres, and local radio stations read "
          "out lists of shelters and phone numbers through the night. Neighbours shared what food they had.\n\n"
          "The regional government said it would publish an update every morning, and asked people to avoid "
          "travelling to the area unless it was necessary. Schools in the district stayed closed.")
# (subject, three reports with {n}, three figures, plain question, latest-asking question)
STORIES = [
    ("Riverton floods", ["At least {n} people were killed when flash floods swept through Riverton.",
                         "The death toll from the Riverton floods rose to {n} on Monday.",
                         "Officials confirmed {n} dead in the Riverton floods on Thursday."], (12, 19, 23),
     "How many people were killed in the Riverton floods?", "How many people have died in the Riverton floods so far?"),
    ("Kessel wildfire", ["The Kessel wildfire forced {n} residents to leave their homes.",
                         "Evacuation orders for the Kessel wildfire now cover {n} residents.",
                         "Firefighters said {n} residents had been evacuated from the path of the Kessel wildfire."],
     (3000, 5200, 8100), "How many residents were evacuated because of the Kessel wildfire?",
     "How many residents have been evacuated because of the Kessel wildfire so far?"),
    ("Dunmore dockworkers' strike", ["About {n} dockworkers walked out at the port of Dunmore.",
                                     "The Dunmore dockworkers' strike grew to {n} workers.",
                                     "Union leaders said {n} dockworkers were now on strike in Dunmore."],
     (400, 650, 900), "How many dockworkers are on strike in Dunmore?",
     "How many dockworkers are on strike in Dunmore now?"),
    ("Lake Orva measles outbreak", ["Health officials reported {n} measles cases around Lake Orva.",
                                    "Measles cases around Lake Orva climbed to {n}.",
                                    "The Lake Orva measles outbreak has reached {n} cases, officials said."],
     (14, 27, 41), "How many measles cases were reported around Lake Orva?",
     "What is the latest number of measles cases around Lake Orva?"),
    ("Brannock mine collapse", ["Rescuers were searching for {n} miners trapped in the Brannock mine.",
                                "The number of miners trapped in the Brannock mine was revised to {n}.",
                                "Officials said {n} miners remained trapped in the Brannock mine."],
     (9, 11, 6), "How many miners are trapped in the Brannock mine?",
     "How many miners are still trapped in the Brannock mine now?"),
    ("Talvik ferry fire", ["A fire on the Talvik ferry injured {n} passengers.",
                           "The number of passengers injured in the Talvik ferry fire rose to {n}.",
                           "Hospitals said {n} passengers had been treated after the Talvik ferry fire."],
     (5, 8, 13), "How many passengers were injured in the Talvik ferry fire?",
     "How many passengers have been injured in the Talvik ferry fire so far?"),
    ("Serrano heatwave", ["The Serrano heatwave has sent {n} people to hospital.",
                          "Hospital admissions in the Serrano heatwave rose to {n} people.",
                          "Doctors said {n} people had been admitted to hospital during the Serrano heatwave."],
     (120, 210, 340), "How many people went to hospital in the Serrano heatwave?",
     "What is the latest count of people in hospital in the Serrano heatwave?"),
    ("Halden bridge closure", ["The Halden bridge closure left {n} commuters looking for other routes.",
                               "Traffic officials said the Halden bridge closure affected {n} commuters.",
                               "The Halden bridge closure now affects {n} commuters a day, the city said."],
     (15000, 22000, 30000), "How many commuters were affected by the Halden bridge closure?",
     "How many commuters are currently affected by the Halden bridge closure?"),
]


def articles():
    out = []
    for s, (subject, reports, figures, _, _) in enumerate(STORIES):
        for version, (report, figure, day) in enumerate(zip(reports, figures, DAYS)):
            text = report.format(n=f"{figure:,}") + "\n\n" + FILLER
            out.append(make_article(text, id=f"story{s}-v{version}", title=f"{subject}: update {version + 1}",
                                    published=day))
    return out


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    config = Config().with_(index_dir=tmp / "index", articles_dir=tmp)
    Assistant(config).library.rebuild(articles() + load_paths([bundled_seeds()], bundled_seeds(), Limits.of(config)).articles)
    rows = []
    for name, changes in (("other_articles=0, prefer_latest off", {"other_articles": 0, "prefer_latest": False}),
                          ("other_articles=3, prefer_latest off", {"prefer_latest": False}),
                          ("other_articles=3, prefer_latest (default)", {})):
        assistant = Assistant(config.with_(**changes))
        assistant.warm_up()
        covered, latest_main, plain_main_first, times = 0, 0, 0, []
        for subject, _, figures, plain, latest in STORIES:
            wanted = {f"{f:,}" for f in figures}
            t0 = time.perf_counter()
            a = assistant.answer(plain)
            times.append((time.perf_counter() - t0) * 1000)
            found = {a.text} | {o.text for o in a.other_articles}
            covered += sum(any(w in f for f in found) for w in wanted)
            plain_main_first += f"{figures[0]:,}" in a.text
            b = assistant.answer(latest)
            latest_main += f"{figures[-1]:,}" in b.text
        n = len(STORIES)
        rows.append((name, covered, 3 * n, latest_main, n, statistics.median(times)))
    lines = ["# Developing stories (benchmarks/bench_news.py)", "",
             f"{len(STORIES)} synthetic stories, 3 dated reports each with a revised figure, plus the undated seed "
             f"article; one plain and one latest-asking question per story.", "",
             "| setting | figures shown (answer + other articles) | latest-asking: main answer is the newest figure "
             "| plain question p50 ms |", "|---|---|---|---|"]
    for name, covered, total, latest, n, p50 in rows:
        lines.append(f"| {name} | {covered}/{total} | {latest}/{n} | {p50:.0f} |")
    write_results("news", {"rows": [dict(zip(("setting", "covered", "total", "latest_main", "stories", "p50_ms"), r))
                                    for r in rows]}, "\n".join(lines))


if __name__ == "__main__":
    main()
