"""The fast execution path: graphql-core's executor with the per-value overhead taken out
where the schema says nothing can happen but reading an attribute (docs/fast_execution.md).

graphql-core completes every field of every row the same general way: a Path, the field
looked up, a GraphQLResolveInfo built, strawberry's resolver wrapper called, its result
checked for being awaitable twice, and completion dispatched through non-null, list,
leaf, abstract and object checks. A 50-row page of six fields runs that 300 times.

`FastExecutor` decides once per schema field (a `Plan`, kept per schema for the life of
the process) whether the field is *plain*: strawberry's own default resolver (no resolver
function, no permission classes, no field extensions, no exception handlers) and no
middleware. Plain fields are then resolved by calling that very resolver without the
info object it ignores, and completed by a specialised routine for their shape:

- a leaf (scalar or enum), or a list of leaves: coerced by the type's own
  `coerce_output_value` (enum members memoised per type), with no awaitable checks;
- an object without `is_type_of`, or a list of such objects: its selection executed
  directly, with graphql-core's own error handling around it;
- `__typename`: the parent type's name.

Anything else, and any value a specialised routine does not expect (null where the type
says non-null, a coercion that fails, an item that is awaitable, an exception), goes
through graphql-core's general `execute_field`, which resolves the field again from
scratch: every error, message, path and null is graphql-core's own. Resolving again is
sound because a plain field reads an attribute and nothing else.

Limits, scoping and error masking do not live here: validation rules, resolvers and the
ErrorPolicy extension run exactly as before. tests/support/differential.py runs every
query of the test suite both ways and compares the answers (NUMBRA_DIFFERENTIAL=1).
"""

import contextvars
import operator
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from graphql import (
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLSchema,
    GraphQLString,
    TypeNameMetaFieldDef,
    is_leaf_type,
)
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.pyutils import Path, Undefined, gather_with_cancel
from strawberry.execution.is_awaitable import optimized_is_awaitable
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField
from strawberry.utils.await_maybe import AwaitableOrValue

# Set (per task) to run an operation the plain graphql-core way with this same class:
# the differential test's second run (tests/support/differential.py).
PLAIN: contextvars.ContextVar[bool] = contextvars.ContextVar("numbra_plain", default=False)

# Plan kinds.
GENERAL = 0  # graphql-core's execute_field
LEAF = 1
LEAF_LIST = 2
OBJECT = 3
OBJECT_LIST = 4
TYPENAME = 5


class _Fallback(Exception):
    """A value the specialised routine does not take: graphql-core completes the field."""


_FALLBACK = _Fallback()


@dataclass
class Plan:
    """How one field of one object type is executed, decided once per schema."""

    kind: int
    field_type: Any = None  # the field's type, as graphql-core has it
    resolve: Callable[..., Any] | None = None
    non_null: bool = False  # the field's type
    item_non_null: bool = False  # a list's items
    leaf: Any = None  # the leaf type (scalar or enum)
    object_type: GraphQLObjectType | None = None
    item_type: GraphQLOutputType | None = None  # a list's item type, as graphql-core has it
    enum_names: dict[Any, Any] = field(default_factory=dict)
    read: Callable[[Any], Any] | None = None  # the attribute read, when that is all it does

    def coerce(self, value: Any) -> Any:
        """The leaf value as graphql-core's complete_leaf_value makes it, or _Fallback."""
        if type(value) is str and self.leaf is GraphQLString:
            return value
        if isinstance(value, Enum):
            found = self.enum_names.get(value)
            if found is not None:
                return found
            coerced = self.leaf.coerce_output_value(value)
            if coerced is not None and coerced is not Undefined:
                self.enum_names[value] = coerced
                return coerced
            raise _FALLBACK
        if optimized_is_awaitable(value):
            raise _FALLBACK
        coerced = self.leaf.coerce_output_value(value)
        if coerced is None or coerced is Undefined:
            raise _FALLBACK
        return coerced


