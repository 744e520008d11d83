"""A small restricted interpreter that turns GenoTEX converter functions into value tables.

GenoTEX stores its per-cohort value decisions as Python functions in notebooks (``convert_trait``,
``convert_age``, ``convert_gender``).  Those notebooks are untrusted input, so their text is never handed to
``exec``/``eval``/``compile``: this module parses the source with :mod:`ast`, checks every node against an
allowlist drawn from a survey of the real converters (string methods, comparisons, numbers, ``re``, NaN tests),
and evaluates the tree itself, node by node, under a step budget, bounded integer/string/sequence sizes, a
bounded call depth and regexes run by a linear-time engine (RE2).  Anything outside the allowlist is a named
:class:`Refusal`, never an exception and never executed.

Exceptions a converter raises (``float('abc')``) behave as in CPython for the converter's own ``try``/``except``.
One that escapes the converter is a ``converter-raised:<Type>`` refusal: GenoTEX applies converters with
``DataFrame.map(fn).astype(float)`` (tools/preprocess.py ``get_feature_data``), which lets the exception
propagate and fails the notebook cell, so there is no value GenoTEX would have used.  Results are normalised the
way that ``astype(float)`` reads them: ``None``/NaN become ``None``, ``bool`` becomes ``int``, a numeric string
becomes its float, anything else is a ``result-not-numeric`` refusal.
"""

from __future__ import annotations

import ast
import builtins as _builtins
import math
import textwrap
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import re2

# Bounds.  Converters handle one characteristics cell of a few dozen characters; these leave wide margins.
MAX_SOURCE_CHARS = 50_000
MAX_AST_DEPTH = 60
MAX_STR = 100_000
MAX_SEQ = 10_000
MAX_INT_BITS = 4_096
MAX_CALL_DEPTH = 16
MAX_PATTERN_CHARS = 1_000
MAX_FORMAT_WIDTH = 1_000
_TIME_CHECK_EVERY = 256


@dataclass(frozen=True)
class Refusal:
    """Why a converter could not be evaluated: a short stable ``reason`` code and a human ``detail``."""

    reason: str
    detail: str


