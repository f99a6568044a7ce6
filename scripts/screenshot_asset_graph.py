"""Take a headless Chromium screenshot of the demo org's asset graph in the Dagster UI.

Starts ``dagster-webserver`` on 127.0.0.1 with a fresh ``DAGSTER_HOME`` (see
``tests/orchestration/webserver.py``), optionally syncs the demo org first so the graph shows
materializations and check results, and saves a PNG. Needs Debian's ``chromium`` package
(``apt-get install -y chromium``); Playwright drives it through ``executable_path``.

    python scripts/screenshot_asset_graph.py --sync --output screenshots/asset_graph.png
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.orchestration.webserver import LOCATION, run_webserver  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def sync_demo(work_dir: Path) -> None:
    """Run ``cora sync demo`` in the work directory, recording the run in its Dagster instance."""
    env = {
        **os.environ,
        "DAGSTER_HOME": str(work_dir / "dagster_home"),
        "CORA_HOME": str(work_dir / "data"),
    }
    env.pop("CORA_CONFIG", None)
    cora = Path(sys.executable).parent / "cora"
    subprocess.run([str(cora), "sync", "demo"], cwd=work_dir, env=env, check=True)  # noqa: S603


def stop_demo_emulator(work_dir: Path) -> None:
    from cora_pipeline.config import DEMO_ORG, Settings, demo_org
    from cora_pipeline.orchestration.emulator_service import stop_emulator

    settings = Settings(data_root=work_dir / "data", orgs={DEMO_ORG: demo_org()})
    if stop_emulator(settings, DEMO_ORG):
        print("stopped the demo org's background emulator")


def screenshot(url: str, output: Path, width: int, height: int) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(url, wait_until="networkidle", timeout=60_000)
            # The graph lays itself out after the data arrives; wait for an asset node to show.
            page.get_by_text("Account", exact=False).first.wait_for(timeout=30_000)
            # A first visit shows a newsletter dialog over the graph.
            skip = page.get_by_role("button", name="Skip")
            if skip.count():
                skip.first.click()
            page.wait_for_timeout(2_000)
            output.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(output), full_page=False)
        finally:
            browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output",
        type=Path,
        default=REPO / "screenshots" / "asset_graph.png",
        help="PNG file to write (default: screenshots/asset_graph.png)",
    )
    parser.add_argument(
        "--sync", action="store_true", help="sync the demo org first, so the graph shows its runs"
    )
    parser.add_argument("--width", type=int, default=1600, help="viewport width in pixels")
    parser.add_argument("--height", type=int, default=1500, help="viewport height in pixels")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        parser.error(
            f"{CHROMIUM} is missing; install Debian's package: apt-get install -y chromium"
        )

    with tempfile.TemporaryDirectory(prefix="cora-screenshot-") as temp:
        work_dir = Path(temp)
        try:
            (work_dir / "dagster_home").mkdir()
            if args.sync:
                # The webserver copies dagster.yaml in again; the sync needs it first.
                (work_dir / "dagster_home" / "dagster.yaml").write_bytes(
                    (REPO / "dagster_home" / "dagster.yaml").read_bytes()
                )
                sync_demo(work_dir)
            with run_webserver(work_dir) as server:
                url = f"{server.url}/locations/{LOCATION}/asset-groups/demo"
                screenshot(url, args.output.absolute(), args.width, args.height)
        finally:
            stop_demo_emulator(work_dir)
    print(f"saved {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
