"""The assembler: assembly text -> Program, reporting every error it can find in one pass.

Statements are tokenised per line, `.rept` blocks expanded, instructions encoded from the ISA
table, `@` issue times resolved over all queues (labels may refer across queues), and the result
checked by lpu.isa.validate; docs/assembly.md describes the language.
"""

from __future__ import annotations

import json
import math
import os
import re

import numpy as np

from lpu.assembler.diagnostics import AssemblyError, Diagnostic
from lpu.assembler.lexer import (
    AsmSyntaxError,
    Cursor,
    Token,
    describe,
    evaluate,
    parse_expr,
    tokenize,
)
from lpu.errors import LpuError
from lpu.isa.chips import CHIPS, Chip
from lpu.isa.encoding import EncodingError, decode, encode, f32_bits, stream_field
from lpu.isa.program import Program, Segment, tensor_to_words, words_for
from lpu.isa.table import BY_MNEMONIC, DTYPES, Instruction
from lpu.isa.validate import validate

DEFAULT_CHIP = "tsp-v1"
MAX_REPT = 1 << 16  # iterations of one .rept
MAX_STATEMENTS = 1 << 18  # statements made by .rept expansion: keeps hostile input from hanging
MAX_CYCLE = 1 << 31
FLOAT_DTYPES = ("f16", "bf16", "f32")
_STREAM = re.compile(r"([ew])(\d+)$")
_RESERVED = {"inf", "nan", "bits", "at", "zeros", "file", "hex"}


_IN_REPT = "$rept"  # marks an environment inside a .rept body (not a valid source name)


def env_in_rept(env: dict[str, int]) -> bool:
    return _IN_REPT in env


class _Unresolved(Exception):
    """An @ expression names a label whose cycle is not known yet."""


def _err(msg: str, tok: Token) -> AsmSyntaxError:
    return AsmSyntaxError(msg, tok.line, tok.col)


class _Ins:
    """One instruction (or raw .word) waiting for its issue cycle."""

    __slots__ = ("duration", "loc", "phys", "timing", "word")

    def __init__(self, word: int, timing, loc: tuple[int, int], phys: tuple[int, int]) -> None:
        self.word = word
        self.timing = timing  # None | ("abs" | "rel", expr, env, token)
        self.loc = loc  # source-map entry (honours .loc)
        self.phys = phys  # where the text really is, for diagnostics
        try:
            ins, vals = decode(word)
            n = vals.get("n", 1) * vals.get("d", 1) if ins.mnemonic == "repeat" else \
                vals["n"] if ins.mnemonic == "nop" else 1
        except EncodingError:
            n = 1
        self.duration = max(1, n)


