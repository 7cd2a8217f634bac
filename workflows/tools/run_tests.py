"""The test runner of code_fix.yaml: a command tool a ToolRegion runs on each request.

Reads ``{"input": CODE}`` as JSON on stdin (the ToolRegion wraps the Coder's text that way),
runs the code (a Markdown fence around it is dropped) and tests the ``is_leap_year`` it
defines. Prints ``ALL TESTS PASSED`` or ``FAILED`` with what went wrong: either way the tool
worked, so it exits 0 and the report is the reply. The code is the model's: it runs here in the
tool's own process, in the workflow's folder, with only PATH in its environment, and the
tool's timeout stops it (and anything it started).
"""

import json
import re
import sys

CASES = {2024: True, 2023: False, 1900: False, 2000: True, 1996: True, 2100: False}
FENCE = re.compile(r"```(?:python)?\s*\n(.*?)```", re.DOTALL)


def main() -> None:
    text = str(json.load(sys.stdin).get("input", ""))
    fenced = FENCE.search(text)
    code = fenced.group(1) if fenced else text
    namespace: dict[str, object] = {}
    try:
        exec(compile(code, "<the code>", "exec"), namespace)
    except Exception as exc:
        print(f"FAILED: the code does not run: {type(exc).__name__}: {exc}")
        return
    function = namespace.get("is_leap_year")
    if not callable(function):
        print("FAILED: the code defines no function is_leap_year(year)")
        return
    wrong = []
    for year, expected in CASES.items():
        try:
            got = function(year)
        except Exception as exc:
            wrong.append(f"is_leap_year({year}) raised {type(exc).__name__}: {exc}")
            continue
        if got != expected:
            wrong.append(f"is_leap_year({year}) returned {got!r}, expected {expected}")
    if wrong:
        print(f"FAILED {len(wrong)} of {len(CASES)}: " + "; ".join(wrong))
    else:
        print(f"ALL TESTS PASSED ({len(CASES)} of {len(CASES)})")


if __name__ == "__main__":
    main()
