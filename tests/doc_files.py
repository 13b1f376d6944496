"""PDF and Word files with known text on known pages, made for the tests and benchmarks/bench_pdf.py
(reportlab draws the PDFs, pypdf encrypts one, python-docx writes the Word files)."""
from __future__ import annotations

import datetime
from pathlib import Path

HEADER = "Harbour Board · Annual report 2025"
REPORT = [  # page by page: the answer to "Who is the keeper of the Skerry lighthouse?" is on page 2
    ["Annual report 2025", "Published 3 November 2026", "",
     "The harbour board met eleven times this year and approved the new budget for the",
     "northern pier. Traffic through the harbour grew by nine per cent on the year before."],
    ["Safety", "",
     "The keeper of the Skerry lighthouse is Ines Vale, who took over the post in March",
     "after the retirement of her predecessor. The board thanked the volun-",
     "teers who kept the light running through the winter storms."],
    ["Finances", "",
     "Income from harbour dues rose to 4.2 million crowns, and the board set aside a",
     "reserve for dredging the channel next spring."],
]


def make_pdf(path: Path, pages: list, *, title: str = "Annual report 2025", header: str | None = HEADER,
             numbers: bool = True, columns: dict[int, tuple[list[str], list[str]]] | None = None,
             text: bool = True) -> Path:
    """A PDF with a running header and "Page N" footer on every page; `columns` holds two-column pages
    (page number -> left and right lines); `text=False` draws only shapes (a scan without a text layer)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=A4)
    c.setTitle(title)
    c.setAuthor("Harbour Board")
    width, height = A4
    for n, lines in enumerate(pages, 1):
        if not text:
            c.rect(72, 200, 400, 500, fill=1)
            c.showPage()
            continue
        c.setFont("Helvetica", 9)
        if header:
            c.drawString(72, height - 40, header)
        if numbers:
            c.drawRightString(width - 72, 30, f"Page {n}")
        c.setFont("Helvetica", 11)
        blocks = columns[n] if columns and n in columns else (lines,)
        for i, block in enumerate(blocks):
            y = height - 90
            for line in block:
                c.drawString(72 + i * (width / 2 - 50), y, line)
                y -= 15
        c.showPage()
    c.save()
    return Path(path)


def encrypt(source: Path, target: Path, password: str = "secret") -> Path:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(str(source)).pages:
        writer.add_page(page)
    writer.encrypt(password, algorithm="RC4-128")
    with open(target, "wb") as handle:
        writer.write(handle)
    return Path(target)


def make_docx(path: Path, *, title: str = "Harbour newsletter", heading: str = "Ferries",
              paragraphs: tuple[str, ...] = ("The ferry to Skye leaves from Mallaig at noon every day.",),
              table: list[list[str]] | None = None) -> Path:
    import docx

    document = docx.Document()
    document.core_properties.title = title
    document.core_properties.created = datetime.datetime(2026, 11, 20, 9, 0)  # the template's own is from 2013
    document.add_heading(heading, level=1)
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    document.add_paragraph("The harbour office opens at eight.")
    document.save(str(path))
    return Path(path)
