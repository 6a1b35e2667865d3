"""The mutation score per module, from `mutmut results --all true` on stdin (`make mutate` pipes it here).

Score = (killed + timeout) / mutants that were run or had no test at all: a mutant no test reaches counts as a
survivor. Mutants not checked yet (an interrupted run) are listed apart and left out of the score.
"""

import re
import sys
from collections import Counter, defaultdict

CAUGHT = ("killed", "timeout")
NOT_RUN = ("not checked", "skipped")


def main() -> int:
    by_module: dict[str, Counter] = defaultdict(Counter)
    for line in sys.stdin:
        match = re.match(r"\s*([\w.]+?)\.x[_ǁ].*__mutmut_\d+: (.+)$", line.rstrip())
        if match:
            by_module[match.group(1)][match.group(2).strip()] += 1
    if not by_module:
        print("no mutants in the input (run `mutmut run` first)")
        return 1
    total = Counter()
    print(f"{'module':32} {'score':>7} {'killed':>7} {'survived':>9} {'no tests':>9} {'not run':>8}")
    for module, counts in sorted(by_module.items()):
        total += counts
        print(row(module, counts))
    print(row("all", total))
    return 0


def row(name: str, counts: Counter) -> str:
    caught = sum(counts[s] for s in CAUGHT)
    not_run = sum(counts[s] for s in NOT_RUN)
    scored = sum(counts.values()) - not_run
    score = f"{100 * caught / scored:.1f}%" if scored else "-"
    survived = scored - caught - counts["no tests"]
    return f"{name:32} {score:>7} {caught:>7} {survived:>9} {counts['no tests']:>9} {not_run:>8}"


if __name__ == "__main__":
    raise SystemExit(main())
