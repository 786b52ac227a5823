#!/bin/sh
# Makes sure the programs that `make test` uses are installed. As root it
# installs missing Debian packages with apt-get; otherwise it names them and
# fails, so that no test silently skips for want of a tool.
set -eu

# command:package pairs the test suite needs: curl runs the README's first
# message, python3's smtplib is a client that parses addresses as mail
# programs do and its mailbox reads an exported mbox (hold_test.go), gcc
# builds SQLite, chromium drives the portal's browser tests, postfix relays
# signed mail (signed by python3-dkim's dkimsign) to us, and its smtp-sink
# receives the notices to email recipients, whose signatures python3-dkim
# checks (it brings python3-dnspython, asked of a loopback DNS server), nginx is the
# reverse proxy in front of the portal, and with its stream module (a file,
# not a command) in front of the README's cluster; postgresql is the second
# store engine (initdb and postgres in /usr/lib/postgresql/VERSION/bin, off
# PATH: a command may be a glob); clamd scans for malware
# (internal/clamdtest runs it privately, with a signature database the tests
# write: no freshclam, no network); npm fetches axe-core (below); patch
# applies docs/go-smtp-*.patch to go-smtp as released, to prove
# third_party/go-smtp is that and nothing else (third_party/fork_test.go).
needs="npm:npm curl:curl /usr/bin/python3:python3 gcc:gcc chromium:chromium /usr/sbin/postfix:postfix /usr/bin/dkimsign:python3-dkim /usr/sbin/smtp-sink:postfix /usr/sbin/nginx:nginx /usr/lib/nginx/modules/ngx_stream_module.so:libnginx-mod-stream /usr/lib/postgresql/*/bin/initdb:postgresql /usr/sbin/clamd:clamav-daemon patch:patch"

# axe-core, the accessibility engine the console's browser test runs in
# each page (WCAG 2.2 A and AA), from the npm registry into .cache/npm of
# the repository, where the test looks for it (SECURETEXTD_AXE overrides).
axe_version=4.14.1
axe_dir="$(cd "$(dirname "$0")/.." && pwd)/.cache/npm"
install_axe() {
	[ -f "$axe_dir/node_modules/axe-core/axe.min.js" ] &&
		grep -q "\"version\": \"$axe_version\"" "$axe_dir/node_modules/axe-core/package.json" && return 0
	echo "test-deps: installing axe-core $axe_version into $axe_dir"
	mkdir -p "$axe_dir"
	npm install --silent --no-save --no-audit --no-fund --prefix "$axe_dir" "axe-core@$axe_version" >/dev/null
}

missing=""
for pair in $needs; do
	cmd=${pair%%:*}
	pkg=${pair#*:}
	found=""
	case $cmd in
	*'*'*) for f in $cmd; do [ -x "$f" ] && found=1; done ;;
	/*) [ -e "$cmd" ] && found=1 ;;
	*) command -v "$cmd" >/dev/null 2>&1 && found=1 ;;
	esac
	[ -n "$found" ] || missing="$missing $pkg"
done
if [ -z "$missing" ]; then
	install_axe
	exit 0
fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "test-deps: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	# postfix asks what kind of mail server to be: none (the relay tests
	# run their own private instance).
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	apt-get update -q >/dev/null
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing >/dev/null
	install_axe
	exit 0
fi
echo "test-deps: the tests need these Debian packages:$missing" >&2
echo "test-deps: install them (sudo apt-get install$missing) and run make test again" >&2
exit 1
