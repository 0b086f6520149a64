"""Run our Lambda handlers in-process when moto's Step Functions interpreter invokes a function.

(This is the one module that reaches into moto's internals; see :func:`install`.)

moto's Lambda needs Docker to run code; with ``{"lambda": {"use_docker": False}}`` it serves
``moto.awslambda_simple``, which only echoes. This module replaces that backend's ``invoke`` with a
dispatcher from function name to handler. It is the one place that touches moto internals, so moto
is pinned (pyproject.toml) and ``tests/integration/test_lambda_binding.py`` guards the behaviour.

A handler's exception is reported the way Lambda reports it (``X-Amz-Function-Error: Unhandled``
and a ``{"errorType", "errorMessage"}`` payload), so Retry and Catch on error names behave as on AWS.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import os
import threading
import traceback
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orderflow_local import moto_dynamodb_wire, sfn_hub

log = logging.getLogger(__name__)

Handler = Callable[[dict, Any], Any]

@dataclass(frozen=True)
class Bound:
    handler: Handler
    #: The function's template environment (None: the process's, for tests that bind a stand-in).
    environment: dict[str, str] | None = None
    memory_mb: int = 512


_handlers: dict[str, Bound] = {}
_lock = threading.Lock()
#: Held by every moto DynamoDB write (see _serialize_moto_dynamodb_writes); the local stack's snapshots
#: hold it too, so a snapshot never sees half of a transaction.
DYNAMODB_WRITE_LOCK = threading.RLock()
_writes = [0]


def dynamodb_writes() -> int:
    """DynamoDB writes moto has taken since the process started (the snapshots' change detector)."""
    return _writes[0]
_installed = False


@dataclass
class LocalLambdaContext:
    """What Powertools reads from a Lambda context."""

    function_name: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = ""
    invoked_function_arn: str = ""
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def function_name_of(name_or_arn: str) -> str:
    """``arn:aws:lambda:region:acct:function:NAME[:qualifier]`` or ``NAME`` -> ``NAME``."""
    if name_or_arn.startswith("arn:"):
        return name_or_arn.split(":")[6]
    return name_or_arn


def bind(function_name: str, handler: Handler, environment: dict[str, str] | None = None,
         memory_mb: int = 512) -> None:
    """Serve ``function_name`` with ``handler``; while it runs it sees ``environment`` (orderflow_local.function_env)."""
    with _lock:
        previous = _handlers.get(function_name)
        if environment is None and previous is not None:
            environment, memory_mb = previous.environment, previous.memory_mb  # a stand-in keeps the function's
        _handlers[function_name] = Bound(handler, environment, memory_mb)


def bound(function_name: str) -> Bound | None:
    return _handlers.get(function_name_of(function_name))


def call(function_name: str, event: Any, context: Any) -> Any:
    """Run the bound handler of ``function_name`` in this thread, in its own environment."""
    from orderflow_local import function_env

    entry = _handlers[function_name_of(function_name)]
    if entry.environment is None:
        return entry.handler(event, context)
    with function_env.running(function_name_of(function_name), entry.environment, entry.memory_mb):
        return entry.handler(event, context)


def invoke(function_name: str, event: Any) -> Any:
    """Invoke a bound function the way Lambda's synchronous Invoke does; a function error is raised."""
    headers: dict[str, str] = {}
    result = invoke_bound(function_name, json.dumps(event), headers)
    if result is None:
        raise LookupError(f"no function {function_name} in the local stack")
    body = json.loads(result) if result else None
    if headers.get("x-amz-function-error"):
        raise RuntimeError(f"{body.get('errorType')}: {body.get('errorMessage')}" if isinstance(body, dict)
                           else "function error")
    return body


def unbind_all() -> None:
    with _lock:
        _handlers.clear()


def invoke_bound(function_name: str, payload: bytes | str | None,
                 response_headers: dict[str, str]) -> bytes | None:
    """Call the bound handler like Lambda would and return the response payload."""
    name = function_name_of(function_name)
    if name not in _handlers:
        return None
    raw = payload.decode() if isinstance(payload, bytes) else (payload or "{}")
    event = json.loads(raw) if raw else {}
    request_id = str(uuid.uuid4())
    context = LocalLambdaContext(function_name=name, aws_request_id=request_id,
                                 invoked_function_arn=f"arn:aws:lambda:local:000000000000:function:{name}")
    try:
        result = call(name, event, context)
    except Exception as exc:  # noqa: BLE001 - reported to the caller exactly as Lambda does
        response_headers["x-amz-function-error"] = "Unhandled"
        body = {"errorType": type(exc).__name__, "errorMessage": str(exc) or type(exc).__name__,
                "requestId": request_id,
                "stackTrace": traceback.format_tb(exc.__traceback__)[-5:]}
        log.debug("function %s raised %s: %s", name, type(exc).__name__, exc)
        return json.dumps(body).encode()
    return json.dumps(result).encode()


def install() -> None:
    """Point moto's simple Lambda backend at :func:`invoke_bound` (idempotent)."""
    global _installed
    if _installed:
        return
    from moto.awslambda_simple.models import LambdaSimpleBackend

    original = LambdaSimpleBackend.invoke

    def invoke(self, function_name, qualifier, body, headers, response_headers):  # noqa: ANN001
        result = invoke_bound(function_name, body, response_headers)
        if result is None:
            return original(self, function_name, qualifier, body, headers, response_headers)
        return result

    LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign]
    _cache_moto_module_list()
    _own_query_language_scopes()
    _callbacks_skip_executions_still_starting()
    _index_execution_names()
    _parse_each_condition_once()
    sfn_hub.install()  # executions as greenlets: a waiting order costs memory, not threads
    _parse_each_definition_once()
    _parse_each_json_path_once()
    if os.environ.get("ORDERFLOW_MOTO_WHOLE_TABLE_TRANSACTIONS") != "1":  # benchmarks compare both
        item_level_transactions()  # before the lock below wraps it
    _serialize_moto_dynamodb_writes()
    moto_dynamodb_wire.install()
    _installed = True