class _Refused(Exception):
    """Internal: aborts evaluation with a Refusal; never catchable by the converter's try/except."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(reason)
        self.refusal = Refusal(reason, detail)


class _Raised(Exception):
    """Internal: a Python-level exception raised inside the converter (catchable by its own try/except)."""

    def __init__(self, exc: BaseException):
        super().__init__(repr(exc))
        self.exc = exc


class _Return(Exception):
    def __init__(self, value: object):
        super().__init__()
        self.value = value


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


# Exceptions of real operations on plain values that the converter may catch; everything else is a bug of ours
# or a resource limit and is never shown to the converter's handlers.
_CATCHABLE = (ArithmeticError, LookupError, ValueError, TypeError, AttributeError, RuntimeError)
_EXC_CLASSES = {c.__name__: c for c in (
    Exception, ValueError, TypeError, IndexError, KeyError, LookupError, AttributeError, ArithmeticError,
    ZeroDivisionError, OverflowError, RuntimeError, NotImplementedError, AssertionError, NameError,
    UnboundLocalError)}
_EXC_CLASS_SET = frozenset(_EXC_CLASSES.values())

_ALLOWED_NODES = frozenset({
    "Module", "Expression", "FunctionDef", "Lambda", "arguments", "arg", "Return", "If", "For", "Assign",
    "AugAssign", "AnnAssign", "Expr", "Pass", "Break", "Continue", "Try", "ExceptHandler", "Raise", "Assert",
    "Import", "ImportFrom", "alias", "Name", "Load", "Store", "Del", "Constant", "JoinedStr", "FormattedValue",
    "BinOp", "UnaryOp", "BoolOp", "Compare", "IfExp", "Call", "keyword", "Attribute", "Subscript", "Slice",
    "List", "Tuple", "Dict", "Set", "ListComp", "SetComp", "DictComp", "GeneratorExp", "comprehension",
    "NamedExpr",
    "Add", "Sub", "Mult", "Div", "FloorDiv", "Mod", "Pow", "LShift", "RShift", "BitOr", "BitAnd", "BitXor",
    "USub", "UAdd", "Not", "Invert", "And", "Or",
    "Eq", "NotEq", "Lt", "LtE", "Gt", "GtE", "Is", "IsNot", "In", "NotIn",
})

# Names a notebook might reach for that are never available (refused statically, even in dead branches).
_FORBIDDEN_MODULES = frozenset({
    "os", "sys", "subprocess", "shutil", "builtins", "importlib", "pathlib", "io", "socket", "pickle", "ctypes",
    "glob", "json", "gzip", "requests", "urllib", "signal", "threading", "multiprocessing", "tools", "shlex",
    "tempfile", "inspect", "code", "codecs", "marshal", "types", "gc", "random", "time", "traceback",
})

_STR_METHODS = frozenset({
    "split", "rsplit", "strip", "lstrip", "rstrip", "lower", "upper", "casefold", "title", "capitalize",
    "swapcase", "replace", "startswith", "endswith", "find", "rfind", "index", "rindex", "count", "join",
    "partition", "rpartition", "splitlines", "removeprefix", "removesuffix", "zfill", "ljust", "rjust",
    "center", "isdigit", "isnumeric", "isdecimal", "isalpha", "isalnum", "isspace", "islower", "isupper",
    "istitle", "isascii",
})
_LIST_METHODS = frozenset({"append", "extend", "insert", "pop", "remove", "index", "count", "copy", "reverse",
                           "clear", "sort"})
_TUPLE_METHODS = frozenset({"index", "count"})
_DICT_METHODS = frozenset({"get", "keys", "values", "items", "copy", "pop", "setdefault", "update", "clear"})
_SET_METHODS = frozenset({"add", "discard", "remove", "copy", "union", "intersection", "difference",
                          "issubset", "issuperset", "clear"})
_FLOAT_METHODS = frozenset({"is_integer"})
_METHODS: dict[type, frozenset[str]] = {
    str: _STR_METHODS, list: _LIST_METHODS, tuple: _TUPLE_METHODS, dict: _DICT_METHODS, set: _SET_METHODS,
    frozenset: frozenset({"union", "intersection", "difference", "issubset", "issuperset"}),
    float: _FLOAT_METHODS, int: frozenset(), bool: frozenset(), type(None): frozenset(),
}


# ----------------------------------------------------------------------------------------------- value types
class _Builtin:
    """A callable the interpreter provides; ``pytype`` is set for the type names usable with isinstance."""

    __slots__ = ("name", "fn", "pytype")

    def __init__(self, name: str, fn, pytype: type | None = None):
        self.name, self.fn, self.pytype = name, fn, pytype

    def __repr__(self) -> str:
        return f"<built-in function {self.name}>"


class _Module:
    __slots__ = ("name", "attrs")

    def __init__(self, name: str, attrs: dict[str, object]):
        self.name, self.attrs = name, attrs

    def __repr__(self) -> str:
        return f"<module '{self.name}'>"


class _Func:
    """A converter-defined function (def or lambda) closed over the environment it was defined in."""

    __slots__ = ("name", "node", "defaults", "kw_defaults", "env", "local_names")

    def __init__(self, name, node, defaults, kw_defaults, env, local_names):
        self.name, self.node, self.defaults, self.kw_defaults = name, node, defaults, kw_defaults
        self.env, self.local_names = env, local_names

    def __repr__(self) -> str:
        return f"<function {self.name}>"


class _Bound:
    __slots__ = ("obj", "name")

    def __init__(self, obj, name: str):
        self.obj, self.name = obj, name

    def __repr__(self) -> str:
        return f"<method {type(self.obj).__name__}.{self.name}>"


class _Lazy:
    """A generator expression: evaluated as it is consumed, as in CPython (any() short-circuits)."""

    __slots__ = ("it",)

    def __init__(self, it: Iterator):
        self.it = it

    def __repr__(self) -> str:
        return "<generator object>"


class _Pattern:
    __slots__ = ("pattern", "flags")

    def __init__(self, pattern: str, flags: int):
        self.pattern, self.flags = pattern, flags

    def __repr__(self) -> str:
        return f"re.compile({self.pattern!r})"


class _Match:
    """What ``re.search`` returns: spans of every group over the searched string."""

    __slots__ = ("string", "spans", "groupindex")

    def __init__(self, string: str, spans: list[tuple[int, int]], groupindex: Mapping[str, int]):
        self.string, self.spans, self.groupindex = string, spans, groupindex

    def __repr__(self) -> str:
        return f"<re.Match object; span={self.spans[0]}, match={self._get(0)!r}>"

    def _index(self, g) -> int:
        if isinstance(g, str):
            if g not in self.groupindex:
                raise IndexError("no such group")
            return self.groupindex[g]
        if isinstance(g, bool) or not isinstance(g, int) or not 0 <= g < len(self.spans):
            raise IndexError("no such group")
        return g

    def _get(self, g, default=None):
        a, b = self.spans[self._index(g)]
        return default if a < 0 else self.string[a:b]


_WRAPPERS = (_Builtin, _Module, _Func, _Bound, _Lazy, _Pattern, _Match)
_PLAIN = (str, int, float, bool, type(None))


class _Env:
    __slots__ = ("vars", "parent", "local_names")

    def __init__(self, parent: _Env | None, local_names: frozenset[str] = frozenset()):
        self.vars: dict[str, object] = {}
        self.parent, self.local_names = parent, local_names


# ---------------------------------------------------------------------------------------------- static checks
def _local_names(fn: ast.FunctionDef | ast.Lambda) -> frozenset[str]:
    """Names CPython treats as local to ``fn``: parameters and every name bound in its own body."""
    a = fn.args
    names = {x.arg for x in a.posonlyargs + a.args + a.kwonlyargs}
    body = fn.body if isinstance(fn, ast.FunctionDef) else [fn.body]
    todo: list[ast.AST] = list(body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef):
            names.add(node.name)
            continue
        if isinstance(node, ast.Lambda):
            continue
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            todo.extend(n for n in ast.walk(node) if isinstance(n, ast.NamedExpr))
            todo.append(node.generators[0].iter)
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((al.asname or al.name).split(".")[0] for al in node.names)
        todo.extend(ast.iter_child_nodes(node))
    return frozenset(names)


def _children(node: ast.AST) -> Iterator[ast.AST]:
    """Child nodes that are evaluated: annotations are never evaluated, so they are not checked either."""
    for name, value in ast.iter_fields(node):
        if name in ("annotation", "returns", "type_comment"):
            continue
        if isinstance(value, ast.AST):
            yield value
        elif isinstance(value, list):
            yield from (v for v in value if isinstance(v, ast.AST))


_MODULE_NAMES = {"re": "re", "math": "math", "np": "np", "numpy": "np", "pd": "pd", "pandas": "pd"}


def _check(tree: ast.AST, bound: frozenset[str]) -> None:
    """Refuse, before anything runs, every node, name and attribute outside the allowlist."""
    stack: list[tuple[ast.AST, int, frozenset[str]]] = [(tree, 0, bound)]
    while stack:
        node, depth, scope = stack.pop()
        kind = type(node).__name__
        if depth > MAX_AST_DEPTH:
            raise _Refused("too-deep", f"expression nesting deeper than {MAX_AST_DEPTH}")
        if kind not in _ALLOWED_NODES:
            raise _Refused(f"node-not-allowed:{kind}", f"line {getattr(node, 'lineno', '?')}: {kind}")
        if isinstance(node, (ast.FunctionDef, ast.Lambda)):
            if isinstance(node, ast.FunctionDef) and node.decorator_list:
                raise _Refused("node-not-allowed:decorator", f"line {node.lineno}: decorated function")
            if node.args.vararg or node.args.kwarg:
                raise _Refused("node-not-allowed:varargs", f"line {node.lineno}: *args/**kwargs")
            scope = scope | _local_names(node)
        elif isinstance(node, ast.Name):
            _check_name(node, scope)
        elif isinstance(node, ast.Attribute):
            if node.attr.startswith("_"):
                raise _Refused(f"attribute-not-allowed:{node.attr}", f"line {node.lineno}: .{node.attr}")
            if isinstance(node.value, ast.Name) and node.value.id not in scope:
                mod = _MODULE_NAMES.get(node.value.id)
                if mod is not None and node.attr not in _MODULES[mod].attrs:
                    raise _Refused(f"attribute-not-allowed:{node.value.id}.{node.attr}",
                                   f"line {node.lineno}: {node.value.id}.{node.attr} is outside the allowlist")
            if isinstance(node.ctx, (ast.Store, ast.Del)):
                raise _Refused("node-not-allowed:attribute-store", f"line {node.lineno}: assigns an attribute")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            _check_import(node)
        elif isinstance(node, ast.Constant):
            if not isinstance(node.value, _PLAIN):
                raise _Refused(f"constant-not-allowed:{type(node.value).__name__}", f"line {node.lineno}")
            if type(node.value) is int and node.value.bit_length() > MAX_INT_BITS:
                raise _Refused("int-too-large", f"line {node.lineno}: integer literal")
        elif isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            scope = scope | {n.id for g in node.generators for n in ast.walk(g.target) if isinstance(n, ast.Name)}
        elif isinstance(node, ast.FormattedValue) and node.format_spec is not None:
            spec = node.format_spec
            if not (isinstance(spec, ast.JoinedStr) and all(isinstance(v, ast.Constant) for v in spec.values)):
                raise _Refused("node-not-allowed:format-spec", f"line {node.lineno}: computed format spec")
        stack.extend((child, depth + 1, scope) for child in _children(node))


def _check_name(node: ast.Name, scope: frozenset[str]) -> None:
    name = node.id
    if name.startswith("__"):
        raise _Refused(f"name-not-allowed:{name}", f"line {node.lineno}: {name}")
    if name in scope:
        return
    if name in _FORBIDDEN_MODULES:
        raise _Refused(f"module-not-allowed:{name}", f"line {node.lineno}: uses module {name}")
    if hasattr(_builtins, name) and name not in _BUILTINS:
        raise _Refused(f"call-not-allowed:{name}", f"line {node.lineno}: builtin {name} is outside the allowlist")


def _check_import(node: ast.Import | ast.ImportFrom) -> None:
    if isinstance(node, ast.Import):
        for al in node.names:
            if al.name not in _MODULE_NAMES:
                raise _Refused(f"import-not-allowed:{al.name}", f"line {node.lineno}: import {al.name}")
        return
    mod = _MODULE_NAMES.get(node.module or "")
    if mod is None or node.level:
        raise _Refused(f"import-not-allowed:{node.module}", f"line {node.lineno}: from {node.module} import")
    for al in node.names:
        if al.name not in _MODULES[mod].attrs:
            raise _Refused(f"import-not-allowed:{node.module}.{al.name}", f"line {node.lineno}")


# ------------------------------------------------------------------------------------------------ the program
@dataclass(frozen=True)
class Program:
    """Checked converter functions and the constants they may read; immutable, shareable across calls."""

    functions: Mapping[str, _Func]
    constants: Mapping[str, object] = field(default_factory=dict)


def _parse(name: str, source: str) -> ast.AST:
    if not isinstance(source, str):
        raise _Refused("syntax", f"{name}: source is not text")
    if len(source) > MAX_SOURCE_CHARS:
        raise _Refused("source-too-large", f"{name}: {len(source)} characters")
    try:
        return ast.parse(textwrap.dedent(source))
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise _Refused("syntax", f"{name}: {type(exc).__name__}: {exc}") from None


def load_functions(sources: Mapping[str, str], constants: Mapping[str, object] | None = None) -> Program | Refusal:
    """Parse and check converter sources (name -> text of its ``def``, ``name = lambda ...`` or ``name = expr``).

    Constants are plain values (str, numbers, None and containers of them) the functions may read as globals.
    ``name = expr`` sources are evaluated here by the same restricted interpreter, in the order given.
    """
    try:
        consts = {str(k): _plain_copy(v, f"constant {k}") for k, v in (constants or {}).items()}
        trees = {name: _parse(name, src) for name, src in sources.items()}
        bound = frozenset(trees) | frozenset(consts)
        functions: dict[str, _Func] = {}
        program = Program(functions, consts)
        interp = _Interp(program, step_budget=20_000, regex_timeout_s=0.05, time_budget_s=1.0)
        for name, tree in trees.items():
            _check(tree, bound)
            body = tree.body
            if len(body) != 1:
                raise _Refused("syntax", f"{name}: expected one def or assignment, found {len(body)} statements")
            stmt = body[0]
            if isinstance(stmt, ast.FunctionDef):
                functions[name] = interp.make_function(stmt, stmt.name, None)
                if stmt.name != name and stmt.name not in trees:
                    functions[stmt.name] = functions[name]  # the def's own name, for recursion and helpers
            elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Lambda):
                functions[name] = interp.make_function(stmt.value, name, None)
            elif (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                  and isinstance(stmt.targets[0], ast.Name)):
                if isinstance(stmt.value, ast.Lambda):
                    functions[name] = interp.make_function(stmt.value, stmt.targets[0].id, None)
                else:
                    consts[name] = interp.globals[name] = interp.value_of_top(stmt.value)
            else:
                raise _Refused("syntax", f"{name}: expected a def, a lambda or a constant assignment")
        return program
    except _Refused as r:
        return r.refusal
    except _Raised as r:
        return Refusal(f"converter-raised:{type(r.exc).__name__}", f"while loading: {r.exc}")
    except RecursionError:
        return Refusal("recursion-depth", "while loading")


def _plain_copy(value: object, what: str, depth: int = 0) -> object:
    """Validate a constant is plain data (bounded) and copy it so calls never share mutable state."""
    if depth > 20:
        raise _Refused("constant-not-allowed", f"{what}: nested too deeply")
    if isinstance(value, _PLAIN):
        _bounded(value)
        return value
    if isinstance(value, (list, tuple, set, frozenset)):
        if len(value) > MAX_SEQ:
            raise _Refused("sequence-too-large", what)
        return type(value)(_plain_copy(v, what, depth + 1) for v in value)
    if isinstance(value, dict):
        if len(value) > MAX_SEQ:
            raise _Refused("sequence-too-large", what)
        return {_plain_copy(k, what, depth + 1): _plain_copy(v, what, depth + 1) for k, v in value.items()}
    if isinstance(value, _Pattern):
        return value
    raise _Refused(f"constant-not-allowed:{type(value).__name__}", what)


def _bounded(value: object) -> object:
    if type(value) is int and value.bit_length() > MAX_INT_BITS:
        raise _Refused("int-too-large", f"integer of {value.bit_length()} bits")
    if type(value) is str and len(value) > MAX_STR:
        raise _Refused("string-too-large", f"string of {len(value)} characters")
    if isinstance(value, (list, tuple, dict, set, frozenset)) and len(value) > MAX_SEQ:
        raise _Refused("sequence-too-large", f"{type(value).__name__} of {len(value)} items")
    return value


def _text_size(value: object, limit: int, depth: int = 0) -> int:
    """Upper estimate of len(str(value)), stopping once over ``limit``."""
    if isinstance(value, str):
        return len(value) + 2
    if isinstance(value, (list, tuple, set, frozenset, dict)):
        if depth > 50:
            return limit + 1
        total = 2
        items = value.items() if isinstance(value, dict) else ((v, None) for v in value)
        for k, v in items:
            total += _text_size(k, limit, depth + 1) + _text_size(v, limit, depth + 1) + 4
            if total > limit:
                break
        return total
    return 40 if not isinstance(value, int) else value.bit_length() // 3 + 2


# ----------------------------------------------------------------------------------------------- the evaluator
class _Interp:
    """Walks the checked AST; one instance per call (its counters are the budgets)."""

    def __init__(self, program: Program, step_budget: int, regex_timeout_s: float, time_budget_s: float):
        self.program = program
        self.globals = {k: _plain_copy(v, k) for k, v in program.constants.items()}
        self.step_budget, self.regex_timeout_s = step_budget, regex_timeout_s
        self.deadline = time.monotonic() + time_budget_s
        self.steps = 0
        self.depth = 0
        self.handling: list[BaseException] = []

    # -- budgets
    def tick(self, n: int = 1) -> None:
        before = self.steps
        self.steps += n
        if self.steps > self.step_budget:
            raise _Refused("step-budget", f"more than {self.step_budget} evaluation steps")
        if before // _TIME_CHECK_EVERY != self.steps // _TIME_CHECK_EVERY and time.monotonic() > self.deadline:
            raise _Refused("time-budget", "evaluation took too long")

    def charge(self, value: object) -> object:
        """Bound a produced value and charge steps in proportion to its size."""
        _bounded(value)
        if isinstance(value, (str, list, tuple, dict, set)) and len(value) >= 256:
            self.tick(len(value) // 256)
        return value

    # -- entry points
    def value_of_top(self, node: ast.expr) -> object:
        return self.value_of(node, _Env(None))

    def make_function(self, node, name: str, env: _Env | None) -> _Func:
        a = node.args
        scope = env if env is not None else _Env(None)
        defaults = tuple(self.value_of(d, scope) for d in a.defaults)
        kw_defaults = tuple(None if d is None else self.value_of(d, scope) for d in a.kw_defaults)
        return _Func(name, node, defaults, kw_defaults, env, _local_names(node))

    # -- names
    def lookup(self, name: str, env: _Env | None) -> object:
        e = env
        while e is not None:
            if name in e.vars:
                return e.vars[name]
            if name in e.local_names:
                raise _Raised(UnboundLocalError(f"local variable '{name}' referenced before assignment"))
            e = e.parent
        if name in self.program.functions:
            return self.program.functions[name]
        if name in self.globals:
            return self.globals[name]
        if name in _BUILTINS:
            return _BUILTINS[name]
        if name in _MODULE_NAMES:
            return _MODULES[_MODULE_NAMES[name]]
        raise _Refused(f"name-unknown:{name}", f"name {name!r} is not defined by the converter or its constants")

    # -- statements
    def run_block(self, body: list[ast.stmt], env: _Env) -> None:
        for stmt in body:
            self.run_stmt(stmt, env)

    def run_stmt(self, node: ast.stmt, env: _Env) -> None:
        self.tick()
        kind = type(node)
        if kind is ast.Return:
            raise _Return(None if node.value is None else self.value_of(node.value, env))
        if kind is ast.If:
            self.run_block(node.body if self.truth(self.value_of(node.test, env)) else node.orelse, env)
        elif kind is ast.Assign:
            value = self.value_of(node.value, env)
            for target in node.targets:
                self.assign(target, value, env)
        elif kind is ast.AugAssign:
            self.aug_assign(node, env)
        elif kind is ast.AnnAssign:
            if node.value is not None:
                self.assign(node.target, self.value_of(node.value, env), env)
        elif kind is ast.Expr:
            self.value_of(node.value, env)
        elif kind is ast.Pass:
            pass
        elif kind is ast.Try:
            self.run_try(node, env)
        elif kind is ast.For:
            self.run_for(node, env)
        elif kind is ast.Break:
            raise _Break()
        elif kind is ast.Continue:
            raise _Continue()
        elif kind is ast.FunctionDef:
            env.vars[node.name] = self.make_function(node, node.name, env)
        elif kind is ast.Raise:
            self.run_raise(node, env)
        elif kind is ast.Assert:
            if not self.truth(self.value_of(node.test, env)):
                msg = () if node.msg is None else (self.value_of(node.msg, env),)
                raise _Raised(AssertionError(*msg))
        elif kind is ast.Import:
            for al in node.names:
                env.vars[al.asname or al.name] = _MODULES[_MODULE_NAMES[al.name]]
        elif kind is ast.ImportFrom:
            mod = _MODULES[_MODULE_NAMES[node.module]]
            for al in node.names:
                env.vars[al.asname or al.name] = mod.attrs[al.name]
        else:  # pragma: no cover - the static check keeps other nodes out
            raise _Refused(f"node-not-allowed:{kind.__name__}", "")

    def run_for(self, node: ast.For, env: _Env) -> None:
        broke = False
        for item in self.iterate(self.value_of(node.iter, env)):
            self.assign(node.target, item, env)
            try:
                self.run_block(node.body, env)
            except _Break:
                broke = True
                break
            except _Continue:
                continue
        if not broke:
            self.run_block(node.orelse, env)

    def run_try(self, node: ast.Try, env: _Env) -> None:
        try:
            self.try_body(node, env)
        except (_Refused, RecursionError):
            raise
        except BaseException:
            if node.finalbody:
                self.run_block(node.finalbody, env)
            raise
        if node.finalbody:
            self.run_block(node.finalbody, env)

    def try_body(self, node: ast.Try, env: _Env) -> None:
        try:
            self.run_block(node.body, env)
        except _Raised as raised:
            for handler in node.handlers:
                if handler.type is not None and not self.matches(raised.exc, self.value_of(handler.type, env)):
                    continue
                if handler.name:
                    env.vars[handler.name] = raised.exc
                self.handling.append(raised.exc)
                try:
                    self.run_block(handler.body, env)
                finally:
                    self.handling.pop()
                    if handler.name:
                        env.vars.pop(handler.name, None)
                break
            else:
                raise
        else:
            self.run_block(node.orelse, env)

    def matches(self, exc: BaseException, spec: object) -> bool:
        specs = spec if isinstance(spec, tuple) else (spec,)
        for s in specs:
            if not (isinstance(s, type) and s in _EXC_CLASS_SET):
                raise _Raised(TypeError("catching classes that do not inherit from BaseException is not allowed"))
        return isinstance(exc, specs)

    def run_raise(self, node: ast.Raise, env: _Env) -> None:
        if node.exc is None:
            if not self.handling:
                raise _Raised(RuntimeError("No active exception to reraise"))
            raise _Raised(self.handling[-1])
        exc = self.value_of(node.exc, env)
        if isinstance(exc, type) and exc in _EXC_CLASS_SET:
            exc = exc()
        if not isinstance(exc, BaseException):
            raise _Raised(TypeError("exceptions must derive from BaseException"))
        raise _Raised(exc)

    def assign(self, target: ast.expr, value: object, env: _Env) -> None:
        kind = type(target)
        if kind is ast.Name:
            env.vars[target.id] = value
        elif kind in (ast.Tuple, ast.List):
            items = list(self.iterate(value))
            if len(items) != len(target.elts):
                raise _Raised(ValueError(f"cannot unpack {len(items)} values into {len(target.elts)} targets"))
            for t, v in zip(target.elts, items):
                self.assign(t, v, env)
        elif kind is ast.Subscript:
            obj = self.value_of(target.value, env)
            key = self.value_of_index(target.slice, env)
            if not isinstance(obj, (list, dict)):
                raise _Raised(TypeError(f"'{type(obj).__name__}' object does not support item assignment"))
            self.real(obj.__setitem__, key, value)
            self.charge(obj)
        else:
            raise _Refused(f"node-not-allowed:{kind.__name__}-store", "")

    def aug_assign(self, node: ast.AugAssign, env: _Env) -> None:
        target = node.target
        if isinstance(target, ast.Name):
            current = self.lookup(target.id, env)
            env.vars[target.id] = self.binop(node.op, current, self.value_of(node.value, env))
        elif isinstance(target, ast.Subscript):
            obj = self.value_of(target.value, env)
            key = self.value_of_index(target.slice, env)
            current = self.subscript(obj, key)
            self.assign_item(obj, key, self.binop(node.op, current, self.value_of(node.value, env)))
        else:
            raise _Refused("node-not-allowed:attribute-store", "")

    def assign_item(self, obj, key, value) -> None:
        if not isinstance(obj, (list, dict)):
            raise _Raised(TypeError(f"'{type(obj).__name__}' object does not support item assignment"))
        self.real(obj.__setitem__, key, value)
        self.charge(obj)

    # -- expressions
    def value_of(self, node: ast.expr, env: _Env) -> object:
        self.tick()
        kind = type(node)
        if kind is ast.Constant:
            return node.value
        if kind is ast.Name:
            return self.lookup(node.id, env)
        if kind is ast.Call:
            return self.value_of_call(node, env)
        if kind is ast.Attribute:
            return self.attribute(self.value_of(node.value, env), node.attr)
        if kind is ast.Compare:
            return self.compare(node, env)
        if kind is ast.BoolOp:
            value = None
            for operand in node.values:
                value = self.value_of(operand, env)
                if self.truth(value) == isinstance(node.op, ast.Or):
                    return value
            return value
        if kind is ast.UnaryOp:
            operand = self.value_of(node.operand, env)
            if isinstance(node.op, ast.Not):
                return not self.truth(operand)
            op = {ast.USub: lambda x: -x, ast.UAdd: lambda x: +x, ast.Invert: lambda x: ~x}[type(node.op)]
            if not isinstance(operand, (int, float)):
                raise _Raised(TypeError(f"bad operand type for unary op: '{type(operand).__name__}'"))
            return self.real(op, operand)
        if kind is ast.BinOp:
            return self.binop(node.op, self.value_of(node.left, env), self.value_of(node.right, env))
        if kind is ast.Subscript:
            return self.subscript(self.value_of(node.value, env), self.value_of_index(node.slice, env))
        if kind is ast.IfExp:
            return self.value_of(node.body if self.truth(self.value_of(node.test, env)) else node.orelse, env)
        if kind in (ast.List, ast.Tuple, ast.Set):
            items = [self.value_of(e, env) for e in node.elts]
            return self.charge(items if kind is ast.List else tuple(items) if kind is ast.Tuple
                               else self.real(set, items))
        if kind is ast.Dict:
            out: dict = {}
            for k, v in zip(node.keys, node.values):
                if k is None:
                    raise _Refused("node-not-allowed:dict-unpack", "")
                self.real(out.__setitem__, self.value_of(k, env), self.value_of(v, env))
            return self.charge(out)
        if kind in (ast.ListComp, ast.SetComp, ast.DictComp):
            return self.comprehension(node, env)
        if kind is ast.GeneratorExp:
            return _Lazy(self.generate(node, env))
        if kind is ast.Lambda:
            return self.make_function(node, "<lambda>", env)
        if kind is ast.JoinedStr:
            return self.charge("".join(self.format_part(v, env) for v in node.values))
        if kind is ast.NamedExpr:
            value = self.value_of(node.value, env)
            env.vars[node.target.id] = value
            return value
        raise _Refused(f"node-not-allowed:{kind.__name__}", "")  # pragma: no cover

    def value_of_index(self, node: ast.expr, env: _Env) -> object:
        if isinstance(node, ast.Slice):
            parts = [None if p is None else self.value_of(p, env) for p in (node.lower, node.upper, node.step)]
            for p in parts:
                if p is not None and not isinstance(p, int):
                    raise _Raised(TypeError("slice indices must be integers or None"))
            return slice(*parts)
        return self.value_of(node, env)

    def format_part(self, node: ast.expr, env: _Env) -> str:
        if isinstance(node, ast.Constant):
            return node.value
        value = self.value_of(node.value, env)
        if _text_size(value, MAX_STR) > MAX_STR:
            raise _Refused("string-too-large", "formatted value")
        spec = "" if node.format_spec is None else "".join(v.value for v in node.format_spec.values)
        digits = "".join(c if c.isdigit() else " " for c in spec).split()
        if any(len(d) > 4 or int(d) > MAX_FORMAT_WIDTH for d in digits):
            raise _Refused("string-too-large", f"format spec {spec!r}")
        if isinstance(value, _WRAPPERS) and spec:
            raise _Raised(TypeError("unsupported format string"))
        if node.conversion == ord("r") or (isinstance(value, _WRAPPERS)):
            value = repr(value)
        elif node.conversion == ord("a"):
            value = ascii(value)
        elif node.conversion == ord("s"):
            value = str(value)
        return self.real(format, value, spec)

    def truth(self, value: object) -> bool:
        if isinstance(value, _WRAPPERS):
            return True
        return bool(value)

    def compare(self, node: ast.Compare, env: _Env) -> bool:
        left = self.value_of(node.left, env)
        for op, comp in zip(node.ops, node.comparators):
            right = self.value_of(comp, env)
            kind = type(op)
            if kind is ast.Is:
                ok = left is right
            elif kind is ast.IsNot:
                ok = left is not right
            elif kind in (ast.In, ast.NotIn):
                if isinstance(right, _Lazy):
                    ok = any(self.real(lambda a, b: a == b, left, x) for x in self.iterate(right))
                elif isinstance(right, _WRAPPERS):
                    raise _Raised(TypeError(f"argument of type '{type(right).__name__}' is not iterable"))
                else:
                    self.tick(len(right) // 256 if hasattr(right, "__len__") else 0)
                    ok = self.real(lambda a, b: a in b, left, right)
                ok = ok if kind is ast.In else not ok
            else:
                fn = {ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b, ast.Lt: lambda a, b: a < b,
                      ast.LtE: lambda a, b: a <= b, ast.Gt: lambda a, b: a > b,
                      ast.GtE: lambda a, b: a >= b}[kind]
                if isinstance(left, _WRAPPERS) or isinstance(right, _WRAPPERS):
                    if kind in (ast.Eq, ast.NotEq):
                        ok = (left is right) == (kind is ast.Eq)
                    else:
                        raise _Raised(TypeError("'<' not supported between these types"))
                else:
                    ok = bool(self.real(fn, left, right))
            if not ok:
                return False
            left = right
        return True

    def binop(self, op: ast.operator, a: object, b: object) -> object:
        kind = type(op)
        if isinstance(a, _WRAPPERS) or isinstance(b, _WRAPPERS):
            raise _Raised(TypeError("unsupported operand type(s)"))
        if kind is ast.Pow and type(a) in (int, bool) and type(b) in (int, bool) and b > 0 and abs(a) > 1:
            if a.bit_length() * b > MAX_INT_BITS:
                raise _Refused("int-too-large", f"{a.bit_length()}-bit integer ** {b}")
        elif kind is ast.Mult:
            for seq, n in ((a, b), (b, a)):
                if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and n > 0:
                    if len(seq) * n > (MAX_STR if isinstance(seq, str) else MAX_SEQ):
                        raise _Refused("string-too-large" if isinstance(seq, str) else "sequence-too-large",
                                       f"repetition of {len(seq)} items x {n}")
            if isinstance(a, int) and isinstance(b, int) and a.bit_length() + b.bit_length() > MAX_INT_BITS:
                raise _Refused("int-too-large", "product")
        elif kind is ast.LShift and isinstance(a, int) and isinstance(b, int) and b > 0:
            if a.bit_length() + b > MAX_INT_BITS:
                raise _Refused("int-too-large", "left shift")
        elif kind is ast.Mod and isinstance(a, str):
            raise _Refused("operation-not-allowed:str-percent-format", "printf-style formatting of text")
        elif kind is ast.Add and isinstance(a, (str, list, tuple)) and isinstance(b, type(a)):
            if len(a) + len(b) > (MAX_STR if isinstance(a, str) else MAX_SEQ):
                raise _Refused("string-too-large" if isinstance(a, str) else "sequence-too-large", "concatenation")
        fn = _BINOPS.get(kind)
        if fn is None:
            raise _Refused(f"node-not-allowed:{kind.__name__}", "")
        return self.charge(self.real(fn, a, b))

    def subscript(self, obj: object, key: object) -> object:
        if isinstance(obj, _Match):
            return self.real(obj._get, key)
        if isinstance(obj, _WRAPPERS) or isinstance(key, _WRAPPERS):
            raise _Raised(TypeError(f"'{type(obj).__name__}' object is not subscriptable"))
        if isinstance(obj, (int, float, bool, type(None), set, frozenset)):
            raise _Raised(TypeError(f"'{type(obj).__name__}' object is not subscriptable"))
        return self.charge(self.real(lambda o, k: o[k], obj, key))

    def real(self, fn, *args, **kwargs):
        """Run one operation on plain values; a Python error becomes the converter's own exception."""
        try:
            return fn(*args, **kwargs)
        except _CATCHABLE as exc:
            if isinstance(exc, RecursionError):
                raise
            raise _Raised(exc) from None

    # -- iteration and comprehensions
    def iterate(self, value: object) -> Iterator:
        if isinstance(value, _Lazy):
            source = value.it
        elif isinstance(value, (str, list, tuple, dict, set, frozenset, range)):
            source = iter(value)
        else:
            raise _Raised(TypeError(f"'{type(value).__name__}' object is not iterable"))
        while True:
            self.tick()
            try:
                item = next(source)
            except StopIteration:
                return
            except RecursionError:
                raise
            except RuntimeError as exc:  # dict changed size during iteration
                raise _Raised(exc) from None
            yield item

    def materialize(self, value: object) -> list:
        out = []
        for item in self.iterate(value):
            out.append(item)
            if len(out) > MAX_SEQ:
                raise _Refused("sequence-too-large", f"more than {MAX_SEQ} items")
        return out

    def generate(self, node, env: _Env) -> Iterator:
        first = self.value_of(node.generators[0].iter, env)  # CPython evaluates the outermost iterable at once
        return self._gen(node, node.generators, 0, _Env(env), first)

    def _gen(self, node, gens: list[ast.comprehension], i: int, scope: _Env, first=None) -> Iterator:
        if i == len(gens):
            if isinstance(node, ast.DictComp):
                yield (self.value_of(node.key, scope), self.value_of(node.value, scope))
            else:
                yield self.value_of(node.elt, scope)
            return
        gen = gens[i]
        if gen.is_async:
            raise _Refused("node-not-allowed:async", "")
        for item in self.iterate(first if i == 0 else self.value_of(gen.iter, scope)):
            self.assign(gen.target, item, scope)
            if all(self.truth(self.value_of(cond, scope)) for cond in gen.ifs):
                yield from self._gen(node, gens, i + 1, scope)

    def comprehension(self, node, env: _Env) -> object:
        items = self.materialize(_Lazy(self.generate(node, env)))
        if isinstance(node, ast.ListComp):
            return self.charge(items)
        if isinstance(node, ast.SetComp):
            return self.charge(self.real(set, items))
        return self.charge(self.real(dict, items))

    # -- attributes and calls
    def attribute(self, obj: object, name: str) -> object:
        if name.startswith("_"):
            raise _Refused(f"attribute-not-allowed:{name}", "")
        if isinstance(obj, _Module):
            if name in obj.attrs:
                return obj.attrs[name]
            raise _Refused(f"attribute-not-allowed:{obj.name}.{name}", "")
        if isinstance(obj, _Builtin) and obj.pytype is str and name in _STR_METHODS:
            return _Builtin(f"str.{name}", lambda it, args, kw: it.call_method(_check_self(args, str), name,
                                                                                  args[1:], kw))
        if isinstance(obj, (_Match, _Pattern)):
            allowed = _MATCH_METHODS if isinstance(obj, _Match) else _PATTERN_METHODS
            if name in allowed:
                return _Bound(obj, name)
            raise _Refused(f"attribute-not-allowed:{type(obj).__name__.strip('_')}.{name}", "")
        if isinstance(obj, _WRAPPERS) or isinstance(obj, BaseException) or isinstance(obj, type):
            raise _Refused(f"attribute-not-allowed:{type(obj).__name__}.{name}", "")
        allowed = _METHODS.get(type(obj))
        if allowed is None:
            raise _Refused(f"attribute-not-allowed:{type(obj).__name__}.{name}", "")
        if name in allowed:
            return _Bound(obj, name)
        if hasattr(type(obj), name):
            raise _Refused(f"attribute-not-allowed:{type(obj).__name__}.{name}", "")
        raise _Raised(AttributeError(f"'{type(obj).__name__}' object has no attribute '{name}'"))

    def value_of_call(self, node: ast.Call, env: _Env) -> object:
        func = self.value_of(node.func, env)
        args = [self.value_of(a, env) for a in node.args]
        kwargs = {}
        for kw in node.keywords:
            if kw.arg is None:
                raise _Refused("node-not-allowed:kwargs-unpack", "")
            kwargs[kw.arg] = self.value_of(kw.value, env)
        return self.call_value(func, args, kwargs)

    def call_value(self, func: object, args: list, kwargs: dict) -> object:
        if isinstance(func, _Func):
            return self.call_user(func, args, kwargs)
        if isinstance(func, _Builtin):
            return self.charge(func.fn(self, args, kwargs))
        if isinstance(func, _Bound):
            if isinstance(func.obj, _Match):
                return self.charge(_match_method(self, func.obj, func.name, args, kwargs))
            if isinstance(func.obj, _Pattern):
                return self.charge(_re_call(self, func.name, [func.obj, *args], kwargs))
            return self.charge(self.call_method(func.obj, func.name, args, kwargs))
        if isinstance(func, type) and func in _EXC_CLASS_SET:
            if kwargs or any(not isinstance(a, _PLAIN) for a in args):
                raise _Refused("call-not-allowed:exception-args", "exception arguments must be plain values")
            return func(*args)
        raise _Raised(TypeError(f"'{type(func).__name__}' object is not callable"))

    def call_user(self, func: _Func, args: list, kwargs: dict) -> object:
        if self.depth >= MAX_CALL_DEPTH:
            raise _Refused("recursion-depth", f"more than {MAX_CALL_DEPTH} nested calls")
        env = _Env(func.env, func.local_names)
        a = func.node.args
        positional = a.posonlyargs + a.args
        if len(args) > len(positional):
            raise _Raised(TypeError(f"{func.name}() takes {len(positional)} positional arguments"))
        for p, v in zip(positional, args):
            env.vars[p.arg] = v
        for k, v in kwargs.items():
            names = [p.arg for p in a.args + a.kwonlyargs]
            if k not in names or k in env.vars:
                raise _Raised(TypeError(f"{func.name}() got an unexpected or repeated keyword argument '{k}'"))
            env.vars[k] = v
        n_plain = len(positional) - len(func.defaults)
        for i, p in enumerate(positional):
            if p.arg not in env.vars:
                if i < n_plain:
                    raise _Raised(TypeError(f"{func.name}() missing required argument '{p.arg}'"))
                env.vars[p.arg] = func.defaults[i - n_plain]
        for p, d in zip(a.kwonlyargs, func.kw_defaults):
            if p.arg not in env.vars:
                if d is None:
                    raise _Raised(TypeError(f"{func.name}() missing keyword-only argument '{p.arg}'"))
                env.vars[p.arg] = d
        self.depth += 1
        try:
            if isinstance(func.node, ast.Lambda):
                return self.value_of(func.node.body, env)
            self.run_block(func.node.body, env)
            return None
        except _Return as ret:
            return ret.value
        finally:
            self.depth -= 1

    def call_method(self, obj: object, name: str, args: list, kwargs: dict) -> object:
        args = [self.materialize(a) if isinstance(a, _Lazy) else a for a in args]  # methods take iterables
        for v in (*args, *kwargs.values()):
            if isinstance(v, _WRAPPERS):
                raise _Raised(TypeError(f"{type(obj).__name__}.{name}() got an unsupported argument"))
        if isinstance(obj, str):
            _precheck_str_method(obj, name, args, kwargs)
        if name == "sort" and kwargs.get("key") is not None:
            raise _Refused("call-not-allowed:sort-key", "list.sort(key=...)")
        if name == "join":
            if args and isinstance(args[0], (list, tuple)):
                total = sum(len(x) if isinstance(x, str) else 0 for x in args[0]) + len(obj) * len(args[0])
                if total > MAX_STR:
                    raise _Refused("string-too-large", "join")
        result = self.real(lambda: getattr(obj, name)(*args, **kwargs))
        if isinstance(result, (type({}.keys()), type({}.values()), type({}.items()))):
            result = list(result)
        if isinstance(obj, (list, dict, set)):
            _bounded(obj)
        return result


