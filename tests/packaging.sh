#!/usr/bin/env bash
# What a user of the library meets first, checked (make test-packaging,
# part of make check):
#   - `make install PREFIX=P DESTDIR=D` put a ringcast.pc under D whose
#     paths are P's (not /usr/local's, not D's), and pkg-config resolves
#     it to P's include and lib directories;
#   - it installed libringcast.so.VERSION with the links .so.0 (the
#     soname) and .so;
#   - a program linked against BUILD/libringcast.so, with an rpath to
#     BUILD, starts: BUILD has the libringcast.so.0 it asks for.
#
#   tests/packaging.sh BUILD DESTDIR PREFIX   (after that make install)
set -u
build=$1 destdir=$2 prefix=$3
fails=0

fail() {
	echo "  FAIL    packaging: $*"
	fails=$((fails + 1))
}

pcdir=$destdir$prefix/lib/pkgconfig
pc=$pcdir/ringcast.pc
libdir=$destdir$prefix/lib
if [ ! -f "$pc" ]; then
	fail "make install left no $pc"
else
	line=$(grep '^prefix=' "$pc")
	[ "$line" = "prefix=$prefix" ] || fail "$pc says '$line', expected 'prefix=$prefix'"
	grep -q -- "$destdir" "$pc" && fail "$pc names DESTDIR $destdir: $(grep -- "$destdir" "$pc" | head -1)"
	if ! command -v pkg-config >/dev/null; then
		fail "no pkg-config to read $pc with"
	else
		got=$(PKG_CONFIG_PATH=$pcdir PKG_CONFIG_LIBDIR= pkg-config --cflags --libs ringcast 2>&1)
		want="-I$prefix/include -L$prefix/lib -lringcast"
		# pkg-config may space its output differently: compare word by word.
		[ "$(echo $got)" = "$want" ] || fail "pkg-config --cflags --libs ringcast: '$got', expected '$want'"
	fi
fi

# The installed shared object: the real file and its two links.
real=$(basename "$(ls "$libdir"/libringcast.so.*.*.* 2>/dev/null | head -1)")
if [ -z "$real" ] || [ -L "$libdir/$real" ] || [ ! -f "$libdir/$real" ]; then
	fail "no libringcast.so.X.Y.Z file in $libdir ($(ls "$libdir" | tr '\n' ' '))"
else
	soname=$(readelf -d "$libdir/$real" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
	[ "$(readlink "$libdir/$soname")" = "$real" ] || fail "$libdir/$soname is not a link to $real"
	[ "$(readlink "$libdir/libringcast.so")" = "$soname" ] || fail "$libdir/libringcast.so is not a link to $soname"
fi

# A program linked against the build directory runs without LD_LIBRARY_PATH.
absbuild=$(cd "$build" && pwd)
prog=$build/tests/link-shared
mkdir -p "$build/tests"
cat > "$prog.c" <<'EOF'
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <ringcast.h>

int main(void)
{
	const char *s = ringcast_strerror(-ESTALE);

	printf("%s\n", s);
	return s && *s ? 0 : 1;
}
EOF
if ! ${CC:-cc} -Iinclude -o "$prog" "$prog.c" -L"$absbuild" -lringcast -Wl,-rpath,"$absbuild" 2>"$prog.log"; then
	fail "linking against $build/libringcast.so: $(cat "$prog.log")"
else
	needed=$(readelf -d "$prog" | sed -n 's/.*(NEEDED).*\[\(libringcast[^]]*\)\]/\1/p')
	[ "$needed" = libringcast.so.0 ] || fail "the program needs '$needed', expected libringcast.so.0"
	if ! out=$(env -u LD_LIBRARY_PATH "$prog" 2>&1); then
		fail "a program linked against $build/libringcast.so (rpath $absbuild) does not run: $out"
	fi
fi

if [ "$fails" -eq 0 ]; then
	echo "  packaging: ringcast.pc names $prefix, pkg-config resolves it, lib links, linked program runs"
	exit 0
fi
exit 1