def item_level_transactions() -> None:
    """Make moto's TransactWriteItems back up only the items it touches.

    moto 5.2.5 deep-copies every table a transaction touches, to roll back on failure, and its model
    instance tracker keeps every copy: each transaction on the orders table costs time and memory in
    proportion to the whole table (measured here: ~0.5 s per transaction at 10,000 orders, and memory
    growing with the square of the order count). DynamoDB's transactions cost what their items cost.
    This keeps moto's own transaction logic and replaces only its backup: snapshots of the touched items,
    restored when the transaction fails. The local stack installs it (:func:`install`).
    """
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    if getattr(DynamoDBBackend, "_item_level", False):
        return
    original = DynamoDBBackend.transact_write_items
    state = threading.local()

    def table_deepcopy(self, memo):  # noqa: ANN001, ANN202
        if getattr(state, "active", False):
            return self  # the whole-table backup: not taken
        clone = self.__class__.__new__(self.__class__)
        memo[id(self)] = clone
        for name, value in self.__dict__.items():
            setattr(clone, name, copy.deepcopy(value, memo))
        return clone

    def transact_write_items(self, transact_items):  # noqa: ANN001, ANN202
        snapshots = []
        for entry in transact_items:
            _, op = next(iter(entry.items()))
            try:
                table = self.get_table(op["TableName"])
                key = op.get("Key") or {a: op["Item"][a] for a in (table.hash_key_attr, table.range_key_attr) if a}
                current = self.get_item(op["TableName"], key)
            except Exception:  # noqa: BLE001, S112 - moto reports it when it runs the transaction
                continue
            snapshots.append((op["TableName"], key, copy.deepcopy(current.to_json()["Attributes"]) if current else None))
        state.active = True
        try:
            return original(self, transact_items)
        except Exception:
            for table_name, key, before in reversed(snapshots):
                if before is None:
                    try:
                        self.delete_item(table_name, key)
                    except Exception:  # noqa: BLE001, S110 - it was not written
                        pass
                else:
                    self.put_item(table_name, before)
            raise
        finally:
            state.active = False

    Table.__deepcopy__ = table_deepcopy
    DynamoDBBackend.transact_write_items = transact_write_items
    DynamoDBBackend._item_level = True


