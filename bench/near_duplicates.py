"""Near-duplicate candidates and confirmation at thousands of images: how the false ones grow, and what they cost.

Issue 17: at 5,000 images ingest checked 7,596 candidate pairs, 21x the 354 at
1,000, because similar textures collide in the perceptual hashes at a constant
rate per pair; at the thesis' 52,682 images that projects to about 790,000
pairs and hours of confirmation.  This bench draws the demo corpora of
``--corpora`` (default two: 3,000 images at half size, seed 3, and 4,000 at a
quarter size, seed 5), ingests each with 2 workers, and scores every pair that
either candidate rule names against the generator's truth (an original, its
nudged near-duplicate and its re-saved variants are copies of one
acquisition; :func:`quality.true_pairs`):

* candidate rules: ``before`` (whole-image or top-square hashes within 10
  bits, the rule up to commit 70b856d) and ``now`` (top square within
  :data:`~semcurate.ingest.near_duplicates.TOP_SQUARE_BITS`, whole image
  within :data:`~semcurate.ingest.near_duplicates.WHOLE_IMAGE_BITS`): true
  pairs kept, false candidates, false candidates per pair;
* confirmation rules on the same pairs: ``correlation`` alone (at least
  :data:`~semcurate.ingest.near_duplicates.MIN_CORRELATION`, the rule before)
  and ``correlation and agreement`` (:func:`~semcurate.ingest.near_duplicates.confirmed`):
  true pairs confirmed, false pairs confirmed;
* CPU ms per candidate pair confirmed (one process) and the ingest's own
  near-duplicate phase (2 workers), and a projection to 52,682 images: false
  candidates per pair x 52,682 x 52,681 / 2, times the CPU per pair.

Writes ``bench/results/near_duplicates.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from machine_load import add_quiet_load_option, wait_for_quiet
from quality import precision_recall, true_pairs, truth_of
from sqlalchemy import select

from semcurate.datasets.demo_corpus import make_sem_corpus
from semcurate.db import open_database
from semcurate.db.models import Image as ImageRow
from semcurate.db.models import ImageSignature
from semcurate.ingest import near_duplicates
from semcurate.ingest.ingestion import Ingestion, _reduced_jpg

HERE = Path(__file__).resolve().parent
#: The thesis' 1u-2u working set, which the projection is for.
THESIS_IMAGES = 52_682
#: The candidate rule before issue 17's fix: either hash within this many bits.
BEFORE_BITS = 10


def candidate_rules(wholes: list[str], tops: list[str]) -> dict[str, set[tuple[int, int]]]:
    """Index pairs each candidate rule names."""
    return {
        "before": set(near_duplicates.candidate_pairs([(wholes, BEFORE_BITS), (tops, BEFORE_BITS)])),
        "now": set(
            near_duplicates.candidate_pairs(
                [(wholes, near_duplicates.WHOLE_IMAGE_BITS), (tops, near_duplicates.TOP_SQUARE_BITS)]
            )
        ),
    }


def study(corpus_root: Path, images: int, seed: int, size_scale: float, quiet_load: float) -> dict:
    """Draw, ingest and score one corpus under ``corpus_root``."""
    corpus, store = corpus_root / "corpus", corpus_root / "store"
    make_sem_corpus(corpus, images, seed=seed, workers=2, size_scale=size_scale)
    sessions = open_database(f"sqlite:///{corpus_root / 'bench.db'}")
    load = wait_for_quiet(quiet_load)
    summary = Ingestion(corpus / "new_dati_SEM", store, sessions, workers=2).run()
    truth, md5_of_id = truth_of(corpus, sessions)
    with sessions() as session:
        rows = session.execute(select(ImageRow.md5, ImageRow.phash).order_by(ImageRow.md5)).all()
        tops = dict(session.execute(select(ImageSignature.image_md5, ImageSignature.top_phash)).all())
    md5s = [md5 for md5, _ in rows]
    index = {md5: position for position, md5 in enumerate(md5s)}
    actual = {tuple(sorted((index[a], index[b]))) for a, b in true_pairs(truth, md5_of_id)}
    rules = candidate_rules([phash for _, phash in rows], [tops.get(md5, phash) for md5, phash in rows])
    n_pairs = len(md5s) * (len(md5s) - 1) // 2
    # Every pair either rule names, matched once, one process, timed on the CPU clock.
    decoded = {}
    verdicts = {}
    cpu = time.process_time()
    for a, b in sorted(rules["before"] | rules["now"]):
        for position in (a, b):
            if position not in decoded:
                decoded[position] = _reduced_jpg(store / f"{md5s[position]}.jpg")
        first, second = decoded[a], decoded[b]
        verdicts[a, b] = near_duplicates.match(first, second) if first and second else (0.0, 0.0)
    cpu_ms_per_pair = 1000 * (time.process_time() - cpu) / max(1, len(verdicts))
    by_correlation = {pair for pair, (value, _) in verdicts.items() if value >= near_duplicates.MIN_CORRELATION}
    by_both = {pair for pair, found in verdicts.items() if near_duplicates.is_copy(*found)}
    table = {}
    for name, candidates in rules.items():
        false = len(candidates - actual)
        table[name] = {
            "candidates": len(candidates),
            "true_pairs_kept": len(candidates & actual),
            "false_candidates": false,
            "false_candidates_per_pair": false / n_pairs,
            "projected_false_candidates_at_52682": round(false / n_pairs * THESIS_IMAGES * (THESIS_IMAGES - 1) / 2),
            "projected_confirmation_cpu_h_at_52682": round(
                false / n_pairs * THESIS_IMAGES * (THESIS_IMAGES - 1) / 2 * cpu_ms_per_pair / 3.6e6, 2
            ),
            "confirmed_by_correlation": precision_recall(candidates & by_correlation, actual),
            "confirmed_by_correlation_and_agreement": precision_recall(candidates & by_both, actual),
        }
    least_true_agreement = min(
        (verdicts[pair][1] for pair in actual & set(verdicts) if pair in by_correlation), default=None
    )
    return {
        "images": images,
        "seed": seed,
        "size_scale": size_scale,
        "ingested_images": len(md5s),
        "pairs": n_pairs,
        "true_pairs": len(actual),
        "true_pairs_no_rule_names": len(actual - rules["before"] - rules["now"]),
        "rules": table,
        "least_agreement_of_a_confirmed_true_pair": least_true_agreement,
        "confirmation_cpu_ms_per_pair": round(cpu_ms_per_pair, 2),
        "ingest": {
            "load_before": round(load, 2),
            "near_duplicate_candidates": summary["near_duplicate_candidates"],
            "near_duplicate_groups": summary["near_duplicate_groups"],
            "seconds": summary["seconds"],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpora",
        nargs="+",
        default=["3000:3:0.5", "4000:5:0.25"],
        help="corpora as IMAGES:SEED:SIZE_SCALE (default 3000:3:0.5 4000:5:0.25)",
    )
    add_quiet_load_option(parser)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "near_duplicates.json", help="JSON result file")
    args = parser.parse_args()
    try:
        corpora = [
            (int(images), int(seed), float(scale)) for images, seed, scale in (c.split(":") for c in args.corpora)
        ]
    except ValueError:
        sys.exit(f"error: --corpora takes IMAGES:SEED:SIZE_SCALE, e.g. 3000:3:0.5, not {' '.join(args.corpora)}")
    results = []
    for images, seed, size_scale in corpora:
        workdir = Path(tempfile.mkdtemp(prefix="semcurate-bench-near-duplicates-"))
        try:
            results.append(study(workdir, images, seed, size_scale, args.quiet_load))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        row = results[-1]
        print(f"\n{images} images, seed {seed}, size scale {size_scale}: {row['true_pairs']} true pairs")
        print(
            f"{'rule':<8}{'candidates':>11}{'true kept':>10}{'false':>7}{'false/pair':>12}"
            f"{'conf. true':>11}{'conf. false':>12}{'+agreement true':>16}{'false':>7}"
        )
        for name, cell in row["rules"].items():
            by_value, by_both = cell["confirmed_by_correlation"], cell["confirmed_by_correlation_and_agreement"]
            print(
                f"{name:<8}{cell['candidates']:>11}{cell['true_pairs_kept']:>10}{cell['false_candidates']:>7}"
                f"{cell['false_candidates_per_pair']:>12.2e}{by_value['true_positives']:>11}"
                f"{by_value['false_positives']:>12}{by_both['true_positives']:>16}{by_both['false_positives']:>7}"
            )
        print(f"confirmation {row['confirmation_cpu_ms_per_pair']} ms CPU a pair; ingest {row['ingest']}")
    output = {
        "benchmark": "near_duplicates",
        "issue": 17,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "corpora": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(output, indent=1) + "\n", encoding="utf-8")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
