"""The HTML shell every admin page shares: head, phone-friendly CSS."""

from __future__ import annotations

import base64
import hashlib

from twisted.web.template import Tag, tags

CSS = """
:root { color-scheme: light dark; --line: #8884; --accent: #2a7de1; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, "Apple SD Gothic Neo", "Noto Sans KR", sans-serif;
       margin: 0 auto; padding: 12px; max-width: 1100px; }
h1 { font-size: 1.3em; margin: .2em 0 .6em; } h2 { font-size: 1.1em; margin: 1.2em 0 .4em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); }
th { font-weight: 600; white-space: nowrap; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
.muted { opacity: .65; } .error { color: #d33; }
.ok { color: #1a8f3a; } .pending { color: #c77700; }
.summary { display: flex; gap: 16px; flex-wrap: wrap; margin-bottom: .4em; }
.summary div { border: 1px solid var(--line); border-radius: 8px; padding: 6px 12px; }
.summary b { display: block; font-size: 1.3em; }
.summary div.alert { border-color: #d33; } .summary div.alert b { color: #d33; }
svg.chart { width: 100%; height: auto; display: block; }
svg.chart .in { fill: var(--accent); } svg.chart .out { fill: #1a8f3a; }
svg.chart text { font-size: 11px; fill: currentColor; opacity: .7; }
form.login { display: grid; gap: 8px; max-width: 360px; }
input, button { font: inherit; padding: 8px; }
.top { display: flex; justify-content: space-between; align-items: baseline; gap: 8px; }
nav.menu { display: flex; flex-wrap: wrap; gap: 6px; margin: 0 0 12px; }
nav.menu a, a.button, a.chip { border: 1px solid var(--line); border-radius: 16px; padding: 4px 12px;
  text-decoration: none; color: inherit; white-space: nowrap; }
nav.menu a.active, a.chip.active { background: var(--accent); color: #fff; border-color: var(--accent); }
.chips { display: flex; flex-wrap: wrap; gap: 6px; }
form.inline { display: inline; } .actions { display: inline-flex; flex-wrap: wrap; gap: 6px; }
form.stack, form.search { display: grid; gap: 8px; max-width: 560px; margin-bottom: 12px; }
form.search label, form.stack label { display: grid; gap: 2px; }
textarea, select { font: inherit; padding: 8px; width: 100%; }
input:not([type=hidden]) { max-width: 100%; }
button.approve { background: #1a8f3a; color: #fff; border: 0; border-radius: 6px; }
button.deny { background: #d33; color: #fff; border: 0; border-radius: 6px; }
.notice { padding: 8px 12px; border-radius: 8px; border: 1px solid var(--line); }
td { overflow-wrap: anywhere; }
fieldset.checks { display: flex; flex-wrap: wrap; gap: 4px 14px; border: 1px solid var(--line); border-radius: 8px; }
form.stack label.check { display: inline-flex; align-items: center; gap: 4px; }
section.preview { border: 1px solid var(--accent); border-radius: 8px; padding: 4px 12px; margin-bottom: 12px;
  overflow-wrap: anywhere; }
pre.message { white-space: pre-wrap; overflow-wrap: anywhere; font: inherit; border-left: 3px solid var(--accent);
  padding: 4px 10px; margin: 6px 0; }
/* Phones: every table row becomes a card, each cell labelled by its column. */
@media (max-width: 700px) {
  table, tbody, tr, td { display: block; width: 100%; }
  thead { display: none; }
  tr { border: 1px solid var(--line); border-radius: 8px; margin-bottom: 10px; padding: 4px 0; }
  td { border: 0; padding: 3px 10px; display: flex; justify-content: space-between; gap: 12px; }
  td::before { content: attr(data-label); font-weight: 600; opacity: .75; }
  .num { text-align: right; }
}
"""


# The one style sheet, allowed by its hash: the pages run no script and load nothing else.
STYLE_HASH = "sha256-" + base64.b64encode(hashlib.sha256(CSS.encode("utf-8")).digest()).decode()
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src '{STYLE_HASH}'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def page(title: str, *body: object, refresh: int | None = None) -> Tag:
    head = tags.head(
        tags.meta(charset="utf-8"),
        tags.meta(name="viewport", content="width=device-width, initial-scale=1"),
        tags.title(title),
        tags.style(CSS),
    )
    if refresh:
        head(tags.meta(**{"http-equiv": "refresh", "content": str(refresh)}))
    return tags.html(head, tags.body(*body), lang="ko")