def _serialize_moto_dynamodb_writes() -> None:
    """moto's ``transact_write_items`` deep-copies whole tables without a lock while other server
    threads write, and its queries and scans iterate a table's items while another thread inserts one
    ("dictionary changed size during iteration" -> a 500 that real DynamoDB never gives; seen with 5,000
    orders waiting). Serialize moto's DynamoDB operations on items: under the GIL they ran one at a time
    anyway. Only writes count as changes (the snapshots' detector)."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = DYNAMODB_WRITE_LOCK
    writes = ("transact_write_items", "put_item", "update_item", "delete_item", "batch_write_item")
    reads = ("get_item", "query", "scan", "batch_get_item", "transact_get_items")
    for name in writes + reads:
        original = getattr(DynamoDBBackend, name, None)
        if original is None or getattr(original, "_orderflow_locked", False):
            continue

        def locked(self, *args, _original=original, _write=name in writes, **kwargs):  # noqa: ANN001, ANN002, ANN003
            with lock:
                _writes[0] += _write
                return _original(self, *args, **kwargs)

        locked._orderflow_locked = True  # type: ignore[attr-defined]
        setattr(DynamoDBBackend, name, locked)


def _own_query_language_scopes() -> None:
    """moto's ASL ``Preprocessor`` keeps its query-language scope stack in a *class* attribute, shared by
    every execution being parsed at once: under load one parse pops another's scope and that execution
    dies before its first state (an ``IndexError`` in a moto thread; the order is left for the
    reconciler). Give each preprocessor its own stack."""
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    if getattr(Preprocessor, "_orderflow_own_scopes", False):
        return
    original = Preprocessor.__init__

    def __init__(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, N807
        original(self, *args, **kwargs)
        self._query_language_per_scope = []

    Preprocessor.__init__ = __init__  # type: ignore[method-assign]
    Preprocessor._orderflow_own_scopes = True  # type: ignore[attr-defined]


def _callbacks_skip_executions_still_starting() -> None:
    """``SendTaskSuccess``/``Failure``/``Heartbeat`` look for the token in every running execution, and
    moto's list includes one that is ``RUNNING`` but whose worker has not started yet: the call then
    fails (``'NoneType' object has no attribute 'env'``) and answers a 500 to a caller's tracking while
    another order's execution is starting (under load, or as the reconciler redrives a batch after a
    restart); one still being set up has no status at all yet. List only executions that have a status and
    a worker (a starting one cannot hold the token yet)."""
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    if getattr(StepFunctionsParserBackend, "_orderflow_started_only", False):
        return

    def _status(execution) -> object:  # noqa: ANN001 - None while it is being set up (no exec_status yet)
        return execution.status if getattr(execution, "exec_status", None) is not None else None

    def _get_executions(self, execution_status=None):  # noqa: ANN001, ANN202
        return [e for sm in list(self.state_machines) for e in list(sm.executions)
                if execution_status is None or (execution_status == _status(e) and (
                    execution_status != "RUNNING" or getattr(e, "exec_worker", None) is not None))]

    StepFunctionsParserBackend._get_executions = _get_executions  # type: ignore[method-assign]
    StepFunctionsParserBackend._orderflow_started_only = True  # type: ignore[attr-defined]


def _index_execution_names() -> None:
    """``StartExecution`` looks for an execution of the same name (the idempotent start) by reading every
    execution of the state machine: the local stack's 10,000th order's start read 10,000 executions, a
    few milliseconds of the one process's CPU per start (Step Functions finds a name at once). Keep an
    index by name per state machine, caught up from the list (executions are only ever appended), with
    the same answer: None, the running execution of the same input, or ``ExecutionAlreadyExists``."""
    from moto.stepfunctions.exceptions import ExecutionAlreadyExists
    from moto.stepfunctions.models import StateMachine

    if getattr(StateMachine, "_orderflow_name_index", False):
        return
    # kept outside the state machine: StartExecution deep-copies it (all but its list of executions);
    # per state machine: [its list of executions, how many of them are indexed, name -> first execution]
    indexes: weakref.WeakKeyDictionary[Any, list[Any]] = weakref.WeakKeyDictionary()
    lock = threading.Lock()

    def _handle_name_input_idempotency(self, name, execution_input):  # noqa: ANN001, ANN202
        executions = self.executions
        with lock:
            index = indexes.get(self)
            if index is None or index[0] is not executions or index[1] > len(executions):
                index = indexes[self] = [executions, 0, {}]
            by_name = index[2]
            for execution in executions[index[1]:]:
                by_name.setdefault(execution.name, execution)
            index[1] = len(executions)
            execution = by_name.get(name)
        if execution is None:
            return None
        if execution_input == execution.execution_input and execution.status == "RUNNING":
            return execution
        raise ExecutionAlreadyExists("Execution Already Exists: '" + execution.execution_arn + "'")

    StateMachine._handle_name_input_idempotency = _handle_name_input_idempotency  # type: ignore[method-assign]
    StateMachine._orderflow_name_index = True  # type: ignore[attr-defined]


def _parse_each_condition_once() -> None:
    """moto parses a write's ``ConditionExpression`` (a lexer and parser in Python, ~70 µs) three times per
    item of a ``TransactWriteItems`` (the request's validation, the transaction's check, the put) and
    twice per conditional ``PutItem``: the import writes a page's orders, each ``attribute_not_exists``,
    and every order save checks its version. The parsed tree is immutable (its nodes are set when built;
    evaluating it reads the item), so one parse per expression, names and values serves every write that
    sends the same; the attribute names and values the parse found (which moto checks were all used)
    come with it. A parse that fails is not kept (each write gets its own error)."""
    from moto.dynamodb.comparisons import ConditionExpressionParser

    if getattr(ConditionExpressionParser, "_orderflow_cached", False):
        return
    original = ConditionExpressionParser.parse
    parsed: dict[tuple[Any, ...], tuple[Any, list[str], list[str]]] = {}

    def parse(self):  # noqa: ANN001, ANN202
        # repr: the request's plain dicts and strings (equal text, equal content; another order of the
        # same keys is only a second entry)
        key = (self.condition_expression, repr(self.expression_attribute_names),
               repr(self.expression_attribute_values))
        hit = parsed.get(key)
        if hit is None:
            tree = original(self)
            if len(parsed) >= 4096:
                parsed.clear()
            parsed[key] = hit = (tree, list(self.expr_attr_names_found), list(self.expr_attr_values_found))
        self.expr_attr_names_found, self.expr_attr_values_found = list(hit[1]), list(hit[2])
        return hit[0]

    ConditionExpressionParser.parse = parse  # type: ignore[method-assign]
    ConditionExpressionParser._orderflow_cached = True  # type: ignore[attr-defined]


def _parse_each_definition_once() -> None:
    """moto parses the state machine's definition (ANTLR, in Python) at the start of every execution:
    about 0.14 s of CPU for ours, a third of the embedded stack's CPU while orders pour in (profiled with
    py-spy). The parsed program is immutable (each state's settings are fixed when parsed; what an
    execution changes lives in its Environment, and moto already shares one parsed Map iteration program
    among an execution's concurrent iterations), so one parse per definition serves every execution."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    if getattr(ExecutionWorker, "_orderflow_parse_once", False):
        return
    parsed: dict[str, Any] = {}
    lock = threading.Lock()

    def _get_evaluation_entrypoint(self):  # noqa: ANN001, ANN202
        definition = self._evaluation_details.state_machine_details.definition
        with lock:
            program = parsed.get(definition)
        if program is None:
            program = AmazonStateLanguageParser.parse(definition)[0]
            with lock:
                if len(parsed) > 64:  # definitions change rarely; keep the newest few
                    parsed.clear()
                program = parsed.setdefault(definition, program)
        return program

    ExecutionWorker._get_evaluation_entrypoint = _get_evaluation_entrypoint  # type: ignore[method-assign]
    ExecutionWorker._orderflow_parse_once = True  # type: ignore[attr-defined]


def _parse_each_json_path_once() -> None:
    """moto's interpreter parses every JSONPath (``$.prepared.result.timeout_seconds``) each time a state
    reads or writes one, and jsonpath-ng builds a new PLY parser for every parse: about 8% of the embedded
    stack's CPU (py-spy, 100 orders end to end). A parsed path is immutable (``find`` and
    ``update_or_create`` change the data, not the expression), so one parse per path string serves all."""
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    for module in (json_path, result_path):
        if not hasattr(module.parse, "cache_info"):
            module.parse = functools.lru_cache(maxsize=1024)(module.parse)


def _cache_moto_module_list() -> None:
    """moto's server lists its own package folder on disk for every request it routes, under a
    global lock; the list never changes while it runs, so list it once (a measured speed-up)."""
    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules  # type: ignore[assignment]
