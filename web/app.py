"""The web browser: a FastAPI application over :class:`~semcurate.web.browser.Browser`.

HTML pages (``/``, ``/trees/ID``, ``/nodes/ID``, ``/images/MD5``, ``/search``,
``/admin``, ``/quality``, ``/quality/FLAG``) and the same data as JSON under ``/api/...`` (FastAPI's OpenAPI
page is ``/docs``); pictures only at ``/thumbs/MD5.webp`` and
``/files/MD5.jpg``, for md5s the database knows.  Templates are Jinja2 with
autoescaping on, so every name from the database (node names, labels, file
paths) is escaped.  Every asset is served from ``/static`` (no CDN).

Edits (rename a node, move an image, mark it misplaced) are POSTs carrying
the per-process token (a form from the HTML pages, a JSON object to
``/api/nodes/ID/rename|move|misplaced``), accepted only when the app was
created with ``allow_edits``; no GET changes anything.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from semcurate.web.browser import PER_PAGE, SEARCH_FIELDS, BadRequest, Browser, NotFound

HERE = Path(__file__).resolve().parent
#: Browsers may keep thumbnails and pictures this long (seconds): an md5 names fixed content.
IMMUTABLE = "public, max-age=31536000, immutable"


#: The path of a thumbnail: the only request the fast path below answers.
THUMBNAIL_PATH = re.compile(r"/thumbs/([0-9a-f]{32})\.webp")


class CachedThumbnails:
    """ASGI middleware that answers ``GET /thumbs/<md5>.webp`` from the thumbnail cache before routing.

    A gallery page brings 100 thumbnail requests; routed through FastAPI each
    costs about 0.7 ms of server time, answered here about a third of that.
    Only md5s the database has already shown (:meth:`Browser.cached_thumbnail`)
    with a cached regular file are answered; everything else (an unknown md5,
    a thumbnail still to be made, any error) goes on to the app's own route.
    """

    def __init__(self, app, browser: Browser):
        self.app, self.browser = app, browser

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            match = THUMBNAIL_PATH.fullmatch(scope["path"])
            data = self.browser.cached_thumbnail(match[1]) if match else None
            if data is not None:
                headers = [
                    (b"content-type", b"image/webp"),
                    (b"content-length", str(len(data)).encode()),
                    (b"cache-control", IMMUTABLE.encode()),
                ]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": data})
                return
        await self.app(scope, receive, send)


class Forbidden(PermissionError):
    """An edit refused: the server is read-only, or the form's token is wrong (a 403 page with this one line)."""


