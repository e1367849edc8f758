"""How long headless Chromium takes to open a semcurate report (issue 17: at most 10 s at 52,682 images).

``python bench/report_render.py REPORT.html [--runs 3] [--out JSON]`` opens the
report from disk in Debian's headless Chromium (through chromedriver, as the
web tests do), each time in a fresh browser, and reads the page's own
navigation timing: the time to its ``load`` event, when the HTML is parsed and
every embedded figure and thumbnail decoded, and beside it the time to
``DOMContentLoaded``, the images on the page, how many finished decoding and
the largest layout height.  The wall time of ``browser.get`` is recorded too.
The report is one self-contained file, so nothing is fetched from a network.
Prints a table and writes ``bench/results/report_render.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: Issue 17's target for the report at 52,682 images.
TARGETS = {"load_s": 10.0, "bytes": 50 * 1000**2}

#: Read in the page once it has loaded: navigation timing (ms from the start of navigation) and the images.
PAGE_FIGURES = """
const [navigation] = performance.getEntriesByType("navigation");
const images = Array.from(document.images);
return {
  load_ms: navigation.loadEventEnd,
  dom_content_loaded_ms: navigation.domContentLoadedEventEnd,
  images: images.length,
  images_decoded: images.filter(image => image.complete && image.naturalWidth > 0).length,
  height_px: document.documentElement.scrollHeight,
};
"""


def render_once(report: Path) -> dict:
    """Open ``report`` in a fresh headless Chromium; its page figures and the wall seconds ``get`` took."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1600"):
        options.add_argument(argument)
    browser = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        browser.set_page_load_timeout(120)
        started = time.perf_counter()
        browser.get(report.resolve().as_uri())  # returns once the load event has fired
        wall = time.perf_counter() - started
        figures = browser.execute_script(PAGE_FIGURES)
    finally:
        browser.quit()
    return {**figures, "get_wall_s": round(wall, 3)}


def main() -> None:
    """Render the report ``--runs`` times, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="the report's HTML file (semcurate report)")
    parser.add_argument("--runs", type=int, default=3, help="fresh browsers to open it in; the median is reported")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "report_render.json", help="JSON file")
    options = parser.parse_args()
    if shutil.which("chromium") is None or shutil.which("chromedriver") is None:
        raise SystemExit("Debian's chromium and chromium-driver are not installed (scripts/setup.sh installs them)")
    if not options.report.is_file():
        raise SystemExit(f"no report at {options.report}: run semcurate report (or bench/full_scale.py) first")
    load_before = os.getloadavg()
    runs = [render_once(options.report) for _ in range(options.runs)]
    load_after = os.getloadavg()
    size = options.report.stat().st_size
    load_s = statistics.median(run["load_ms"] for run in runs) / 1000
    print(f"{'run':>4} {'load s':>8} {'DOM s':>8} {'get s':>8} {'images':>7} {'decoded':>8} {'height px':>10}")
    for number, run in enumerate(runs, 1):
        print(
            f"{number:>4} {run['load_ms'] / 1000:>8.2f} {run['dom_content_loaded_ms'] / 1000:>8.2f} "
            f"{run['get_wall_s']:>8.2f} {run['images']:>7} {run['images_decoded']:>8} {run['height_px']:>10}"
        )
    print(f"report {size / 1e6:.1f} MB (target <= {TARGETS['bytes'] / 1e6:.0f}), load event after {load_s:.2f} s")
    print(f"(median; target <= {TARGETS['load_s']:g} s); load average {load_before[0]:.2f} -> {load_after[0]:.2f}")
    record = {
        "benchmark": "report_render",
        "issue": 17,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "report": str(options.report.resolve()),
        "bytes": size,
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "python": platform.python_version()},
        "runs": runs,
        "median_load_s": round(load_s, 3),
        "targets": TARGETS,
        "met": {"load_s": load_s <= TARGETS["load_s"], "bytes": size <= TARGETS["bytes"]},
        "load_average_before": load_before,
        "load_average_after": load_after,
    }
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"written {options.out}")


if __name__ == "__main__":
    main()
