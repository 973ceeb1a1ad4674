"""A hand-written recursive-descent parser for the filter language.

Grammar (keywords are case-insensitive):

    filter     := [or_expr] EOF
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | primary
    primary    := "(" or_expr ")" | call | name [predicate]
    predicate  := op literal
                | ["not"] "in" "(" literal ("," literal)* ")"
                | ["not"] "like" string
                | "is" ["not"] "null"
    call       := identifier "(" [literal ("," literal)*] ")"
    name       := identifier ("." identifier)*
    op         := "=" | "!=" | "<>" | "<" | "<=" | ">" | ">="
    literal    := string | number | "true" | "false"

Strings are quoted with ' or " (a doubled quote inside stands for itself).
Every error is a FilterError carrying the 1-based column where it happened.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from csm.filters import ast as syntax
from csm.filters.errors import FilterError

MAX_LENGTH = 4000
MAX_DEPTH = 50
KEYWORDS = frozenset({"and", "or", "not", "in", "like", "is", "null", "true", "false"})
OPERATORS = ("<=", ">=", "!=", "<>", "=", "<", ">")


@dataclass(frozen=True)
class Token:
    kind: str  # ident | keyword | string | number | op | punct | end
    text: str
    value: object
    column: int


DIGITS = frozenset("0123456789")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        char = text[i]
        column = i + 1
        if char.isspace():
            i += 1
        elif char in "'\"":
            i, value = _read_string(text, i)
            tokens.append(Token("string", text[column - 1 : i], value, column))
        elif char in DIGITS or (char == "-" and i + 1 < len(text) and text[i + 1] in DIGITS):
            match = _NUMBER.match(text, i)
            assert match is not None
            literal = match.group(0)
            following = text[match.end() : match.end() + 1]
            if following and (following.isalnum() or following == "_"):
                raise FilterError(f"malformed number '{literal}{following}'", column)
            value = float(literal) if "." in literal else int(literal)
            tokens.append(Token("number", literal, value, column))
            i = match.end()
        elif char.isascii() and (char.isalpha() or char == "_"):
            match = _IDENT.match(text, i)
            assert match is not None
            word = match.group(0)
            kind = "keyword" if word.lower() in KEYWORDS else "ident"
            tokens.append(Token(kind, word, word.lower() if kind == "keyword" else word, column))
            i = match.end()
        elif any(text.startswith(op, i) for op in OPERATORS):
            op = next(op for op in OPERATORS if text.startswith(op, i))
            tokens.append(Token("op", op, "!=" if op == "<>" else op, column))
            i += len(op)
        elif char in "(),.":
            tokens.append(Token("punct", char, char, column))
            i += 1
        else:
            raise FilterError(f"unexpected character {char!r}", column)
    tokens.append(Token("end", "", None, len(text) + 1))
    return tokens


def _read_string(text: str, start: int) -> tuple[int, str]:
    quote = text[start]
    i = start + 1
    parts: list[str] = []
    while i < len(text):
        if text[i] == quote:
            if i + 1 < len(text) and text[i + 1] == quote:
                parts.append(quote)
                i += 2
                continue
            return i + 1, "".join(parts)
        parts.append(text[i])
        i += 1
    raise FilterError("unterminated string", start + 1, f"close it with {quote}")


class _Parser:
    def __init__(self, text: str):
        self.tokens = tokenize(text)
        self.position = 0
        self.depth = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.position]

    def advance(self) -> Token:
        token = self.current
        self.position += 1
        return token

    def at_keyword(self, *words: str) -> bool:
        return self.current.kind == "keyword" and self.current.value in words

    def at_punct(self, char: str) -> bool:
        return self.current.kind == "punct" and self.current.value == char

    def expect_punct(self, char: str, context: str) -> None:
        if not self.at_punct(char):
            raise FilterError(
                f"expected '{char}' {context}, found {_describe(self.current)}", self.current.column
            )
        self.advance()

    def parse(self) -> syntax.Node:
        if self.current.kind == "end":
            return syntax.Everyone()
        node = self.or_expr()
        if self.current.kind != "end":
            raise FilterError(
                f"unexpected {_describe(self.current)}",
                self.current.column,
                "expected 'and', 'or' or the end of the filter",
            )
        return node

    def or_expr(self) -> syntax.Node:
        items = [self.and_expr()]
        while self.at_keyword("or"):
            self.advance()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else syntax.Or(tuple(items))

    def and_expr(self) -> syntax.Node:
        items = [self.not_expr()]
        while self.at_keyword("and"):
            self.advance()
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else syntax.And(tuple(items))

    def not_expr(self) -> syntax.Node:
        if self.at_keyword("not"):
            self.advance()
            self._enter()
            try:
                return syntax.Not(self.not_expr())
            finally:
                self.depth -= 1
        return self.primary()

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FilterError(f"filter nested deeper than {MAX_DEPTH} levels", self.current.column)

    def primary(self) -> syntax.Node:
        token = self.current
        if self.at_punct("("):
            self.advance()
            self._enter()
            try:
                node = self.or_expr()
            finally:
                self.depth -= 1
            self.expect_punct(")", "to close the parenthesis")
            return node
        if token.kind != "ident":
            raise FilterError(f"expected a field, found {_describe(token)}", token.column)
        self.advance()
        if self.at_punct("("):
            return syntax.Truth(self.call(token))
        parts = [token.text]
        while self.at_punct("."):
            self.advance()
            part = self.current
            if part.kind not in ("ident", "keyword"):
                raise FilterError(
                    f"expected a name after '.', found {_describe(part)}", part.column
                )
            parts.append(part.text)
            self.advance()
        return self.predicate(syntax.Name(tuple(parts), token.column))

    def call(self, name: Token) -> syntax.Call:
        self.advance()  # (
        args: list[syntax.Literal] = []
        if not self.at_punct(")"):
            args.append(self.literal())
            while self.at_punct(","):
                self.advance()
                args.append(self.literal())
        self.expect_punct(")", f"to close {name.text}(")
        return syntax.Call(name.text, tuple(args), name.column)

    def predicate(self, name: syntax.Name) -> syntax.Node:
        token = self.current
        if token.kind == "op":
            self.advance()
            return syntax.Compare(name, str(token.value), self.literal())
        negated = False
        if self.at_keyword("not"):
            self.advance()
            negated = True
            if not self.at_keyword("in", "like"):
                raise FilterError(
                    f"expected 'in' or 'like' after 'not', found {_describe(self.current)}",
                    self.current.column,
                )
        if self.at_keyword("in"):
            self.advance()
            self.expect_punct("(", "after 'in'")
            values = [self.literal()]
            while self.at_punct(","):
                self.advance()
                values.append(self.literal())
            self.expect_punct(")", "to close the 'in' list")
            return syntax.InList(name, tuple(values), negated)
        if self.at_keyword("like"):
            self.advance()
            pattern = self.literal()
            if not isinstance(pattern.value, str):
                raise FilterError("'like' needs a quoted pattern", pattern.column)
            return syntax.Like(name, pattern, negated)
        if self.at_keyword("is"):
            self.advance()
            is_not = False
            if self.at_keyword("not"):
                self.advance()
                is_not = True
            if not self.at_keyword("null"):
                raise FilterError(
                    f"expected 'null' after 'is', found {_describe(self.current)}",
                    self.current.column,
                )
            self.advance()
            return syntax.IsNull(name, is_not)
        return syntax.Truth(name)

    def literal(self) -> syntax.Literal:
        token = self.current
        if token.kind in ("string", "number"):
            self.advance()
            return syntax.Literal(token.value, token.column)  # type: ignore[arg-type]
        if self.at_keyword("true", "false"):
            self.advance()
            return syntax.Literal(token.value == "true", token.column)
        if self.at_keyword("null"):
            raise FilterError("null is not a value here", token.column, "write 'is null'")
        hint = "quote text values: 'like this'" if token.kind == "ident" else None
        raise FilterError(f"expected a value, found {_describe(token)}", token.column, hint)


def _describe(token: Token) -> str:
    if token.kind == "end":
        return "the end of the filter"
    if token.kind == "string":
        return "a string"
    return f"'{token.text}'"


def parse_filter(text: str) -> syntax.Node:
    """Parse filter text into its syntax tree. Raises FilterError; never anything else."""
    if not isinstance(text, str):
        raise FilterError("a filter must be text", 1)
    if len(text) > MAX_LENGTH:
        raise FilterError(f"filter longer than {MAX_LENGTH} characters", MAX_LENGTH + 1)
    if "\x00" in text:
        raise FilterError("the NUL character is not allowed", text.index("\x00") + 1)
    try:
        return _Parser(text).parse()
    except RecursionError:
        raise FilterError("filter nested too deeply", 1) from None
