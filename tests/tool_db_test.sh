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
out=$("$bin" get --db "$db" --version -5 02 2>/dev/null); check "get --version -5 is bad usage, not the latest" "2 []" "$? [$out]"
check "verify" "ok 3" "$("$bin" verify --db "$db" | cut -d' ' -f1-2)"
check "prune keeps the last 2" "versions: 2-3" "$("$bin" prune --db "$db" --keep-recent 2)"
"$bin" verify --db "$db" --version 1 >/dev/null 2>&1; check "a pruned version is gone" 1 $?
check "rollback" "2" "$("$bin" rollback --db "$db" --to 2 | cut -d' ' -f1)"
check "after rollback" "versions: 2" "$("$bin" info --db "$db" | tail -n 1)"
if [ -w /dev/full ]; then  # output that cannot be written is an error
  "$bin" info --db "$db" >/dev/full 2>"$dir/err"; check "info to a full disk exits 1" 1 $?
  grep -q "writing the output failed \[io_error\]" "$dir/err" && echo "ok   info to a full disk: says why" ||
    { echo "FAIL: $(cat "$dir/err")"; fail=1; }
  "$bin" get --db "$db" 02 >/dev/full 2>/dev/null; check "get to a full disk exits 1" 1 $?
fi
"$bin" replay --db "$dir/from-dir" "$dir" 2>/dev/null; check "replay of a directory exits 1" 1 $?
test ! -e "$dir/from-dir" && echo "ok   replay of a directory creates no database" || { echo "FAIL $dir/from-dir created"; fail=1; }

# State sync: export a database, import it into a new one, the same latest line.
src=$dir/sync-src
printf 'set 01 ff\nset 02 -\nset 03 aa\ncommit\nremove 02\nset 04 bb\ncommit\nset 05 cc\ncommit\n' |
  "$bin" replay --db "$src" >/dev/null
check "export prints the exported version" "$("$bin" info --db "$src" | head -n 1)" \
  "$("$bin" export --db "$src" "$dir/latest.sync" 2>"$dir/export.err")"
check "export is quiet when piped" "" "$(cat "$dir/export.err")"
check "import prints the imported version" "$("$bin" info --db "$src" | head -n 1)" \
  "$("$bin" import --db "$dir/sync-dst" "$dir/latest.sync" 2>"$dir/import.err")"
check "import is quiet when piped" "" "$(cat "$dir/import.err")"
check "imported database: same info line" "$("$bin" info --db "$src" | head -n 1)" "$("$bin" info --db "$dir/sync-dst" | head -n 1)"
check "imported database: one version" "versions: 3" "$("$bin" info --db "$dir/sync-dst" | tail -n 1)"
check "imported database verifies" "ok 3" "$("$bin" verify --db "$dir/sync-dst" | cut -d' ' -f1-2)"
check "imported database continues" "4" "$(printf 'set 06 dd\ncommit\n' | "$bin" replay --db "$dir/sync-dst" | cut -d' ' -f1)"
"$bin" export --db "$src" --version 2 - | "$bin" import --db "$dir/sync-v2" - >/dev/null
check "an older version through a pipe" "$("$bin" verify --db "$src" --version 2)" "$("$bin" verify --db "$dir/sync-v2")"
root2=$("$bin" info --db "$dir/sync-v2" | head -n 1 | cut -d' ' -f2)
"$bin" import --db "$dir/sync-checked" --root-hash "$root2" "$dir/latest.sync" >/dev/null 2>"$dir/err"; status=$?
check "import with another --root-hash exits 1" 1 $status
grep -q "expected" "$dir/err" && echo "ok   import with another --root-hash says why" || { echo "FAIL: $(cat "$dir/err")"; fail=1; }
test ! -e "$dir/sync-checked" && echo "ok   a failed import removes the database it created" ||
  { echo "FAIL a failed import left $dir/sync-checked"; fail=1; }
before=$("$bin" info --db "$src")
err=$("$bin" import --db "$src" "$dir/latest.sync" 2>&1 >/dev/null); status=$?
check "import into a database with versions exits 1" 1 $status
case "$err" in *invalid_argument*) echo "ok   import into a database with versions: invalid_argument" ;; *) echo "FAIL: $err"; fail=1 ;; esac
check "import into a database with versions leaves it as it was" "$before" "$("$bin" info --db "$src")"
head -c 100 "$dir/latest.sync" >"$dir/truncated.sync"
err=$("$bin" import --db "$dir/sync-truncated" "$dir/truncated.sync" 2>&1 >/dev/null); status=$?
check "import of a truncated stream exits 1" 1 $status
case "$err" in *truncated*corruption*) echo "ok   truncated stream: corruption" ;; *) echo "FAIL: $err"; fail=1 ;; esac
mkdir "$dir/empty-dir"  # a failed import leaves the filesystem as it was
"$bin" import --db "$dir/empty-dir" "$dir/truncated.sync" 2>/dev/null; check "import into an empty directory fails" 1 $?
check "a failed import leaves the directory empty" "" "$(ls -A "$dir/empty-dir")"
"$bin" import --db "$dir/new/sub/deep" "$dir/truncated.sync" 2>/dev/null; check "import into new directories fails" 1 $?
test ! -e "$dir/new" && echo "ok   a failed import removes the directories it created" ||
  { echo "FAIL a failed import left $(find "$dir/new")"; fail=1; }
