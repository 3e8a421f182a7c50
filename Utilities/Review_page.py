"""``report.html``: one static page to review a prediction run, written beside ``predictions.csv``.

The page is a single HTML file with its data, style and script inside (no
server, no network); it shows the run's own files by relative path: a
thumbnail per image (``thumbs/``, made here from the overlays, loaded lazily
and drawn 200 at a time as the page scrolls, so folders of thousands stay
usable), the overlay and the mask large on click with the image's numbers.
Images are sorted by their defect probability (the highest of their classes'
``max_probability``), can be filtered by class and by status (defect, clean,
failed), and the failed files are listed with their reasons. The filters live
in the address (``report.html#status=defect&class=crack``), so a view can be
shared or bookmarked.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import cv2
import pandas as pd
from tqdm.auto import tqdm

from Utilities.Files import atomic_write
from Utilities.Images import decode_reduced

REVIEW_PAGE = "report.html"
THUMBNAIL_SIDE = 192


def thumbnail(overlay: Path, thumb: Path) -> None:
    """A JPEG of ``overlay`` whose longer side is ``THUMBNAIL_SIDE``, unless an up-to-date one is there;
    ``ValueError`` naming the overlay if it does not decode."""
    if thumb.exists() and thumb.stat().st_mtime >= overlay.stat().st_mtime:
        return
    picture = decode_reduced(overlay, THUMBNAIL_SIDE)
    scale = THUMBNAIL_SIDE / max(picture.shape[:2])
    if scale < 1:
        picture = cv2.resize(picture, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    _, buffer = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, 80])
    atomic_write(thumb, lambda partial: partial.write_bytes(buffer.tobytes()))


def page_rows(report: pd.DataFrame, classes: tuple[str, ...], outputs) -> list[dict]:
    """The page's data: one entry per report row, sorted by defect probability, failed files last.

    Args:
        outputs: ``(mask, overlay)`` paths of an image file, as the prediction wrote them.
    """
    rows = []
    for row in report.to_dict("records"):
        entry = {"file": str(row["file"]), "name": Path(row["file"]).name, "status": row["status"]}
        if row["status"] == "ok":
            mask, overlay = outputs(Path(row["file"]))
            entry |= {"defect": int(row["defect"]), "mask": mask.name, "overlay": overlay.name,
                      "thumb": f"thumbs/{overlay.name}", "size": f"{int(row['width'])}x{int(row['height'])}",
                      "area": {c: int(row[f"area_{c}"]) for c in classes},
                      "probability": {c: float(row[f"max_probability_{c}"]) for c in classes}}
            entry["p"] = max(entry["probability"].values())
        else:
            entry |= {"reason": str(row["reason"]), "p": -1.0}
        rows.append(entry)
    return sorted(rows, key=lambda e: -e["p"])


def write_review_page(report: pd.DataFrame, classes: tuple[str, ...], out: Path, outputs) -> Path:
    """Thumbnails of the predicted images and ``out/report.html``; its path.

    Args:
        outputs: ``(mask, overlay)`` paths of an image file (``Predict_folder.output_paths`` for ``out``).
    """
    out = Path(out)
    rows = page_rows(report, classes, outputs)
    for entry in tqdm([e for e in rows if e["status"] == "ok"], desc="thumbnails", leave=False):
        try:
            thumbnail(out / entry["overlay"], out / entry["thumb"])
        except (ValueError, OSError) as problem:  # the page shows the card without its picture
            entry["thumb"] = None
            tqdm.write(f"no thumbnail: {problem}")
    data = json.dumps({"classes": list(classes), "rows": rows}).replace("<", "\\u003c")  # no </script> inside
    page = PAGE.replace("@TITLE@", html.escape(f"{len(report)} images")).replace("@DATA@", data)
    atomic_write(out / REVIEW_PAGE, lambda partial: partial.write_text(page, encoding="utf-8"))
    return out / REVIEW_PAGE


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Predictions: @TITLE@</title>
<style>
body{font-family:system-ui,sans-serif;margin:0;background:#f4f4f4;color:#222}
header{position:sticky;top:0;background:#fff;padding:.6em 1em;box-shadow:0 1px 4px #0002;z-index:1}
header label{margin-right:1.2em} #shown{font-weight:600}
#grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:.6em;padding:1em}
.card{background:#fff;border-radius:6px;overflow:hidden;cursor:pointer;box-shadow:0 1px 3px #0002}
.card img{width:100%;height:150px;object-fit:contain;background:#222;display:block}
.card .info{padding:.3em .5em;font-size:.85em;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.defect{border-top:4px solid #d33}.clean{border-top:4px solid #3a3}.failed{border-top:4px solid #888}
.failed .why{height:150px;padding:.5em;font-size:.85em;color:#a00;overflow:auto}
#detail{position:fixed;inset:0;background:#181818;display:none;z-index:2;overflow:auto;color:#eee}
#detail.open{display:block} #detail .pics{display:flex;gap:1em;flex-wrap:wrap;padding:1em}
#detail img{width:46vw;max-height:78vh;object-fit:contain;background:#000;image-rendering:pixelated}
#detail img.mask{filter:brightness(255)}
#detail table{margin:0 1em 1em;border-collapse:collapse} #detail td,#detail th{padding:.2em .8em;text-align:left}
#close{position:fixed;right:1em;top:.5em;font-size:1.5em;background:none;color:#fff;border:0;cursor:pointer}
#failures{padding:0 1em 2em} #failures td{padding:.2em .8em}
</style></head><body>
<header>
<label>Class <select id="class"><option value="">any</option></select></label>
<label>Status <select id="status"><option value="">all</option><option value="defect">defect</option>
<option value="clean">clean</option><option value="failed">failed</option></select></label>
<span id="shown"></span> shown, sorted by defect probability
</header>
<div id="grid"></div><div id="more"></div>
<section id="failures"></section>
<div id="detail"><button id="close" title="close (Esc)">&times;</button><div class="pics"></div><table></table></div>
<script type="application/json" id="data">@DATA@</script>
<script>
const DATA = JSON.parse(document.getElementById("data").textContent);
DATA.rows.forEach((r, i) => { r.index = i; });
const CHUNK = 200, grid = document.getElementById("grid"), more = document.getElementById("more");
const classSelect = document.getElementById("class"), statusSelect = document.getElementById("status");
let shown = [], drawn = 0;
for (const c of DATA.classes) classSelect.add(new Option(c, c));
const statusOf = r => r.status !== "ok" ? "failed" : r.defect ? "defect" : "clean";
const ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"};
const text = s => String(s).replace(/[&<>"']/g, c => ESCAPES[c]);  // for text and attribute values alike
const url = path => path.split("/").map(encodeURIComponent).join("/");  // names with # ? & or spaces
function card(r) {
  const status = statusOf(r), top = status === "failed" ? `<div class="why">${text(r.reason)}</div>` :
    r.thumb ? `<img loading="lazy" src="${url(r.thumb)}" alt="${text(r.name)}">` : `<div class="why">no thumbnail</div>`;
  const numbers = status === "failed" ? "failed" : `p ${r.p.toFixed(2)} · ` +
    (DATA.classes.filter(c => r.area[c] > 0).map(c => `${c} ${r.area[c]} px`).join(", ") || "clean");
  return `<div class="card ${status}" data-index="${r.index}" title="${text(r.file)}">${top}` +
         `<div class="info">${text(r.name)}<br>${text(numbers)}</div></div>`;
}
function drawMore() {
  const next = shown.slice(drawn, drawn + CHUNK);
  grid.insertAdjacentHTML("beforeend", next.map(card).join(""));
  drawn += next.length;
}
function apply() {
  const c = classSelect.value, s = statusSelect.value;
  shown = DATA.rows.filter(r => (!s || statusOf(r) === s) && (!c || (r.status === "ok" && r.area[c] > 0)));
  grid.innerHTML = ""; drawn = 0; drawMore();
  document.getElementById("shown").textContent = `${shown.length} of ${DATA.rows.length}`;
  history.replaceState(null, "", "#" + new URLSearchParams(Object.entries({class: c, status: s}).filter(([, v]) => v)));
}
function fromAddress() {
  const want = new URLSearchParams(location.hash.slice(1));
  classSelect.value = want.get("class") || ""; statusSelect.value = want.get("status") || "";
  apply();
}
new IntersectionObserver(entries => { if (entries[0].isIntersecting && drawn < shown.length) drawMore(); },
                         {rootMargin: "800px"}).observe(more);
classSelect.onchange = statusSelect.onchange = apply;
window.onhashchange = fromAddress;
grid.onclick = event => {
  const element = event.target.closest(".card"); if (!element) return;
  const r = DATA.rows[+element.dataset.index], detail = document.getElementById("detail");
  detail.querySelector(".pics").innerHTML = r.status !== "ok" ? `<p>${text(r.file)}: ${text(r.reason)}</p>` :
    `<img src="${url(r.overlay)}" alt="overlay"><img class="mask" src="${url(r.mask)}" alt="mask">`;
  detail.querySelector("table").innerHTML = `<tr><th colspan="3">${text(r.file)}</th></tr>` + (r.status !== "ok" ? "" :
    `<tr><td>size</td><td colspan="2">${r.size}</td></tr><tr><th>class</th><th>pixels</th><th>max probability</th></tr>` +
    DATA.classes.map(c => `<tr><td>${text(c)}</td><td>${r.area[c]}</td><td>${r.probability[c].toFixed(3)}</td></tr>`).join(""));
  detail.classList.add("open");
};
const close = () => document.getElementById("detail").classList.remove("open");
document.getElementById("close").onclick = close;
document.onkeydown = event => { if (event.key === "Escape") close(); };
const failed = DATA.rows.filter(r => r.status !== "ok");
if (failed.length) document.getElementById("failures").innerHTML = `<h3>${failed.length} files could not be predicted</h3>` +
  "<table>" + failed.map(r => `<tr><td>${text(r.file)}</td><td>${text(r.reason)}</td></tr>`).join("") + "</table>";
fromAddress();
</script></body></html>
"""
