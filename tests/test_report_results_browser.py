"""The report's results section on the real GSE781 run, with no reference and no planted truth, opened in
headless Chromium: the cohort, its significant genes as text with NCBI Gene links, the TSV (embedded and next
to the page) and the sortable table."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest

from genotex_dask.evaluation.report import write_results_report
from tests._gse781_run import TRAIT, gse781_run

pytestmark = pytest.mark.browser

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"),
                             shutil.which("google-chrome")) if p), None)

PROBE = """
<script>
window.addEventListener('load', async function () {
  var out = {};
  var links = Array.from(document.querySelectorAll('#genes a.gene'));
  out.links = links.map(function (a) { return [a.textContent, a.href]; });
  var th = document.querySelectorAll('#genes th')[4];           // coefficient
  th.click();
  out.sorted_first = document.querySelector('#genes tbody tr').cells[4].textContent;
  var dl = Array.from(document.querySelectorAll('a[download]')).find(function (a) { return a.href.startsWith('data:'); });
  out.tsv = dl ? await (await fetch(dl.href)).text() : null;
  out.imgs = Array.from(document.images).map(function (im) { return [im.alt, im.naturalWidth, im.naturalHeight]; });
  var pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
"""


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary installed")
def test_results_section_of_a_real_run_in_chromium(tmp_path: Path):
    out = gse781_run()
    res = json.loads((out / "regress" / TRAIT / "significant_genes_condition_None.json").read_text())
    genes = res["significant_genes"]["Variable"]
    coefs = res["significant_genes"]["Coefficient"]
    assert genes
    page = Path(write_results_report(str(tmp_path / "report"), str(out)))
    tsv = (page.parent / "significant_genes.tsv").read_text().splitlines()
    assert tsv[0].split("\t")[:4] == ["trait", "condition", "category", "gene"]
    assert [line.split("\t")[3] for line in tsv[1:]] == genes

    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
             f"--user-data-dir={tmp_path / 'profile'}"]
    run = subprocess.run([CHROMIUM, *flags, "--virtual-time-budget=15000", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=90)
    m = re.search(r'<pre id="probe">(.*?)</pre>', run.stdout, re.S)
    assert m, f"probe did not run; rc={run.returncode} stderr tail: {run.stderr[-500:]}"
    got = json.loads(html.unescape(m.group(1)))
    text = re.sub(r"<[^>]+>", " ", run.stdout)
    assert "GSE781" in text and "used" in text
    # every gene is in the page as link text, pointing at its NCBI Gene page
    assert [t for t, _ in got["links"]] == genes
    for sym, href in got["links"]:
        assert href.startswith("https://www.ncbi.nlm.nih.gov/gene/?term=")
        assert unquote(href).split("term=")[1].startswith(f"{sym}[sym]")
    # sorting by coefficient (ascending on first click) puts the smallest first
    assert float(got["sorted_first"]) == pytest.approx(min(coefs), rel=1e-3, abs=1e-4)
    # the embedded TSV decodes to the same table as the file beside the page
    assert got["tsv"].splitlines() == tsv
    # one coefficient and one stability plot for the problem, both decoded by the browser
    alts = {a: (w, h) for a, w, h in got["imgs"]}
    for alt in (f"coefficients {TRAIT}|None", f"stability {TRAIT}|None"):
        assert alts[alt][0] > 50 and alts[alt][1] > 50
