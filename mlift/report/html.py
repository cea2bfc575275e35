"""The report's self-contained index.html: the Markdown rendered (markdown-it-py, CommonMark + tables), wide tables in
a scrolling box, the charts inlined, and a side-by-side sample viewer: for a chosen task and language, each item's
input, reference and every arm's output (first seed) with its per-item scores."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from mlift.eval.item_scores import ITEMS_FILE, corpus_score

STYLE = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}.scroll{overflow-x:auto}"
         "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right;"
         "vertical-align:top}td:first-child,th:first-child{text-align:left}#viewer td{text-align:left;max-width:28em;"
         "white-space:pre-wrap;font-size:90%}code{background:#f3f3f3;padding:0 3px}figure img{max-width:100%}")
MAX_VIEW_ITEMS = 10  # items per task shown in the viewer (the page stays small)
MAX_CHARS = 600


def render_markdown(md_text: str) -> str:
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"breaks": True}).enable("table").render(md_text)  # a line per note
    return body.replace("<table>", "<div class='scroll'><table>").replace("</table>", "</table></div>")


def html_page(md_text: str, comp: Any, images: list[Path]) -> str:
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>mlift comparison</title>",
             f"<style>{STYLE}</style></head><body>", render_markdown(md_text)]
    for img in images:
        data = base64.b64encode(img.read_bytes()).decode()
        parts.append(f"<figure><img alt='{html.escape(img.stem)}' src='data:image/png;base64,{data}'>"
                     f"<figcaption>{html.escape(img.stem)}</figcaption></figure>")
    parts.append(sample_viewer(comp))
    parts.append("</body></html>")
    return "\n".join(parts)


def _short(text: Any) -> str:
    text = str(text)
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS] + " …"


def viewer_data(comp: Any) -> dict[str, Any]:
    """task -> {lang, items: [{input, reference, outputs: {label: text}, scores: {label: {metric: score}}}]}, from the
    first seed of every arm (samples/ and items.jsonl of its eval dir)."""
    data: dict[str, Any] = {}
    for label in comp.labels:
        run = Path(comp.sources[label][0])
        scores: dict[tuple[str, Any], dict[str, float]] = {}
        if (run / ITEMS_FILE).is_file():
            for line in (run / ITEMS_FILE).read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                value = (100 * row["stats"][0] if len(row["stats"]) == 1  # mean metrics: the item's own score
                         else corpus_score(row["metric"], row["stats"]))  # corpus metrics: the sentence's score
                scores.setdefault((row["task"], row["doc_id"]), {})[row["metric"]] = round(value, 1)
        for path in sorted((run / "samples").glob("*.jsonl")) if (run / "samples").is_dir() else []:
            task = path.stem
            lines = path.read_text(encoding="utf-8").splitlines()[:MAX_VIEW_ITEMS * 4]
            if not lines or not _generated(json.loads(lines[0])):
                continue  # multiple choice: the "output" is a log-likelihood ranking, not text
            entry = data.setdefault(task, {"items": {}})
            for line in lines:
                s = json.loads(line)
                if s["doc_id"] >= MAX_VIEW_ITEMS:
                    continue
                args = s.get("arguments") or [[""]]
                item = entry["items"].setdefault(str(s["doc_id"]), {
                    "input": _short(args[0][0] if isinstance(args[0], list) else args[0]),
                    "reference": _short(s.get("target", "")), "outputs": {}, "scores": {}})
                resp = s.get("filtered_resps") or [""]
                while isinstance(resp, list):
                    resp = resp[0] if resp else ""
                item["outputs"][label] = _short(resp)
                item["scores"][label] = scores.get((task, s["doc_id"]), {})
    return data


def _generated(sample: dict[str, Any]) -> bool:
    """A generation task's sample (its filtered response is text), not a multiple-choice one."""
    resp = sample.get("filtered_resps")
    return isinstance(resp, list) and bool(resp) and isinstance(resp[0], (str, list)) and (
        isinstance(resp[0], str) or (bool(resp[0]) and isinstance(resp[0][0], str)))


VIEWER_JS = """
const D = JSON.parse(document.getElementById('viewer-data').textContent);
const sel = document.getElementById('viewer-task');
function show() {
  const rows = D.tasks[sel.value] ? D.tasks[sel.value].items : {};
  const body = document.querySelector('#viewer tbody');
  body.replaceChildren();
  for (const [id, it] of Object.entries(rows)) {
    const tr = document.createElement('tr');
    const cells = [id, it.input, it.reference].concat(D.labels.map(l => (it.outputs[l] || '') + '\\n' +
      Object.entries(it.scores[l] || {}).map(([m, v]) => m + ' ' + v).join(', ')));
    for (const c of cells) { const td = document.createElement('td'); td.textContent = c; tr.appendChild(td); }
    body.appendChild(tr);
  }
}
sel.addEventListener('change', show);
show();
"""


def sample_viewer(comp: Any) -> str:
    data = viewer_data(comp)
    if not data:
        return "<h2>Samples</h2><p>No lm-eval samples in these eval dirs.</p>"
    options = "".join(f"<option>{html.escape(t)}</option>" for t in sorted(data))
    head = "".join(f"<th>{html.escape(h)}</th>" for h in ["#", "input", "reference", *comp.labels])
    blob = json.dumps({"labels": comp.labels, "tasks": data}, ensure_ascii=False).replace("</", "<\\/")
    return ("<h2>Samples</h2><p>Task and language: <select id='viewer-task'>" + options + "</select> "
            f"(the first {MAX_VIEW_ITEMS} items; each arm's first seed; per-item scores under each output, 0-100)</p>"
            f"<div class='scroll'><table id='viewer'><thead><tr>{head}</tr></thead><tbody></tbody></table></div>"
            f"<script type='application/json' id='viewer-data'>{blob}</script><script>{VIEWER_JS}</script>")
