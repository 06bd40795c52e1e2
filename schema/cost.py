"""What a request costs, read from its document and variables before anything runs.

1 for the operation; plus the `first` of every field that takes one (a connection, or a
list bounded by `first`) multiplied by the `first`s of the fields that enclose it, all
added up, per 100, rounded up; plus, for each field of a mutation, 10 and 1 per 100
numbers its input names (rounded up). A `first` not given is the argument's default; a
null one, or one past NUMBRA_MAX_PAGE_SIZE, counts as that largest page. Fields are
counted as the document asks for them: each alias, each spread of a fragment, every
branch of a type condition. A fragment is priced once however often it is spread, so
the work grows with the document's size, never with what it expands to.
"""

import math
from collections.abc import Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationType,
    SelectionSetNode,
    Undefined,
    get_named_type,
    value_from_ast_untyped,
)
from graphql.utilities import get_operation_ast

OPERATION = 1
PER = 100
MUTATION = 10


def request_cost(
    schema: GraphQLSchema,
    document: DocumentNode | None,
    variables: Mapping[str, Any] | None,
    operation_name: str | None,
    max_page_size: int,
) -> int:
    """The cost of running `operation_name` of the document (None: one that does not
    parse, which costs the operation alone)."""
    operation = get_operation_ast(document, operation_name) if document is not None else None
    if document is None or operation is None:
        return OPERATION
    given = dict(variables) if isinstance(variables, Mapping) else {}
    for definition in operation.variable_definitions or ():
        if definition.default_value is not None:
            given.setdefault(
                definition.variable.name.value, value_from_ast_untyped(definition.default_value)
            )
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    pricer = _Pricer(schema, fragments, given, max_page_size)
    root = schema.get_root_type(operation.operation)
    cost = OPERATION + math.ceil(pricer.selections(operation.selection_set, root) / PER)
    if operation.operation is OperationType.MUTATION:
        for field in pricer.top_fields(operation.selection_set):
            cost += MUTATION + math.ceil(pricer.numbers_named(field) / PER)
    return cost


class _Pricer:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        variables: dict[str, Any],
        max_page_size: int,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.max_page_size = max_page_size
        self.known: dict[str, int] = {}
        self.open: set[str] = set()  # a cycle is invalid anyway: validation reports it

    def selections(self, selection_set: SelectionSetNode, parent: GraphQLNamedType | None) -> int:
        """The `first`s of the selection, each times those it encloses, as if enclosed by 1."""
        total = 0
        for node in selection_set.selections:
            if isinstance(node, FieldNode):
                field = _field(parent, node.name.value)
                inner = 0
                if node.selection_set is not None:
                    named = get_named_type(field.type) if field is not None else None
                    inner = self.selections(node.selection_set, named)
                first = self.first(node, field)
                total += inner if first is None else first + first * inner
            elif isinstance(node, InlineFragmentNode):
                condition = node.type_condition
                inner_type = self.schema.get_type(condition.name.value) if condition else parent
                total += self.selections(node.selection_set, inner_type)
            elif isinstance(node, FragmentSpreadNode):
                total += self.fragment(node.name.value)
        return total

    def fragment(self, name: str) -> int:
        if name in self.known:
            return self.known[name]
        definition = self.fragments.get(name)
        if definition is None or name in self.open:
            return 0
        self.open.add(name)
        on = self.schema.get_type(definition.type_condition.name.value)
        self.known[name] = self.selections(definition.selection_set, on)
        self.open.discard(name)
        return self.known[name]

    def first(self, node: FieldNode, field: GraphQLField | None) -> int | None:
        """The page the field asks for, or None if it takes no `first`."""
        if field is None or "first" not in field.args:
            return None
        value: Any = Undefined
        for argument in node.arguments or ():
            if argument.name.value == "first":
                value = value_from_ast_untyped(argument.value, self.variables)
        if value is Undefined:
            value = field.args["first"].default_value
        if isinstance(value, int) and not isinstance(value, bool):
            return max(0, min(value, self.max_page_size))
        return self.max_page_size

    def top_fields(self, selection_set: SelectionSetNode) -> list[FieldNode]:
        """The mutation's own fields, through any fragments at its top."""
        found: list[FieldNode] = []
        for node in selection_set.selections:
            if isinstance(node, FieldNode):
                found.append(node)
            elif isinstance(node, InlineFragmentNode):
                found += self.top_fields(node.selection_set)
            elif isinstance(node, FragmentSpreadNode):
                definition = self.fragments.get(node.name.value)
                if definition is not None and node.name.value not in self.open:
                    self.open.add(node.name.value)
                    found += self.top_fields(definition.selection_set)
                    self.open.discard(node.name.value)
        return found

    def numbers_named(self, node: FieldNode) -> int:
        """How many numbers the mutation's input names (its `numbers` list)."""
        for argument in node.arguments or ():
            if argument.name.value != "input":
                continue
            value = value_from_ast_untyped(argument.value, self.variables)
            numbers = value.get("numbers") if isinstance(value, dict) else None
            return len(numbers) if isinstance(numbers, list) else 0
        return 0


def _field(parent: GraphQLNamedType | None, name: str) -> GraphQLField | None:
    if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
        found: GraphQLField | None = parent.fields.get(name)
        return found
    return None