if [ -w /dev/full ]; then  # a failed export removes only a file it created
  ln -s /dev/full "$dir/full-link"
  "$bin" export --db "$src" "$dir/full-link" >/dev/null 2>&1; check "export to a full disk exits 1" 1 $?
  test -L "$dir/full-link" && echo "ok   a failed export keeps the link it was given" || { echo "FAIL the link is gone"; fail=1; }
fi
if command -v script >/dev/null; then  # on a terminal, progress goes to stderr
  script -qec "'$bin' export --db '$src' '$dir/tty.sync' >/dev/null" /dev/null | grep -q "nodes exported 7/7" &&
    echo "ok   export shows progress on a terminal" || { echo "FAIL export shows no progress on a terminal"; fail=1; }
fi

# Proofs: a present and an absent key, checked against the root hash of `iavl info`.
root=$("$bin" info --db "$src" | head -n 1 | cut -d' ' -f2)
read -r kind proof <<<"$("$bin" prove --db "$src" 03)"
check "prove a present key" "membership" "$kind"
check "verify-proof of membership" "ok" "$("$bin" verify-proof "$root" "$proof" 03 aa)"
"$bin" verify-proof "$root" "$proof" 03 ab >/dev/null 2>"$dir/err"; check "a membership proof of another value exits 1" 1 $?
test -s "$dir/err" && echo "ok   the rejection says why: $(cat "$dir/err")" || { echo "FAIL no reason given"; fail=1; }
tampered=${proof:0:40}$(printf '%x' $(((0x${proof:40:1} + 1) % 16)))${proof:41}
"$bin" verify-proof "$root" "$tampered" 03 aa >/dev/null 2>&1; check "a tampered proof exits 1" 1 $?
read -r kind absent <<<"$("$bin" prove --db "$src" 02)"
check "prove an absent key" "non-membership" "$kind"
check "verify-proof of non-membership" "ok" "$("$bin" verify-proof "$root" "$absent" 02)"
"$bin" verify-proof "$root" "$absent" 03 >/dev/null 2>&1; check "a non-membership proof of another key exits 1" 1 $?
"$bin" verify-proof "$root" "$absent" 02 "" >/dev/null 2>&1; check "an empty VALUE is no claim of non-membership" 1 $?
"$bin" verify-proof "$root2" "$absent" 02 >/dev/null 2>&1; check "a proof against another root exits 1" 1 $?
read -r kind old <<<"$("$bin" prove --db "$src" --version 1 02)"
check "prove at an older version" "membership" "$kind"
printf 'commit\n' | "$bin" replay --db "$dir/empty-tree" >/dev/null
out=$("$bin" prove --db "$dir/empty-tree" 01 2>/dev/null); check "a failed proof: exit 1, nothing on stdout" "1 []" "$? [$out]"

# Errors: one line on stderr naming the cause, exit status 1.
err=$("$bin" info --db "$dir/missing" 2>&1 >/dev/null); status=$?
check "missing database exits 1" 1 $status
case "$err" in *not_a_database*) echo "ok   missing database is not_a_database" ;; *) echo "FAIL: $err"; fail=1 ;; esac
echo hello >"$dir/file"
err=$("$bin" info --db "$dir/file" 2>&1 >/dev/null)
case "$err" in *not_a_database*) echo "ok   a file is not_a_database" ;; *) echo "FAIL: $err"; fail=1 ;; esac
# An empty --db is refused, not taken for no database (a replay into memory, an empty tree).
for cmd in "replay" "info" "get 01"; do
  out=$(printf 'set 01 ff\ncommit\n' | "$bin" $cmd --db '' 2>"$dir/err"); status=$?
  check "$cmd --db '' is bad usage" "2 []" "$status [$out]"
  grep -q -- "--db: is empty" "$dir/err" && echo "ok   $cmd --db '': says why" || { echo "FAIL: $(cat "$dir/err")"; fail=1; }
done
exit $fail