def create_app(
    sessions: sessionmaker,
    image_store: Path | None,
    *,
    allow_edits: bool = False,
    token: str | None = None,
) -> FastAPI:
    """The web application over database ``sessions`` and flat store ``image_store``.

    Parameters
    ----------
    sessions : sessionmaker
        The database; open it read-only unless ``allow_edits``.
    image_store : Path or None
        The flat store of the images (``<md5>.jpg``; thumbnails are cached in its ``thumbs/``).
    allow_edits : bool
        Accept the edit forms (rename, move, mark misplaced).
    token : str, optional
        The token every edit form must carry; default a new random one, so a
        page from another process (or another site) cannot post edits.
    """
    browser = Browser(sessions, image_store)
    token = token or secrets.token_urlsafe(32)
    templates = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    templates.filters["log1p"] = math.log1p  # the quality page's histogram bars are drawn on a log scale
    app = FastAPI(
        title="semcurate",
        description="Browse the sub-category tree, every image and its similar images.",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.browser, app.state.token, app.state.allow_edits = browser, token, allow_edits
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_middleware(CachedThumbnails, browser=browser)

    def page(request: Request, template: str, status_code: int = 200, **context) -> HTMLResponse:
        html = templates.get_template(template).render(
            request=request, allow_edits=allow_edits, token=token if allow_edits else None, **context
        )
        return HTMLResponse(html, status_code=status_code)

    def problem(request: Request, status_code: int, message: str) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message}, status_code=status_code)
        return page(request, "error.html.j2", status_code=status_code, status=status_code, message=message)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, error: NotFound) -> Response:
        return problem(request, 404, str(error))

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, error: BadRequest) -> Response:
        return problem(request, 400, str(error))

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, error: Forbidden) -> Response:
        return problem(request, 403, str(error))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> Response:
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ())[1:]) or "request"
        return problem(request, 400, f"bad {where}: {first.get('msg', 'invalid value')}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        message = "no such page" if error.status_code == 404 else str(error.detail)
        return problem(request, error.status_code, message)

    @app.exception_handler(Exception)
    async def crashed(request: Request, error: Exception) -> Response:
        return problem(request, 500, f"internal error ({type(error).__name__}); the server log has the details")

    # --- JSON -----------------------------------------------------------------------------------------------

    @app.get("/api/trees")
    def api_trees() -> list[dict]:
        """Every stored tree, newest first."""
        return browser.trees()

    @app.get("/api/trees/{tree_id}")
    def api_tree(tree_id: int) -> dict:
        """One tree with its nodes nested: sizes, labelled and placed counts, thumbnail strips (md5s)."""
        return browser.tree(tree_id)

    @app.get("/api/nodes/{node_id}")
    def api_node(
        node_id: int,
        page: Annotated[int, Query(ge=1)] = 1,
        per_page: Annotated[int, Query(ge=1, le=500)] = PER_PAGE,
    ) -> dict:
        """One node: scores, children, and one page of members sorted by distance to the node's centre."""
        return browser.node(node_id, page, per_page)

    @app.get("/api/images/{md5}")
    def api_image(md5: str, feature_set: str | None = None, k: Annotated[int, Query(ge=1, le=200)] = 12) -> dict:
        """Everything known about one image, with its similar images."""
        return browser.image(md5, feature_set, k)

    @app.get("/api/images/{md5}/similar")
    def api_similar(md5: str, feature_set: str | None = None, k: Annotated[int, Query(ge=1, le=200)] = 12) -> dict:
        """The k images most like this one (exact search over the standardised feature rows)."""
        return browser.similar(md5, feature_set, k)

    @app.get("/api/search")
    def api_search(q: str = "", by: str = "path") -> dict:
        """Images by file path fragment, md5 prefix, label, scale or subset."""
        return browser.search(q, by)

    @app.get("/api/quality")
    def api_quality() -> dict:
        """The newest quality run: images per flag, thresholds, and a histogram of each score a flag reads."""
        return browser.quality()

    @app.get("/api/quality/{flag}")
    def api_quality_flag(
        flag: str,
        page: Annotated[int, Query(ge=1)] = 1,
        per_page: Annotated[int, Query(ge=1, le=500)] = PER_PAGE,
    ) -> dict:
        """One page of the images a quality flag was raised for, worst first."""
        return browser.quality_flag(flag, page, per_page)

    @app.get("/api/admin")
    def api_admin() -> dict:
        """Ingest runs, files by status, near-duplicate groups, scale statuses, labelled datasets."""
        return browser.admin()

    # --- pictures ---------------------------------------------------------------------------------------------

    @app.get("/thumbs/{md5}.webp", include_in_schema=False)
    def thumbnail(md5: str) -> Response:
        # Cached thumbnails of md5s already shown never get here (CachedThumbnails answers them).
        return Response(browser.thumbnail(md5), media_type="image/webp", headers={"Cache-Control": IMMUTABLE})

    @app.get("/files/{md5}.jpg", include_in_schema=False)
    def picture(md5: str) -> Response:
        return Response(browser.image_bytes(md5), media_type="image/jpeg", headers={"Cache-Control": IMMUTABLE})

    # --- HTML -------------------------------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home(request: Request) -> Response:
        trees = browser.trees()
        if len(trees) == 1:
            return RedirectResponse(f"/trees/{trees[0]['id']}", status_code=302)
        return page(request, "trees.html.j2", trees=trees)

    @app.get("/trees", response_class=HTMLResponse, include_in_schema=False)
    def trees_page(request: Request) -> Response:
        return page(request, "trees.html.j2", trees=browser.trees())

    @app.get("/trees/{tree_id}", response_class=HTMLResponse, include_in_schema=False)
    def tree_page(request: Request, tree_id: int) -> Response:
        return page(request, "tree.html.j2", data=browser.tree(tree_id), trees=browser.trees())

    @app.get("/nodes/{node_id}", response_class=HTMLResponse, include_in_schema=False)
    def node_page(
        request: Request,
        node_id: int,
        page_number: Annotated[int, Query(alias="page", ge=1)] = 1,
        per_page: Annotated[int, Query(ge=1, le=500)] = PER_PAGE,
    ) -> Response:
        return page(request, "node.html.j2", data=browser.node(node_id, page_number, per_page))

    @app.get("/images/{md5}", response_class=HTMLResponse, include_in_schema=False)
    def image_page(
        request: Request, md5: str, feature_set: str | None = None, k: Annotated[int, Query(ge=1, le=200)] = 12
    ) -> Response:
        return page(request, "image.html.j2", data=browser.image(md5, feature_set, k))

    @app.get("/search", response_class=HTMLResponse, include_in_schema=False)
    def search_page(request: Request, q: str = "", by: str = "path") -> Response:
        return page(request, "search.html.j2", data=browser.search(q, by), fields=SEARCH_FIELDS)

    @app.get("/quality", response_class=HTMLResponse, include_in_schema=False)
    def quality_page(request: Request) -> Response:
        return page(request, "quality.html.j2", data=browser.quality())

    @app.get("/quality/{flag}", response_class=HTMLResponse, include_in_schema=False)
    def quality_flag_page(
        request: Request,
        flag: str,
        page_number: Annotated[int, Query(alias="page", ge=1)] = 1,
        per_page: Annotated[int, Query(ge=1, le=500)] = PER_PAGE,
    ) -> Response:
        return page(request, "quality_flag.html.j2", data=browser.quality_flag(flag, page_number, per_page))

    @app.get("/admin", response_class=HTMLResponse, include_in_schema=False)
    def admin_page(request: Request) -> Response:
        return page(request, "admin.html.j2", data=browser.admin())

    # --- edits (POST only, with the token) ------------------------------------------------------------------

    async def edit_fields(request: Request, kind: str) -> dict[str, str]:
        """The fields of an edit sent as ``kind`` (``"form"``, or ``"json"`` for the API), once the token matches."""
        if not allow_edits:
            raise Forbidden("this server is read-only: restart it with `semcurate serve --allow-edits` to edit")
        sent = request.headers.get("content-type", "").split(";")[0].strip()
        body = (await request.body()).decode("utf-8", "replace")
        if kind == "form":
            if sent != "application/x-www-form-urlencoded":
                raise BadRequest("edits are sent as a form (application/x-www-form-urlencoded)")
            fields = {key: values[0] for key, values in parse_qs(body).items()}
        else:
            if sent != "application/json":
                raise BadRequest("API edits are sent as a JSON object (application/json)")
            try:
                fields = json.loads(body)
            except ValueError:
                raise BadRequest('the body is not JSON: send an object such as {"token": ..., "md5": ...}') from None
            if not isinstance(fields, dict) or not all(isinstance(value, str | int) for value in fields.values()):
                raise BadRequest("the body must be a JSON object of strings and numbers")
            fields = {key: str(value) for key, value in fields.items()}
        if not secrets.compare_digest(str(fields.get("token", "")), token):
            raise Forbidden("the edit's token is not this server's: reload the page (or its JSON) and try again")
        return fields

    def target_of(fields: dict[str, str]) -> int | None:
        target = fields.get("to", "")
        if target and not target.isdigit():
            raise BadRequest(f"the node to move to is given by its id, not {target!r}")
        return int(target) if target else None

    @app.post("/nodes/{node_id}/rename", include_in_schema=False)
    async def rename(request: Request, node_id: int) -> Response:
        fields = await edit_fields(request, "form")
        await run_in_threadpool(browser.rename, node_id, fields.get("name", ""))
        return RedirectResponse(f"/nodes/{node_id}", status_code=303)

    @app.post("/nodes/{node_id}/move", include_in_schema=False)
    async def move(request: Request, node_id: int) -> Response:
        fields = await edit_fields(request, "form")
        await run_in_threadpool(browser.move, node_id, fields.get("md5", ""), target_of(fields))
        return RedirectResponse(f"/nodes/{node_id}", status_code=303)

    @app.post("/nodes/{node_id}/misplaced", include_in_schema=False)
    async def misplaced(request: Request, node_id: int) -> Response:
        fields = await edit_fields(request, "form")
        await run_in_threadpool(browser.move, node_id, fields.get("md5", ""), None)
        return RedirectResponse(f"/nodes/{node_id}", status_code=303)

    @app.post("/api/nodes/{node_id}/rename")
    async def api_rename(request: Request, node_id: int) -> dict:
        """Rename a node: a JSON object ``{"token": ..., "name": ...}`` (an empty name clears it); needs
        ``--allow-edits`` and the server's token (printed by ``semcurate serve``, carried by its HTML forms)."""
        fields = await edit_fields(request, "json")
        await run_in_threadpool(browser.rename, node_id, fields.get("name", ""))
        node = await run_in_threadpool(browser.node_row, node_id)
        return {"node": node.id, "path": node.path, "name": node.name}

    @app.post("/api/nodes/{node_id}/move")
    async def api_move(request: Request, node_id: int) -> dict:
        """Move an image of this node to another: ``{"token": ..., "md5": ..., "to": NODE_ID}``."""
        fields = await edit_fields(request, "json")
        if not fields.get("to"):
            raise BadRequest('say where the image goes: "to": a node id (or POST to .../misplaced)')
        target = target_of(fields)
        await run_in_threadpool(browser.move, node_id, fields.get("md5", ""), target)
        return {"md5": fields.get("md5"), "from": node_id, "to": target}

    @app.post("/api/nodes/{node_id}/misplaced")
    async def api_misplaced(request: Request, node_id: int) -> dict:
        """Mark an image as not belonging in this node (nor below it): ``{"token": ..., "md5": ...}``."""
        fields = await edit_fields(request, "json")
        await run_in_threadpool(browser.move, node_id, fields.get("md5", ""), None)
        return {"md5": fields.get("md5"), "from": node_id, "to": None}

    return app