class Assembler:
    def __init__(self, text: str, filename: str, chip: str | None, base_dir: str) -> None:
        self.filename = filename
        self.base_dir = base_dir
        self.lines = text.split("\n")
        self.diags: dict[tuple[int, int, str], Diagnostic] = {}
        self.cli_chip = chip
        self.chip: Chip = CHIPS[DEFAULT_CHIP]
        self.consts: dict[str, int] = {}
        self.data_addr: dict[str, int] = {}
        self.map_index: dict[str, int] = {}
        self.maps: list[np.ndarray] = []
        self.segments: list[Segment] = []
        self.segment_tok: list[Token] = []
        self.queue: str | None = None
        self.items: dict[str, list] = {}
        self.labels: dict[str, tuple[str, Token]] = {}
        self.label_cycle: dict[str, int] = {}
        self.pending_loc: tuple[int, int] | None = None
        self.source = filename
        self.n_statements = 0

    # ---- diagnostics ---------------------------------------------------------------------
    def error(self, msg: str, line: int, col: int) -> None:
        src = self.lines[line - 1].rstrip("\r") if 1 <= line <= len(self.lines) else ""
        key = (line, col, msg)
        if key not in self.diags:
            self.diags[key] = Diagnostic(self.filename, line, col, msg, src)

    def error_at(self, e: AsmSyntaxError) -> None:
        self.error(e.message, e.line, e.col)

    # ---- pass 1: statements and .rept structure ---------------------------------------------
    def statements(self) -> list:
        stmts: list[list[Token]] = []
        pending: list[Token] = []
        depth = 0
        opener: Token | None = None
        for n, raw in enumerate(self.lines, 1):
            try:
                toks = tokenize(raw.rstrip("\r"), n)
            except AsmSyntaxError as e:
                self.error_at(e)
                continue
            for t in toks[:-1]:
                if t.kind == "op" and t.text == "[":
                    depth += 1
                    opener = opener or t
                elif t.kind == "op" and t.text == "]":
                    depth -= 1
            pending += toks[:-1]
            if depth > 0:
                continue  # a bracketed list goes on on the next line
            if pending:
                stmts.append(pending + [toks[-1]])
            pending, depth, opener = [], 0, None
        if pending:
            t = opener or pending[0]
            self.error("'[' is never closed", t.line, t.col)
        # nest .rept blocks: ("s", toks) | ("rept", toks, body)
        root: list = []
        stack: list[tuple[list, list[Token]]] = []
        cur = root
        for s in stmts:
            head = s[0].text if s[0].kind == "name" else ""
            if head == ".rept":
                block: list = []
                cur.append(("rept", s, block))
                stack.append((cur, s))
                cur = block
            elif head == ".endr":
                if not stack:
                    self.error(".endr without .rept", s[0].line, s[0].col)
                    continue
                if s[1].kind != "end":
                    self.error_at(_err(f"unexpected {describe(s[1])} after .endr", s[1]))
                cur, _ = stack.pop()
            else:
                cur.append(("s", s))
        for _, s in stack:
            self.error(".rept is never closed with .endr", s[0].line, s[0].col)
        return root

    # ---- chip -----------------------------------------------------------------------------
    def pick_chip(self, root: list) -> None:
        found: Token | None = None
        for item in root:
            if item[0] == "s" and item[1][0].text == ".chip":
                toks = item[1]
                if found is not None:
                    self.error(".chip given twice", toks[0].line, toks[0].col)
                    continue
                # chip names may hold '-' (tsp-v1), which the tokenizer splits off
                text = "".join(t.text for t in toks[1:-1])
                name = Token("name", text, toks[1].line, toks[1].col)
                if toks[1].kind != "name":
                    self.error_at(_err("expected `.chip NAME`", name))
                    continue
                if name.text not in CHIPS:
                    self.error_at(_err(f"unknown chip {name.text!r}; known: "
                                       f"{', '.join(CHIPS)}", name))
                    continue
                if self.cli_chip and self.cli_chip != name.text:
                    self.error_at(_err(f"the source says .chip {name.text} but --chip says "
                                       f"{self.cli_chip}", name))
                found = name
                self.chip = CHIPS[name.text]
        if found is None and self.cli_chip:
            self.chip = CHIPS[self.cli_chip]

    # ---- pass 2: expand and handle statements -----------------------------------------------
    def run_block(self, block: list, env: dict[str, int]) -> None:
        for item in block:
            if item[0] == "rept":
                self.run_rept(item[1], item[2], env)
                continue
            self.n_statements += bool(env_in_rept(env))
            if self.n_statements > MAX_STATEMENTS:
                t = item[1][0]
                raise _Abort(f"more than {MAX_STATEMENTS} statements after .rept expansion",
                             t.line, t.col)
            try:
                self.statement(item[1], env)
            except AsmSyntaxError as e:
                self.error_at(e)
            except RecursionError:
                t = item[1][0]
                self.error("this statement nests too deeply to assemble", t.line, t.col)

    def run_rept(self, toks: list[Token], body: list, env: dict[str, int]) -> None:
        c = Cursor(toks)
        c.next()
        try:
            var = None
            if c.peek().kind == "name" and c.peek(1).kind == "op" and c.peek(1).text == "=":
                var = c.next()
                self.check_new_name(var, allow_loop=True)
                c.next()
                start = self.eval(parse_expr(c), env)
                c.expect(",", "between the first and the end value")
                end = self.eval(parse_expr(c), env)
            else:
                start, end = 0, self.eval(parse_expr(c), env)
            c.expect_end()
            if end - start > MAX_REPT:
                raise _err(f".rept runs {end - start} times; at most {MAX_REPT}", toks[0])
        except AsmSyntaxError as e:
            self.error_at(e)
            return
        # refuse up front what would expand past the limit (the product of the enclosing counts)
        mult = env.get(_IN_REPT, 1) * max(0, end - start)
        if mult * max(1, len(body)) > MAX_STATEMENTS:
            self.error(f".rept would expand to more than {MAX_STATEMENTS} statements",
                       toks[0].line, toks[0].col)
            return
        for i in range(start, end):
            inner = dict(env)
            inner[_IN_REPT] = mult
            if var is not None:
                inner[var.text] = i
            self.run_block(body, inner)

    def check_new_name(self, tok: Token, allow_loop: bool = False) -> None:
        n = tok.text
        if tok.kind != "name" or "." in n or n.startswith("$"):
            raise _err(f"{describe(tok)} is not a valid name (letters, digits, _)", tok)
        if n in BY_MNEMONIC or _STREAM.match(n) or n in _RESERVED:
            raise _err(f"{n!r} is reserved (an instruction, a stream or a keyword)", tok)
        if n in self.consts or n in self.data_addr or n in self.map_index or n in self.labels:
            raise _err(f"{n!r} is already defined", tok)

    def lookup(self, env: dict[str, int], labels: bool = False):
        def f(name: str, tok: Token) -> int:
            if name in env:
                return env[name]
            if name in self.consts:
                return self.consts[name]
            if name in self.data_addr:
                return self.data_addr[name]
            if name in self.labels:
                if not labels:
                    raise _err(f"label {name!r} can only be used in an @ issue time", tok)
                if name not in self.label_cycle:
                    raise _Unresolved(name)
                return self.label_cycle[name]
            if name in self.map_index:
                raise _err(f"{name!r} is a lane map; use it as a map operand", tok)
            raise _err(f"unknown name {name!r}", tok)
        return f

    def eval(self, e, env: dict[str, int]) -> int:
        return evaluate(e, self.lookup(env))

    def statement(self, toks: list[Token], env: dict[str, int]) -> None:
        c = Cursor(toks)
        first = c.peek()
        if first.kind == "name" and c.peek(1).kind == "op" and c.peek(1).text == ":" \
                and not first.text.startswith("."):
            self.label(first)
            c.next()
            c.next()
            if c.peek().kind == "end":
                return
        t = c.peek()
        if t.kind == "name" and t.text.startswith("."):
            handler = _DIRECTIVES.get(t.text)
            if handler is None:
                raise _err(f"unknown directive {t.text!r}", t)
            c.next()
            handler(self, c, env, t)
            return
        timing = None
        if c.at("@"):
            at = c.next()
            kind = "rel" if c.accept("+") else "abs"
            timing = (kind, parse_expr(c), dict(env), at)
        self.instruction(c, env, timing)

    def label(self, tok: Token) -> None:
        if self.queue is None:
            raise _err("a label needs a queue: put `.queue NAME` first", tok)
        self.check_new_name(tok)
        self.labels[tok.text] = (self.queue, tok)
        self.items[self.queue].append(("label", tok.text, tok))

    def take_loc(self, tok: Token) -> tuple[int, int]:
        loc = self.pending_loc or (tok.line, tok.col)
        self.pending_loc = None
        return loc

    def instruction(self, c: Cursor, env: dict[str, int], timing) -> None:
        t = c.next()
        if t.kind != "name":
            raise _err(f"expected an instruction, found {describe(t)}", t)
        if self.queue is None:
            raise _err("instructions need a queue: put `.queue NAME` (e.g. .queue mem.e0) first",
                       t)
        parts = t.text.split(".")
        ins = BY_MNEMONIC.get(parts[0])
        if ins is None:
            raise _err(f"unknown instruction {parts[0]!r}", t)
        dts = [op for op in ins.operands if op.kind == "dtype"]
        if len(parts) - 1 != len(dts):
            want = "".join(f".{op.name}" for op in dts) or " no type suffix"
            raise _err(f"{ins.mnemonic} takes{' ' if dts else ''}{want}"
                       f"{' (e.g. ' + ins.mnemonic + '.f32)' if len(dts) == 1 else ''}, "
                       f"got {t.text!r}", t)
        vals: dict[str, int] = {}
        for op, name in zip(dts, parts[1:]):
            if name not in DTYPES:
                raise _err(f"unknown type {name!r} (types: {', '.join(DTYPES)})", t)
            vals[op.name] = DTYPES[name][0]
        dt = parts[1] if len(parts) > 1 else None
        plain = [op for op in ins.operands if op.kind != "dtype"]
        for k, op in enumerate(plain):
            if k:
                if c.peek().kind == "end":
                    raise _err(f"{ins.mnemonic} needs {len(plain)} operands "
                               f"({', '.join(o.name for o in plain)}), got {k}", c.peek())
                c.expect(",", "between operands")
            vals[op.name] = self.operand(c, op, ins, dt, env)
        if c.peek().kind != "end":
            bad = c.peek()
            if not plain or (bad.kind == "op" and bad.text == ","):
                raise _err(f"{ins.mnemonic} takes {len(plain)} operand"
                           f"{'s' if len(plain) != 1 else ''}", bad)
            c.expect_end()
        word = encode(ins, vals)
        self.items[self.queue].append(("ins", _Ins(word, timing, self.take_loc(t),
                                                   (t.line, t.col))))

    def operand(self, c: Cursor, op, ins: Instruction, dt: str | None, env) -> int:
        t = c.peek()
        if t.kind == "end":
            raise _err(f"missing operand {op.name} of {ins.mnemonic}", t)
        if op.kind == "stream":
            m = _STREAM.match(t.text) if t.kind == "name" else None
            if m is None:
                raise _err(f"operand {op.name} of {ins.mnemonic}: expected a stream like e0 or "
                           f"w5, found {describe(t)}", t)
            c.next()
            sid = int(m.group(2))
            if sid >= 32:
                raise _err(f"stream {t.text}: ids are 0..31", t)
            return stream_field("ew".index(m.group(1)), sid)
        if op.kind == "map" and t.kind == "name" and t.text in self.map_index:
            c.next()
            return self.map_index[t.text]
        if op.kind == "imm32":
            return self.imm32(c, ins, dt, env)
        v = self.eval(parse_expr(c), env)
        if op.kind == "sint":
            lo, hi = -(1 << (op.bits - 1)), (1 << (op.bits - 1)) - 1
        else:
            lo, hi = 0, (1 << op.bits) - 1
        if not lo <= v <= hi:
            raise _err(f"operand {op.name} of {ins.mnemonic} is {v}, outside {lo}..{hi} "
                       f"({op.bits}-bit field)", t)
        return v

    def imm32(self, c: Cursor, ins: Instruction, dt: str | None, env) -> int:
        t = c.peek()
        if t.kind == "name" and t.text == "bits":
            c.next()
            c.expect("(", "after bits")
            v = self.eval(parse_expr(c), env)
            c.expect(")", "to close bits(")
            if not 0 <= v < 1 << 32:
                raise _err(f"bits({v}) does not fit in 32 bits", t)
            return v
        if dt in FLOAT_DTYPES:
            sign = 1.0
            k = 0
            while c.peek(k).kind == "op" and c.peek(k).text in "+-" and c.peek(k).text:
                sign = -sign if c.peek(k).text == "-" else sign
                k += 1
            lit = c.peek(k)
            after = c.peek(k + 1)
            ends = after.kind == "end" or (after.kind == "op" and after.text == ",")
            if ends and (lit.kind == "float" or (lit.kind == "name" and lit.text in ("inf", "nan"))):
                for _ in range(k + 1):
                    c.next()
                x = sign * float(lit.text.replace("_", ""))
            else:
                x = float(self.eval(parse_expr(c), env))
            try:
                return f32_bits(x)
            except (OverflowError, ValueError):
                raise _err(f"{x!r} does not fit in an fp32 constant", t) from None
        if t.kind == "float":
            raise _err(f"{ins.mnemonic}.{dt} takes an integer constant, found {t.text!r}", t)
        v = self.eval(parse_expr(c), env)
        if not -(1 << 31) <= v < 1 << 32:
            raise _err(f"constant {v} does not fit in 32 bits", t)
        return v & 0xFFFFFFFF

    # ---- pass 3: issue times ---------------------------------------------------------------
    def layout(self) -> tuple[dict[str, list[int]], dict[str, list], dict[str, list]]:
        words = {q: [] for q in self.items}
        locs = {q: [] for q in self.items}
        phys = {q: [] for q in self.items}
        pos = {q: 0 for q in self.items}
        cycle = {q: 0 for q in self.items}
        pending: dict[str, list[str]] = {q: [] for q in self.items}
        progress = True
        while progress:
            progress = False
            for q, items in self.items.items():
                while pos[q] < len(items):
                    item = items[pos[q]]
                    if item[0] == "label":
                        pending[q].append(item[1])  # named once its instruction's cycle is known
                    else:
                        ins: _Ins = item[1]
                        if ins.timing is not None:
                            try:
                                target = self.issue_time(ins, cycle[q], q)
                            except _Unresolved:
                                break
                            gap = target - cycle[q]
                            while gap > 0:
                                n = min(gap, 0xFFFF)
                                words[q].append(encode("nop", {"n": n}))
                                locs[q].append(ins.loc)
                                phys[q].append(ins.phys)
                                gap -= n
                                cycle[q] += n
                        for name in pending[q]:
                            self.label_cycle[name] = cycle[q]
                        pending[q].clear()
                        words[q].append(ins.word)
                        locs[q].append(ins.loc)
                        phys[q].append(ins.phys)
                        cycle[q] += ins.duration
                    pos[q] += 1
                    progress = True
                if pos[q] == len(items) and pending[q]:
                    for name in pending[q]:  # labels after the last instruction: the end cycle
                        self.label_cycle[name] = cycle[q]
                    pending[q].clear()
                    progress = True
        for q, items in self.items.items():
            if pos[q] < len(items):
                tok = items[pos[q]][1].timing[3]
                self.error(f"the issue time of this instruction in {q} depends on itself "
                           "(labels refer to each other in a cycle)", tok.line, tok.col)
        return words, locs, phys

    def issue_time(self, ins: _Ins, now: int, q: str) -> int:
        kind, e, env, tok = ins.timing
        try:
            v = evaluate(e, self.lookup(env, labels=True))
        except AsmSyntaxError as err:
            self.error_at(err)
            return now
        except RecursionError:
            self.error("this issue time nests too deeply", tok.line, tok.col)
            return now
        target = now + v if kind == "rel" else v
        if kind == "rel" and v < 0:
            self.error(f"@+{v}: a queue cannot go back in time", tok.line, tok.col)
            return now
        if target > MAX_CYCLE:
            self.error(f"issue cycle {target} is beyond {MAX_CYCLE}", tok.line, tok.col)
            return now
        if target < now:
            self.error(f"queue {q} is already at cycle {now}; cannot issue at cycle {target}",
                       tok.line, tok.col)
            return now
        return target

    # ---- the whole run ---------------------------------------------------------------------
    def assemble(self, check: bool) -> Program:
        root = self.statements()
        self.pick_chip(root)
        try:
            self.run_block(root, {})
        except _Abort as e:
            self.error(e.message, e.line, e.col)
        words, locs, phys = self.layout()
        prog = Program(chip=self.chip.name, source=self.source)
        for q in self.items:
            prog.queues[q] = np.array(words[q], dtype=np.uint64)
            prog.srcmap[q] = np.array(locs[q], dtype=np.int32).reshape(-1, 2)
        prog.segments = self.segments
        prog.maps = self.maps
        if check:
            for p in validate(prog, self.chip):
                if p.what == "instruction" and p.queue in phys and 0 <= p.index < len(phys[p.queue]):
                    line, col = phys[p.queue][p.index]
                elif p.what == "segment" and 0 <= p.index < len(self.segment_tok):
                    line, col = self.segment_tok[p.index].line, self.segment_tok[p.index].col
                else:
                    line, col = 1, 1
                self.error(p.message, line, col)
        if self.diags:
            raise AssemblyError(sorted(self.diags.values(), key=lambda d: (d.line, d.col)))
        return prog


