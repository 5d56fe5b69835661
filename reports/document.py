"""A report as data (sections of text, tables and figures) and its HTML and Markdown renderings.

The HTML is one self-contained file: inline CSS, no scripts, no external fonts or links, every
figure embedded as an SVG data URI (vector, sharp on any screen, opens offline). The Markdown
references the PNG files next to it. Sections that could not be computed stay in the document
with a visible "section unavailable: <reason>" or "not run: <reason>" note, so a missing part is
never silently absent.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["Figure", "Table", "Note", "Section", "Document", "render_html", "render_markdown",
           "format_value", "format_energy", "energy_unit"]

STATUSES = ("ok", "unavailable", "not run")
NOTE_KINDS = ("info", "ok", "warn", "bad")


@dataclass
class Figure:
    """A rendered figure: PNG bytes and SVG text of the same plot."""

    name: str
    title: str
    caption: str
    png: bytes
    svg: str


@dataclass
class Table:
    """A tidy table; ``columns`` documents each column (name -> meaning, with unit)."""

    name: str
    title: str
    df: pd.DataFrame
    caption: str = ""
    columns: dict = field(default_factory=dict)
    show: bool = True  # False: written as CSV only (too long for the page)
    max_rows: int = 60
    display: pd.DataFrame | None = None  # what the page shows, when it differs from the CSV (``df``)


@dataclass
class Note:
    kind: str
    text: str

    def __post_init__(self):
        if self.kind not in NOTE_KINDS:
            raise ValueError(f"note kind must be one of {NOTE_KINDS}")


@dataclass
class Section:
    """One section of the report."""

    id: str
    title: str
    status: str = "ok"
    reason: str = ""
    paragraphs: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    tables: list = field(default_factory=list)
    figures: list = field(default_factory=list)
    lead_tables: tuple = ()  # names of tables shown right after the paragraphs, without a heading

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}")

    @classmethod
    def unavailable(cls, id: str, title: str, reason: str, status: str = "unavailable") -> "Section":
        return cls(id, title, status=status, reason=reason)


@dataclass
class Document:
    title: str
    subtitle: str
    sections: list
    summary: list = field(default_factory=list)  # list of Note shown at the top
    lead: Section | None = None  # shown before the table of contents: the first screen


# -- value formatting ----------------------------------------------------------------------------

def format_value(v) -> str:
    """Human formatting for tables: 4 significant digits, thousands separators for big numbers."""
    if v is None:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        x = float(v)
        if math.isnan(x):
            return ""
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        if x == 0:
            return "0"
        if abs(x) >= 1e12 or abs(x) < 1e-3:
            return f"{x:.3e}"
        if x == int(x) or abs(x) >= 1e4:
            return f"{x:,.0f}"
        return f"{x:.4g}"
    return str(v)


def energy_unit(max_pj: float) -> tuple[float, str]:
    """``(pJ per unit, unit)`` for an axis whose largest energy is ``max_pj``: nJ below 1 uJ, else uJ,
    else mJ (the figures' counterpart of :func:`format_energy`)."""
    for scale, unit in ((1e9, "mJ"), (1e6, "\u00b5J"), (1e3, "nJ")):
        if abs(max_pj) >= scale:
            return scale, unit
    return 1.0, "pJ"


def format_energy(pj) -> str:
    """An energy given in pJ, in engineering units: ``501933.1`` -> ``"502 nJ"`` (empty for NaN)."""
    from sim.units import format_si

    if pj is None or (isinstance(pj, (float, np.floating)) and math.isnan(pj)):
        return ""
    return format_si(float(pj) * 1e-12, "J")


def _display_frame(table: Table) -> tuple[pd.DataFrame, set]:
    """The frame the page shows (``display`` if given, else ``df``) with energies (``*_pj`` columns)
    in engineering units under their name without ``_pj``; and the names of those columns."""
    df = table.display if table.display is not None else table.df
    energy = [c for c in df.columns if str(c).endswith("_pj") and pd.api.types.is_numeric_dtype(df[c])]
    if not energy:
        return df, set()
    out = df.copy()
    for c in energy:
        out[c] = df[c].map(format_energy)
    return out.rename(columns={c: str(c)[:-3] for c in energy}), {str(c)[:-3] for c in energy}


def _display_rows(table: Table) -> tuple[list[str], list[list[str]], int, list[bool]]:
    df, energies = _display_frame(table)
    cols = [str(c) for c in df.columns]
    n = len(df)
    shown = df.head(table.max_rows)
    rows = [[format_value(v) for v in row] for row in shown.itertuples(index=False, name=None)]
    # energies formatted with their unit are still numbers: right-aligned like the others
    text = [_is_text_column(df, c) and str(c) not in energies for c in df.columns]
    return cols, rows, n, text


# -- HTML ------------------------------------------------------------------------------------------

_CSS = """
:root { --fg:#1d2330; --muted:#5b6475; --line:#d9dee7; --bg:#ffffff; --panel:#f5f7fa;
        --ok:#1a7f37; --okbg:#e7f5ea; --warn:#8a5a00; --warnbg:#fff4d6; --bad:#b42318; --badbg:#fde8e6;
        --info:#174ea6; --infobg:#e8f0fe; }
* { box-sizing: border-box; }
body { margin:0; font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--fg); background: var(--bg); }
main { max-width: 1120px; margin: 0 auto; padding: 24px 28px 64px; }
h1 { font-size: 26px; margin: 8px 0 4px; }
h2 { font-size: 20px; margin: 40px 0 8px; padding-top: 8px; border-top: 2px solid var(--line); }
h3 { font-size: 16px; margin: 20px 0 6px; }
p.sub { color: var(--muted); margin: 0 0 16px; }
nav.toc { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 10px 16px; }
nav.toc ol { margin: 4px 0; padding-left: 22px; columns: 2; column-gap: 32px; }
nav.toc a { color: var(--info); text-decoration: none; }
.status { display:inline-block; font-size: 12px; padding: 1px 8px; border-radius: 10px; margin-left: 8px;
          vertical-align: middle; }
.status.unavailable, .status.not-run { background: var(--warnbg); color: var(--warn); }
.note { border-left: 4px solid; border-radius: 4px; padding: 6px 12px; margin: 8px 0; }
.note.info { border-color: var(--info); background: var(--infobg); }
.note.ok { border-color: var(--ok); background: var(--okbg); }
.note.warn { border-color: var(--warn); background: var(--warnbg); }
.note.bad { border-color: var(--bad); background: var(--badbg); }
.scroll { overflow-x: auto; max-width: 100%; margin: 6px 0 4px;
          /* a shadow at an edge that has more columns behind it (shows only while there is more to scroll) */
          background: linear-gradient(to right, #fff 30%, rgba(255,255,255,0)),
                      linear-gradient(to right, rgba(255,255,255,0), #fff 70%) 100% 0,
                      radial-gradient(farthest-side at 0 50%, rgba(0,0,0,.18), rgba(0,0,0,0)),
                      radial-gradient(farthest-side at 100% 50%, rgba(0,0,0,.18), rgba(0,0,0,0)) 100% 0;
          background-repeat: no-repeat; background-size: 40px 100%, 40px 100%, 14px 100%, 14px 100%;
          background-attachment: local, local, scroll, scroll; }
.lead { border: 1px solid var(--line); border-radius: 6px; padding: 4px 16px 8px; margin: 12px 0 16px; }
.lead h2 { border-top: none; margin: 8px 0 4px; padding-top: 0; }
table { border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px; text-align: right; white-space: nowrap; }
th { background: var(--panel); position: sticky; top: 0; }
td.text, th.text { text-align: left; }
td.wrap, th.wrap { white-space: normal; min-width: 9em; max-width: 520px; }
td.long, th.long { min-width: 22em; }
caption { caption-side: bottom; text-align: left; color: var(--muted); font-size: 12px; padding-top: 4px; }
figure { margin: 14px 0 22px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
figcaption { color: var(--muted); font-size: 13px; }
details { margin: 4px 0 12px; color: var(--muted); font-size: 13px; }
details dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; }
details dt { font-family: ui-monospace, Menlo, Consolas, monospace; }
details dd { margin: 0; }
footer { margin-top: 48px; color: var(--muted); font-size: 12px; }
code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 13px; }
"""


def _is_text_column(df: pd.DataFrame, col) -> bool:
    dt = df[col].dtype
    return not (pd.api.types.is_numeric_dtype(dt) or pd.api.types.is_bool_dtype(dt))


#: Text columns with values longer than this wrap (within a width limit); shorter ones stay on one line,
#: so that names such as presets do not break over three lines in a narrow column. Columns with values
#: longer than LONG_CHARS keep a wider minimum, so that a table of long notes scrolls sideways in its
#: box instead of squeezing every note into a tall, narrow cell.
WRAP_CHARS = 24
LONG_CHARS = 80


def _html_table(table: Table) -> str:
    cols, rows, n, text = _display_rows(table)
    longest = [max((len(r[i]) for r in rows), default=0) for i in range(len(cols))]
    klass = [("text wrap long" if w > LONG_CHARS else "text wrap" if w > WRAP_CHARS else "text") if t else "num"
             for t, w in zip(text, longest)]
    out = [f'<div class="scroll"><table id="table-{html.escape(table.name)}">']
    cap = table.caption
    if n > len(rows):
        cap = (cap + " " if cap else "") + f"First {len(rows)} of {n} rows; all rows in tables/{table.name}.csv."
    else:
        cap = (cap + " " if cap else "") + f"Data: tables/{table.name}.csv."
    out.append(f"<caption>{html.escape(cap)}</caption>")
    out.append("<thead><tr>" + "".join(
        f'<th class="{k}" scope="col">{html.escape(c)}</th>' for c, k in zip(cols, klass))
        + "</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>" + "".join(f'<td class="{k}">{html.escape(v)}</td>' for v, k in zip(row, klass)) + "</tr>")
    out.append("</tbody></table></div>")
    if table.columns:
        label = "Columns" if table.display is None else f"Columns of tables/{table.name}.csv"
        out.append(f"<details><summary>{html.escape(label)}</summary><dl>")
        shown = set(cols)
        for k, v in table.columns.items():
            name = str(k)
            if name not in shown and name.endswith("_pj") and name[:-3] in shown:
                name, v = name[:-3], f"{v}; shown in engineering units, the CSV column {k} holds pJ"
            out.append(f"<dt>{html.escape(name)}</dt><dd>{html.escape(str(v))}</dd>")
        out.append("</dl></details>")
    return "\n".join(out)


def _html_figure(fig: Figure) -> str:
    data = base64.b64encode(fig.svg.encode("utf-8")).decode("ascii")
    return (f'<figure id="fig-{html.escape(fig.name)}"><img alt="{html.escape(fig.title)}" '
            f'src="data:image/svg+xml;base64,{data}">'
            f"<figcaption><b>{html.escape(fig.title)}.</b> {html.escape(fig.caption)} "
            f"(files: figures/{html.escape(fig.name)}.png, .svg)</figcaption></figure>")


def _html_note(note: Note) -> str:
    return f'<div class="note {note.kind}">{html.escape(note.text)}</div>'


def _html_section_body(s: Section, badge: str = "") -> list[str]:
    parts = [f"<h2>{html.escape(s.title)}{badge}</h2>"]
    if s.status != "ok":
        label = "section unavailable" if s.status == "unavailable" else "not run"
        parts.append(_html_note(Note("warn", f"{label}: {s.reason}")))
    for p in s.paragraphs:
        parts.append(f"<p>{html.escape(p)}</p>")
    for t in s.tables:  # the lead's table sits right under its paragraph, before the notes
        if t.show and t.name in s.lead_tables:
            parts.append(_html_table(t))
    parts += [_html_note(n) for n in s.notes]
    for f in s.figures:
        parts.append(_html_figure(f))
    for t in s.tables:
        if t.show and t.name not in s.lead_tables:
            parts.append(f"<h3>{html.escape(t.title)}</h3>")
            parts.append(_html_table(t))
    hidden = [t for t in s.tables if not t.show]
    if hidden:
        parts.append("<p>" + html.escape("Also written: " + ", ".join(
            f"tables/{t.name}.csv ({t.title})" for t in hidden)) + "</p>")
    return parts


def render_html(doc: Document) -> str:
    """The whole report as one self-contained HTML page."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(doc.title)}</title>",
        f"<style>{_CSS}</style></head><body><main>",
        f"<h1>{html.escape(doc.title)}</h1>",
        f'<p class="sub">{html.escape(doc.subtitle)}</p>',
    ]
    parts += [_html_note(n) for n in doc.summary]
    if doc.lead is not None:
        parts.append(f'<section id="{html.escape(doc.lead.id)}" class="lead">')
        parts += _html_section_body(doc.lead)
        parts.append("</section>")
    parts.append('<nav class="toc"><b>Contents</b><ol>')
    for s in doc.sections:
        flag = "" if s.status == "ok" else f" ({s.status})"
        parts.append(f'<li><a href="#{html.escape(s.id)}">{html.escape(s.title)}</a>{html.escape(flag)}</li>')
    parts.append("</ol></nav>")
    for s in doc.sections:
        badge = "" if s.status == "ok" else \
            f'<span class="status {s.status.replace(" ", "-")}">{html.escape(s.status)}</span>'
        parts.append(f'<section id="{html.escape(s.id)}">')
        parts += _html_section_body(s, badge)
        parts.append("</section>")
    parts.append("<footer>Generated by spela-hw. Every number is recomputed by the command in the "
                 "Reproduce section; tables are in tables/, figures in figures/.</footer>")
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"


# -- Markdown --------------------------------------------------------------------------------------

def _md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def _md_table(table: Table) -> str:
    cols, rows, n, _ = _display_rows(table)
    lines = ["| " + " | ".join(_md_escape(c) for c in cols) + " |",
             "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(_md_escape(v) for v in row) + " |" for row in rows]
    cap = table.caption
    if n > len(rows):
        cap = (cap + " " if cap else "") + f"First {len(rows)} of {n} rows;"
    lines.append("")
    lines.append(f"*{_md_escape(cap)} Data: `tables/{table.name}.csv`.*" if cap
                 else f"*Data: `tables/{table.name}.csv`.*")
    return "\n".join(lines)


def render_markdown(doc: Document) -> str:
    """The report as Markdown; figures link to ``figures/NAME.png``."""
    out = [f"# {doc.title}", "", f"_{doc.subtitle}_", ""]
    for n in doc.summary:
        out += [f"> **{n.kind}:** {n.text}", ""]
    if doc.lead is not None:
        out += _md_section(doc.lead)
    out += ["## Contents", ""]
    for i, s in enumerate(doc.sections, 1):
        flag = "" if s.status == "ok" else f" ({s.status})"
        out.append(f"{i}. [{s.title}](#{s.id}){flag}")
    out.append("")
    for s in doc.sections:
        out += _md_section(s)
    return "\n".join(out) + "\n"


def _md_section(s: Section) -> list[str]:
    out = [f'<a id="{s.id}"></a>', "", f"## {s.title}", ""]
    if s.status != "ok":
        label = "section unavailable" if s.status == "unavailable" else "not run"
        out += [f"> **{label}:** {s.reason}", ""]
    for p in s.paragraphs:
        out += [p, ""]
    for t in s.tables:
        if t.show and t.name in s.lead_tables:
            out += [_md_table(t), ""]
    for n in s.notes:
        out += [f"> **{n.kind}:** {n.text}", ""]
    for f in s.figures:
        out += [f"![{f.title}](figures/{f.name}.png)", "", f"*{f.title}.* {f.caption}", ""]
    for t in s.tables:
        if t.name in s.lead_tables:
            continue
        if t.show:
            out += [f"### {t.title}", "", _md_table(t), ""]
        else:
            out += [f"- {t.title}: `tables/{t.name}.csv`", ""]
    return out
