"""Static resolution of a GenoTEX notebook's decisions: what was in force at its LAST executed call.

Nothing from a notebook is executed.  Executed code cells are parsed with :mod:`ast` in execution order and
walked by a tiny abstract interpreter that only knows literals, names, function definitions and where a few
data frames came from (the series matrix, a table typed from printed text, a TCGA directory).  A value it cannot
know is :data:`UNKNOWN`, never guessed.  Decisions are snapshots taken at each call of GenoTEX's helpers
(``geo_select_clinical_features``, ``get_gene_mapping``, ``tcga_select_clinical_features``,
``validate_and_save_cohort_info``); the last executed one wins, as a retry cell that reassigns ``trait_row``
changes the outcome GenoTEX published.

Printed text is read too, never evaluated: the "Sample Characteristics Dictionary" repr goes through
``ast.parse`` and :func:`literal`, a walker that accepts dicts, lists, strings, numbers and ``nan`` only.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

from genotex_dask.specs_import.notebooks import Cell, Notebook


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()
MAX_DICT_CHARS = 2_000_000
DICT_CAP = 30                      # GenoTEX's get_unique_values_by_row(max_len=30)
TCGA_DIR = re.compile(r"TCGA_[A-Za-z0-9_\-]+_\([A-Za-z0-9]+\)")

GEO_SELECT = ("clinical_df", "trait", "trait_row", "convert_trait", "age_row", "convert_age", "gender_row",
              "convert_gender")
TCGA_SELECT = ("clinical_df", "trait", "age_col", "gender_col")
VALIDATE = ("is_final", "cohort", "info_path", "is_gene_available", "is_trait_available", "is_biased", "df",
            "note")
GENE_MAPPING = ("annotation", "prob_col", "gene_col")


@dataclass(frozen=True)
class Origin:
    """Where a data frame (or a file path / directory) came from."""
    kind: str                  # matrix | printed | tcga_dir | tcga_clinical | tcga_genetic | other
    where: str = ""            # the TCGA directory


@dataclass
class FuncDef:
    name: str
    source: str
    cell: int


@dataclass
class Call:
    name: str
    args: dict[str, Any]       # parameter -> literal | UNKNOWN | FuncRef | Origin
    cell: int
    conditional: bool          # inside a branch whose test could not be decided
    funcs: dict[str, FuncDef]  # function definitions in force at the call
    consts: dict[str, Any]     # literal module-level names in force at the call


@dataclass(frozen=True)
class FuncRef:
    name: str


@dataclass
class Resolution:
    notebook: Notebook
    calls: list[Call] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)      # final literal names (e.g. requires_gene_mapping)
    unparsed: list[int] = field(default_factory=list)         # executed cells that are not Python
    prefixes: list[Any] = field(default_factory=list)         # clinical prefixes passed to the matrix reader
    reads: list[Origin] = field(default_factory=list)         # TCGA files read, in execution order

    def last(self, name: str, where=None) -> Call | None:
        for c in reversed(self.calls):
            if c.name == name and (where is None or where(c)):
                return c
        return None


# ---- literals --------------------------------------------------------------------------------------------

class NotLiteral(ValueError):
    pass


def literal(node: ast.AST, names: dict[str, Any] | None = None, depth: int = 0) -> Any:
    """A Python literal from an AST node: constants, containers, ``-x``, ``nan``; names from ``names``."""
    if depth > 50:
        raise NotLiteral("too deep")
    if isinstance(node, ast.Expression):
        return literal(node.body, names, depth + 1)
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, bool, type(None))):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return [literal(e, names, depth + 1) for e in node.elts]
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise NotLiteral("dict unpacking")
        out = {}
        for k, v in zip(node.keys, node.values):
            key = literal(k, names, depth + 1)
            if isinstance(key, (list, dict)):
                raise NotLiteral("unhashable key")
            out[key] = literal(v, names, depth + 1)
        return out
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = literal(node.operand, names, depth + 1)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return -v if isinstance(node.op, ast.USub) else v
        raise NotLiteral("sign of a non-number")
    if isinstance(node, ast.Name):
        if node.id in ("nan", "NaN"):
            return None            # printed missing cell
        if names is not None and node.id in names and names[node.id] is not UNKNOWN:
            return names[node.id]
        raise NotLiteral(f"name {node.id}")
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in ("np", "numpy") \
            and node.attr == "nan":
        return None
    raise NotLiteral(type(node).__name__)


def _matching_brace(text: str, start: int) -> int:
    """Index after the brace closing the one at ``start`` (quotes respected), or -1."""
    depth, i, quote = 0, start, None
    n = len(text)
    while i < n:
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1


def parse_printed_dict(text: str, marker: str = "Sample Characteristics Dictionary:") -> dict | None:
    """The dict printed after ``marker`` (the last one in ``text``), parsed without evaluation."""
    pos = text.rfind(marker)
    if pos < 0:
        return None
    start = text.find("{", pos)
    if start < 0 or start - pos > 200:
        return None
    end = _matching_brace(text, start)
    if end < 0 or end - start > MAX_DICT_CHARS:
        return None
    try:
        value = literal(ast.parse(text[start:end], mode="eval"))
    except (SyntaxError, NotLiteral, ValueError, RecursionError, MemoryError):
        return None
    return value if isinstance(value, dict) else None


# ---- the walker ------------------------------------------------------------------------------------------

_MAGIC = re.compile(r"^\s*[%!].*$", re.M)


def _strip_magics(src: str) -> str:
    return _MAGIC.sub("pass", src)


def _call_name(node: ast.Call) -> str:
    f = node.func
    if isinstance(f, ast.Name):
        return f.id
    if isinstance(f, ast.Attribute):
        base = f.value
        prefix = base.id + "." if isinstance(base, ast.Name) else ""
        if isinstance(base, ast.Attribute) and isinstance(base.value, ast.Name):
            prefix = f"{base.value.id}.{base.attr}."
        return prefix + f.attr
    return ""


TRACKED = {"geo_select_clinical_features": GEO_SELECT, "tcga_select_clinical_features": TCGA_SELECT,
           "validate_and_save_cohort_info": VALIDATE, "get_gene_mapping": GENE_MAPPING,
           "normalize_gene_symbols_in_index": ("gene_df",), "apply_gene_mapping": ("expression_df", "mapping_df"),
           "get_genetic_data": ("file_path",), "get_gene_annotation": ("file_path",)}


class _Walker:
    def __init__(self, res: Resolution):
        self.res = res
        self.values: dict[str, Any] = {}
        self.funcs: dict[str, FuncDef] = {}
        self.cell: Cell | None = None
        self.uncertain = 0

    # values
    def value(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Name):
            if node.id in self.funcs:
                return FuncRef(node.id)
            return self.values.get(node.id, UNKNOWN)
        if isinstance(node, ast.Call):
            return self.call_value(node)
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            left, right = self.value(node.left), self.value(node.comparators[0])
            op = node.ops[0]
            if isinstance(op, (ast.Is, ast.IsNot)) and (left is UNKNOWN or right is UNKNOWN):
                # `x is not None` is decidable for functions and origins, not for unknown values
                return UNKNOWN
            if left is UNKNOWN or right is UNKNOWN or isinstance(left, Origin) or isinstance(right, Origin):
                return UNKNOWN
            try:
                if isinstance(op, ast.Is):
                    return left is right if right is None or left is None else left == right
                if isinstance(op, ast.IsNot):
                    return left is not right if right is None or left is None else left != right
                if isinstance(op, ast.Eq):
                    return left == right
                if isinstance(op, ast.NotEq):
                    return left != right
                if isinstance(op, (ast.In, ast.NotIn)) and isinstance(right, (str, list, dict)):
                    hit = left in right
                    return hit if isinstance(op, ast.In) else not hit
            except Exception:  # noqa: BLE001 - comparing literals only
                return UNKNOWN
            return UNKNOWN
        if isinstance(node, ast.BoolOp):
            vals = [self.value(v) for v in node.values]
            if any(v is UNKNOWN for v in vals):
                return UNKNOWN
            vals = [_truth(v) for v in vals]
            return all(vals) if isinstance(node.op, ast.And) else any(vals)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            v = self.value(node.operand)
            return UNKNOWN if v is UNKNOWN else (not _truth(v))
        if isinstance(node, ast.IfExp):
            t = self.value(node.test)
            if t is UNKNOWN:
                a, b = self.value(node.body), self.value(node.orelse)
                return a if _same(a, b) else UNKNOWN
            return self.value(node.body if _truth(t) else node.orelse)
        if isinstance(node, ast.Attribute) and node.attr in ("T", "copy") and isinstance(node.value, ast.Name):
            return Origin("other")
        try:
            return literal(node, self.values)
        except (NotLiteral, RecursionError):
            return UNKNOWN

    def call_value(self, node: ast.Call) -> Any:
        name = _call_name(node)
        args = [self.value(a) for a in node.args]
        if name in ("os.path.join", "join"):
            last = node.args[-1] if node.args else None
            v = args[-1] if args else UNKNOWN
            if isinstance(v, str) and TCGA_DIR.fullmatch(v):
                return Origin("tcga_dir", v)
            if isinstance(v, Origin) and v.kind == "tcga_dir":
                return v
            if v is UNKNOWN and last is not None and len(args) == 2 and isinstance(node.args[0], ast.Name) \
                    and "tcga" in node.args[0].id.lower():
                printed = _printed_tcga_dir(self.cell.output if self.cell else "")
                return Origin("tcga_dir", printed) if printed else UNKNOWN
            return UNKNOWN
        if name == "tcga_get_relevant_filepaths" and args and isinstance(args[0], Origin) \
                and args[0].kind == "tcga_dir":
            return [Origin("tcga_clinical", args[0].where), Origin("tcga_genetic", args[0].where)]
        if name.endswith("read_csv") or name.endswith("read_table"):
            if args and isinstance(args[0], Origin) and args[0].kind in ("tcga_clinical", "tcga_genetic"):
                self.res.reads.append(args[0])
                return args[0]
            return Origin("other")
        if name == "get_background_and_clinical_data":
            prefixes = args[2] if len(args) > 2 else next((self.value(k.value) for k in node.keywords
                                                           if k.arg == "prefixes_b"), None)
            self.res.prefixes.append(prefixes)
            return [Origin("other"), Origin("matrix")]
        if name in ("pd.DataFrame", "pd.DataFrame.from_dict", "DataFrame", "DataFrame.from_dict"):
            return Origin("printed")    # a table the notebook typed or built itself, never the matrix
        if name == "get_unique_values_by_row":
            return UNKNOWN
        return UNKNOWN

    def assign(self, target: ast.AST, value: Any, node: ast.AST | None = None) -> None:
        if isinstance(target, ast.Name):
            self.funcs.pop(target.id, None)
            if isinstance(value, FuncRef):
                if value.name in self.funcs:  # an alias keeps the definition (and its def name)
                    self.funcs[target.id] = self.funcs[value.name]
                    self.values.pop(target.id, None)
                    return
                value = UNKNOWN
            if isinstance(node, ast.Lambda):
                fn = ast.FunctionDef(name=target.id, args=node.args, body=[ast.Return(node.body)],
                                     decorator_list=[], returns=None, type_params=[])
                ast.fix_missing_locations(fn)
                self.funcs[target.id] = FuncDef(target.id, ast.unparse(fn), self.cell.index)
                self.values.pop(target.id, None)
                return
            if self.uncertain and target.id in self.values and not _same(self.values[target.id], value):
                value = UNKNOWN
            self.values[target.id] = value
        elif isinstance(target, (ast.Tuple, ast.List)):
            seq = value if isinstance(value, list) and len(value) == len(target.elts) else None
            for i, t in enumerate(target.elts):
                self.assign(t, seq[i] if seq is not None else UNKNOWN)
        # attribute / subscript targets: not tracked

    def record(self, node: ast.Call) -> None:
        name = _call_name(node)
        if name not in TRACKED:
            return
        params = TRACKED[name]
        args: dict[str, Any] = {}
        for i, a in enumerate(node.args):
            if i < len(params):
                args[params[i]] = self.value(a)
        for k in node.keywords:
            if k.arg:
                args[k.arg] = self.value(k.value)
        consts = {k: v for k, v in self.values.items() if v is not UNKNOWN and not isinstance(v, Origin)}
        self.res.calls.append(Call(name, args, self.cell.index, self.uncertain > 0, dict(self.funcs), consts))

    def calls_in(self, node: ast.AST) -> None:
        for sub in _walk_no_defs(node):
            if isinstance(sub, ast.Call):
                self.record(sub)

    def stmts(self, body: list[ast.stmt]) -> None:
        for s in body:
            self.stmt(s)

    def stmt(self, s: ast.stmt) -> None:
        if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)):
            src = ast.get_source_segment(self.src, s) or ast.unparse(s)
            self.funcs[s.name] = FuncDef(s.name, _dedent(src), self.cell.index)
            self.values.pop(s.name, None)
        elif isinstance(s, ast.Assign):
            self.calls_in(s.value)
            val = self.value(s.value)
            for t in s.targets:
                self.assign(t, val, s.value)
        elif isinstance(s, ast.AnnAssign) and s.value is not None:
            self.calls_in(s.value)
            self.assign(s.target, self.value(s.value), s.value)
        elif isinstance(s, ast.AugAssign):
            if isinstance(s.target, ast.Name):
                self.values[s.target.id] = UNKNOWN
        elif isinstance(s, ast.If):
            self.calls_in(s.test)
            t = self.value(s.test)
            if t is UNKNOWN:
                t = self.printed_branch(s)
            if t is UNKNOWN:
                self.branch([s.body, s.orelse])
            else:
                self.stmts(s.body if _truth(t) else s.orelse)
        elif isinstance(s, ast.Try) or (hasattr(ast, "TryStar") and isinstance(s, ast.TryStar)):
            # the body is assumed to have run to its end (the handlers are what runs when it did not)
            self.stmts(s.body)
            self.stmts(s.orelse)
            self.stmts(s.finalbody)
        elif isinstance(s, (ast.For, ast.AsyncFor, ast.While)):
            if isinstance(s, (ast.For, ast.AsyncFor)):
                self.calls_in(s.iter)
                self.assign(s.target, UNKNOWN)
            self.uncertain += 1
            self.stmts(s.body)
            self.stmts(s.orelse)
            self.uncertain -= 1
        elif isinstance(s, (ast.With, ast.AsyncWith)):
            for item in s.items:
                self.calls_in(item.context_expr)
                if item.optional_vars is not None:
                    self.assign(item.optional_vars, UNKNOWN)
            self.stmts(s.body)
        elif isinstance(s, ast.ClassDef):
            return
        else:
            self.calls_in(s)

    def printed_branch(self, s: ast.If) -> Any:
        """Decide an ``if`` from the cell's printed text: the side whose print() literals appear ran."""
        out = self.cell.output if self.cell else ""
        if self.cell is None or self.cell.error:
            return UNKNOWN
        body, orelse = _print_fragments(s.body), _print_fragments(s.orelse)
        hit_body = any(f in out for f in body)
        hit_else = any(f in out for f in orelse)
        if hit_body and not hit_else:
            return True
        if hit_else and not hit_body:
            return False
        # a side whose prints are all absent from a cell that printed other text did not run
        if body and not hit_body and not hit_else:
            return False
        if orelse and not hit_else and not hit_body:
            return True
        return UNKNOWN

    def branch(self, bodies: list[list[ast.stmt]]) -> None:
        """Both sides of an undecidable ``if``: names that end up different become UNKNOWN."""
        before_v, before_f = dict(self.values), dict(self.funcs)
        results = []
        self.uncertain += 1
        for body in bodies:
            self.values, self.funcs = dict(before_v), dict(before_f)
            self.stmts(body)
            results.append((self.values, self.funcs))
        self.uncertain -= 1
        (va, fa), (vb, fb) = results
        self.values = {k: (va.get(k, UNKNOWN) if _same(va.get(k, UNKNOWN), vb.get(k, UNKNOWN)) else UNKNOWN)
                       for k in set(va) | set(vb)}
        self.funcs = {k: fa[k] for k in fa if k in fb and fa[k].source == fb[k].source}
        for k in set(fa) ^ set(fb) | {k for k in fa if k in fb and fa[k].source != fb[k].source}:
            self.values[k] = UNKNOWN

    def cell_run(self, cell: Cell) -> None:
        self.cell = cell
        self.src = _strip_magics(cell.source)
        try:
            tree = ast.parse(self.src)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            self.res.unparsed.append(cell.index)
            return
        try:
            self.stmts(tree.body)
        except RecursionError:   # a pathologically nested cell: what it assigned stays as far as it got
            self.res.unparsed.append(cell.index)