class _Abort(AsmSyntaxError):
    """Stop expanding: the input is too big to assemble."""


# ---- directives -----------------------------------------------------------------------------
def _d_chip(a: Assembler, c: Cursor, env, t: Token) -> None:
    pass  # handled before everything else by pick_chip


def _d_const(a: Assembler, c: Cursor, env, t: Token) -> None:
    name = c.next()
    a.check_new_name(name)
    if name.text in env:
        raise _err(f"{name.text!r} is a .rept variable", name)
    c.expect("=", "after the constant's name")
    v = a.eval(parse_expr(c), env)
    c.expect_end()
    a.consts[name.text] = v


def _d_queue(a: Assembler, c: Cursor, env, t: Token) -> None:
    name = c.next()
    if name.kind != "name" or name.text not in a.chip.queue_index:
        ex = ", ".join(q.name for q in a.chip.queues[:3])
        raise _err(f"chip {a.chip.name} has no queue {name.text!r} (queues look like {ex}, "
                   "mem.e0, vxm.0; see `lpu info`)", name)
    c.expect_end()
    a.queue = name.text
    a.items.setdefault(name.text, [])


def _string(c: Cursor) -> str:
    t = c.next()
    if t.kind != "str":
        raise _err(f"expected a quoted string, found {describe(t)}", t)
    try:
        return json.loads(t.text)
    except ValueError:
        raise _err("bad string", t) from None


