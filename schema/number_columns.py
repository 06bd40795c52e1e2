"""The columns of numbers a page's GraphQL selection reads, so that its statement selects
those alone (domain/search.py): a page asking for four fields loads four columns of each
row, not all 45 with their enum and time conversions.

A page is a NumberConnection. The fields of its nodes that are read straight from the row
declare their columns (schema/numbers.py, FIELD_COLUMNS). The whole row is selected for
any other field of Number (an object made of many columns, a resolver that reads the row,
a field added later), and for anything in the selection this module does not know: a
field of the connection or its edges other than those in `_LEADS`, a directive other than
@skip and @include, a fragment with arguments. A fragment counts whatever its type
condition: selecting more than a page reads is always right, and every condition valid
there holds for a Number anyway.

Parsed documents are kept (schema/extensions.py), so a document sent again brings the
same syntax nodes: what a `numbers` field node's selection reads is worked out once and
kept by the node, with the parts under @skip or @include on a variable apart; a request
only looks those variables up.
"""

import operator
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from graphql import (
    BooleanValueNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    SelectionSetNode,
    VariableNode,
)
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

from schema.context import Info
from schema.numbers import FIELD_COLUMNS, FULL_ROW, TYPE_NAME, Projection, projection

# The fields of a NumberConnection and of its edges: where each leads (the edge, the
# number), or None for those that read nothing of a row but its e164 (every page has it).
_CONNECTION = "connection"
_EDGE = "edge"
_NUMBER = "number"
_LEADS: dict[str, dict[str, str | None]] = {
    _CONNECTION: {"edges": _EDGE, "pageInfo": None, "totalCount": None, "__typename": None},
    _EDGE: {"node": _NUMBER, "cursor": None, "__typename": None},
}
# An @include or @skip on a variable: its name, and the value that leaves the selection out.
Condition = tuple[str, bool]
_LEAVES_OUT = {"include": False, "skip": True}
# What a part of the selection reads: the columns named, under these conditions; None
# for the whole row.
Need = tuple[tuple[Condition, ...], frozenset[str] | None]

KEPT = 1024  # field nodes kept per schema, the oldest dropped first


class _WholeRow(Exception):
    """Something in the selection this module does not read: the page selects every column."""


@dataclass(frozen=True, eq=False)
class _Needs:
    """What a `numbers` field's selection reads: the projection of what it always reads,
    and what it reads more under conditions on variables, if anything."""

    nodes: Sequence[FieldNode]  # kept, so their ids are not reused while this is
    always: Projection
    conditional: tuple[Need, ...]

    def given(self, variables: Mapping[str, Any]) -> Projection:
        """The projection for a request's variables."""
        if not self.conditional or self.always.columns is None:
            return self.always
        columns = set(self.always.columns)
        for conditions, wanted in self.conditional:
            if all(variables.get(name) is not out for name, out in conditions):
                if wanted is None:
                    return FULL_ROW
                columns |= wanted
        return projection(frozenset(columns))


# Per schema (the GraphQL names of Number's fields are the schema's), per field node.
_KEPT: "weakref.WeakKeyDictionary[GraphQLSchema, dict[Any, _Needs]]" = weakref.WeakKeyDictionary()


def page_projection(info: Info) -> Projection:
    """The columns the page a `numbers` field resolves to is read for, and how its rows
    make the fields (schema/numbers.py)."""
    raw = info._raw_info
    nodes = raw.field_nodes
    kept = _KEPT.get(raw.schema)
    if kept is None:
        kept = _KEPT.setdefault(raw.schema, {})
    key: Any = id(nodes[0]) if len(nodes) == 1 else tuple(map(id, nodes))
    needs = kept.get(key)
    if needs is None or not _same(needs.nodes, nodes):
        needs = _needs_of(raw.schema, nodes, raw.fragments)
        kept[key] = needs
        while len(kept) > KEPT:
            del kept[next(iter(kept))]
    return needs.given(info.variable_values if needs.conditional else {})