def _print_fragments(body: list[ast.stmt]) -> list[str]:
    """Literal text (>= 12 characters) that the print() calls of a branch would write, nested ifs excluded."""
    frags: list[str] = []
    for stmt in body:
        if isinstance(stmt, ast.If):
            continue
        for n in _walk_no_defs(stmt):
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "print" and n.args:
                a = n.args[0]
                parts = [a.value] if isinstance(a, ast.Constant) and isinstance(a.value, str) else (
                    [v.value for v in a.values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
                    if isinstance(a, ast.JoinedStr) else [])
                for p in parts:
                    for line in p.splitlines():
                        if len(line.strip()) >= 12:
                            frags.append(line.strip())
    return frags


def _dedent(src: str) -> str:
    lines = src.splitlines()
    if not lines:
        return src
    first = lines[0]
    pad = len(first) - len(first.lstrip())
    if pad == 0:
        return src
    return "\n".join(line[pad:] if line[:pad].strip() == "" else line for line in lines)


def _truth(v: Any) -> bool:
    if isinstance(v, (FuncRef, Origin)):
        return True
    try:
        return bool(v)
    except Exception:  # noqa: BLE001
        return True


def _same(a: Any, b: Any) -> bool:
    if a is UNKNOWN or b is UNKNOWN:
        return False
    try:
        return type(a) is type(b) and a == b
    except Exception:  # noqa: BLE001
        return False


def _walk_no_defs(node: ast.AST):
    """ast.walk that does not enter function or class bodies (their calls run only when called)."""
    todo = [node]
    while todo:
        n = todo.pop()
        yield n
        for child in ast.iter_child_nodes(n):
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                todo.append(child)


_PRINTED_DIR = re.compile(r"(?:select|found|using|match|chose|use)[^\n]*?(" + TCGA_DIR.pattern + ")", re.I)


def _printed_tcga_dir(text: str) -> str | None:
    """The TCGA directory a name-matching loop picked, from the cell's own printed text."""
    hits = [m.group(1) for m in _PRINTED_DIR.finditer(text)]
    return hits[-1] if hits else None


def resolve(nb: Notebook) -> Resolution:
    """Walk the executed cells of ``nb`` in execution order and record the tracked calls."""
    res = Resolution(nb)
    w = _Walker(res)
    for cell in nb.executed_cells():
        w.cell_run(cell)
    res.values = {k: v for k, v in w.values.items() if v is not UNKNOWN}
    return res
