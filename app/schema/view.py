"""The GraphQL endpoint over HTTP (GraphQL over HTTP spec): media types, status codes, request
bodies, GraphiQL from local files, and the request's session closed after the answer; rate limits are spent before any GraphQL runs.

- `Accept: application/graphql-response+json`: a request that fails before execution (body,
  parameters, document syntax, validation, variables) is a 4xx with `errors` and no `data`.
- `application/json` (the default, and for `*/*`): those are 200 with `errors`, as before;
  a body that is not JSON is a 400 in both.
- Request errors always come back as a GraphQL error document, never plain text, never a 500.
"""

from __future__ import annotations

import json
import re
from inspect import isawaitable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import orjson
from cross_web import HTTPException
from graphql import OperationType, execute, get_operation_ast
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.execution.is_awaitable import optimized_is_awaitable
from strawberry.extensions import MaskErrors
from strawberry.http import GraphQLHTTPResponse
from strawberry.http.ides import get_graphql_ide_html
from strawberry.types import ExecutionResult

from app.config import Settings
from app.schema.context import Context
from app.schema.errors import should_mask

if TYPE_CHECKING:
    from app.schema.schema import Schema

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"
STATIC = Path(__file__).resolve().parents[1] / "static"
GRAPHIQL_ASSETS = STATIC / "graphiql"
GRAPHIQL_ASSETS_URL = "/graphiql/static"
_CDN_URL = re.compile(r"https://unpkg\.com/")
# A surrogate escape in JSON text (`\ud800`): legal JSON, but alone it is no character, and
# neither PostgreSQL nor UTF-8 can store it. Pairs (an escaped emoji) are fine.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def response_media_type(accept: str) -> str:
    """The media type to answer with, from the Accept header's q-values: graphql-response+json
    when the client prefers it (or ranks it equal), else application/json."""
    best: dict[str, float] = {}
    for part in accept.split(","):
        media, *params = [p.strip() for p in part.split(";")]
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        media = media.lower()
        if media in (GRAPHQL_RESPONSE_JSON, JSON, "*/*", "application/*"):
            key = GRAPHQL_RESPONSE_JSON if media == GRAPHQL_RESPONSE_JSON else JSON
            best[key] = max(best.get(key, 0.0), quality)
    if best.get(GRAPHQL_RESPONSE_JSON, 0.0) > 0 and best[GRAPHQL_RESPONSE_JSON] >= best.get(JSON, 0.0):
        return GRAPHQL_RESPONSE_JSON
    return JSON


def _request_error(result: ExecutionResult) -> bool:
    """True when the operation never ran: syntax, validation or variable errors carry no path
    (every error raised while executing a field does)."""
    errors = result.errors or []
    return result.data is None and bool(errors) and all(error.path is None for error in errors)


def graphiql_html() -> str:
    """Strawberry's GraphiQL page with its CDN scripts and styles served from our own copy
    (same files, same subresource-integrity hashes): it works without the internet."""
    return _CDN_URL.sub(f"{GRAPHIQL_ASSETS_URL}/", get_graphql_ide_html("graphiql"))


