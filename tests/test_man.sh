#!/bin/sh
# The manual page doc/kvz.1 against the tool it describes: every command `kvz --help` lists has a
# synopsis, every synopsis names a command the tool takes, every option a command's --help names
# appears in the page, and the page renders without warnings (where man is installed).
set -u
. "$(dirname "$0")/testlib.sh"
KVZ=${KVZ_BIN:-./kvz}
RUNNER=${KVZ_RUNNER:-} # e.g. qemu-aarch64 for a cross build
PAGE=$(cd "$(dirname "$0")/.." && pwd)/doc/kvz.1

# the commands of kvz --help: the first column of its command list (up to a run of two spaces),
# the leading lower-case words of it ("bench kernels [--json]" is "bench kernels")
kvz --help | sed -n '/^commands:/,/^$/p' | grep '^  [a-z]' | sed 's/^  //; s/   *.*//' |
    awk '{n = ""; for (i = 1; i <= NF && $i ~ /^[a-z]+$/; i++) n = n (n ? " " : "") $i; print n}' |
    sort -u > "$tmp/commands"
check "kvz --help lists commands" "$([ "$(wc -l < "$tmp/commands")" -ge 10 ] && echo yes)" yes
# the page's synopses: .SY "kvz CMD"
sed -n '/^\.SH SYNOPSIS/,/^\.SH [A-Z]/p' "$PAGE" | sed -n 's/^\.SY "\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' |
    sort -u > "$tmp/synopses"
while read -r c; do
    check "the synopsis has kvz $c" "$(grep -cx "kvz $c" "$tmp/synopses")" 1
done < "$tmp/commands"
# and names only commands the tool takes: each one's --help exits 0
while read -r s; do
    # shellcheck disable=SC2086
    [ "$s" = kvz ] || { kvz ${s#kvz } --help > /dev/null 2>&1; check "$s --help, a synopsis of the page, exits 0" "$?" 0; }
done < "$tmp/synopses"

# every option of every command's --help is in the page (written \-\-name in roff)
sed 's/\\-/-/g' "$PAGE" > "$tmp/page"
for c in "" demo "demo --stories" generate compress ask eval tokenize info "bench kernels" "bench payoff"; do
    # shellcheck disable=SC2086
    kvz $c --help 2> /dev/null | grep -o -- '--[a-z][a-z0-9-]*' | sort -u > "$tmp/options"
    missing=$(while read -r o; do grep -q -- "$o\\b" "$tmp/page" || printf ' %s' "$o"; done < "$tmp/options")
    check "the options of kvz${c:+ $c} --help are in the page" "${missing:-none missing}" "none missing"
done

# rendering: man(1) with groff; without them, the checks above still ran
if command -v man > /dev/null 2>&1 && command -v groff > /dev/null 2>&1; then
    warnings=$(man --warnings -E UTF-8 -l "$PAGE" 2>&1 > /dev/null)
    check "man renders the page without warnings" "${warnings:-none}" none
    check "the rendered page has its sections" \
        "$(MANWIDTH=80 man -E UTF-8 -l "$PAGE" 2> /dev/null | grep -c '^\(NAME\|SYNOPSIS\|DESCRIPTION\|OPTIONS\|ENVIRONMENT\|EXIT STATUS\|FILES\|EXAMPLES\|SEE ALSO\)$')" 9
else
    echo "skip: rendering the page: man or groff is absent (the listing checks ran)"
fi

finish
