#!/bin/sh
# install-conffile.sh install|remove SRC DEST - a file the postmaster may edit
# (helpgate.conf, keyword lists, templates), as mk/install.mk installs it.
#
#   install: DEST missing        -> SRC is installed as DEST (mode 0644)
#            DEST equal to SRC   -> left as it is
#            DEST differs        -> kept; SRC goes to DEST.dist-new, with a note
#   remove:  DEST equal to SRC   -> removed
#            DEST differs        -> kept, with a note
#            DEST.dist-new       -> always removed (install put it there)
#
# "Differs" is byte for byte (cmp), so an edited file is never lost; the
# price is that an unedited file from an older release also stays, beside
# its .dist-new, until the postmaster merges them.
set -eu

usage() { echo "usage: install-conffile.sh install|remove SRC DEST" >&2; exit 2; }
[ $# = 3 ] || usage
op=$1 src=$2 dest=$3
[ -f "$src" ] || { echo "install-conffile.sh: no such file $src" >&2; exit 1; }

case "$op" in
install)
	if [ ! -e "$dest" ]; then
		install -m 0644 "$src" "$dest"
		rm -f "$dest.dist-new"
	elif cmp -s "$src" "$dest"; then
		rm -f "$dest.dist-new"
	else
		install -m 0644 "$src" "$dest.dist-new"
		echo "note: $dest differs from the new version: kept; the new one is $dest.dist-new"
	fi
	;;
remove)
	rm -f "$dest.dist-new"
	if [ -e "$dest" ]; then
		if cmp -s "$src" "$dest"; then
			rm -f "$dest"
		else
			echo "note: $dest was changed after installation: kept"
		fi
	fi
	;;
*)
	usage
	;;
esac