class GraphQLView(GraphQL[Context, None]):
    """Strawberry's ASGI view with our context, body parsing and media types; the session is
    closed after the response is built, whatever happened."""

    def __init__(self, schema: Any, settings: Settings) -> None:
        super().__init__(
            schema,
            graphql_ide=None if settings.is_production else "graphiql",
            allow_queries_via_get=True,  # queries only; strawberry refuses mutations over GET
        )
        self.settings = settings
        self._masking = MaskErrors(should_mask_error=should_mask)

    def encode_json(self, data: object) -> bytes:
        """orjson: several times faster than json for a response. It refuses what JSON cannot
        carry (a lone surrogate in a string); those few answers go through json's escapes."""
        try:
            return orjson.dumps(data)
        except TypeError:  # orjson.JSONEncodeError
            return json.dumps(data, separators=(",", ":")).encode()

    @property
    def graphql_ide_html(self) -> str:
        return graphiql_html()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await Response("not found", status_code=404)(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        context = await self.get_context(request, None)
        try:
            refusal = await context.admit()
            if refusal is not None:
                response = self.error_response(request, 429, refusal.message, refusal.headers())
            else:
                response = await self.answer_directly(request, context) or await self.run(request, context=context)
        except HTTPException as error:
            response = self.error_response(request, error.status_code, error.reason)
        finally:
            await context.close()
        await response(scope, receive, send)

    async def answer_directly(self, request: Request, context: Context) -> Response | None:
        """The common request without Strawberry's per-request wrappers: a JSON POST of one query
        or mutation whose document is valid (`schema.valid_documents`) runs straight on
        graphql-core's `execute` with our executor, and its result goes through the same error
        processing (logged, suggestions removed, masked) and the same response building as
        Strawberry's path. Anything else (GET, other bodies, a document with errors, several
        operations, an `extensions` entry) returns None: `run` answers it, as it always did.
        Strawberry's HTTP view and `Schema.execute` cost about as much as a click's own
        statements (five extensions built, their hooks entered, adapters, contexts)."""
        if request.method != "POST" or request.headers.get("content-type", "").partition(";")[0].strip().lower() != JSON:
            return None
        body = self.decode_json(await request.body())  # an HTTPException (400) as `run` raises it
        assert isinstance(body, dict)  # decode_json refuses anything else
        query, variables, name = body.get("query"), body.get("variables"), body.get("operationName")
        if not isinstance(query, str) or not isinstance(variables, dict | None) or not isinstance(name, str | None):
            return None
        if body.get("extensions") is not None:
            return None
        schema = cast("Schema", self.schema)  # build_schema's: it keeps the valid documents
        document = schema.valid_documents.get(query)
        if document is None:
            return None
        operation = get_operation_ast(document, name)
        if operation is None or operation.operation not in (OperationType.QUERY, OperationType.MUTATION):
            return None
        executed = execute(
            schema._schema,
            document,
            context_value=context,
            variable_values=variables,
            operation_name=name,
            executor_class=schema.execution_context_class,  # as Strawberry's path passes it
            is_awaitable=cast(Any, optimized_is_awaitable),  # Strawberry passes it to graphql-core so
        )
        if isawaitable(executed):
            executed = await executed
        errors = executed.errors
        if errors:
            schema._process_errors(errors)  # logged; "Did you mean" removed in production
            errors = [self._masking.anonymise_error(error) if should_mask(error) else error for error in errors]
        result = ExecutionResult(data=executed.data, errors=errors)
        response_data = await self.process_result(request, result)
        return self.create_response(response_data, await self.get_sub_response(request))

    def error_response(self, request: Request, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        """A request refused before any GraphQL ran, as a GraphQL error document."""
        media_type = response_media_type(request.headers.get("accept", ""))
        error: dict[str, Any] = {"message": message}
        if status == 429:
            error["extensions"] = {"code": "RATE_LIMITED"}
        body = json.dumps({"errors": [error]}, separators=(",", ":"))
        headers = {**(headers or {}), **({"allow": "GET, POST"} if status == 405 else {})}
        return Response(body, status_code=status, media_type=media_type, headers=headers)

    def decode_json(self, data: str | bytes) -> object:
        """A JSON object, or a 400 that says what is wrong (never a 500: a body nested 3,000
        levels deep overflows the parser's recursion)."""
        try:
            value = json.loads(data)
        except RecursionError:
            raise HTTPException(400, "the request body is nested too deeply") from None
        except (UnicodeDecodeError, ValueError):
            raise HTTPException(400, "Unable to parse request body as JSON") from None
        if not isinstance(value, dict):
            raise HTTPException(400, "the request body must be a JSON object")
        if _SURROGATE_ESCAPE.search(data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")):
            try:
                json.dumps(value, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError:
                raise HTTPException(400, "the request body contains a lone UTF-16 surrogate") from None
        return value

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        assert isinstance(request, Request)  # __call__ answers HTTP only
        return Context(
            request=request,
            response=response,
            settings=self.settings,
            session_factory=request.app.state.session_factory,
            rate_limiter=request.app.state.rate_limiter,
        )

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        processed = await super().process_result(request, result)
        if _request_error(result) and response_media_type(request.headers.get("accept", "")) == GRAPHQL_RESPONSE_JSON:
            processed.pop("data", None)
            request.state.request_error = True
        return processed

    def create_response(self, response_data: Any, sub_response: Response) -> Response:
        response = super().create_response(response_data, sub_response)
        request = getattr(sub_response, "request", None)
        if request is None:
            return response
        if response_media_type(request.headers.get("accept", "")) == GRAPHQL_RESPONSE_JSON:
            response.headers["content-type"] = f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8"
            if getattr(request.state, "request_error", False):
                response.status_code = 400
        refusal = getattr(request.state, "refusal", None)  # a field spent a budget (code lookups)
        if refusal is not None:
            response.status_code = 429
            response.headers.update(refusal.headers())
        return response

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = await super().get_sub_response(request)
        sub_response.request = request  # type: ignore[attr-defined]  # create_response negotiates with it
        return sub_response
