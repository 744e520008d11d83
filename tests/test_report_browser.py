"""Open the HTML report in headless Chromium and check that every plot decodes to a non-blank image.

A copy of the report gets a small script that, on load, decodes each <img>, draws it on a canvas and writes
its natural size and its share of non-white pixels into the DOM, which ``--dump-dom`` then prints.
Skipped only where no Chromium binary is installed (CI installs the Debian package).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from _eval_run import write_run, write_significant

from genotex_dask.evaluation.evaluate import run_evaluate

pytestmark = pytest.mark.browser

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"),
                             shutil.which("google-chrome")) if p), None)

PROBE = """
<script>
window.addEventListener('load', function () {
  var out = Array.from(document.images).map(function (im) {
    var c = document.createElement('canvas');
    c.width = im.naturalWidth; c.height = im.naturalHeight;
    var ink = 0;
    if (c.width > 0 && c.height > 0) {
      var ctx = c.getContext('2d'); ctx.drawImage(im, 0, 0);
      var d = ctx.getImageData(0, 0, c.width, c.height).data;
      for (var i = 0; i < d.length; i += 4) { if (d[i] < 240 || d[i+1] < 240 || d[i+2] < 240) ink++; }
      ink = ink / (c.width * c.height);
    }
    return {alt: im.alt, w: im.naturalWidth, h: im.naturalHeight, ink: ink};
  });
  var pre = document.createElement('pre'); pre.id = 'imgcheck'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
"""


def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={profile}"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=90)


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary installed")
def test_report_plots_render_in_headless_chromium(tmp_path: Path):
    ref = write_run(tmp_path / "ref")
    pred = tmp_path / "pred"
    shutil.copytree(ref, pred)
    write_significant(pred, "Trait_A", None, ["G1", "G8", "G5"])
    truth = tmp_path / "truth.json"
    truth.write_text(json.dumps({"seed": 0, "params": {}, "cohorts": {}, "trait_genes": {},
                                 "problems": [{"trait": "Trait_A", "condition": None, "category": "unconditional",
                                               "planted_genes": ["G1", "G2"]}]}))
    res = run_evaluate(str(pred), ref=str(ref), truth=str(truth), report=str(tmp_path / "report"))
    report = Path(res["report_path"])
    assert res["failed"] == 0
    text = report.read_text()
    n_img = text.count("<img ")
    # overview + 3 category bars + heatmap + one coefficient plot per predicted problem (6)
    assert n_img == 1 + 3 + 1 + 6

    probe = tmp_path / "probe.html"
    probe.write_text(text.replace("</body>", PROBE + "</body>"))
    out = _chromium(["--virtual-time-budget=15000", "--dump-dom", probe.as_uri()], tmp_path / "profile1")
    m = re.search(r'<pre id="imgcheck">(.*?)</pre>', out.stdout, re.S)
    assert m, f"probe did not run; chromium rc={out.returncode} stderr tail: {out.stderr[-500:]}"
    imgs = json.loads(html.unescape(m.group(1)))
    assert len(imgs) == n_img
    for im in imgs:
        assert im["w"] > 50 and im["h"] > 50, im
        assert 0.01 < im["ink"] < 0.95, im  # drawn, not blank and not a solid block
    assert "Selected cohorts" in out.stdout and "Planted truth per problem" in out.stdout

    shot = tmp_path / "report.png"
    _chromium(["--window-size=1400,3000", f"--screenshot={shot}", report.as_uri()], tmp_path / "profile2")
    assert shot.exists() and shot.stat().st_size > 20_000