def _d_file(a: Assembler, c: Cursor, env, t: Token) -> None:
    s = _string(c)
    c.expect_end()
    a.source = s


def _d_loc(a: Assembler, c: Cursor, env, t: Token) -> None:
    line = a.eval(parse_expr(c), env)
    col = a.eval(parse_expr(c), env)
    c.expect_end()
    if not (0 <= line < 1 << 31 and 0 <= col < 1 << 31):
        raise _err(".loc takes a line and a column, each 0..2^31-1", t)
    a.pending_loc = (line, col)


def _d_word(a: Assembler, c: Cursor, env, t: Token) -> None:
    if a.queue is None:
        raise _err(".word needs a queue: put `.queue NAME` first", t)
    v = a.eval(parse_expr(c), env)
    c.expect_end()
    if not 0 <= v < 1 << 64:
        raise _err(f".word {v} is not a 64-bit word", t)
    a.items[a.queue].append(("ins", _Ins(v, None, a.take_loc(t), (t.line, t.col))))


def _numbers(a: Assembler, c: Cursor, env, floats: bool, depth: int = 0) -> list:
    """A bracketed, possibly nested, list of numbers."""
    if depth > 16:
        raise _err("lists nest too deeply", c.peek())
    c.expect("[", "to open the list")
    out: list = []
    while not c.at("]"):
        if out or c.at(","):
            pass
        if c.at("["):
            out += _numbers(a, c, env, floats, depth + 1)
        else:
            out.append(_number(a, c, env, floats))
        if not c.accept(","):
            break
    c.expect("]", "to close the list")
    return out


