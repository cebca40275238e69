#!/bin/sh
# Install or uninstall Weft on this host: `make install` / `make uninstall`
# call this with the directories below (docs/deploy-hosts.md). Everything
# is written under $DESTDIR. Install records what it wrote in $MANIFEST:
# binaries, units and the directories it created, and the configuration
# files it created (an existing one is kept unless FORCE=1). Uninstall
# removes exactly those, a configuration file only while it is unchanged,
# and the directories it created once they are empty.
set -eu

: "${DESTDIR=}" "${FORCE=}"
: "${SRC:?}" "${BIN:?}" "${BINDIR:?}" "${CNI_BIN_DIR:?}" "${CNI_CONF_DIR:?}" "${UNIT_DIR:?}" "${CONF_DIR:?}" "${DATA_DIR:?}"
MANIFEST="$DESTDIR$DATA_DIR/install-manifest"
list=""

# record KIND [SHA] PATH: PATH is recorded without $DESTDIR.
record() {
	case $# in
	2) line="$1 ${2#"$DESTDIR"}" ;;
	3) line="$1 $2 ${3#"$DESTDIR"}" ;;
	esac
	list="$list$line
"
}

# mkdirs creates $1 and its missing parents, recording each, outermost first.
mkdirs() {
	d=$1 missing=""
	while [ ! -d "$d" ]; do missing="$d $missing"; d=$(dirname "$d"); done
	for m in $missing; do
		mkdir "$m"
		[ "$m" = "$DESTDIR" ] || record dir "$m"
	done
}

# put SRC DEST MODE: copy, replacing what is there.
put() {
	mkdirs "$(dirname "$2")"
	install -m "$3" "$1" "$2"
	record file "$2"
	echo "installed $2"
}

# conf SRC DEST: copy unless DEST exists (FORCE=1 replaces it).
conf() {
	mkdirs "$(dirname "$2")"
	if [ -e "$2" ] && [ "$FORCE" != 1 ] && ! ours "$2"; then
		echo "kept existing $2 (FORCE=1 replaces it with $1)"
		return
	fi
	install -m 0644 "$1" "$2"
	record conf "$(sha256sum <"$2" | cut -d' ' -f1)" "$2"
	echo "installed $2"
}

# ours PATH: PATH (under $DESTDIR) is a configuration file install wrote,
# unchanged since.
ours() {
	grep -qxF "conf $(sha256sum <"$1" | cut -d' ' -f1) ${1#"$DESTDIR"}" "$MANIFEST" 2>/dev/null
}

do_install() {
	[ -f "$MANIFEST" ] && list=$(cat "$MANIFEST")"
"
	for b in weft weft-agent weft-apiserver; do put "$BIN/$b" "$DESTDIR$BINDIR/$b" 0755; done
	put "$BIN/weft-cni" "$DESTDIR$CNI_BIN_DIR/weft-cni" 0755
	tmp=$(mktemp -d)
	for u in weft-agent weft-apiserver; do
		sed "s|/usr/local/bin/|$BINDIR/|g" "$SRC/systemd/$u.service" >"$tmp/$u.service"
		put "$tmp/$u.service" "$DESTDIR$UNIT_DIR/$u.service" 0644
	done
	rm -rf "$tmp"
	conf "$SRC/config/10-weft.conflist" "$DESTDIR$CNI_CONF_DIR/10-weft.conflist"
	for c in agent.yaml agent.env apiserver.yaml; do conf "$SRC/config/$c" "$DESTDIR$CONF_DIR/$c"; done
	mkdirs "$(dirname "$MANIFEST")"
	printf '%s' "$list" | awk 'NF && !seen[$0]++' >"$MANIFEST"
}

do_uninstall() {
	if [ ! -f "$MANIFEST" ]; then
		echo "nothing to uninstall: no $MANIFEST"
		return
	fi
	while read -r kind a b; do
		case $kind in
		file) rm -f "$DESTDIR$a" && echo "removed $DESTDIR$a" ;;
		conf)
			p=$DESTDIR$b
			[ -e "$p" ] || continue
			if ours "$p"; then
				rm -f "$p" && echo "removed $p"
			else
				echo "kept $p: changed since install"
			fi
			;;
		esac
	done <"$MANIFEST"
	dirs=$(awk '$1 == "dir" { print $2 }' "$MANIFEST" | sort -r)
	rm -f "$MANIFEST"
	for d in $dirs; do rmdir "$DESTDIR$d" 2>/dev/null || true; done
}

case ${1-} in
install) do_install ;;
uninstall) do_uninstall ;;
*) echo "usage: $0 install|uninstall (see make install)" >&2; exit 2 ;;
esac
