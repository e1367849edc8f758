"""``semcurate serve`` and ``semcurate similar``: the web browser and similar-image search."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Annotated

import typer

from semcurate.cli.common import AsJson, Db, ImageStore, echo_json, fail, image_store, open_sessions


def serve(
    db: Db = None,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on; the default serves this machine only.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port to listen on.")] = 8000,
    allow_edits: Annotated[
        bool,
        typer.Option(
            "--allow-edits", help="Let visitors rename nodes and move or mark images (POST forms with a token)."
        ),
    ] = False,
    store: ImageStore = None,
) -> None:
    """Browse the tree, its galleries, every image and its similar images in a web browser (read-only by default)."""
    import secrets

    import uvicorn

    from semcurate.web.app import create_app

    sessions = open_sessions(db, read_only=not allow_edits)
    token = secrets.token_urlsafe(32)
    app = create_app(sessions, image_store(sessions, store), allow_edits=allow_edits, token=token)
    mode = f"edits allowed; API edits carry the token {token}" if allow_edits else "read-only"
    typer.echo(f"semcurate serving http://{host}:{port}/ ({mode}); Ctrl-C stops it", err=True)
    try:
        # No websockets (the pages use none): uvicorn then loads no websocket library at start.
        uvicorn.run(app, host=host, port=port, log_level="warning", lifespan="off", ws="none")
    except OSError as error:  # raised by some uvicorn versions; others exit by themselves with their own line
        fail(f"cannot listen on {host}:{port} ({error.strerror or error}): pass another --port")


def similar(
    image: Annotated[
        str,
        typer.Argument(
            help="An image's md5, or an image file: looked up by its bytes, else its features are computed."
        ),
    ],
    feature_set: Annotated[str, typer.Option("--feature-set", help="Feature set to compare in, e.g. classic.")],
    k: Annotated[int, typer.Option("-k", "--k", min=1, max=200, help="How many similar images.")] = 12,
    as_json: AsJson = False,
    db: Db = None,
    store: ImageStore = None,
) -> None:
    """The k images most like one image: exact nearest neighbours of its standardised feature row (Euclidean).

    An image file the database does not know (by its MD5) is compared all the
    same: its data bar is cut away and its row computed by the feature set's
    own extractor.
    """
    from semcurate.progress import print_table
    from semcurate.web.browser import BadRequest, Browser, NotFound

    sessions = open_sessions(db, read_only=True)
    md5, outside, what = resolve_image(sessions, image)
    browser = Browser(sessions, store)
    try:
        found = (
            browser.similar(md5, feature_set, k)
            if outside is None
            else browser.similar_to_file(outside, feature_set, k)
        )
    except NotFound as error:
        fail(str(error))
    except BadRequest as error:
        fail(f"{what} is not in the database and its features cannot be computed: {error}")
    folder = store if store is not None else image_store(sessions, None)
    for neighbour in found["neighbours"]:
        neighbour["path"] = str(folder / f"{neighbour['md5']}.jpg")
    if as_json:
        echo_json(found)
        return
    how = "features computed from the file" if outside is not None else "stored features"
    print_table(
        f"the {k} images most like {what} in {feature_set} ({how}; Euclidean distance between standardised rows)",
        [(rank, row["md5"], row["distance"], row["path"]) for rank, row in enumerate(found["neighbours"], 1)],
        ("rank", "md5", "distance", "file"),
    )


def resolve_image(sessions, text: str) -> tuple[str | None, Path | None, str]:
    """What ``text`` names: ``(md5, None, description)`` for an md5 the database knows or a file whose bytes (MD5)
    it knows as an image, its JPG, or any file it saw; ``(None, path, description)`` for an image file it does not
    know; one error line otherwise."""
    from sqlalchemy import or_, select

    from semcurate.db.models import File, Image

    path = Path(text)
    if re.fullmatch(r"[0-9a-fA-F]{32}", text) and not path.is_file():
        digest, what = text.lower(), f"md5 {text.lower()}"
    elif path.is_file():
        try:
            digest = hashlib.md5(path.read_bytes()).hexdigest()
        except OSError as error:
            fail(f"cannot read {path} ({error.strerror}): check its permissions")
        what = f"{path} (md5 {digest})"
    else:
        fail(f"{text} is neither a file nor an md5 (32 hex digits)")
    with sessions() as session:
        known = session.scalar(select(Image.md5).where(or_(Image.md5 == digest, Image.jpg_md5 == digest)))
        if known is None:
            known = session.scalar(select(File.image_md5).where(File.md5 == digest, File.image_md5.is_not(None)))
    if known is not None:
        return known, None, what
    if path.is_file():
        return None, path, what
    fail(f"{what} is not an image in the database: ingest it first (`semcurate ingest SRC --store STORE`)")
