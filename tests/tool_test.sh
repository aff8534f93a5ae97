#!/bin/bash
# The iavl tool's contract: output lines, errors naming the line, exit codes.
set -u
bin=${1:?usage: tool_test.sh path/to/iavl}
fail=0
check() {  # check NAME EXPECTED ACTUAL
  if [ "$2" != "$3" ]; then echo "FAIL $1: expected [$2] got [$3]"; fail=1; else echo "ok   $1"; fi
}

out=$(printf '# comment\n\nset 01 ff\nset - -\ncommit\nremove 01\ncommit\n' | "$bin" replay)
lines=$(echo "$out" | wc -l)
check "one line per commit" 2 "$lines"
check "sizes" "2 1" "$(echo "$out" | awk '{print $3}' | paste -sd' ')"

out=$(printf 'set 01 ff\ncommit\nset zz 00\ncommit\n' | "$bin" replay 2>/tmp/iavl-err-$$); status=$?
check "malformed line exits 1" 1 "$status"
check "commits before the error are printed" 1 "$(echo "$out" | wc -l)"
grep -q "line 3" /tmp/iavl-err-$$ && echo "ok   error names line 3" || { echo "FAIL error: $(cat /tmp/iavl-err-$$)"; fail=1; }

printf 'set 01 ff\nbogus\ncommit\n' | "$bin" replay >/tmp/iavl-out-$$ 2>&1; status=$?
check "unknown op exits 1" 1 "$status"
grep -q "commit" /tmp/iavl-out-$$ && grep -q "^1 " /tmp/iavl-out-$$ && { echo "FAIL applied after error"; fail=1; } || echo "ok   nothing after the error"

"$bin" replay /nonexistent/file 2>/dev/null; check "missing file exits 1" 1 $?
rm -f /tmp/iavl-err-$$ /tmp/iavl-out-$$
exit $fail
