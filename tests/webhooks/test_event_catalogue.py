"""Every webhook event the application enqueues is in the catalogue (app.webhooks.events).

`emit` refuses an unknown event type only when the line runs; this reads every module of
app/ so that an event named on a path no test takes is caught too."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from app.webhooks import events

APP = Path(__file__).resolve().parents[2] / "app"

# The calls that enqueue an event, and the position of the event type among their arguments.
ENQUEUERS = {
    "emit": 2,  # app.webhooks.service.emit(session, merchant_id, event_type, payload)
    "referral_event": 1,  # app.referrals.notify.*(session, event_type, ...)
    "reward_event": 1,
    "fraud_review_event": 1,
    "announce": 1,  # app.payouts.service.announce(session, event_type, payouts)
}
# The calls that enqueue several events, and the position of their list of (event type, ...) pairs.
MANY_ENQUEUERS = {
    "emit_many": 2,  # app.webhooks.service.emit_many(session, merchant_id, [(event_type, payload), ...])
    "reward_events": 1,  # app.referrals.notify.reward_events(session, [(event_type, reward), ...])
}


@dataclass(frozen=True)
class Enqueued:
    where: str
    event: str | None  # None: a parameter of `function`, passed on from its callers
    function: str


def _events_aliases(tree: ast.Module) -> tuple[set[str], dict[str, str]]:
    """Names under which a module sees app.webhooks.events, and constants it imports by name."""
    modules: set[str] = set()
    constants: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "app.webhooks":
            modules |= {a.asname or a.name for a in node.names if a.name == "events"}
        elif isinstance(node, ast.ImportFrom) and node.module == "app.webhooks.events":
            constants |= {a.asname or a.name: getattr(events, a.name) for a in node.names if a.name.isupper()}
    return modules, constants


def _enqueued(path: Path) -> list[Enqueued]:
    tree = ast.parse(path.read_text(), filename=str(path))
    modules, constants = _events_aliases(tree)
    found: list[Enqueued] = []

    def event_of(arg: ast.expr, parameters: set[str]) -> str | None:
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return arg.value
        if isinstance(arg, ast.Attribute) and isinstance(arg.value, ast.Name) and arg.value.id in modules:
            return getattr(events, arg.attr, f"<no constant events.{arg.attr}>")
        if isinstance(arg, ast.Name) and arg.id in constants:
            return constants[arg.id]
        if isinstance(arg, ast.Name) and arg.id in parameters:
            return None
        return f"<not a catalogue constant: {ast.unparse(arg)}>"

    def visit(node: ast.AST, function: str, parameters: set[str]) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            function = node.name
            args = node.args
            parameters = parameters | {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
            where = f"{path.relative_to(APP.parent)}:{node.lineno}"
            if name in ENQUEUERS and len(node.args) > ENQUEUERS[name]:
                found.append(Enqueued(where, event_of(node.args[ENQUEUERS[name]], parameters), function))
            if name in MANY_ENQUEUERS and len(node.args) > MANY_ENQUEUERS[name]:
                listed = list(ast.walk(node.args[MANY_ENQUEUERS[name]]))
                pairs = [t for t in listed if isinstance(t, ast.Tuple) and isinstance(t.ctx, ast.Load) and t.elts]
                # names a comprehension takes from a parameter's pairs are passed on, like the parameter
                passed_on = {
                    target.id
                    for loop in listed
                    if isinstance(loop, ast.comprehension) and isinstance(loop.iter, ast.Name) and loop.iter.id in parameters
                    for target in ast.walk(loop.target)
                    if isinstance(target, ast.Name)
                }
                found.extend(Enqueued(where, event_of(pair.elts[0], parameters | passed_on), function) for pair in pairs)
        for child in ast.iter_child_nodes(node):
            visit(child, function, parameters)

    visit(tree, "", set())
    return found


def _all_enqueued() -> list[Enqueued]:
    return [e for path in sorted(APP.rglob("*.py")) for e in _enqueued(path)]


def test_every_event_an_app_module_enqueues_is_in_the_catalogue():
    enqueued = _all_enqueued()

    named = [e for e in enqueued if e.event is not None]
    assert len(named) >= 20, "the scan found too few enqueued events: has an enqueuing function been renamed?"
    assert [f"{e.where}: {e.event}" for e in named if e.event not in events.EVENT_TYPES] == []
    # An event type passed on as a parameter is checked where that function is called: it must be an
    # enqueuer itself, or app.payouts.service._finish, which announces only what is in the catalogue.
    forwarders = {e.function for e in enqueued if e.event is None}
    assert forwarders <= set(ENQUEUERS) | set(MANY_ENQUEUERS) | {"_finish"}


def test_every_catalogue_event_is_enqueued_somewhere():
    named = {e.event for e in _all_enqueued()}
    # A payout's own status changes go through app.payouts.service._finish (also used for audit-only actions).
    through_finish = {events.PAYOUT_REJECTED, events.PAYOUT_PAID, events.PAYOUT_FAILED}
    assert set(events.EVENT_TYPES) - named - through_finish == set()
