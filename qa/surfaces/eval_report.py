"""`qa eval --report report.html`: where a plot says more than numbers. A reliability diagram (stated
confidence against observed exact match, by bins, with their counts), the refusal trade-off (EM of the
answered questions against the share refused, as the threshold moves, the configured one marked) and a
latency histogram: one self-contained HTML file that opens offline, with the PNGs beside it."""
from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

BINS = 10


@dataclass(frozen=True)
class Bin:
    low: float
    high: float
    count: int
    stated: float  # mean confidence of the answers in the bin
    observed: float  # their exact-match rate


def at_threshold(rows: list[dict], threshold: float) -> list[dict]:
    """Rows read with every span kept, as the configured threshold answers or refuses them."""
    return [{**r, "found": r["margin"] > threshold, "em": r["em"] if r["margin"] > threshold else 0.0,
             "f1": r["f1"] if r["margin"] > threshold else 0.0, "prediction": r["prediction"] if r["margin"] > threshold
             else ""} for r in rows]


def reliability(rows: list[dict], bins: int = BINS) -> list[Bin]:
    """The answered questions by stated confidence, in equal-width bins (empty bins left out)."""
    answered = [r for r in rows if r["found"]]
    out = []
    for i in range(bins):
        low, high = i / bins, (i + 1) / bins
        inside = [r for r in answered if low <= r["confidence"] < high or (i == bins - 1 and r["confidence"] == 1.0)]
        if inside:
            out.append(Bin(low, high, len(inside), sum(r["confidence"] for r in inside) / len(inside),
                           sum(r["em"] for r in inside) / len(inside)))
    return out


def tradeoff(rows: list[dict]) -> list[tuple[float, float, float]]:
    """(threshold, share refused, EM of the answered) for thresholds between the margins seen."""
    margins = sorted({r["margin"] for r in rows})
    step = max(1, len(margins) // 200)
    points = []
    for t in [margins[0] - 1.0] + margins[::step]:
        answered = [r for r in rows if r["margin"] > t]
        if answered:
            points.append((t, 1 - len(answered) / len(rows), sum(r["em"] for r in answered) / len(answered)))
    return points


def bins_markdown(bins: list[Bin]) -> str:
    lines = ["| confidence | answers | stated | exact match |", "|---|---|---|---|"]
    lines += [f"| {b.low:.1f}–{b.high:.1f} | {b.count} | {b.stated:.3f} | {b.observed:.3f} |" for b in bins]
    return "\n".join(lines)


def write(path: Path, rows: list[dict], threshold: float, summary: dict) -> list[Path]:
    """report.html and report-reliability.png, report-refusals.png, report-latency.png beside it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    configured = at_threshold(rows, threshold)
    bins, curve = reliability(configured), tradeoff(rows)
    pngs = []

    fig, ax = plt.subplots(figsize=(5, 4.2))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfectly calibrated")
    ax.plot([b.stated for b in bins], [b.observed for b in bins], "o-", label="this reader")
    for b in bins:
        ax.annotate(str(b.count), (b.stated, b.observed), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set(xlabel="stated confidence", ylabel="observed exact match", xlim=(0, 1), ylim=(0, 1),
           title="Reliability (numbers: answers per bin)")
    ax.legend(loc="upper left", fontsize=8)
    pngs.append(save(fig, path, "reliability"))

    fig, ax = plt.subplots(figsize=(5, 4.2))
    ax.plot([c[1] for c in curve], [c[2] for c in curve], "-")
    refused = 1 - sum(r["found"] for r in configured) / max(1, len(configured))
    answered = [r for r in configured if r["found"]]
    ax.plot([refused], [sum(r["em"] for r in answered) / max(1, len(answered))], "o", color="red",
            label=f"configured threshold {threshold:.2f}")
    ax.set(xlabel="share of questions refused", ylabel="exact match of the answered", xlim=(0, 1), ylim=(0, 1),
           title="Refusal trade-off")
    ax.legend(loc="lower right", fontsize=8)
    pngs.append(save(fig, path, "refusals"))

    fig, ax = plt.subplots(figsize=(5, 4.2))
    ax.hist([r["ms"] for r in rows], bins=40)
    ax.set(xlabel="ms per question (retrieve and read)", ylabel="questions", title="Latency")
    pngs.append(save(fig, path, "latency"))
    plt.close("all")

    images = "".join(f'<figure><img alt="{p.stem}" src="data:image/png;base64,'
                     f'{base64.b64encode(p.read_bytes()).decode()}"></figure>' for p in pngs)
    rows_html = "".join(f"<tr><td>{b.low:.1f}–{b.high:.1f}</td><td>{b.count}</td><td>{b.stated:.3f}</td>"
                        f"<td>{b.observed:.3f}</td></tr>" for b in bins)
    facts = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in summary.items())
    path.write_text(f"""<!doctype html><html><head><meta charset="utf-8"><title>qa eval</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}} figure{{display:inline-block;margin:0 1em 1em 0}}
table{{border-collapse:collapse;margin:1em 0}} td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}</style>
</head><body><h1>qa eval</h1>{images}
<h2>Reliability</h2><table><tr><th>confidence</th><th>answers</th><th>stated</th><th>exact match</th></tr>{rows_html}</table>
<h2>Summary</h2><table>{facts}</table></body></html>
""", encoding="utf-8")
    return [path, *pngs]


def save(fig, path: Path, name: str) -> Path:
    target = path.with_name(f"{path.stem}-{name}.png")
    fig.tight_layout()
    fig.savefig(target, dpi=110)
    return target
