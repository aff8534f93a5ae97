#!/bin/bash
# The iavl tool's contract: output lines, errors naming the line, exit codes, help.
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

"$bin" replay /nonexistent/file 2>/tmp/iavl-err-$$; check "missing file exits 1" 1 $?
grep -q "No such file" /tmp/iavl-err-$$ && echo "ok   missing file: says why" || { echo "FAIL missing file: $(cat /tmp/iavl-err-$$)"; fail=1; }

# The log is checked before anything is done: a directory is refused, also on stdin.
tests=$(dirname "$0")
"$bin" replay "$tests" 2>/tmp/iavl-err-$$; check "a directory as the log exits 1" 1 $?
grep -q "is a directory" /tmp/iavl-err-$$ && echo "ok   a directory as the log: says why" || { echo "FAIL directory: $(cat /tmp/iavl-err-$$)"; fail=1; }
"$bin" replay <"$tests" 2>/dev/null; check "a directory on stdin exits 1" 1 $?

# Output that cannot be written is an error, not a success.
if [ -w /dev/full ]; then
  printf 'set 01 02\ncommit\n' | "$bin" replay >/dev/full 2>/tmp/iavl-err-$$; check "replay to a full disk exits 1" 1 $?
  grep -q "writing the output failed" /tmp/iavl-err-$$ && echo "ok   replay to a full disk: says why" ||
    { echo "FAIL full disk: $(cat /tmp/iavl-err-$$)"; fail=1; }
fi

# Help: `iavl --help` lists every command; each command's help has its options and an example.
help=$("$bin" --help); check "--help exits 0" 0 $?
commands=$(echo "$help" | awk '/^Subcommands:/ {on = 1; next} on && /^  [a-z]/ {print $1}')
check "--help lists replay" replay "$(echo "$commands" | grep -x replay)"
for c in $commands; do
  sub=$("$bin" "$c" --help); check "$c --help exits 0" 0 $?
  echo "$sub" | grep -q "^Usage: .* $c " && echo "$sub" | grep -q "Example: " && echo "ok   $c --help: usage and example" ||
    { echo "FAIL $c --help: no usage line or example"; fail=1; }
done
"$bin" replay --help | grep -q "^  log " && echo "ok   replay --help lists its log argument" ||
  { echo "FAIL replay --help does not list its log argument"; fail=1; }

# Bad usage: exit 2, nothing on stdout, one line on stderr naming the cause.
for args in "" "bogus" "--bogus" "replay a b" "replay --bogus"; do  # split into words on purpose
  "$bin" $args </dev/null >/tmp/iavl-out-$$ 2>/tmp/iavl-err-$$; status=$?
  check "'iavl $args' exits 2" 2 "$status"
  check "'iavl $args' prints nothing on stdout" 0 "$(wc -c </tmp/iavl-out-$$)"
  check "'iavl $args' prints one line on stderr" 1 "$(wc -l </tmp/iavl-err-$$)"
done
grep -q "bogus" /tmp/iavl-err-$$ && echo "ok   the error names the bad option" || { echo "FAIL error: $(cat /tmp/iavl-err-$$)"; fail=1; }

# A given --version, --to or --keep-recent must be from 1 to 2^63 - 1 (an omitted --version is
# the latest), and --store mem keeps the tree away from --db: bad usage, found before any
# database is opened or created.
nodb=/tmp/iavl-nodb-$$
for args in "get --db $nodb --version 0 01" "get --db $nodb --version -5 01" "prove --db $nodb --version 0 01" \
  "verify --db $nodb --version 99999999999999999999" "export --db $nodb --version 1x -" \
  "rollback --db $nodb --to 0" "prune --db $nodb --keep-recent 0" "replay --store mem --db $nodb"; do
  "$bin" $args </dev/null >/tmp/iavl-out-$$ 2>/tmp/iavl-err-$$; status=$?
  check "'iavl $args' exits 2" 2 "$status"
  check "'iavl $args' prints nothing on stdout" 0 "$(wc -c </tmp/iavl-out-$$)"
  check "'iavl $args' prints one line on stderr" 1 "$(wc -l </tmp/iavl-err-$$)"
done
grep -q -- "--store mem" /tmp/iavl-err-$$ && echo "ok   the error names --store mem" || { echo "FAIL error: $(cat /tmp/iavl-err-$$)"; fail=1; }
test ! -e "$nodb" && echo "ok   no database created" || { echo "FAIL $nodb created"; fail=1; rm -rf "$nodb"; }
check "--keep-recent 0: says why" "iavl: --keep-recent: must be at least 1 (see 'iavl --help')" \
  "$("$bin" prune --db "$nodb" --keep-recent 0 2>&1)"
rm -f /tmp/iavl-err-$$ /tmp/iavl-out-$$
exit $fail
