#!/bin/sh
# Measures one Go benchmark at several commits side by side, interleaved
# round by round (A B C … A B C …), so that a shared, noisy machine's
# drift falls on every commit alike:
#
#	scripts/ab.sh PACKAGE BENCHMARK ROUNDS REV...
#	scripts/ab.sh ./cmd/securetextd 'ConversationPage/page$' 3 0955866 HEAD
#
# Each commit is checked out in a temporary worktree and its test binary
# built once; every round runs each binary for 3 s with -benchmem, from
# its package's directory. The output is go test's lines, each prefixed
# with its commit and round; BENCHMARKS.md's "Changes" section quotes the
# medians.
set -eu

pkg=$1 bench=$2 rounds=$3
shift 3
top=$(git rev-parse --show-toplevel)
work=$(mktemp -d)
trap 'for w in "$work"/wt-*; do git -C "$top" worktree remove --force "$w" 2>/dev/null || true; done; rm -rf "$work"' EXIT

revs=""
for r in "$@"; do
	short=$(git -C "$top" rev-parse --short "$r")
	git -C "$top" worktree add -q --detach "$work/wt-$short" "$short"
	(cd "$work/wt-$short" && go test -c -o "$work/bench-$short" "$pkg")
	revs="$revs $short"
done

round=1
while [ "$round" -le "$rounds" ]; do
	for r in $revs; do
		(cd "$work/wt-$r/$pkg" && "$work/bench-$r" -test.run '^$' -test.bench "$bench" -test.benchtime 3s -test.benchmem) |
			grep '^Benchmark' | sed "s/^/$r round $round: /"
	done
	round=$((round + 1))
done