def _same(kept: Sequence[FieldNode], nodes: Sequence[FieldNode]) -> bool:
    return len(kept) == len(nodes) and all(map(operator.is_, kept, nodes))


def _needs_of(
    schema: GraphQLSchema,
    nodes: Sequence[FieldNode],
    fragments: Mapping[str, FragmentDefinitionNode],
) -> _Needs:
    found: list[Need] = []
    number_fields = _number_fields(schema)
    try:
        for node in nodes:
            if node.selection_set is not None:
                _collect(node.selection_set, _CONNECTION, (), number_fields, fragments, found)
    except _WholeRow:
        return _Needs(tuple(nodes), FULL_ROW, ())
    always: set[str] = set()
    conditional: list[Need] = []
    for conditions, wanted in found:
        if conditions:
            conditional.append((conditions, wanted))
        elif wanted is None:
            return _Needs(tuple(nodes), FULL_ROW, ())
        else:
            always |= wanted
    return _Needs(tuple(nodes), projection(frozenset(always)), tuple(conditional))


def _collect(
    selection_set: SelectionSetNode,
    level: str,
    conditions: tuple[Condition, ...],
    number_fields: Mapping[str, frozenset[str] | None],
    fragments: Mapping[str, FragmentDefinitionNode],
    found: list[Need],
) -> None:
    """The needs of a selection at a level (the connection, an edge, a number) into `found`."""
    for selection in selection_set.selections:
        inner = _conditions(selection.directives or (), conditions)
        if inner is None:
            continue  # left out whatever the variables
        if isinstance(selection, FieldNode):
            name = selection.name.value
            if level == _NUMBER:
                if name != "__typename":
                    found.append((inner, number_fields.get(name)))
                continue
            leads = _LEADS[level]
            if name not in leads:
                raise _WholeRow
            to = leads[name]
            if to is not None and selection.selection_set is not None:
                _collect(selection.selection_set, to, inner, number_fields, fragments, found)
        elif isinstance(selection, InlineFragmentNode):
            _collect(selection.selection_set, level, inner, number_fields, fragments, found)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if selection.arguments or fragment is None or fragment.variable_definitions:
                raise _WholeRow
            _collect(fragment.selection_set, level, inner, number_fields, fragments, found)
        else:
            raise _WholeRow


def _conditions(
    directives: Iterable[Any], conditions: tuple[Condition, ...]
) -> tuple[Condition, ...] | None:
    """The conditions under which a selection with these directives counts, inside one
    counting under `conditions`; None if it never does."""
    for directive in directives:
        leaves_out = _LEAVES_OUT.get(directive.name.value)
        if leaves_out is None:
            raise _WholeRow
        value = next((a.value for a in directive.arguments if a.name.value == "if"), None)
        if isinstance(value, BooleanValueNode):
            if value.value is leaves_out:
                return None
        elif isinstance(value, VariableNode):
            conditions = (*conditions, (value.name.value, leaves_out))
        else:
            raise _WholeRow
    return conditions


_NUMBER_FIELDS: "weakref.WeakKeyDictionary[GraphQLSchema, dict[str, frozenset[str] | None]]" = (
    weakref.WeakKeyDictionary()
)


def _number_fields(schema: GraphQLSchema) -> dict[str, frozenset[str] | None]:
    """The columns each field of Number reads, by its GraphQL name (None: the whole row)."""
    found = _NUMBER_FIELDS.get(schema)
    if found is None:
        number = schema.get_type(TYPE_NAME)
        assert isinstance(number, GraphQLObjectType)
        found = {}
        for name, field in number.fields.items():
            definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
            python_name = definition.python_name if isinstance(definition, StrawberryField) else ""
            found[name] = FIELD_COLUMNS.get(python_name)
        _NUMBER_FIELDS[schema] = found
    return found