_GENERAL = Plan(GENERAL)
_TYPENAME = Plan(TYPENAME)

_STRAWBERRY_CONVERTER = "strawberry.schema.schema_converter"

# Plans per schema, per (type name, field name): built on first use, kept as long as the
# schema is.
_PLANS: "weakref.WeakKeyDictionary[GraphQLSchema, dict[tuple[str, str], Plan]]" = (
    weakref.WeakKeyDictionary()
)


def _attribute_reader(field_def: GraphQLField) -> Callable[[Any], Any] | None:
    """What strawberry's basic-field resolver does, without its two calls: getattr of the
    field's Python name (when the schema keeps strawberry's default resolver, getattr)."""
    definition = (field_def.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if (
        not isinstance(definition, StrawberryField)
        or definition.base_resolver is not None
        or definition.default_resolver is not getattr
    ):
        return None
    return operator.attrgetter(definition.python_name)


def _plain_type_check(object_type: GraphQLObjectType) -> bool:
    """Whether the type has no is_type_of, or strawberry's own for a type with interfaces:
    a synchronous isinstance check that ignores the info argument."""
    check = object_type.is_type_of
    return check is None or (
        check.__module__ == _STRAWBERRY_CONVERTER
        and check.__qualname__.endswith("_get_is_type_of.<locals>.is_type_of")
    )


def _type_check_passes(object_type: GraphQLObjectType, value: Any) -> bool:
    check = object_type.is_type_of
    return check is None or check(value, None) is True  # type: ignore[arg-type]


def _plain_item(plan: Plan, item: Any, is_awaitable: Callable[[Any], bool]) -> bool:
    """Whether a list's item is an object its plan completes: not null, not awaitable, not
    an exception, of the item type."""
    return not (
        item is None
        or is_awaitable(item)
        or isinstance(item, Exception)
        or not _type_check_passes(plan.object_type, item)  # type: ignore[arg-type]
    )


def _plan_for(field_def: GraphQLField) -> Plan:
    if field_def is TypeNameMetaFieldDef:
        return _TYPENAME
    resolve = field_def.resolve
    if resolve is None or not getattr(resolve, "_is_default", False) or field_def.args:
        return _GENERAL
    read = _attribute_reader(field_def)
    plan = _shaped_plan(field_def, resolve if read is None else _ignoring_info(read))
    if plan is not _GENERAL:
        plan.read = read
    return plan


def _ignoring_info(read: Callable[[Any], Any]) -> Callable[[Any, Any], Any]:
    return lambda source, _info: read(source)


def _shaped_plan(field_def: GraphQLField, resolve: Callable[..., Any]) -> Plan:
    """The plan for a plain field's shape: leaf, object, or a list of either."""
    field_type: Any = field_def.type
    non_null = isinstance(field_type, GraphQLNonNull)
    inner = field_type.of_type if non_null else field_type
    if is_leaf_type(inner):
        return Plan(LEAF, field_type, resolve, non_null, leaf=inner)
    if isinstance(inner, GraphQLObjectType):
        if not _plain_type_check(inner):
            return _GENERAL
        return Plan(OBJECT, field_type, resolve, non_null, object_type=inner)
    if isinstance(inner, GraphQLList):
        item_type = inner.of_type
        item_non_null = isinstance(item_type, GraphQLNonNull)
        item = item_type.of_type if item_non_null else item_type
        if is_leaf_type(item):
            return Plan(
                LEAF_LIST,
                field_type,
                resolve,
                non_null,
                item_non_null,
                leaf=item,
                item_type=item_type,
            )
        if isinstance(item, GraphQLObjectType) and _plain_type_check(item):
            return Plan(
                OBJECT_LIST,
                field_type,
                resolve,
                non_null,
                item_non_null,
                object_type=item,
                item_type=item_type,
            )
    return _GENERAL


class FastExecutor(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's executor, with plain fields resolved and completed directly."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        manager = self.middleware_manager
        self.fast = not PLAIN.get() and not (manager is not None and manager.middlewares)
        plans = _PLANS.get(self.schema)
        if plans is None:
            plans = _PLANS.setdefault(self.schema, {})
        self.plans = plans
        self.steps: dict[tuple[int, str], tuple[GroupedFieldSet, list[Any]]] = {}
        self.completers: dict[tuple[int, str], tuple[FieldDetailsList, Completer | None]] = {}

    def _steps(
        self, parent_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet
    ) -> list[tuple[str, FieldDetailsList, Plan]]:
        """The fields of a selection with their plans: made once per selection and type
        in a request (graphql-core hands every row of a list the same selection)."""
        key = (id(grouped_field_set), parent_type.name)
        found = self.steps.get(key)
        if found is not None and found[0] is grouped_field_set:
            return found[1]
        steps = [
            (name, details, self._plan(parent_type, details[0].node.name.value))
            for name, details in grouped_field_set.items()
        ]
        # The selection is kept with its steps, so its id cannot be reused meanwhile.
        self.steps[key] = (grouped_field_set, steps)
        return steps

    def _plan(self, parent_type: GraphQLObjectType, field_name: str) -> Plan:
        key = (parent_type.name, field_name)
        plan = self.plans.get(key)
        if plan is None:
            field_def = self.schema.get_field(parent_type, field_name)
            plan = _plan_for(field_def) if field_def is not None else _GENERAL
            self.plans[key] = plan
        return plan

    def _completer(
        self, object_type: GraphQLObjectType, field_details_list: FieldDetailsList
    ) -> "Completer | None":
        """One function completing an object's whole selection, for a selection of plain
        attribute reads only (leaves, lists of leaves, `__typename`, and objects whose
        selections are such in turn); None for any other. Made once per selection and
        type in a request, like the steps: a page's rows then cost a call each."""
        key = (id(field_details_list), object_type.name)
        found = self.completers.get(key)
        if found is not None and found[0] is field_details_list:
            return found[1]
        grouped_field_set, deferred, _ = self.collect_subfields(object_type, field_details_list)
        completer = None if deferred else self._compile(object_type, grouped_field_set)
        # The selection is kept with its completer, so its id cannot be reused meanwhile.
        self.completers[key] = (field_details_list, completer)
        return completer

    def _compile(
        self, object_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet
    ) -> "Completer | None":
        parts: list[tuple[str, _Part]] = []
        for name, details, plan in self._steps(object_type, grouped_field_set):
            part = self._part(object_type, plan, details)
            if part is None:
                return None
            parts.append((name, part))
        return _completer_of(parts)

    def _part(
        self, parent_type: GraphQLObjectType, plan: Plan, details: FieldDetailsList
    ) -> "_Part | None":
        """One field of a compiled selection, or None for one that cannot be compiled."""
        if plan.kind == TYPENAME:
            return _Part(TYPENAME, name=parent_type.name)
        if plan.read is None:
            return None
        if plan.kind in (LEAF, LEAF_LIST):
            return _Part(plan.kind, plan, plan.read)
        if plan.kind == OBJECT:
            assert plan.object_type is not None
            inner = self._completer(plan.object_type, details)
            return _Part(OBJECT, plan, plan.read, inner) if inner is not None else None
        return None

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        if not self.fast:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        # graphql-core's loop, with plain leaves completed in place: they are never
        # awaitable, so they skip the check.
        results: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        awaitable_fields: list[str] = []
        try:
            for response_name, field_details_list, plan in self._steps(
                parent_type, grouped_field_set
            ):
                kind = plan.kind
                if kind in (LEAF, LEAF_LIST):
                    value = self._leaf(plan, source_value)
                    if value is not _FALLBACK:
                        results[response_name] = value
                        continue
                elif kind == TYPENAME:
                    results[response_name] = parent_type.name
                    continue
                field_path = Path(path, response_name, parent_type.name)
                if kind in (OBJECT, OBJECT_LIST):
                    result = self._composite(plan, source_value, field_details_list, field_path)
                    if result is _FALLBACK:
                        result = self.execute_field(
                            parent_type, source_value, field_details_list, field_path, None
                        )
                else:
                    result = self.execute_field(
                        parent_type, source_value, field_details_list, field_path, None
                    )
                if result is not Undefined:
                    results[response_name] = result
                    if is_awaitable(result):
                        awaitable_fields.append(response_name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background([results[name] for name in awaitable_fields])
            raise
        if not awaitable_fields:
            return results
        return _gather_fields(results, awaitable_fields)

    def complete_list_value(
        self,
        return_type: GraphQLList[GraphQLOutputType],
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        """A list of plain objects that a resolver returned (a loader's rows, say), its
        items completed by the selection's compiled function as a plain field's are;
        anything else as graphql-core completes it."""
        if self.fast and (type(result) is list or type(result) is tuple):
            plan = self._list_plan(return_type, info)
            if (
                plan is not None
                and plan.object_type is not None
                and self.get_stream_usage(field_details_list, path) is None
                and self._completer(plan.object_type, field_details_list) is not None
                and all(_plain_item(plan, item, self.is_awaitable) for item in result)
            ):
                return self._object_list(plan, result, field_details_list, path)
        return super().complete_list_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def _list_plan(
        self, return_type: GraphQLList[Any], info: GraphQLResolveInfo[Any]
    ) -> Plan | None:
        """An OBJECT_LIST plan for a field's own list of plain objects (not a list nested
        in a list: errors are handled against the field's type)."""
        field_type = info.return_type
        if (field_type.of_type if isinstance(field_type, GraphQLNonNull) else field_type) is not (
            return_type
        ):
            return None
        item_type = return_type.of_type
        item = item_type.of_type if isinstance(item_type, GraphQLNonNull) else item_type
        if not isinstance(item, GraphQLObjectType) or not _plain_type_check(item):
            return None
        return Plan(OBJECT_LIST, field_type, object_type=item, item_type=item_type)

    @staticmethod
    def _leaf(plan: Plan, source: Any) -> Any:
        """A plain leaf or list of leaves, or _FALLBACK for graphql-core to complete."""
        try:
            value = plan.resolve(source, None)  # type: ignore[misc]
            if value is None:
                return _FALLBACK if plan.non_null else None
            if plan.kind == LEAF:
                return plan.coerce(value)
            if type(value) is not list and type(value) is not tuple:
                return _FALLBACK
            coerce = plan.coerce
            completed: list[Any] = []
            for item in value:
                if item is None:
                    if plan.item_non_null:
                        return _FALLBACK
                    completed.append(None)
                else:
                    completed.append(coerce(item))
            return completed
        except Exception:
            return _FALLBACK

    def _composite(
        self, plan: Plan, source: Any, field_details_list: FieldDetailsList, path: Path
    ) -> Any:
        """A plain object or list of objects, or _FALLBACK before anything has run."""
        try:
            value = plan.resolve(source, None)  # type: ignore[misc]
        except Exception:
            return _FALLBACK
        if value is None:
            return _FALLBACK if plan.non_null else None
        object_type = plan.object_type
        assert object_type is not None
        is_awaitable = self.is_awaitable
        if plan.kind == OBJECT:
            if (
                is_awaitable(value)
                or isinstance(value, Exception)
                or not _type_check_passes(object_type, value)
            ):
                return _FALLBACK
            field_type = plan.field_type
            try:
                completed = self.collect_and_execute_subfields(
                    object_type, field_details_list, path, value, None
                )
            except Exception as raw_error:
                self.handle_field_error(raw_error, field_type, field_details_list, path)
                return None
            if is_awaitable(completed):
                return _await_field(self, completed, field_type, field_details_list, path)
            return completed
        if type(value) is not list and type(value) is not tuple:
            return _FALLBACK
        if not all(_plain_item(plan, item, is_awaitable) for item in value):
            return _FALLBACK
        return self._object_list(plan, value, field_details_list, path)

    def _object_list(
        self, plan: Plan, items: Iterable[Any], field_details_list: FieldDetailsList, path: Path
    ) -> Any:
        """graphql-core's complete_iterable_value for items that are plain objects."""
        object_type = plan.object_type
        item_type = plan.item_type
        assert object_type is not None
        assert item_type is not None
        field_type = plan.field_type
        is_awaitable = self.is_awaitable
        execute = self.collect_and_execute_subfields
        complete = self._completer(object_type, field_details_list)
        completed_results: list[Any] = []
        awaitable_indices: list[int] = []
        try:
            for index, item in enumerate(items):
                if complete is not None:
                    try:
                        completed_results.append(complete(item))
                        continue
                    except Exception:
                        pass  # graphql-core completes this item, as it would have all
                item_path = path.add_key(index, None)
                try:
                    completed = execute(object_type, field_details_list, item_path, item, None)
                except Exception as raw_error:
                    self.handle_field_error(raw_error, item_type, field_details_list, item_path)
                    completed = None
                else:
                    if is_awaitable(completed):
                        completed = _await_field(
                            self, completed, item_type, field_details_list, item_path
                        )
                        awaitable_indices.append(index)
                completed_results.append(completed)
        except Exception as raw_error:
            if awaitable_indices:
                self.settle_in_background([completed_results[i] for i in awaitable_indices])
            self.handle_field_error(raw_error, field_type, field_details_list, path)
            return None
        if not awaitable_indices:
            return completed_results
        return _gather_list(
            self, completed_results, awaitable_indices, field_type, field_details_list, path
        )


Completer = Callable[[Any], dict[str, Any]]


@dataclass(frozen=True)
class _Part:
    """A field of a compiled selection: its kind, plan, and the attribute read."""

    kind: int
    plan: Plan | None = None
    read: Callable[[Any], Any] | None = None
    inner: "Completer | None" = None  # an object's own compiled selection
    name: str = ""  # __typename's value


# Compiled selections, the most recently used last, by their parts' response names, kinds,
# plans and inner completers (what the code is made of). Each entry keeps its parts, so
# the ids in its key stay theirs. Made once per selection for the life of the process.
COMPLETERS = 1_024
_completers: "OrderedDict[tuple[Any, ...], tuple[list[tuple[str, _Part]], Completer]]" = (
    OrderedDict()
)


def _completer_of(parts: list[tuple[str, _Part]]) -> Completer:
    """An object's completed selection, in the selection's order, or _Fallback raised
    (or any exception) for graphql-core to complete the object instead: made once per
    selection (`_completers`), as one function."""
    key = tuple((name, part.kind, id(part.plan), id(part.inner), part.name) for name, part in parts)
    found = _completers.get(key)
    if found is not None:
        _completers.move_to_end(key)
        return found[1]
    complete = _compiled(parts)
    _completers[key] = (parts, complete)
    while len(_completers) > COMPLETERS:
        _completers.popitem(last=False)
    return complete


def _compiled(parts: list[tuple[str, _Part]]) -> Completer:
    """A selection's completion written out as one function of straight-line Python
    (`exec` of code made here from the plans alone: names are numbered, values passed
    in), so a row costs one call: a closure per field, and a comprehension over them,
    made a 50-row page's completion about twice as slow."""
    lines = ["def complete(source):"]
    names: dict[str, Any] = {
        "FALLBACK": _FALLBACK,
        "Enum": Enum,
        "is_awaitable": optimized_is_awaitable,
    }
    for i, (_response_name, part) in enumerate(parts):
        plan = part.plan
        if part.kind == TYPENAME:
            names[f"a{i}"] = part.name
            continue
        assert plan is not None
        names[f"read{i}"] = part.read
        lines.append(f"    v = read{i}(source)")
        lines.append("    if v is None:")
        lines.append("        raise FALLBACK" if plan.non_null else f"        a{i} = None")
        lines.append("    else:")
        if part.kind == LEAF:
            lines += _coercion(names, i, plan, "v", f"a{i}", "        ")
        elif part.kind == LEAF_LIST:
            lines.append("        if type(v) is not list and type(v) is not tuple:")
            lines.append("            raise FALLBACK")
            lines.append(f"        a{i} = []")
            lines.append("        for x in v:")
            lines.append("            if x is None:")
            if plan.item_non_null:
                lines.append("                raise FALLBACK")
            else:
                lines.append(f"                a{i}.append(None)")
                lines.append("                continue")
            lines += _coercion(names, i, plan, "x", "y", "            ")
            lines.append(f"            a{i}.append(y)")
        else:  # OBJECT
            assert plan.object_type is not None
            names[f"inner{i}"] = part.inner
            names[f"check{i}"] = plan.object_type.is_type_of
            lines.append("        if is_awaitable(v) or isinstance(v, Exception):")
            lines.append("            raise FALLBACK")
            if plan.object_type.is_type_of is not None:
                lines.append(f"        if check{i}(v, None) is not True:")
                lines.append("            raise FALLBACK")
            lines.append(f"        a{i} = inner{i}(v)")
    entries = ", ".join(f"{name!r}: a{i}" for i, (name, _part) in enumerate(parts))
    lines.append(f"    return {{{entries}}}")
    # Only numbered names and GraphQL response names (letters, digits, _) go in the code.
    exec("\n".join(lines), names)
    complete: Completer = names["complete"]
    return complete


def _coercion(
    names: dict[str, Any], i: int, plan: Plan, value: str, target: str, indent: str
) -> list[str]:
    """Lines setting `target` to the leaf `value` coerced as Plan.coerce does: a string of
    String as it is, an enum member by the names memoised, anything else by the type."""
    names[f"coerce{i}"] = plan.coerce
    if plan.leaf is GraphQLString:
        return [f"{indent}{target} = {value} if type({value}) is str else coerce{i}({value})"]
    names[f"enum{i}"] = plan.enum_names
    return [
        f"{indent}{target} = enum{i}.get({value}) if isinstance({value}, Enum) else None",
        f"{indent}if {target} is None:",
        f"{indent}    {target} = coerce{i}({value})",
    ]


async def _await_field(
    executor: FastExecutor,
    completed: Awaitable[Any],
    return_type: Any,
    field_details_list: FieldDetailsList,
    path: Path,
) -> Any:
    try:
        return await completed
    except Exception as raw_error:
        executor.handle_field_error(raw_error, return_type, field_details_list, path)
        return None


async def _gather_fields(results: dict[str, Any], awaitable_fields: list[str]) -> dict[str, Any]:
    if len(awaitable_fields) == 1:
        name = awaitable_fields[0]
        results[name] = await results[name]
    else:
        awaited = await gather_with_cancel(*(results[name] for name in awaitable_fields))
        results.update(zip(awaitable_fields, awaited, strict=True))
    return results


async def _gather_list(
    executor: FastExecutor,
    completed_results: list[Any],
    awaitable_indices: list[int],
    field_type: Any,
    field_details_list: FieldDetailsList,
    path: Path,
) -> Any:
    try:
        if len(awaitable_indices) == 1:
            index = awaitable_indices[0]
            completed_results[index] = await completed_results[index]
        else:
            awaited = await gather_with_cancel(
                *(completed_results[index] for index in awaitable_indices)
            )
            for index, value in zip(awaitable_indices, awaited, strict=True):
                completed_results[index] = value
    except Exception as raw_error:
        executor.handle_field_error(raw_error, field_type, field_details_list, path)
        return None
    return completed_results