def _number(a: Assembler, c: Cursor, env, floats: bool):
    sign = 1
    while c.at("-") or c.at("+"):
        sign = -sign if c.next().text == "-" else sign
    t = c.peek()
    if t.kind == "float" or (t.kind == "name" and t.text in ("inf", "nan")):
        if not floats:
            raise _err(f"integer data cannot hold {t.text!r}", t)
        c.next()
        return sign * float(t.text.replace("_", ""))
    v = sign * a.eval(parse_expr(c), env)
    return float(v) if floats else v


def _load_npy(a: Assembler, c: Cursor) -> tuple[np.ndarray, Token]:
    t = c.peek()
    rel = _string(c)
    path = os.path.join(a.base_dir, rel)
    try:
        arr = np.load(path, allow_pickle=False)
    except OSError as e:
        raise _err(f"cannot read {rel!r}: {e.strerror or e}", t) from None
    except Exception as e:  # noqa: BLE001 -- np.load raises many types on bad files; name the file
        raise _err(f"{rel!r} is not a readable .npy file ({type(e).__name__})", t) from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
        raise _err(f"{rel!r} must hold a numeric array", t)
    return arr, t


def _d_map(a: Assembler, c: Cursor, env, t: Token) -> None:
    name = c.next()
    a.check_new_name(name)
    c.expect("=", "after the map's name")
    if c.peek().kind == "name" and c.peek().text == "file":
        c.next()
        arr, ft = _load_npy(a, c)
        if arr.dtype.kind not in "iu":
            raise _err("a lane map file must hold integers", ft)
        vals = arr.reshape(-1).astype(np.int64).tolist()
    else:
        ft = c.peek()
        vals = _numbers(a, c, env, floats=False)
    c.expect_end()
    lanes = a.chip.lanes
    if len(vals) != lanes:
        raise _err(f"a lane map has one entry per lane: {lanes} on {a.chip.name}, got "
                   f"{len(vals)}", ft)
    if any(not -1 <= v < lanes for v in vals):
        raise _err(f"lane map entries must be -1 (zero) or a lane 0..{lanes - 1}", ft)
    if len(a.maps) >= 256:
        raise _err("at most 256 lane maps (8-bit map operand)", t)
    a.map_index[name.text] = len(a.maps)
    a.maps.append(np.array(vals, np.int16))


