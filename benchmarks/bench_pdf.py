"""PDF text extraction: pages per second (pypdfium2, the loader's library, against pypdf), what each gets
right on generated pages (hyphenation, running headers, page numbers, two columns), and `qa add` of a
100-page PDF against the same text as .txt. Run: python benchmarks/bench_pdf.py [--pages 100]"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import write_results

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from doc_files import REPORT, make_pdf  # noqa: E402

from qa.config import Config  # noqa: E402
from qa.ingest.articles import load_file  # noqa: E402
from qa.ingest.records import Limits  # noqa: E402


def pdfium_text(path: Path) -> list[str]:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(path))
    try:
        return [pdf[i].get_textpage().get_text_range() for i in range(len(pdf))]
    finally:
        pdf.close()


def pypdf_text(path: Path) -> list[str]:
    from pypdf import PdfReader

    return [page.extract_text() for page in PdfReader(str(path)).pages]


def rate(fn, path: Path, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        pages = fn(path)
        times.append(time.perf_counter() - t)
    return round(len(pages) / statistics.median(times), 1)


def quality(text: str) -> dict[str, bool]:
    return {"hyphenated word rejoined": "volunteers" in text, "running header dropped": "Harbour Board ·" not in text,
            "page numbers dropped": "Page 2" not in text,
            "answer sentence whole": "The keeper of the Skerry lighthouse is Ines Vale, who took over the post in "
                                     "March" in " ".join(text.split())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    book = make_pdf(tmp / "book.pdf", (REPORT * (args.pages // len(REPORT) + 1))[: args.pages])
    rates = {"pypdfium2 (raw text)": rate(pdfium_text, book, args.rounds),
             "pypdf (raw text)": rate(pypdf_text, book, args.rounds),
             "loader (pypdfium2 + lines, headers, pages)": rate(
                 lambda p: [0] * len(load_file(p, p.name, Limits.of(Config())).articles[0].pages), book, args.rounds)}
    report = make_pdf(tmp / "report.pdf", REPORT)
    loaded = load_file(report, "report.pdf", Limits.of(Config())).articles[0].text
    checks = {"loader": quality(loaded), "pypdfium2 raw": quality("\n".join(pdfium_text(report))),
              "pypdf raw": quality("\n".join(pypdf_text(report)))}
    add = {}
    from qa import Assistant

    text_file = tmp / "book.txt"
    text_file.write_text(load_file(book, "book.pdf", Limits.of(Config())).articles[0].text)
    for name, path in (("pdf", book), ("txt", text_file)):
        assistant = Assistant(Config().with_(index_dir=tmp / f"index-{name}", articles_dir=tmp))
        assistant.library.embedder()  # loaded before the clock starts
        t = time.perf_counter()
        loaded_file = assistant.library.load([path])
        t_load = time.perf_counter() - t
        report_add = assistant.library.add(loaded_file.articles)
        add[name] = {"load_s": round(t_load, 2), "add_s": round(time.perf_counter() - t, 2),
                     "chunks": report_add.chunks}
    results = {"pages": args.pages, "pages_per_s": rates, "quality": checks, "qa_add": add}
    lines = [f"# PDF extraction ({args.pages}-page generated PDF, median of {args.rounds})", "",
             "| extractor | pages/s |", "|---|---|", *[f"| {k} | {v} |" for k, v in rates.items()], "",
             "| on the 3-page report | " + " | ".join(checks["loader"]) + " |",
             "|---|" + "---|" * len(checks["loader"]),
             *[f"| {k} | " + " | ".join("yes" if ok else "no" for ok in v.values()) + " |" for k, v in checks.items()], "",
             f"`qa add` of the {args.pages}-page PDF: {add['pdf']['add_s']} s (reading it {add['pdf']['load_s']} s, "
             f"{add['pdf']['chunks']} chunks); the same text as .txt: {add['txt']['add_s']} s "
             f"(reading {add['txt']['load_s']} s)"]
    write_results("pdf", results, "\n".join(lines))


if __name__ == "__main__":
    main()
