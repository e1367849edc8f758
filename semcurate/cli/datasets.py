"""``semcurate demo-data``: draw a demo SEM repository with its labelled datasets and ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from semcurate.cli.common import fail
from semcurate.progress import print_table, progress_reporter


def demo_data(
    out: Annotated[Path, typer.Argument(help="Folder to write the demo repository into (must not hold one already).")],
    images: Annotated[int, typer.Option("--images", min=1, help="Distinct images to draw.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed: the same seed writes the same bytes.")] = 0,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Processes; default: every core.")] = None,
    size_scale: Annotated[
        float,
        typer.Option("--size-scale", min=0.05, help="Multiply image sizes (1.0: 512 to 4096 px wide, mostly 1024)."),
    ] = 1.0,
    labelled_share: Annotated[
        float | None,
        typer.Option(
            "--labelled-share",
            min=0.01,
            max=1.0,
            help="Share of the images labelled in SEM_Dataset (default: the thesis' 14 %).",
        ),
    ] = None,
) -> None:
    """Write a messy SEM repository like the thesis' new_dati_SEM/, with labelled datasets and ground truth."""
    from semcurate.datasets.demo_corpus import SEM_DATASET_SHARE
    from semcurate.demo import DemoError, make_demo_corpus

    try:
        with progress_reporter() as reporter:
            summary = make_demo_corpus(
                out,
                images,
                seed=seed,
                workers=workers,
                size_scale=size_scale,
                reporter=reporter,
                labelled_share=SEM_DATASET_SHARE if labelled_share is None else labelled_share,
            )
    except DemoError as error:
        fail(str(error))
    counts = vars(summary)
    by_format = counts.pop("files_per_format")
    print_table(f"demo corpus written to {out}", counts)
    print_table("files by format", by_format, ("format", "files"))