def _d_data(a: Assembler, c: Cursor, env, t: Token) -> None:
    name = c.next()
    if name.kind == "str":
        label = json.loads(name.text)
    else:
        a.check_new_name(name)
        label = name.text
    if any(s.name == label for s in a.segments):
        raise _err(f"data {label!r} is already defined", name)
    dt_tok = c.next()
    if dt_tok.text not in DTYPES:
        raise _err(f"expected a type ({', '.join(DTYPES)}), found {describe(dt_tok)}", dt_tok)
    dt = dt_tok.text
    c.expect("(", "to open the shape, e.g. (16) or (4, 16)")
    shape: list[int] = []
    while not c.at(")"):
        st = c.peek()
        d = a.eval(parse_expr(c), env)
        if not 1 <= d <= 1 << 31:
            raise _err(f"dimension {d} must be at least 1", st)
        shape.append(d)
        if not c.accept(","):
            break
    c.expect(")", "to close the shape")
    lanes = a.chip.lanes
    cap = a.chip.mem_slices * a.chip.mem_words
    if math.prod(shape[:-1] or [1]) * -(-(shape[-1] if shape else 1) // lanes) \
            * DTYPES[dt][1] > cap:
        raise _err(f"{label}: {dt} {tuple(shape)} does not fit in the chip's SRAM", name)
    need = words_for(tuple(shape), dt, lanes)
    at = c.next()
    if at.text != "at":
        raise _err(f"expected `at mem.xN:ADDR`, found {describe(at)}", at)
    places: list[tuple[Token, int, int, int | None]] = []
    while c.peek().kind == "name" and c.peek().text not in ("zeros",):
        qt = c.next()
        q = a.chip.queue_index.get(qt.text)
        if q is None or a.chip.queues[q].unit != "mem":
            raise _err(f"expected a MEM slice like mem.e0 or mem.w3, found {qt.text!r}", qt)
        c.expect(":", "between the slice and the address")
        addr = a.eval(parse_expr(c), env)
        count = None
        if c.accept("["):
            count = a.eval(parse_expr(c), env)
            c.expect("]", "to close the word count")
            if count < 1:
                raise _err(f"word count {count} must be at least 1", qt)
        places.append((qt, a.chip.queues[q].index, addr, count))
        c.accept(",")
    if not places:
        raise _err("expected at least one placement like mem.e0:0", c.peek())
    fixed = sum(p[3] for p in places if p[3] is not None)
    free = [p for p in places if p[3] is None]
    rest = need - fixed
    if rest < 0 or (not free and rest) or (free and rest < len(free)):
        raise _err(f"{label} needs {need} words; the placements give "
                   f"{fixed if not free else str(fixed) + ' plus the rest'}", at)
    runs = []
    k = 0
    for qt, sl, addr, count in places:
        if count is None:
            count = rest // len(free) + (1 if k < rest % len(free) else 0)
            k += 1
        if addr < 0 or addr + count > a.chip.mem_words:
            raise _err(f"words {addr}..{addr + count - 1} are outside the slice "
                       f"(0..{a.chip.mem_words - 1})", qt)
        runs.append((sl, addr, count))
    data = None
    if c.accept("="):
        kind = c.peek()
        if kind.kind == "name" and kind.text == "file":
            c.next()
            arr, ft = _load_npy(a, c)
            if arr.size != math.prod(shape):
                raise _err(f"the file holds {arr.size} values, {dt} {tuple(shape)} needs "
                           f"{math.prod(shape)}", ft)
            if dt in ("i8", "i32") and arr.dtype.kind not in "biu":
                raise _err(f"{dt} data needs an integer array, the file holds {arr.dtype}", ft)
            data = _words(arr.reshape(shape), dt, lanes, ft)
        elif kind.kind == "name" and kind.text == "hex":
            c.next()
            s = _string(c)
            try:
                raw = bytes.fromhex(s)
            except ValueError:
                raise _err("hex data must be pairs of hex digits", kind) from None
            if len(raw) != need * lanes:
                raise _err(f"hex data has {len(raw)} bytes, {need} words of {lanes} lanes "
                           f"need {need * lanes}", kind)
            data = np.frombuffer(raw, np.uint8).reshape(need, lanes).copy()
        else:
            vals = _numbers(a, c, env, floats=dt in FLOAT_DTYPES)
            if len(vals) != math.prod(shape):
                raise _err(f"{len(vals)} values given, {dt} {tuple(shape)} needs "
                           f"{math.prod(shape)}", kind)
            arr = np.array(vals, dtype=np.float64 if dt in FLOAT_DTYPES else np.int64)
            data = _words(arr.reshape(shape), dt, lanes, kind)
    elif c.peek().kind == "name" and c.peek().text == "zeros":
        c.next()
    c.expect_end()
    if name.kind == "name":
        a.data_addr[label] = runs[0][1]
    a.segments.append(Segment(label, dt, tuple(shape), np.array(runs, np.int32).reshape(-1, 3),
                              data))
    a.segment_tok.append(name)


def _words(arr: np.ndarray, dt: str, lanes: int, tok: Token) -> np.ndarray:
    try:
        with np.errstate(all="ignore"):
            return tensor_to_words(arr, dt, lanes)
    except (ValueError, OverflowError) as e:
        raise _err(str(e), tok) from None


_DIRECTIVES = {".chip": _d_chip, ".const": _d_const, ".queue": _d_queue, ".file": _d_file,
               ".loc": _d_loc, ".word": _d_word, ".map": _d_map, ".data": _d_data}


def assemble(text: str, *, filename: str = "<input>", chip: str | None = None,
             base_dir: str | None = None, check: bool = True) -> Program:
    """Assemble source text into a Program.

    chip: preset name from the command line (a `.chip` line must agree); default tsp-v1.
    base_dir: where `file "x.npy"` paths start (default: the source file's folder).
    check: run lpu.isa.validate and report its problems at their source lines.
    Raises AssemblyError (an LpuError) carrying every diagnostic.
    """
    if chip is not None and chip not in CHIPS:
        raise LpuError(f"unknown chip {chip!r}; known: {', '.join(CHIPS)}")
    if base_dir is None:
        base_dir = os.path.dirname(os.path.abspath(filename)) if filename[:1] != "<" else "."
    return Assembler(text, filename, chip, base_dir).assemble(check)


def assemble_file(path: str, *, chip: str | None = None, check: bool = True) -> Program:
    """Read and assemble a file (UTF-8); errors name the file."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise LpuError(f"{path}: cannot read ({e.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise AssemblyError([Diagnostic(str(path), line, col, "the file is not UTF-8 text")]) \
            from None
    return assemble(text, filename=str(path), chip=chip)