def _check_self(args: list, t: type) -> object:
    if not args or not isinstance(args[0], t):
        raise _Raised(TypeError(f"descriptor requires a '{t.__name__}' object"))
    return args[0]


def _precheck_str_method(s: str, name: str, args: list, kwargs: dict) -> None:
    if name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        grow = len(args[1]) - len(args[0])
        if grow > 0:
            n = s.count(args[0]) if args[0] else len(s) + 1
            if len(s) + n * grow > MAX_STR:
                raise _Refused("string-too-large", "str.replace")
    elif name in ("zfill", "ljust", "rjust", "center"):
        width = args[0] if args else kwargs.get("width", 0)
        if isinstance(width, int) and width > MAX_STR:
            raise _Refused("string-too-large", f"str.{name}")


_BINOPS = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b, ast.FloorDiv: lambda a, b: a // b, ast.Mod: lambda a, b: a % b,
    ast.Pow: lambda a, b: a ** b, ast.LShift: lambda a, b: a << b, ast.RShift: lambda a, b: a >> b,
    ast.BitOr: lambda a, b: a | b, ast.BitAnd: lambda a, b: a & b, ast.BitXor: lambda a, b: a ^ b,
}


# --------------------------------------------------------------------------------------------------- builtins
def _arity(name: str, args: list, kwargs: dict, lo: int, hi: int, kw: tuple[str, ...] = ()) -> None:
    if not lo <= len(args) <= hi or any(k not in kw for k in kwargs):
        raise _Raised(TypeError(f"{name}() got unexpected arguments"))


