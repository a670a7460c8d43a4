"""Validation rules that bound what one GraphQL document may ask for: depth and aliases.

Strawberry's own limiters walk every fragment spread again, so a document in which each
fragment spreads the next one twice costs 2^n walks (n=20, 837 bytes: 6 s of a blocked
process, before authentication). These rules measure each fragment once and reuse the result
wherever it is spread, so validating is linear in the document's size.

Unknown fragments and fragment cycles count as empty here: graphql-core's own rules
(KnownFragmentNames, NoFragmentCycles) report them with their normal messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)
from graphql.language.visitor import VisitorAction


@dataclass(frozen=True)
class Shape:
    depth: int  # nesting of fields with selections below (a leaf is 0); introspection is free
    aliases: int  # aliased fields, counted once per place a fragment is spread


_EMPTY = Shape(0, 0)


class DocumentShapes:
    """Each operation's shape, every fragment measured once."""

    def __init__(self, definitions: Any, *, cap: int) -> None:
        # Counts beyond `cap` are all "too many": capping keeps 2^40 out of the arithmetic.
        self.cap = cap
        self.fragments = {d.name.value: d for d in definitions if isinstance(d, FragmentDefinitionNode)}
        self.measured: dict[str, Shape] = {}
        self._measure_fragments()

    def _measure_fragments(self) -> None:
        """Fragments in dependency order, without recursion (a chain of 500 fragments is
        a valid document); a spread back into a fragment still open is a cycle."""
        for root in self.fragments:
            if root in self.measured:
                continue
            stack: list[tuple[str, list[str]]] = [(root, self._spreads(self.fragments[root].selection_set))]
            open_names = {root}
            while stack:
                name, pending = stack[-1]
                child = next((n for n in pending if n in self.fragments and n not in self.measured and n not in open_names), None)
                if child is None:
                    stack.pop()
                    open_names.discard(name)
                    self.measured[name] = self.selections(self.fragments[name].selection_set)
                    continue
                open_names.add(child)
                stack.append((child, self._spreads(self.fragments[child].selection_set)))

    @staticmethod
    def _spreads(selection_set: SelectionSetNode | None) -> list[str]:
        names: list[str] = []
        pending = [selection_set]
        while pending:
            current = pending.pop()
            for selection in current.selections if current else ():
                if isinstance(selection, FragmentSpreadNode):
                    names.append(selection.name.value)
                elif isinstance(selection, FieldNode | InlineFragmentNode) and selection.selection_set is not None:
                    pending.append(selection.selection_set)
        return names

    def selections(self, selection_set: SelectionSetNode | None) -> Shape:
        depth = aliases = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                if selection.alias is not None:
                    aliases += 1
                if selection.selection_set is not None and not selection.name.value.startswith("__"):
                    inner = self.selections(selection.selection_set)
                    depth, aliases = max(depth, inner.depth + 1), aliases + inner.aliases
                elif selection.selection_set is not None:  # introspection: its aliases still count
                    aliases += self.selections(selection.selection_set).aliases
            elif isinstance(selection, InlineFragmentNode):
                inner = self.selections(selection.selection_set)
                depth, aliases = max(depth, inner.depth), aliases + inner.aliases
            elif isinstance(selection, FragmentSpreadNode):  # unknown or still open (a cycle) counts as empty
                inner = self.measured.get(selection.name.value, _EMPTY)
                depth, aliases = max(depth, inner.depth), aliases + inner.aliases
        return Shape(min(depth, self.cap), min(aliases, self.cap))


_CAP = 1_000_000  # far above any limit; counts beyond it are all "too many"


def _shapes(context: ValidationContext) -> DocumentShapes:
    """Measured once per document, shared by the rules that validate it."""
    shapes = getattr(context, "_referral_shapes", None)
    if shapes is None:
        shapes = DocumentShapes(context.document.definitions, cap=_CAP)
        context._referral_shapes = shapes  # type: ignore[attr-defined]
    return shapes


def depth_limit_rule(max_depth: int) -> type[ValidationRule]:
    class MaxDepthRule(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> VisitorAction:
            shapes = _shapes(self.context)
            if shapes.selections(node.selection_set).depth > max_depth:
                name = node.name.value if node.name else "anonymous"
                self.report_error(GraphQLError(f"'{name}' exceeds maximum operation depth of {max_depth}", node))
            return self.SKIP

    return MaxDepthRule


def alias_limit_rule(max_aliases: int) -> type[ValidationRule]:
    class MaxAliasesRule(ValidationRule):
        def enter_document(self, node: Any, *_: Any) -> VisitorAction:
            shapes = _shapes(self.context)
            total = sum(
                shapes.selections(d.selection_set).aliases for d in node.definitions if isinstance(d, OperationDefinitionNode)
            )
            if total > max_aliases:
                shown = f"{total}" if total < shapes.cap else f"more than {max_aliases}"
                self.report_error(GraphQLError(f"{shown} aliases found. Allowed: {max_aliases}"))
            return self.SKIP

    return MaxAliasesRule
