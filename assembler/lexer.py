"""Tokens and integer expressions of the assembly language.

tokenize() splits one physical line into tokens that remember their column; Expr parses and
evaluates `+ - * // % ( )` over integers and names (constants, loop variables, data, labels).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class AsmSyntaxError(Exception):
    """A diagnostic at one column of the current line (caught by the assembler)."""

    def __init__(self, message: str, line: int, col: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.col = col


@dataclass(frozen=True)
class Token:
    kind: str  # name, int, float, str, op, end
    text: str
    line: int
    col: int  # 1-based


_TOKEN = re.compile(r"""
    (?P<ws>[ \t\r\f\v]+)
  | (?P<comment>[;\#].*)
  | (?P<float>\d[\d_]*\.\d*(?:[eE][+-]?\d+)?|\d[\d_]*[eE][+-]?\d+)
  | (?P<int>0[xX][0-9a-fA-F_]+|0[bB][01_]+|\d[\d_]*)
  | (?P<name>[A-Za-z_.][A-Za-z0-9_.]*)
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<op>//|[-+*%(),:=@\[\]])
""", re.VERBOSE)


def tokenize(text: str, line: int) -> list[Token]:
    out: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            ch = text[pos]
            what = repr(ch) if ch.isprintable() else f"U+{ord(ch):04X}"
            raise AsmSyntaxError(f"unexpected character {what}", line, pos + 1)
        kind = m.lastgroup
        if kind == "comment":
            break
        if kind != "ws":
            out.append(Token(kind, m.group(), line, pos + 1))
        pos = m.end()
    out.append(Token("end", "", line, len(text) + 1))
    return out


def int_value(tok: Token) -> int:
    t = tok.text.replace("_", "")
    try:
        if t[:2] in ("0x", "0X"):
            return int(t, 0)
        if t[:2] in ("0b", "0B"):
            return int(t, 0)
        return int(t, 10)
    except ValueError:
        raise AsmSyntaxError(f"bad number {tok.text!r}", tok.line, tok.col) from None


class Cursor:
    """A read position in a token list."""

    def __init__(self, toks: list[Token]) -> None:
        self.toks = toks
        self.i = 0

    def peek(self, k: int = 0) -> Token:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def next(self) -> Token:
        t = self.peek()
        if t.kind != "end":
            self.i += 1
        return t

    def at(self, text: str) -> bool:
        t = self.peek()
        return t.kind == "op" and t.text == text

    def accept(self, text: str) -> bool:
        if self.at(text):
            self.next()
            return True
        return False

    def expect(self, text: str, what: str = "") -> Token:
        t = self.peek()
        if not (t.kind == "op" and t.text == text):
            raise AsmSyntaxError(f"expected {text!r}{' ' + what if what else ''}, found "
                                 f"{describe(t)}", t.line, t.col)
        return self.next()

    def expect_end(self) -> None:
        t = self.peek()
        if t.kind != "end":
            raise AsmSyntaxError(f"unexpected {describe(t)} at the end of the statement",
                                 t.line, t.col)


def describe(t: Token) -> str:
    return "end of line" if t.kind == "end" else repr(t.text)


# ---- expressions: a tiny tree of tuples, evaluated against a name lookup -----------------
# ("num", value, tok) | ("name", text, tok) | ("neg", e, tok) | ("bin", op, l, r, tok)
MAX_INT = 1 << 64


def parse_expr(c: Cursor):
    left = _term(c)
    while c.peek().kind == "op" and c.peek().text in "+-" and c.peek().text:
        op = c.next()
        left = ("bin", op.text, left, _term(c), op)
    return left


def _term(c: Cursor):
    left = _unary(c)
    while c.peek().kind == "op" and c.peek().text in ("*", "//", "%"):
        op = c.next()
        left = ("bin", op.text, left, _unary(c), op)
    return left


def _unary(c: Cursor, depth: int = 0):
    t = c.peek()
    if depth > 100:
        raise AsmSyntaxError("expression nests too deeply", t.line, t.col)
    if c.accept("-"):
        return ("neg", _unary(c, depth + 1), t)
    if c.accept("+"):
        return _unary(c, depth + 1)
    if c.accept("("):
        e = parse_expr(c)
        c.expect(")", "to close the parenthesis")
        return e
    if t.kind == "int":
        c.next()
        return ("num", int_value(t), t)
    if t.kind == "name":
        c.next()
        return ("name", t.text, t)
    if t.kind == "float":
        raise AsmSyntaxError(f"expected an integer, found {t.text!r}", t.line, t.col)
    raise AsmSyntaxError(f"expected a number or a name, found {describe(t)}", t.line, t.col)


def expr_token(e) -> Token:
    return e[-1]


def evaluate(e, lookup) -> int:
    """lookup(name, tok) -> int or raises AsmSyntaxError."""
    kind = e[0]
    if kind == "num":
        v = e[1]
    elif kind == "name":
        v = lookup(e[1], e[2])
    elif kind == "neg":
        v = -evaluate(e[1], lookup)
    else:
        op, tok = e[1], e[4]
        a, b = evaluate(e[2], lookup), evaluate(e[3], lookup)
        if op in ("//", "%") and b == 0:
            raise AsmSyntaxError("division by zero", tok.line, tok.col)
        v = a + b if op == "+" else a - b if op == "-" else a * b if op == "*" else \
            a // b if op == "//" else a % b
    if not -MAX_INT < v < MAX_INT:
        t = expr_token(e)
        raise AsmSyntaxError("value too large (beyond 64 bits)", t.line, t.col)
    return v