def _plain_args(name: str, args: Iterable) -> None:
    for a in args:
        if isinstance(a, _WRAPPERS):
            raise _Raised(TypeError(f"{name}() argument of unsupported type '{type(a).__name__}'"))


def _b_convert(pytype: type):
    def fn(it: _Interp, args, kwargs):
        if pytype is bool:
            _arity("bool", args, kwargs, 0, 1)
            return bool(args) and it.truth(args[0])
        if pytype is str and args and not isinstance(args[0], _PLAIN):
            if _text_size(args[0], MAX_STR) > MAX_STR:
                raise _Refused("string-too-large", "str() of a large container")
            return repr(args[0]) if isinstance(args[0], _WRAPPERS) else it.real(str, args[0])
        if pytype in (list, tuple, set, frozenset, dict) and args and isinstance(args[0], _Lazy):
            args = [it.materialize(args[0])]
        if pytype in (list, tuple, set, frozenset) and args:
            args = [it.materialize(args[0])]
        _plain_args(pytype.__name__, args)
        if pytype is int and len(args) >= 1 and isinstance(args[0], str):
            it.tick(len(args[0]) // 64)
        return it.real(pytype, *args, **kwargs)
    return fn


def _b_len(it, args, kwargs):
    _arity("len", args, kwargs, 1, 1)
    if isinstance(args[0], _WRAPPERS):
        raise _Raised(TypeError(f"object of type '{type(args[0]).__name__}' has no len()"))
    return it.real(len, args[0])


def _b_anyall(which):
    def fn(it, args, kwargs):
        _arity(which.__name__, args, kwargs, 1, 1)
        for item in it.iterate(args[0]):
            if it.truth(item) == (which is any):
                return which is any
        return which is all
    return fn


def _isinstance(it, args, kwargs):
    _arity("isinstance", args, kwargs, 2, 2)
    spec = args[1] if isinstance(args[1], tuple) else (args[1],)
    types = []
    for s in spec:
        if isinstance(s, _Builtin) and s.pytype is not None:
            types.append(s.pytype)
        elif isinstance(s, type) and s in _EXC_CLASS_SET:
            types.append(s)
        else:
            raise _Refused("call-not-allowed:isinstance-type", f"isinstance against {s!r}")
    value = args[0]
    if isinstance(value, _WRAPPERS):
        return False
    return isinstance(value, tuple(types))


def _b_round(it, args, kwargs):
    _arity("round", args, kwargs, 1, 2, ("ndigits",))
    _plain_args("round", args)
    nd = args[1] if len(args) > 1 else kwargs.get("ndigits")
    if isinstance(nd, int) and abs(nd) > 400:
        raise _Refused("int-too-large", "round() digits")
    return it.real(round, *args, **kwargs)


def _b_minmax(which):
    def fn(it, args, kwargs):
        if "key" in kwargs:
            raise _Refused(f"call-not-allowed:{which.__name__}-key", "")
        items = it.materialize(args[0]) if len(args) == 1 else list(args)
        _plain_args(which.__name__, items)
        return it.real(which, items, **kwargs)
    return fn


def _b_sum(it, args, kwargs):
    _arity("sum", args, kwargs, 1, 2, ("start",))
    items = it.materialize(args[0])
    start = args[1] if len(args) > 1 else kwargs.get("start", 0)
    for x in (*items, start):
        if not isinstance(x, (int, float)):
            raise _Refused("call-not-allowed:sum-non-numeric", "sum() of non-numbers")
    return it.real(sum, items, start)


def _b_sorted(it, args, kwargs):
    _arity("sorted", args, kwargs, 1, 1, ("reverse",))
    items = it.materialize(args[0])
    _plain_args("sorted", items)
    it.tick(len(items) // 16)
    return it.real(sorted, items, **kwargs)


def _b_reversed(it, args, kwargs):
    _arity("reversed", args, kwargs, 1, 1)
    if not isinstance(args[0], (str, list, tuple, range)):
        raise _Raised(TypeError("argument to reversed() must be a sequence"))
    return list(reversed(it.materialize(args[0])))


def _b_range(it, args, kwargs):
    _arity("range", args, kwargs, 1, 3)
    return it.real(range, *args)


def _b_enumerate(it, args, kwargs):
    _arity("enumerate", args, kwargs, 1, 2, ("start",))
    start = args[1] if len(args) > 1 else kwargs.get("start", 0)
    if not isinstance(start, int):
        raise _Raised(TypeError("enumerate start must be an integer"))
    return _Lazy(enumerate(it.iterate(args[0]), start))


def _b_zip(it, args, kwargs):
    _arity("zip", args, kwargs, 0, 8)
    return _Lazy(zip(*(it.iterate(a) for a in args)))


def _b_simple(pyfn, lo=1, hi=1):
    def fn(it, args, kwargs):
        _arity(pyfn.__name__, args, kwargs, lo, hi)
        _plain_args(pyfn.__name__, args)
        return it.real(pyfn, *args)
    return fn


def _b_repr(it, args, kwargs):
    _arity("repr", args, kwargs, 1, 1)
    if _text_size(args[0], MAX_STR) > MAX_STR:
        raise _Refused("string-too-large", "repr()")
    return repr(args[0])


def _b_print(it, args, kwargs):
    return None  # output is discarded; arguments were already evaluated


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _pd_isna(negate: bool):
    def fn(it, args, kwargs):
        _arity("isna", args, kwargs, 1, 1)
        value = args[0]
        if isinstance(value, (list, tuple, dict, set, frozenset, _Lazy)):
            raise _Refused("call-not-allowed:isna-on-container", "pd.isna of a container returns an array")
        return _is_missing(value) != negate
    return fn


def _math_fn(name: str, pyfn):
    def fn(it, args, kwargs):
        _arity(name, args, kwargs, 1, 1)
        value = args[0]
        if not isinstance(value, (int, float)):
            raise _Raised(TypeError(f"must be real number, not {type(value).__name__}"))
        return it.real(pyfn, value)
    return fn


_BUILTINS: dict[str, object] = {
    "float": _Builtin("float", _b_convert(float), float), "int": _Builtin("int", _b_convert(int), int),
    "str": _Builtin("str", _b_convert(str), str), "bool": _Builtin("bool", _b_convert(bool), bool),
    "list": _Builtin("list", _b_convert(list), list), "tuple": _Builtin("tuple", _b_convert(tuple), tuple),
    "dict": _Builtin("dict", _b_convert(dict), dict), "set": _Builtin("set", _b_convert(set), set),
    "frozenset": _Builtin("frozenset", _b_convert(frozenset), frozenset),
    "len": _Builtin("len", _b_len), "any": _Builtin("any", _b_anyall(any)), "all": _Builtin("all", _b_anyall(all)),
    "isinstance": _Builtin("isinstance", _isinstance), "abs": _Builtin("abs", _b_simple(abs)),
    "round": _Builtin("round", _b_round), "min": _Builtin("min", _b_minmax(min)),
    "max": _Builtin("max", _b_minmax(max)), "sum": _Builtin("sum", _b_sum),
    "sorted": _Builtin("sorted", _b_sorted), "reversed": _Builtin("reversed", _b_reversed),
    "range": _Builtin("range", _b_range), "enumerate": _Builtin("enumerate", _b_enumerate),
    "zip": _Builtin("zip", _b_zip), "ord": _Builtin("ord", _b_simple(ord)), "chr": _Builtin("chr", _b_simple(chr)),
    "repr": _Builtin("repr", _b_repr), "print": _Builtin("print", _b_print),
    "None": None, "True": True, "False": False,
    **_EXC_CLASSES,
}

# pandas stores a missing cell as the np.nan object, so ``value is np.nan`` holds for it: keep that identity.
_NP_NAN = float("nan")


# ------------------------------------------------------------------------------------------------------ regex
_RE_FLAGS = {"IGNORECASE": 2, "I": 2, "MULTILINE": 8, "M": 8, "DOTALL": 16, "S": 16, "ASCII": 256, "A": 256,
             "UNICODE": 32, "U": 32}
_PY_SPACE = r"\t-\r\x1c-\x20\x85\xa0\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}"


def _plain_text(text: str) -> bool:
    """Text whose characters are printable ASCII or tab: where RE2's and Python's classes agree."""
    return all(" " <= c <= "~" or c == "\t" for c in text)


def _translate(pattern: str, flags: int, plain: bool, has_newline: bool) -> str:
    """Rewrite a Python ``re`` pattern for RE2 with the same meaning on this text, or refuse.

    RE2's \\d \\w \\s \\b are ASCII; Python's are Unicode.  On plain-ASCII text they agree; otherwise the positive
    classes are spelled out with Unicode properties and the negated ones and \\b are refused.
    """
    out: list[str] = []
    i, in_class = 0, False
    head = pattern
    while head.startswith("(?") and ")" in head and set(head[2:head.index(")")]) <= set("aiLmsux") \
            and head.index(")") > 2:
        flags |= 8 if "m" in head[2:head.index(")")] else 0  # leading inline flags (Python's global form)
        head = head[head.index(")") + 1:]
    unicode_mode = not plain and not flags & 256
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            e = pattern[i + 1]
            i += 2
            if e in "dws" and unicode_mode:
                body = {"d": r"\p{Nd}", "w": r"\p{L}\p{N}_", "s": _PY_SPACE}[e]
                out.append(body if in_class or e == "d" else f"[{body}]")
            elif e in "DWSbB" and unicode_mode:
                raise _Refused("regex-unicode-semantics",
                               f"\\{e} on non-ASCII text differs between Python re and RE2")
            elif e == "Z":
                out.append(r"\z")
            elif e in "uU":
                n = 4 if e == "u" else 8
                hexdigits = pattern[i:i + n]
                if len(hexdigits) != n or any(h not in "0123456789abcdefABCDEF" for h in hexdigits):
                    raise _Refused("regex-not-linear", f"bad escape \\{e} in {pattern!r}")
                out.append(r"\x{" + hexdigits + "}")
                i += n
            else:
                out.append("\\" + e)
            continue
        if in_class:
            if c == "[" and pattern[i + 1:i + 2] in (":", ".", "="):
                raise _Refused("regex-posix-class", f"[{pattern[i + 1]} in a set: a class in RE2, literal in re")
            if c == "]" and not (out and out[-1] in ("[", "[^")):
                in_class = False
            out.append(c)
        elif c == "[":
            in_class = True
            if pattern[i + 1:i + 2] == "^":
                out.append("[^")
                i += 2
                if pattern[i:i + 1] == "]":
                    out.append("]")
                    i += 1
                continue
            out.append("[")
            if pattern[i + 1:i + 2] == "]":
                out.append("]")
                i += 2
                continue
        elif c == "{" and pattern[i + 1:i + 2] == ",":
            out.append("{0")
        elif c == "$" and has_newline and not flags & 8:
            raise _Refused("regex-newline-semantics", "$ before a trailing newline differs between re and RE2")
        else:
            out.append(c)
        i += 1
    prefix = "".join(f for bit, f in ((2, "i"), (8, "m"), (16, "s")) if flags & bit)
    return (f"(?{prefix})" if prefix else "") + "".join(out)


_RE2_CACHE: dict[tuple[str, int, bool, bool], object] = {}


def _compile(pattern: object, flags: object, text: str):
    if isinstance(pattern, _Pattern):
        if flags:
            raise _Raised(ValueError("cannot process flags argument with a compiled pattern"))
        pattern, flags = pattern.pattern, pattern.flags
    if not isinstance(pattern, str):
        raise _Raised(TypeError("first argument must be string or compiled pattern"))
    if isinstance(flags, bool) or not isinstance(flags, int):
        raise _Raised(TypeError("flags must be an integer"))
    if flags & ~(2 | 8 | 16 | 32 | 256):
        raise _Refused("regex-flag-not-supported", f"flags {flags}")
    if len(pattern) > MAX_PATTERN_CHARS:
        raise _Refused("regex-too-long", f"{len(pattern)} characters")
    if flags & 256 and flags & 2 and not _plain_text(text):
        raise _Refused("regex-unicode-semantics", "ASCII case folding on non-ASCII text")
    key = (pattern, flags, _plain_text(text), "\n" in text)
    compiled = _RE2_CACHE.get(key)
    if compiled is None:
        translated = _translate(pattern, flags, key[2], key[3])
        options = re2.Options()
        options.log_errors = False
        try:
            compiled = re2.compile(translated, options)
        except re2.error as exc:
            raise _Refused("regex-not-linear", f"RE2 cannot run {pattern!r}: {exc}") from None
        if len(_RE2_CACHE) > 512:
            _RE2_CACHE.clear()
        _RE2_CACHE[key] = compiled
    return compiled


def _longest(compiled):
    """The same regex under leftmost-longest semantics: does any non-empty match start at a position?"""
    options = re2.Options()
    options.log_errors = False
    options.longest_match = True
    return re2.compile(compiled.pattern, options)


def _scan(it: _Interp, compiled, string: str, started: float) -> Iterator[_Match]:
    """Successive matches with CPython's rules (3.7+): an empty match may follow a non-empty one at the same
    position, but never another empty match where the last one was (re2's own finditer repeats those)."""
    pos, n, after_empty = 0, len(string), False
    while pos <= n:
        it.tick(1 + n // 256)  # each search re-encodes the text
        if time.monotonic() - started > it.regex_timeout_s:
            raise _Refused("regex-timeout", f"regex ran longer than {it.regex_timeout_s} s")
        m = compiled.search(string, pos)
        if m is None:
            return
        a, b = m.span()
        if after_empty and a == b == pos:
            longest = _longest(compiled).match(string, pos)
            if longest is not None and longest.end() > pos:
                raise _Refused("regex-empty-match-semantics",
                               "CPython would prefer a non-empty match after an empty one here")
            pos, after_empty = pos + 1, False
            continue
        yield _to_match(m, string)
        pos, after_empty = b, a == b


def _to_match(m, string: str) -> _Match:
    return _Match(string, [m.span(g) for g in range(m.re.groups + 1)], dict(m.re.groupindex))


def _expand(template: str, m: _Match) -> str:
    """Python's replacement-template syntax (\\1, \\g<n>, \\g<name>, standard escapes)."""
    out, i = [], 0
    escapes = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v", "a": "\a", "b": "\b", "\\": "\\"}
    while i < len(template):
        c = template[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        if i + 1 >= len(template):
            raise _Raised(ValueError("bad escape (end of pattern)"))
        e = template[i + 1]
        if e == "g":
            end = template.find(">", i)
            if template[i + 2:i + 3] != "<" or end < 0:
                raise _Raised(ValueError("missing group name"))
            ref = template[i + 3:end]
            out.append(m._get(int(ref) if ref.isdigit() else ref, "") or "")
            i = end + 1
        elif e.isdigit():
            j = i + 1
            while j < len(template) and j < i + 3 and template[j].isdigit():
                j += 1
            out.append(m._get(int(template[i + 1:j]), "") or "")
            i = j
        elif e in escapes:
            out.append(escapes[e])
            i += 2
        elif e.isascii() and e.isalpha():
            raise _Raised(ValueError(f"bad escape \\{e}"))
        else:
            out.append("\\" + e)
            i += 2
    return "".join(out)


def _re_call(it: _Interp, name: str, args: list, kwargs: dict) -> object:
    """re.search/match/fullmatch/findall/finditer/sub/subn/split (and Pattern methods) on RE2."""
    is_method = bool(args) and isinstance(args[0], _Pattern) and name in _PATTERN_METHODS
    params = {"search": ("pattern", "string", "flags"), "match": ("pattern", "string", "flags"),
              "fullmatch": ("pattern", "string", "flags"), "findall": ("pattern", "string", "flags"),
              "finditer": ("pattern", "string", "flags"),
              "sub": ("pattern", "repl", "string", "count", "flags"),
              "subn": ("pattern", "repl", "string", "count", "flags"),
              "split": ("pattern", "string", "maxsplit", "flags")}[name]
    if is_method:
        params = tuple(p for p in params if p != "flags")
    if len(args) > len(params) or any(k not in params for k in kwargs):
        raise _Raised(TypeError(f"re.{name}() got unexpected arguments"))
    bound = dict(zip(params, args))
    for k, v in kwargs.items():
        if k in bound:
            raise _Raised(TypeError(f"re.{name}() got multiple values for '{k}'"))
        bound[k] = v
    if "pattern" not in bound or "string" not in bound or (name in ("sub", "subn") and "repl" not in bound):
        raise _Raised(TypeError(f"re.{name}() missing required argument"))
    string = bound["string"]
    if not isinstance(string, str):
        raise _Raised(TypeError("expected string or bytes-like object, got "
                                f"'{type(string).__name__}'"))
    count = bound.get("count", bound.get("maxsplit", 0))
    if isinstance(count, bool) or not isinstance(count, int):
        raise _Raised(TypeError("count must be an integer"))
    started = time.monotonic()
    compiled = _compile(bound["pattern"], bound.get("flags", 0), string)
    it.tick(1 + len(string) // 256)

    def matches() -> Iterator[_Match]:
        return _scan(it, compiled, string, started)

    if name in ("search", "match", "fullmatch"):
        m = getattr(compiled, name)(string)
        result = None if m is None else _to_match(m, string)
    elif name == "findall":
        result = []
        for m in matches():
            n = len(m.spans) - 1
            groups = [m._get(g, "") for g in range(1, n + 1)]
            result.append(m._get(0) if n == 0 else groups[0] if n == 1 else tuple(groups))
            _bounded(result)
    elif name == "finditer":
        result = _Lazy(matches())
    elif name == "split":
        result, end, done = [], 0, 0
        for m in matches():
            if 0 < count <= done:
                break
            a, b = m.spans[0]
            result.append(string[end:a])
            result.extend(m._get(g) for g in range(1, len(m.spans)))
            end, done = b, done + 1
            _bounded(result)
        result.append(string[end:])
    else:  # sub / subn
        repl = bound["repl"]
        pieces, end, done, size = [], 0, 0, 0
        for m in matches():
            if 0 < count <= done:
                break
            a, b = m.spans[0]
            if isinstance(repl, str):
                piece = _expand(repl, m)
            elif isinstance(repl, (_Func, _Builtin)):
                piece = it.call_value(repl, [m], {})
                if not isinstance(piece, str):
                    raise _Raised(TypeError("expected str instance"))
            else:
                raise _Raised(TypeError("repl must be a string or a function"))
            pieces += [string[end:a], piece]
            size += (a - end) + len(piece)
            if size > MAX_STR:
                raise _Refused("string-too-large", f"re.{name}")
            end, done = b, done + 1
        pieces.append(string[end:])
        text = it.charge("".join(pieces))
        result = (text, done) if name == "subn" else text
    if time.monotonic() - started > it.regex_timeout_s:
        raise _Refused("regex-timeout", f"regex ran longer than {it.regex_timeout_s} s")
    return result


def _re_fn(name: str):
    return _Builtin(f"re.{name}", lambda it, args, kwargs: _re_call(it, name, args, kwargs))


def _re_compile(it, args, kwargs):
    _arity("compile", args, kwargs, 1, 2, ("flags",))
    pattern, flags = args[0], (args[1] if len(args) > 1 else kwargs.get("flags", 0))
    if isinstance(pattern, _Pattern):
        return pattern
    if not isinstance(pattern, str) or isinstance(flags, bool) or not isinstance(flags, int):
        raise _Raised(TypeError("re.compile() takes a string pattern and integer flags"))
    _compile(pattern, flags, "")  # refuse what RE2 cannot run now, not at first use
    return _Pattern(pattern, flags)


def _re_escape(it, args, kwargs):
    _arity("escape", args, kwargs, 1, 1)
    if not isinstance(args[0], str):
        raise _Raised(TypeError("re.escape() takes a string"))
    import re as _pyre  # re.escape is a pure character substitution, no matching

    return it.charge(_pyre.escape(args[0]))


_PATTERN_METHODS = frozenset({"search", "match", "fullmatch", "findall", "finditer", "sub", "subn", "split"})
_MATCH_METHODS = frozenset({"group", "groups", "groupdict", "start", "end", "span"})


def _match_method(it: _Interp, m: _Match, name: str, args: list, kwargs: dict) -> object:
    if name == "group":
        if kwargs:
            raise _Raised(TypeError("group() takes no keyword arguments"))
        if not args:
            return m._get(0)
        values = [it.real(m._get, g) for g in args]
        return values[0] if len(values) == 1 else tuple(values)
    if name in ("groups", "groupdict"):
        _arity(name, args, kwargs, 0, 1, ("default",))
        default = args[0] if args else kwargs.get("default")
        if name == "groups":
            return tuple(m._get(g, default) for g in range(1, len(m.spans)))
        return {k: m._get(v, default) for k, v in m.groupindex.items()}
    _arity(name, args, kwargs, 0, 1)
    g = it.real(m._index, args[0] if args else 0)
    a, b = m.spans[g]
    return {"start": a, "end": b, "span": (a, b)}[name]


_MODULES: dict[str, _Module] = {
    "re": _Module("re", {
        **{n: _re_fn(n) for n in ("search", "match", "fullmatch", "findall", "finditer", "sub", "subn", "split")},
        "compile": _Builtin("re.compile", _re_compile), "escape": _Builtin("re.escape", _re_escape),
        **_RE_FLAGS}),
    "math": _Module("math", {
        "isnan": _Builtin("math.isnan", _math_fn("isnan", math.isnan)),
        "isinf": _Builtin("math.isinf", _math_fn("isinf", math.isinf)),
        "isfinite": _Builtin("math.isfinite", _math_fn("isfinite", math.isfinite)),
        "floor": _Builtin("math.floor", _math_fn("floor", math.floor)),
        "ceil": _Builtin("math.ceil", _math_fn("ceil", math.ceil)),
        "trunc": _Builtin("math.trunc", _math_fn("trunc", math.trunc)),
        "fabs": _Builtin("math.fabs", _math_fn("fabs", math.fabs)), "nan": math.nan, "inf": math.inf}),
    "np": _Module("np", {
        "isnan": _Builtin("np.isnan", _math_fn("isnan", math.isnan)),
        "isinf": _Builtin("np.isinf", _math_fn("isinf", math.isinf)),
        "isfinite": _Builtin("np.isfinite", _math_fn("isfinite", math.isfinite)),
        "nan": _NP_NAN, "NaN": _NP_NAN, "NAN": _NP_NAN, "inf": math.inf}),
    "pd": _Module("pd", {
        "isna": _Builtin("pd.isna", _pd_isna(False)), "isnull": _Builtin("pd.isnull", _pd_isna(False)),
        "notna": _Builtin("pd.notna", _pd_isna(True)), "notnull": _Builtin("pd.notnull", _pd_isna(True)),
        "NA": None}),
}


# ------------------------------------------------------------------------------------------------- public API
def _output(value: object) -> object:
    """What ``DataFrame.map(fn).astype(float)`` keeps of a converter's result (int kept as int for tables)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        if value.bit_length() > 1000:
            raise _Refused("result-not-numeric", "integer beyond float range")
        return value
    if isinstance(value, float):
        return None if value != value else value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise _Refused("result-not-numeric", f"converter returned text {value[:80]!r}") from None
        return None if number != number else number
    raise _Refused(f"result-not-numeric:{type(value).__name__}", f"converter returned {type(value).__name__}")


def call(program: Program, func: str, value: object, *, step_budget: int = 20_000,
         regex_timeout_s: float = 0.05, time_budget_s: float = 0.5) -> object | Refusal:
    """Evaluate ``func(value)`` by walking its checked AST; the result as GenoTEX's ``astype(float)`` reads it."""
    if not isinstance(program, Program) or func not in program.functions:
        return Refusal("function-unknown", f"no function {func!r} in the program")
    if not isinstance(value, _PLAIN) or (isinstance(value, str) and len(value) > MAX_STR):
        return Refusal("value-not-allowed", f"input of type {type(value).__name__}")
    if isinstance(value, float) and value != value:
        value = _NP_NAN  # a missing cell, as pandas holds it (``value is np.nan`` is true in GenoTEX)
    interp = _Interp(program, step_budget, regex_timeout_s, time_budget_s)
    try:
        return _output(interp.call_user(program.functions[func], [value], {}))
    except _Refused as r:
        return r.refusal
    except _Raised as r:
        return Refusal(f"converter-raised:{type(r.exc).__name__}", f"{func}({value!r}): {r.exc}"[:300])
    except (_Break, _Continue):
        return Refusal("syntax", "break/continue outside a loop")
    except RecursionError:
        return Refusal("recursion-depth", "evaluation nested too deeply")


@dataclass
class Tabulation:
    """A converter as data: its value on every raw cell given, and a numeric rule when one explains them all.

    ``table`` holds every raw value that evaluated; those that did not are in ``refusals`` (detail names the
    value).  ``missing`` is what the converter gives a missing (NaN) cell, or a Refusal.
    """

    table: dict[str, float | int | None]
    numeric_rule: dict | None
    refusals: list[Refusal]
    missing: object = None


# Numeric rules tried in order, most restrictive first: the number after "key:" filling the rest of the cell,
# a cell that is only a number, the first number after a colon, the first number anywhere.
_NUMBER = r"(-?\d+(?:\.\d+)?)"
_RULE_PATTERNS = (
    r"^[^:]*:\s*" + _NUMBER + r"\s*$",
    r"^\s*" + _NUMBER + r"\s*$",
    r"^[^:]*:\s*" + _NUMBER,
    r"^[^:]*:\s*(\d+(?:\.\d+)?)",
    _NUMBER,
    r"(\d+(?:\.\d+)?)",
    r"(\d+)",
)
_KNOWN_SCALES = (1.0, 1 / 12, 1 / 52, 1 / 365, 1 / 365.25)  # years, months, weeks, days (and -days)


def _rule_value(compiled, scale: float, cell: str) -> float | None:
    m = compiled.search(cell)
    return None if m is None else float(m.group(1)) * scale


def _close(a: float, b: float) -> bool:
    return a == b or abs(a - b) <= 1e-9 * max(abs(a), abs(b))


def infer_numeric_rule(table: Mapping[str, float | int | None]) -> dict | None:
    """A ``{"kind": "number", "pattern", "scale"}`` rule reproducing every entry of ``table``, if one does.

    The value of a cell under the rule is float(group 1 of the first match) × scale, or None when the pattern
    does not match.  Checked with RE2 (what a spec reader uses) on every given value before it is returned.
    """
    numbers = [(k, v) for k, v in table.items() if v is not None]
    if not numbers or not all(isinstance(v, (int, float)) and math.isfinite(v) for _, v in numbers):
        return None
    options = re2.Options()
    options.log_errors = False
    for pattern in _RULE_PATTERNS:
        compiled = re2.compile(pattern, options)
        scale = None
        for cell, value in numbers:
            m = compiled.search(cell)
            if m is not None and float(m.group(1)) != 0:
                scale = value / float(m.group(1))
                break
        if scale is None:
            continue
        scale = next((sign * s for sign in (1, -1) for s in _KNOWN_SCALES if _close(scale, sign * s)), None)
        if scale is None:
            continue  # a unit conversion GenoTEX's converters make (years, months, weeks, days), or no rule
        if all((v is None and _rule_value(compiled, scale, k) is None)
               or (v is not None and (r := _rule_value(compiled, scale, k)) is not None and _close(r, v))
               for k, v in table.items()):
            return {"kind": "number", "pattern": pattern, "scale": scale}
    return None


def tabulate(program: Program | Refusal, func: str, raw_values: Iterable[str], **budgets) -> Tabulation:
    """Evaluate ``func`` on every raw cell: the value table, refusals by value, and a numeric rule if one fits."""
    if isinstance(program, Refusal):  # the converter never loaded: every value is refused for that reason
        return Tabulation({}, None, [program], program)
    table: dict[str, float | int | None] = {}
    refusals: list[Refusal] = []
    for raw in raw_values:
        if _is_missing(raw):
            continue  # covered by ``missing``
        if not isinstance(raw, str):
            refusals.append(Refusal("value-not-text", f"{raw!r}: raw cells are text"))
            continue
        if raw in table:
            continue
        result = call(program, func, raw, **budgets)
        if isinstance(result, Refusal):
            refusals.append(Refusal(result.reason, f"{raw[:120]!r}: {result.detail}"))
        else:
            table[raw] = result
    missing = call(program, func, _NP_NAN, **budgets)
    rule = infer_numeric_rule(table) if not refusals else None
    return Tabulation(table, rule, refusals, missing)


def referenced_names(sources: Mapping[str, str]) -> frozenset[str]:
    """Global names the sources read that they do not define and the interpreter does not provide.

    The importer resolves these in the notebook (helper defs, literal constants) before calling
    :func:`load_functions`; a name it cannot resolve stays a ``name-unknown`` refusal when reached.
    """
    found: set[str] = set()
    for source in sources.values():
        try:
            tree = ast.parse(textwrap.dedent(source)) if len(source) <= MAX_SOURCE_CHARS else None
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            tree = None
        if tree is None:
            continue
        stack: list[tuple[ast.AST, frozenset[str]]] = [(tree, frozenset())]
        while stack:
            node, scope = stack.pop()
            if isinstance(node, (ast.FunctionDef, ast.Lambda)):
                scope = scope | _local_names(node)
            elif isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
                scope = scope | {n.id for g in node.generators for n in ast.walk(g.target) if isinstance(n, ast.Name)}
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in scope:
                found.add(node.id)
            stack.extend((child, scope) for child in _children(node))
    provided = set(sources) | set(_BUILTINS) | set(_MODULE_NAMES)
    return frozenset(n for n in found if n not in provided and not hasattr(_builtins, n))
