#!/bin/bash
# The iavl tool on databases: one process writes, others read back the same hashes.
set -u
bin=${1:?usage: tool_db_test.sh path/to/iavl}
vectors=$(cd "$(dirname "$0")/vectors" && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail=0
check() {  # check NAME EXPECTED ACTUAL
  if [ "$2" != "$3" ]; then echo "FAIL $1: expected [$2] got [$3]"; fail=1; else echo "ok   $1"; fi
}

# Every known-answer case replayed into LevelDB gives cosmos/iavl's hashes; a second process
# reads the latest one back.
for ops in "$vectors"/*.ops; do
  name=$(basename "${ops%.ops}")
  got=$("$bin" replay --db "$dir/$name" "$ops")
  check "$name replayed into leveldb" "$(cat "${ops%.ops}.expected")" "$got"
  check "$name read back by another process" "$(tail -n 1 "${ops%.ops}.expected")" "$("$bin" info --db "$dir/$name" | head -n 1)"
  "$bin" verify --db "$dir/$name" >/dev/null || { echo "FAIL $name verify"; fail=1; }
done

# Replay continues from the latest version; get, verify, prune and rollback.
db=$dir/state
printf 'set 01 ff\nset 02 -\ncommit\nset 03 aa\ncommit\n' | "$bin" replay --db "$db" >/dev/null
check "continues from the latest version" "3" "$(printf 'remove 01\ncommit\n' | "$bin" replay --db "$db" | cut -d' ' -f1)"
check "info lists kept versions" "versions: 1-3" "$("$bin" info --db "$db" | tail -n 1)"
check "get of an empty value" "-" "$("$bin" get --db "$db" 02)"
check "get at an older version" "ff" "$("$bin" get --db "$db" --version 1 01)"
"$bin" get --db "$db" 01 >/dev/null 2>&1; check "get of an absent key exits 1" 1 $?
check "verify" "ok 3" "$("$bin" verify --db "$db" | cut -d' ' -f1-2)"
check "prune keeps the last 2" "versions: 2-3" "$("$bin" prune --db "$db" --keep-recent 2)"
"$bin" verify --db "$db" --version 1 >/dev/null 2>&1; check "a pruned version is gone" 1 $?
check "rollback" "2" "$("$bin" rollback --db "$db" --to 2 | cut -d' ' -f1)"
check "after rollback" "versions: 2" "$("$bin" info --db "$db" | tail -n 1)"

# Errors: one line on stderr naming the cause, exit status 1.
err=$("$bin" info --db "$dir/missing" 2>&1 >/dev/null); status=$?
check "missing database exits 1" 1 $status
case "$err" in *not_a_database*) echo "ok   missing database is not_a_database" ;; *) echo "FAIL: $err"; fail=1 ;; esac
echo hello >"$dir/file"
err=$("$bin" info --db "$dir/file" 2>&1 >/dev/null)
case "$err" in *not_a_database*) echo "ok   a file is not_a_database" ;; *) echo "FAIL: $err"; fail=1 ;; esac
exit $fail
