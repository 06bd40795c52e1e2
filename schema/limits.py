"""Depth and alias limits that measure each fragment once.

strawberry's QueryDepthLimiter and MaxAliasesLimiter walk a fragment again at every
spread of it, so a document of 25 fragments that each spread the next twice (a
kilobyte) held the event loop for minutes. This rule measures every fragment once
and adds up what its spreads bring, so its work grows with the document's size,
whatever the fragments expand to. It answers with strawberry's messages.
"""

from collections.abc import Iterable

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionNode,
    ValidationContext,
    ValidationRule,
)


class _Measure:
    """The deepest field level and the alias count of selections, fragments expanded."""

    def __init__(self, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self.fragments = fragments
        self.known: dict[str, tuple[int, int]] = {}
        self.open: set[str] = set()  # a cycle is invalid anyway: another rule reports it

    def selections(self, selections: Iterable[SelectionNode]) -> tuple[int, int]:
        deepest, aliases = 0, 0
        for selection in selections:
            depth, count = self.selection(selection)
            deepest, aliases = max(deepest, depth), aliases + count
        return deepest, aliases

    def selection(self, node: SelectionNode) -> tuple[int, int]:
        if isinstance(node, FieldNode):
            aliases = 1 if node.alias else 0
            # Introspection (__schema, __type) counts for aliases, not for depth.
            if node.selection_set is None or node.name.value.startswith("__"):
                inner = (
                    (0, 0)
                    if node.selection_set is None
                    else self.selections(node.selection_set.selections)
                )
                return 0, aliases + inner[1]
            depth, count = self.selections(node.selection_set.selections)
            return depth + 1, aliases + count
        if isinstance(node, InlineFragmentNode):
            return self.selections(node.selection_set.selections)
        assert isinstance(node, FragmentSpreadNode)
        return self.fragment(node.name.value)

    def fragment(self, name: str) -> tuple[int, int]:
        if name in self.known:
            return self.known[name]
        definition = self.fragments.get(name)
        if definition is None or name in self.open:
            return 0, 0
        self.open.add(name)
        self.known[name] = self.selections(definition.selection_set.selections)
        self.open.discard(name)
        return self.known[name]


def limit_rule(max_depth: int, max_aliases: int) -> type[ValidationRule]:
    """A validation rule class refusing operations nested deeper than `max_depth` levels
    (top-level fields are level 0) and documents with more than `max_aliases` aliases."""

    class OperationLimits(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            definitions = context.document.definitions
            measure = _Measure(
                {d.name.value: d for d in definitions if isinstance(d, FragmentDefinitionNode)}
            )
            aliases = 0
            for operation in definitions:
                if not isinstance(operation, OperationDefinitionNode):
                    continue
                depth, count = measure.selections(operation.selection_set.selections)
                aliases += count
                if depth > max_depth:
                    name = operation.name.value if operation.name else "anonymous"
                    message = f"'{name}' exceeds maximum operation depth of {max_depth}"
                    context.report_error(GraphQLError(message, [operation]))
            if aliases > max_aliases:
                context.report_error(
                    GraphQLError(f"{aliases} aliases found. Allowed: {max_aliases}")
                )

    return OperationLimits
