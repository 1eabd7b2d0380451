"""The dashboard as a WSGI application: URL routes, access control, error pages.

Werkzeug does the HTTP (routing, requests, static files) and Jinja2 the HTML (autoescaped). Every
page is rendered on the server from ``reads`` and the artifact views of ``mlpipe.visualize``; the
only script (``static/ui.js``) refreshes the live part of a page while a run is in progress.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from werkzeug.exceptions import BadRequest, Forbidden, HTTPException, NotFound, Unauthorized
from werkzeug.routing import Map, Rule
from werkzeug.utils import redirect, send_from_directory
from werkzeug.wrappers import Request, Response

from mlpipe.errors import MetadataError, MlpipeError
from mlpipe.ir import PipelineIR
from mlpipe.metadata.store import MetadataStore
from mlpipe.ui import pages

log = logging.getLogger("mlpipe.ui")

HERE = os.path.dirname(os.path.abspath(__file__))
TOKEN_COOKIE = "mlpipe_ui_token"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")

ROUTES = Map(
    [
        Rule("/", endpoint="home"),
        Rule("/runs", endpoint="runs"),
        Rule("/runs/<run_id>", endpoint="run"),
        Rule("/executions/<int:execution_id>", endpoint="execution"),
        Rule("/executions/<int:execution_id>/log", endpoint="log"),
        Rule("/artifacts", endpoint="artifacts"),
        Rule("/artifacts/<int:artifact_id>", endpoint="artifact"),
        Rule("/artifacts/<int:artifact_id>/lineage", endpoint="lineage"),
        Rule("/compare", endpoint="compare"),
        Rule("/models", endpoint="models"),
        Rule("/approvals", endpoint="approvals", methods=["GET"]),
        Rule("/approvals/decide", endpoint="decide", methods=["POST"]),
        Rule("/static/<path:filename>", endpoint="static"),
    ]
)


class DashboardApp:
    """One store, one optional pipeline definition (for DAGs of nodes not yet run), one optional token."""

    def __init__(
        self,
        store: MetadataStore,
        pipeline_ir: PipelineIR | None = None,
        pipeline_file: str | None = None,
        token: str | None = None,
        serving_url: str | None = None,
    ):
        self.store = store
        self.token = token
        self.context = pages.PageContext(store, pipeline_ir, pipeline_file, serving_url)
        self.templates = Environment(
            loader=FileSystemLoader(os.path.join(HERE, "templates")),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters.update(
            when=_when, seconds=_seconds, state_class=_state_class, urlpart=_urlpart
        )
        self.templates.globals["store"] = store.config.describe()
        # forms carry this secret: a page of another site can make the browser post to the
        # dashboard but cannot read the secret from it (same-origin policy; Host is checked)
        self.templates.globals["form_token"] = self.form_token = secrets.token_urlsafe(24)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        return self.respond(Request(environ))(environ, start_response)

    def respond(self, request: Request) -> Response:
        started = time.perf_counter()
        try:
            endpoint, values = ROUTES.bind_to_environ(request.environ).match()
            if endpoint == "static":
                return send_from_directory(os.path.join(HERE, "static"), values["filename"], request.environ)
            denied = self._check_token(request)
            if denied is not None:
                return denied
            if endpoint == "home":
                return redirect("/runs")
            if endpoint == "log":
                return pages.log_response(self.context, **values)
            if endpoint == "decide":
                return self._decide(request)
            template, data = getattr(pages, endpoint)(self.context, request, **values)
            response = self.render(template, data)
        except (pages.NotFound, NotFound) as e:
            message = e.description if isinstance(e, NotFound) else str(e)
            response = self.render("error.html", {"title": "Not found", "message": message}, status=404)
        except Unauthorized:
            response = self.render(
                "error.html", {"title": "Token required", "message": "open the URL with ?token=..."}, 401
            )
        except HTTPException as e:
            return e.get_response()
        except MetadataError as e:
            response = self.render("error.html", {"title": "Metadata error", "message": str(e)}, status=500)
        except Exception:  # a page bug: log it, show a page without the stack trace
            log.exception("error rendering %s", request.path)
            message = "the dashboard failed to render this page; the server log has the details"
            response = self.render("error.html", {"title": "Internal error", "message": message}, status=500)
        log.debug(
            "%s %s in %.1f ms", request.method, request.full_path, (time.perf_counter() - started) * 1000
        )
        return response

    def _decide(self, request: Request) -> Response:
        """An answer to a pending approval, written where the waiting Approval node reads it."""
        from mlpipe.orchestration.approvals import approve

        form = request.form
        if not hmac.compare_digest(form.get("form_token", ""), self.form_token):
            raise Forbidden("the form is stale or from another page: reload the approvals page")
        user, decision = form.get("user", "").strip(), form.get("decision")
        run_id, node = form.get("run_id", ""), form.get("node", "")
        if not user or decision not in ("approve", "reject"):
            raise BadRequest("give your name, and approve or reject")
        try:
            result = approve(
                self.store,
                run_id,
                node,
                reject=decision == "reject",
                comment=form.get("comment", ""),
                user=user,
            )
        except MlpipeError as e:
            template, data = pages.approvals(self.context, request)
            return self.render(template, {**data, "error": str(e)}, status=400)
        done = f"{node} of {run_id}: {result.outcome} by {result.user}"
        return redirect(f"/approvals?done={quote(done)}", code=303)

    def render(self, template: str, data: dict[str, Any], status: int = 200) -> Response:
        html = self.templates.get_template(template).render(**data)
        return Response(html, status=status, mimetype="text/html")

    def _check_token(self, request: Request) -> Response | None:
        """With a token set: accept it from ?token= (then remember it in a cookie), a cookie or a header.

        Without one (loopback only) the Host header must name this machine: a web page whose domain
        resolves to 127.0.0.1 (DNS rebinding) must not read the dashboard from the user's browser.
        """
        if not self.token:
            if request.host.rsplit(":", 1)[0] not in LOOPBACK_NAMES:
                raise BadRequest(
                    f"this dashboard answers only to {', '.join(LOOPBACK_NAMES)} (Host: {request.host})"
                )
            return None
        given = request.args.get("token")
        if given is not None and hmac.compare_digest(given, self.token):
            response = redirect(request.path)
            response.set_cookie(TOKEN_COOKIE, self.token, httponly=True, samesite="Strict")
            return response
        header = request.headers.get("Authorization", "")
        candidates = [request.cookies.get(TOKEN_COOKIE, ""), header.removeprefix("Bearer ")]
        if any(c and hmac.compare_digest(c, self.token) for c in candidates):
            return None
        raise Unauthorized()


def _when(ms: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000)) + " UTC" if ms else "-"


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def _state_class(state: str | None) -> Markup:
    return Markup("state state-" + (state or "none").lower())


def _urlpart(value: Any) -> str:
    return quote(str(value), safe="")
