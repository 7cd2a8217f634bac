"""The calculator of calculator.yaml: a command tool.

Reads its arguments as JSON on stdin, ``{"expression": "17 * 23 + 4"}``, and prints the value.
Only numbers, + - * / // % ** and parentheses are allowed (the expression is parsed, never
``eval``-ed); anything else exits with status 1 and says why on stderr, which the model reads
as an error result.
"""

import ast
import json
import operator
import sys

OPERATORS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def value(node: ast.AST) -> float:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in OPERATORS:
        if isinstance(node.op, ast.Pow) and abs(value(node.right)) > 100:
            raise ValueError("exponent too large")
        return OPERATORS[type(node.op)](value(node.left), value(node.right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in OPERATORS:
        return OPERATORS[type(node.op)](value(node.operand))
    raise ValueError(f"not allowed in an expression: {ast.unparse(node)}")


def main() -> None:
    expression = str(json.load(sys.stdin)["expression"])
    try:
        result = value(ast.parse(expression, mode="eval").body)
    except (SyntaxError, ValueError, ZeroDivisionError, OverflowError) as exc:
        sys.exit(f"cannot calculate {expression!r}: {exc}")
    print(int(result) if isinstance(result, float) and result.is_integer() else result)


if __name__ == "__main__":
    main()
